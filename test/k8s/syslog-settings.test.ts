// The controller ConfigMap's enable-syslog, syslog-host, syslog-port (src/k8s/syslog-settings.ts)
// through parseControllerConfigMap, and the datagram the gateway makes of a line (src/gateway/syslog.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { errorLineSeverity, syslogMessage, syslogTime } from '../../src/gateway/syslog.ts';
import { configMapSettings } from './helpers.ts';

function parse(data: Record<string, string>) {
  const { s, issues } = configMapSettings(data);
  return { syslog: s.syslog, unsupported: s.unsupportedKeys, issues };
}

test('off by default; the host and port are read only with enable-syslog, port 514 by default', () => {
  assert.equal(parse({}).syslog, undefined);
  assert.equal(parse({ 'syslog-host': '10.0.0.5' }).syslog, undefined);
  const { syslog, unsupported, issues } = parse({ 'enable-syslog': 'true', 'syslog-host': ' 10.0.0.5 ' });
  assert.deepEqual(syslog, { host: '10.0.0.5', port: 514 });
  assert.deepEqual(unsupported, []);
  assert.deepEqual(issues, []);
  assert.deepEqual(
    parse({ 'enable-syslog': 'True', 'syslog-host': 'Syslog.Logging.svc.', 'syslog-port': '5140' }).syslog,
    { host: 'syslog.logging.svc', port: 5140 },
  );
  assert.deepEqual(parse({ 'enable-syslog': '1', 'syslog-host': '[fd00::0:5]' }).syslog, {
    host: 'fd00::5',
    port: 514,
  });
});

test('a missing or malformed host keeps the logs where they are, with a warning naming the key', () => {
  for (const host of [undefined, '', 'not a host', 'host:514', 'http://syslog']) {
    const data: Record<string, string> = { 'enable-syslog': 'true' };
    if (host !== undefined) data['syslog-host'] = host;
    const { syslog, issues } = parse(data);
    assert.equal(syslog, undefined, host);
    assert.equal(issues.length, 1, host);
    assert.equal(issues[0]!.code, 'INVALID_CONFIGMAP_VALUE');
    assert.match(issues[0]!.message, /syslog-host.*the logs stay on stdout and stderr/);
  }
});

test('a malformed port is 514, with a warning', () => {
  for (const port of ['0', '65536', '-1', 'x']) {
    const { syslog, issues } = parse({ 'enable-syslog': 'true', 'syslog-host': 'h', 'syslog-port': port });
    assert.deepEqual(syslog, { host: 'h', port: 514 }, port);
    assert.match(issues[0]!.message, /syslog-port.*514/);
  }
});

test("nginx's header: <PRI>, local time with a space-padded day, the host, the tag nginx", () => {
  const at = new Date(2026, 11, 5, 2, 4, 9).getTime();
  assert.equal(syslogTime(at), 'Dec  5 02:04:09');
  assert.equal(syslogTime(new Date(2026, 0, 15, 23, 59, 59).getTime()), 'Jan 15 23:59:59');
  assert.equal(
    syslogMessage('10.0.0.1 "GET / HTTP/1.1" 200', 6, at, 'node-1').toString(),
    '<190>Dec  5 02:04:09 node-1 nginx: 10.0.0.1 "GET / HTTP/1.1" 200',
  );
  // A line longer than a UDP datagram can carry is cut at its limit.
  assert.equal(syslogMessage('x'.repeat(70_000), 6, at, 'h').length, 65_507);
});

test("an error line's severity is its nginx level", () => {
  const line = (level: string) => `2026/12/05 02:04:09 [${level}] 7#7: *1 message [info]`;
  assert.equal(errorLineSeverity(line('error')), 3);
  assert.equal(errorLineSeverity(line('warn')), 4);
  assert.equal(errorLineSeverity(line('notice')), 5);
  assert.equal(errorLineSeverity(line('info')), 6);
  assert.equal(errorLineSeverity('no level here'), 6);
});
