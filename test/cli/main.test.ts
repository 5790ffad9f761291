import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHostPort } from '../../src/net/host-port.ts';
import { runCommand, runKeepip, startKeepip } from '../helpers/process.ts';

test('keepip --help lists every command and exits 0', async () => {
  const { code, stdout } = await runKeepip(['--help']);
  assert.equal(code, 0);
  for (const name of ['demo', 'up', 'gateway', 'lb', 'doctor', 'whoami', 'pp']) {
    assert.match(stdout, new RegExp(`^  ${name} `, 'm'));
  }
});

test('an unknown command is a usage error (exit 2) naming the command', async () => {
  const { code, stderr } = await runKeepip(['frobnicate']);
  assert.equal(code, 2);
  assert.match(stderr, /unknown command "frobnicate"/);
});

test('names that are not commands (Object.prototype members, a path) are usage errors too', async () => {
  for (const name of ['toString', 'constructor', '__proto__', '../cli/main']) {
    const { code, stderr } = await runKeepip([name]);
    assert.equal(code, 2, name);
    assert.match(stderr, /unknown command/, name);
  }
});

test("the ingress-nginx chart's first argument /nginx-ingress-controller runs keepip controller", async () => {
  const alias = await runKeepip(['/nginx-ingress-controller', '--help']);
  const direct = await runKeepip(['controller', '--help']);
  assert.equal(alias.code, 0);
  assert.equal(alias.stdout, direct.stdout);
  assert.match(alias.stdout, /--election-id/);
});

test('ADDR:PORT arguments: IPv4, bracketed IPv6, default host, and clear errors', () => {
  assert.deepEqual(parseHostPort('127.0.0.2:8080'), { ok: true, value: { host: '127.0.0.2', port: 8080 } });
  assert.deepEqual(parseHostPort('[::1]:443'), { ok: true, value: { host: '::1', port: 443 } });
  assert.deepEqual(parseHostPort(':0'), { ok: true, value: { host: '127.0.0.1', port: 0 } });
  assert.equal(parseHostPort('127.0.0.1:70000').ok, false);
  assert.equal(parseHostPort('::1:80').ok, false);
  assert.equal(parseHostPort('010.0.0.1:80').ok, false);
  assert.equal(parseHostPort('example.com:80').ok, false);
});

test('SIGUSR1 never opens the Node inspector: keepip and its workers keep a listener for it', async () => {
  // Without one, `kill -USR1` (the gateway's log reopen, sent to an lb or a controller by mistake)
  // opens a debugger on 127.0.0.1:9229 that any local process can attach to and run code through.
  const main = new URL('../../src/cli/main.ts', import.meta.url).href;
  const worker = new URL('../../src/workers/worker-main.ts', import.meta.url).href;
  const script = [
    `const { runExecutable } = await import(${JSON.stringify(main)});`,
    `await runExecutable(['--version']);`,
    `const afterMain = process.listenerCount('SIGUSR1');`,
    `process.removeAllListeners('SIGUSR1');`,
    `await import(${JSON.stringify(worker)});`,
    `console.log(afterMain, process.listenerCount('SIGUSR1'));`,
    `process.disconnect?.();`,
  ].join('\n');
  const run = await runCommand(process.execPath, ['--input-type=module', '-e', script]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^keepip \S+\n1 1\n$/);
});

test('an lb sent SIGUSR1 goes on serving, opens no inspector, and stops cleanly on SIGTERM', async () => {
  const lb = startKeepip(['lb', '--listen', '127.0.0.1:0', '--target', '127.0.0.1:9']);
  try {
    await lb.waitFor(/listening on 127\.0\.0\.1:\d+/);
    lb.child.kill('SIGUSR1');
    // A signal the lb answers with a line: when it is there, the SIGUSR1 sent before it was handled.
    lb.child.kill('SIGHUP');
    await lb.waitFor(/SIGHUP: nothing to reload in flags mode/);
  } finally {
    assert.equal(await lb.stop(), 0);
  }
  assert.doesNotMatch(lb.output(), /Debugger listening/);
});
