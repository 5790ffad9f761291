import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHostPort } from '../../src/net/host-port.ts';
import { runKeepip } from '../helpers/process.ts';

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
