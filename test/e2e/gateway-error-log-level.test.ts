// The ConfigMap's error-log-level over real sockets, as nginx's `error_log … level`: by default (notice)
// a client's invalid request (an info line in nginx) is not written, a refused client (error) is; with
// `info` both are; with `crit` neither. A reload changes it; an unknown level is notice, with a warning.
// Absence is checked after a later line that is written, so no wait decides it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Topology } from '../../src/config/model.ts';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';

describe('error-log-level', () => {
  let backend: RunningWhoami;
  let gw: TestGateway;
  const topology = (data: Record<string, string>): Topology =>
    topologyOf([
      controllerConfigMap(data),
      ...serviceWithEndpoints({ name: 'web', ports: [backend.address.port] }),
      ingress({
        name: 'web',
        host: 'web.example.com',
        paths: [{ path: '/', service: 'web', port: 80 }],
        annotations: { 'whitelist-source-range': '10.0.0.0/8' },
      }),
    ]);
  /** An invalid request from `invalidFrom` (info), then a refused one from `refusedFrom` (error). */
  const both = async (invalidFrom: string, refusedFrom: string) => {
    const invalid = { from: invalidFrom, host: 'web.example.com', path: '/../etc/passwd' };
    assert.equal((await request(gw.httpPort, invalid)).status, 400);
    assert.equal((await request(gw.httpPort, { from: refusedFrom, host: 'web.example.com' })).status, 403);
  };
  const infoLineFrom = (client: string) =>
    gw.errors.lines.filter((l) => l.includes('client sent invalid request') && l.includes(client));
  const forbidden = (client: string) =>
    new RegExp(`\\[error\\] .*access forbidden by rule, client: ${client.replaceAll('.', '\\.')}`);

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    gw = await startTestGateway(topology({}));
  });
  after(async () => {
    await gw?.close();
    await backend?.close();
  });

  test("notice (ingress-nginx's default): error lines, not a client's invalid request", async () => {
    await both('127.0.0.81', '127.0.0.82');
    await gw.errors.waitFor(forbidden('127.0.0.82'));
    assert.deepEqual(infoLineFrom('127.0.0.81'), []);
  });

  test('info: the invalid request is written too, at [info]', async () => {
    assert.equal(gw.gateway.reload(topology({ 'error-log-level': 'info' })).ok, true);
    await both('127.0.0.83', '127.0.0.84');
    await gw.errors.waitFor(forbidden('127.0.0.84'));
    const [line] = infoLineFrom('127.0.0.83');
    assert.match(
      line ?? '',
      /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[info\] \d+#\d+: \*\d+ client sent invalid request/,
    );
  });

  test('crit: not even the refused client; error again: it is back', async () => {
    assert.equal(gw.gateway.reload(topology({ 'error-log-level': 'crit' })).ok, true);
    await both('127.0.0.85', '127.0.0.86');
    assert.equal(gw.gateway.reload(topology({ 'error-log-level': 'error' })).ok, true);
    await both('127.0.0.87', '127.0.0.88');
    await gw.errors.waitFor(forbidden('127.0.0.88'));
    assert.deepEqual(
      gw.errors.lines.filter((l) => /127\.0\.0\.8[5-7]\b/.test(l)),
      [],
    );
  });

  test('an unknown level is notice, with a warning naming the levels', () => {
    const issues = topology({ 'error-log-level': 'verbose' }).issues;
    const warning = issues.find((i) => i.code === 'INVALID_CONFIGMAP_VALUE');
    assert.match(
      warning?.message ?? '',
      /error-log-level.*"verbose" is not one of emerg, alert, crit, error, warn, notice, info, debug; using the default notice/,
    );
    assert.equal(topology({ 'error-log-level': 'verbose' }).gateway.settings.errorLogLevel, undefined);
  });
});
