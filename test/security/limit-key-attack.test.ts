// Attacks on limit-conn-zone-variable (limits keyed on request data instead of the client address):
// keys from attacker-controlled headers, long keys, odd bytes, keys that mimic another client's key,
// limit-whitelist, and what a zone full of distinct keys does. limit-rpm 1 × limit-burst-multiplier 1
// admits two requests per key at once (burst + 1; a bucket leaks one a minute, so nothing refills
// during a test): [200, 200, 429] is "limited", [200, 200, 200] is "not limited".
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { checkLimits, MemoryLimiterStore, type RequestLimit } from '../../src/gateway/access/rate-limit.ts';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { openRaw } from '../helpers/net.ts';

let backend: RunningWhoami;
const gateways: TestGateway[] = [];

after(async () => {
  for (const gw of gateways) await gw.close();
  await backend?.close();
});

/** A gateway whose every limit keys on `keyTemplate`, with one limited Ingress (api.example.com). */
async function limitedGateway(keyTemplate: string, annotations: Record<string, string> = {}) {
  backend ??= await startWhoami({ host: '127.0.0.1', port: 0 });
  const gw = await startTestGateway(
    topologyOf([
      controllerConfigMap({ 'limit-conn-zone-variable': keyTemplate, 'limit-req-status-code': '429' }),
      ...serviceWithEndpoints({ name: 'api', ports: [backend.address.port] }),
      ingress({
        name: 'api',
        host: 'api.example.com',
        paths: [{ path: '/', service: 'api', port: 80 }],
        annotations: { 'limit-rpm': '1', 'limit-burst-multiplier': '1', ...annotations },
      }),
    ]),
  );
  gateways.push(gw);
  const get = (from: string, headers: Record<string, string> = {}) =>
    request(gw.httpPort, { from, host: 'api.example.com', headers }).then((r) => r.status);
  const three = async (from: string, headers: Record<string, string> = {}) => {
    const out: number[] = [];
    for (let i = 0; i < 3; i++) out.push(await get(from, headers));
    return out;
  };
  return { gw, get, three };
}

/** A raw request with header lines byte for byte (latin1): its status. */
async function rawStatus(port: number, from: string, extra: string): Promise<number> {
  const conn = await openRaw({ host: '127.0.0.1', port, localAddress: from });
  conn.socket.write(
    Buffer.from(`GET / HTTP/1.1\r\nHost: api.example.com\r\n${extra}Connection: close\r\n\r\n`, 'latin1'),
  );
  const got = await conn.until((b) => b.includes('\r\n\r\n'));
  conn.destroy();
  return Number(got.toString('latin1').split(' ')[1]);
}

describe('limit-conn-zone-variable $http_x_api_key', () => {
  test('limit-whitelist exempts by address, not by a key that spells the address', async () => {
    const { three } = await limitedGateway('$http_x_api_key', { 'limit-whitelist': '127.0.40.1/32' });
    // The exempt address is never limited, whatever key it sends.
    assert.deepEqual(await three('127.0.40.1', { 'x-api-key': 'shared' }), [200, 200, 200]);
    // Another address sending the same key is limited (the exempt one charged nothing).
    assert.deepEqual(await three('127.0.40.2', { 'x-api-key': 'shared' }), [200, 200, 429]);
    // A key equal to the exempt address is an ordinary key.
    assert.deepEqual(await three('127.0.40.3', { 'x-api-key': '127.0.40.1' }), [200, 200, 429]);
    // X-Forwarded-For from an untrusted peer does not make it the exempt client.
    assert.deepEqual(
      await three('127.0.40.4', {
        'x-api-key': 'k4',
        'x-forwarded-for': '127.0.40.1',
        'x-real-ip': '127.0.40.1',
      }),
      [200, 200, 429],
    );
  });

  test('keys differing only in a byte >= 0x80 are distinct buckets; a key of OWS only is no key', async () => {
    const { gw } = await limitedGateway('$http_x_api_key');
    const statuses = async (from: string, line: string) => {
      const out: number[] = [];
      for (let i = 0; i < 3; i++) out.push(await rawStatus(gw.httpPort, from, line));
      return out;
    };
    assert.deepEqual(await statuses('127.0.41.1', 'X-Api-Key: k\xfe\r\n'), [200, 200, 429]);
    assert.deepEqual(await statuses('127.0.41.1', 'X-Api-Key: k\xff\r\n'), [200, 200, 429]);
    // UTF-8 é (two bytes) is not latin1 é (one byte).
    assert.deepEqual(await statuses('127.0.41.1', 'X-Api-Key: k\xe9\r\n'), [200, 200, 429]);
    assert.deepEqual(await statuses('127.0.41.1', 'X-Api-Key: k\xc3\xa9\r\n'), [200, 200, 429]);
    // Control bytes in a key never reach the limiter: the request is refused (400).
    assert.equal(await rawStatus(gw.httpPort, '127.0.41.2', 'X-Api-Key: k\x01\r\n'), 400);
    // Only whitespace: trimmed to nothing, and nginx does not account an empty key.
    assert.deepEqual(await statuses('127.0.41.3', 'X-Api-Key:    \t \r\n'), [200, 200, 200]);
  });

  test('an 8 KB key is one bucket (hashed), distinct from its 64-character prefix', async () => {
    const { three, get } = await limitedGateway('$http_x_api_key');
    const long = 'L'.repeat(8000);
    assert.deepEqual(await three('127.0.42.1', { 'x-api-key': long }), [200, 200, 429]);
    assert.equal(await get('127.0.42.1', { 'x-api-key': 'L'.repeat(64) }), 200);
    assert.equal(await get('127.0.42.1', { 'x-api-key': `${long}M` }), 200);
  });

  test('a short key cannot name the bucket of a long key (hashed keys live in their own namespace)', async () => {
    const { three, get } = await limitedGateway('$http_x_api_key');
    const long = 'victim-'.repeat(20);
    const alias = `#${createHash('sha256').update(long).digest('base64')}`;
    assert.equal(alias.length, 45);
    // The attacker spends the bucket with the alias...
    assert.deepEqual(await three('127.0.43.1', { 'x-api-key': alias }), [200, 200, 429]);
    // ...and the holder of the long key should still have its own.
    assert.equal(await get('127.0.43.2', { 'x-api-key': long }), 200);
  });
});

