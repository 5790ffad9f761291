// enable-syslog read by someone else's parser: rsyslogd (Debian's) listens on UDP 127.0.0.1 and writes
// what it parsed of each datagram (facility, severity, host name, tag, message) with a template of its
// own. Access lines arrive as local7.info and error lines as local7.err, tagged nginx, as nginx's
// `syslog:server=` would send them, so existing rsyslog rules (`:programname, isequal, "nginx"`) match.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { freePort } from '../helpers/net.ts';
import { type Running, requireBinary, start } from '../helpers/process.ts';

interface Rsyslog {
  port: number;
  /** Resolves with the first line rsyslogd wrote (already or later) that matches. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

/** Whether a UDP socket is bound to 127.0.0.1:port (from /proc/net/udp: no datagram is sent to probe). */
function udpBound(port: number): boolean {
  const wanted = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/udp', 'utf8').includes(` ${wanted} `);
}

async function until(check: () => boolean, what: string, process: Running, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (process.child.exitCode !== null) throw new Error(`rsyslogd exited: ${process.output()}`);
    if (Date.now() > deadline)
      throw new Error(`${what} after ${timeoutMs} ms; rsyslogd: ${process.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function startRsyslog(): Promise<Rsyslog> {
  const binary = requireBinary('rsyslogd');
  const dir = mkdtempSync(join(tmpdir(), 'keepip-rsyslog-'));
  const port = await freePort();
  const out = join(dir, 'out.log');
  writeFileSync(
    join(dir, 'rsyslog.conf'),
    [
      `global(workDirectory="${dir}")`,
      'module(load="imudp")',
      `input(type="imudp" address="127.0.0.1" port="${port}")`,
      'template(name="parsed" type="string" string="%syslogfacility-text%.%syslogseverity-text% host=%hostname% tag=%programname% msg=%msg%\\n")',
      `*.* action(type="omfile" file="${out}" template="parsed")`,
      '',
    ].join('\n'),
  );
  const running = start(binary, ['-n', '-f', join(dir, 'rsyslog.conf'), '-i', join(dir, 'rsyslogd.pid')]);
  await until(() => udpBound(port), `nothing bound to 127.0.0.1:${port}`, running);
  const lines = () => (existsSync(out) ? readFileSync(out, 'utf8').split('\n') : []);
  return {
    port,
    async waitForLine(pattern, timeoutMs = 30_000) {
      await until(
        () => lines().some((l) => pattern.test(l)),
        `no rsyslog line ${pattern}`,
        running,
        timeoutMs,
      );
      return lines().find((l) => pattern.test(l))!;
    },
    async stop() {
      await running.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('enable-syslog, parsed by rsyslogd', () => {
  let backend: RunningWhoami;
  let rsyslog: Rsyslog;
  let gw: TestGateway;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    rsyslog = await startRsyslog();
    gw = await startTestGateway(
      topologyOf([
        controllerConfigMap({
          'log-format-upstream': '$remote_addr "$request" $status',
          'enable-syslog': 'true',
          'syslog-host': '127.0.0.1',
          'syslog-port': String(rsyslog.port),
        }),
        ...serviceWithEndpoints({ name: 'web', ports: [backend.address.port] }),
        ingress({
          name: 'web',
          host: 'web.example.com',
          paths: [{ path: '/', service: 'web', port: 80 }],
          annotations: { 'whitelist-source-range': '127.0.0.71/32' },
        }),
      ]),
    );
  });
  after(async () => {
    await gw?.close();
    await rsyslog?.stop();
    await backend?.close();
  });

  test('an access line: local7.info, our host name, tag nginx, the line as the message', async () => {
    const reply = await request(gw.httpPort, { from: '127.0.0.71', host: 'web.example.com', path: '/x' });
    assert.equal(reply.status, 200);
    const line = await rsyslog.waitForLine(/127\.0\.0\.71 "GET \/x HTTP\/1\.1" 200/);
    assert.equal(
      line,
      `local7.info host=${hostname().toLowerCase()} tag=nginx msg= 127.0.0.71 "GET /x HTTP/1.1" 200`,
    );
  });

  test('an error line: local7.err, the nginx error line as the message', async () => {
    const reply = await request(gw.httpPort, { from: '127.0.0.72', host: 'web.example.com' });
    assert.equal(reply.status, 403);
    const line = await rsyslog.waitForLine(/access forbidden by rule, client: 127\.0\.0\.72/);
    assert.match(
      line,
      new RegExp(
        `^local7\\.err host=${hostname().toLowerCase()} tag=nginx msg= \\d{4}/\\d\\d/\\d\\d \\d\\d:\\d\\d:\\d\\d \\[error\\] \\d+#\\d+: \\*\\d+ access forbidden by rule`,
      ),
    );
  });
});
