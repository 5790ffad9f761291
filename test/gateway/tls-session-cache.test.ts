// The gateway's TLS session cache (src/gateway/tls-session-cache.ts): bounded by the bytes of session
// data (least recently used dropped), each session kept for ssl-session-timeout, off with
// ssl-session-cache "false"; the settings read at each use, so a reload applies at once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TlsSessionModel } from '../../src/config/model.ts';
import { TlsSessionCache } from '../../src/gateway/tls-session-cache.ts';
import { DEFAULT_TLS_SESSIONS } from '../../src/k8s/tls-sessions.ts';

const id = (n: number) => Buffer.from([n]);

/** A DER length field. */
const derLength = (n: number) =>
  n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);

/** Session data of exactly `size` bytes: a DER SEQUENCE (as OpenSSL's is) holding an OCTET STRING. */
function data(size: number): Buffer {
  for (let n = size; n >= 0; n--) {
    const octets = Buffer.concat([Buffer.from([0x04]), derLength(n), Buffer.alloc(n, 1)]);
    const whole = Buffer.concat([Buffer.from([0x30]), derLength(octets.length), octets]);
    if (whole.length === size) return whole;
  }
  throw new Error(`no DER of ${size} bytes`);
}

test('bounded by bytes: the least recently used go first', () => {
  const model: TlsSessionModel = { ...DEFAULT_TLS_SESSIONS, cacheSizeBytes: 3000 };
  const cache = new TlsSessionCache(() => model);
  cache.store(id(1), data(1000));
  cache.store(id(2), data(1000));
  cache.store(id(3), data(1000));
  assert.ok(cache.lookup(id(1)) !== null); // 1 is now the most recent
  cache.store(id(4), data(1000));
  assert.equal(cache.lookup(id(2)), null, 'the least recently used was dropped');
  assert.ok(cache.lookup(id(1)) !== null);
  assert.ok(cache.lookup(id(3)) !== null);
  assert.ok(cache.lookup(id(4)) !== null);
  assert.equal(cache.bytes, 3000);
  // One session larger than the whole cache is not kept, and evicts nothing.
  cache.store(id(5), data(4000));
  assert.equal(cache.lookup(id(5)), null);
  assert.equal(cache.bytes, 3000);
});

test('a session expires after ssl-session-timeout; the cache can be turned off', () => {
  let now = 0;
  const model: TlsSessionModel = { ...DEFAULT_TLS_SESSIONS, timeoutSeconds: 60 };
  const cache = new TlsSessionCache(
    () => model,
    () => now,
  );
  cache.store(id(1), data(100));
  now = 59_999;
  assert.ok(cache.lookup(id(1)) !== null);
  now = 60_000;
  assert.equal(cache.lookup(id(1)), null);
  assert.equal(cache.bytes, 0);
  model.cache = false;
  cache.store(id(2), data(100));
  assert.equal(cache.lookup(id(2)), null);
});

test("Node's server events: newSession stores, resumeSession answers", () => {
  const cache = new TlsSessionCache(() => DEFAULT_TLS_SESSIONS);
  let stored = false;
  cache.emit('newSession', id(7), data(10), () => {
    stored = true;
  });
  assert.equal(stored, true);
  let answer: Buffer | null = null;
  cache.emit('resumeSession', id(7), (_error: Error | null, session: Buffer | null) => {
    answer = session;
  });
  assert.deepEqual(answer, data(10));
});

test('a session that holds the client certificate ([3] peer) or is not DER is not kept', () => {
  const cache = new TlsSessionCache(() => DEFAULT_TLS_SESSIONS);
  const peer = Buffer.from([0xa3, 0x02, 0x30, 0x00]); // [3] { SEQUENCE {} }
  const withPeer = Buffer.concat([Buffer.from([0x30, 3 + peer.length, 0x02, 0x01, 0x01]), peer]);
  cache.store(id(1), withPeer);
  assert.equal(cache.lookup(id(1)), null, 'a resumed one would skip auth-tls-verify-depth');
  cache.store(id(2), Buffer.from('not a session'));
  assert.equal(cache.lookup(id(2)), null);
  cache.store(id(3), data(50));
  assert.ok(cache.lookup(id(3)) !== null, 'the control');
  assert.equal(cache.bytes, 50);
});
