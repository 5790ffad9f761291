// limit-conn-zone-variable end to end: limits keyed on a request header instead of the client
// address, as ingress-nginx's `$limit_<id>` map does with it. limit-rpm 1 × burst multiplier 1 admits
// two requests per key at once (burst + 1; the bucket leaks one a minute, so nothing refills here).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';

let backend: RunningWhoami;
let gw: TestGateway;

before(async () => {
  backend = await startWhoami({ host: '127.0.0.1', port: 0 });
  gw = await startTestGateway(
    topologyOf([
      controllerConfigMap({ 'limit-conn-zone-variable': '$http_x_api_key', 'limit-req-status-code': '429' }),
      ...serviceWithEndpoints({ name: 'api', ports: [backend.address.port] }),
      ingress({
        name: 'api',
        host: 'api.example.com',
        paths: [{ path: '/', service: 'api', port: 80 }],
        annotations: { 'limit-rpm': '1', 'limit-burst-multiplier': '1' },
      }),
    ]),
  );
});

after(async () => {
  await gw?.close();
  await backend?.close();
});

const get = (from: string, key?: string) =>
  request(gw.httpPort, {
    from,
    host: 'api.example.com',
    headers: key === undefined ? {} : { 'x-api-key': key },
  }).then((r) => r.status);

/** Three requests with `key`, from the given addresses in turn: their statuses. */
async function three(from: readonly string[], key?: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < 3; i++) out.push(await get(from[i % from.length]!, key));
  return out;
}

test('one bucket per X-Api-Key value whatever the address; without the header, no limit', async () => {
  // The same key from two addresses shares one bucket.
  assert.deepEqual(await three(['127.0.31.1', '127.0.31.2'], 'alpha'), [200, 200, 429]);
  // Another key from the same addresses has its own.
  assert.deepEqual(await three(['127.0.31.1'], 'beta'), [200, 200, 429]);
  // A key longer than 64 characters is a bucket too (kept as its hash), distinct from its prefix.
  assert.deepEqual(await three(['127.0.31.3'], 'k'.repeat(300)), [200, 200, 429]);
  assert.equal(await get('127.0.31.3', 'k'.repeat(64)), 200);
  // nginx does not account an empty key: requests without the header are not limited.
  assert.deepEqual(await three(['127.0.31.4']), [200, 200, 200]);
  await gw.errors.waitFor(/limiting requests by zone/);
});