describe('limit-conn-zone-variable mixing the address and a header', () => {
  test('default key (the address): a forged X-Forwarded-For or key header cannot charge another client', async () => {
    backend ??= await startWhoami({ host: '127.0.0.1', port: 0 });
    const gw = await startTestGateway(
      topologyOf([
        controllerConfigMap({ 'limit-req-status-code': '429' }),
        ...serviceWithEndpoints({ name: 'api', ports: [backend.address.port] }),
        ingress({
          name: 'api',
          host: 'api.example.com',
          paths: [{ path: '/', service: 'api', port: 80 }],
          annotations: { 'limit-rpm': '1', 'limit-burst-multiplier': '1' },
        }),
      ]),
    );
    gateways.push(gw);
    const get = (from: string, headers: Record<string, string> = {}) =>
      request(gw.httpPort, { from, host: 'api.example.com', headers }).then((r) => r.status);
    for (let i = 0; i < 3; i++)
      await get('127.0.44.1', { 'x-forwarded-for': '127.0.44.9', 'x-real-ip': '127.0.44.9' });
    assert.equal(await get('127.0.44.9'), 200, "the victim's bucket is untouched");
  });

  test('$binary_remote_addr$http_x_api_key: client 127.0.45.1 with key "5" and client 127.0.45.15 without one are distinct', async () => {
    const { three, get } = await limitedGateway('$binary_remote_addr$http_x_api_key');
    assert.deepEqual(await three('127.0.45.1', { 'x-api-key': '5' }), [200, 200, 429]);
    // nginx: 4 address bytes + "5" is not the 4 bytes of 127.0.45.15, so the victim has its own bucket.
    assert.equal(await get('127.0.45.15'), 200, 'the victim is refused by a bucket another client filled');
  });
});

describe('a zone full of distinct keys (the store, driven directly: filling 65,536 keys over sockets is too heavy here)', () => {
  const limit: RequestLimit = { zone: 'z rpm', perSecond: 1000 / 60, burst: 1 };

  test('memory stays bounded: at most maxKeysPerZone buckets, the oldest evicted first', () => {
    const store = new MemoryLimiterStore(8);
    for (let i = 0; i < 1000; i++) checkLimits(store, [limit], null, `spray-${i}`, 0);
    assert.ok(store.zoneSize('z rpm') <= 8, `${store.zoneSize('z rpm')} buckets`);
  });

  test('a spray of new keys resets an exhausted bucket (as nginx evicts LRU nodes of a full zone)', () => {
    const store = new MemoryLimiterStore(8);
    const now = 0;
    assert.equal(checkLimits(store, [limit], null, 'victim', now), 'admitted');
    assert.equal(checkLimits(store, [limit], null, 'victim', now), 'admitted');
    assert.equal(checkLimits(store, [limit], null, 'victim', now), 'requests');
    // maxKeysPerZone new keys (two generations of maxKeys/2): the exhausted bucket is forgotten.
    for (let i = 0; i < 8; i++) checkLimits(store, [limit], null, `spray-${i}`, now);
    assert.equal(checkLimits(store, [limit], null, 'victim', now), 'admitted');
  });

  test('connection slots: released keys leave nothing behind', () => {
    const store = new MemoryLimiterStore(8);
    const conn = { zone: 'z conn', limit: 1 };
    for (let i = 0; i < 500; i++) {
      assert.equal(checkLimits(store, [], conn, `k${i}`, 0), 'admitted');
      store.releaseConnection('z conn', `k${i}`);
    }
    assert.equal(store.connectionKeys, 0);
  });
});
