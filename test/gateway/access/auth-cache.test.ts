// How long an auth answer is cached (auth-cache-key / auth-cache-duration), as nginx's proxy cache in
// ingress-nginx's auth location decides it: the answer's own X-Accel-Expires, Cache-Control and Expires
// before the status times (ngx_http_upstream_process_accel_expires / _cache_control / _expires).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type AuthAnswer,
  AuthAnswerCache,
  authCacheTtl,
  cacheTimes,
} from '../../../src/gateway/access/external-auth.ts';
import { parseHttpTime } from '../../../src/gateway/http-time.ts';

const NOW = Date.UTC(2026, 11, 4, 12, 0, 0);
const TIMES = cacheTimes(['200 202 401 30m']);
/** An answer whose header lines are `headers` (a list: that many lines of the name). */
const answer = (status: number, headers: AuthAnswer['headers'] = {}): AuthAnswer => ({
  status,
  headers,
  lines: Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [name, typeof value === 'string' ? [value] : value]),
  ),
  failure: null,
});
const ttl = (status: number, headers: AuthAnswer['headers'] = {}) =>
  authCacheTtl(answer(status, headers), TIMES, NOW);

describe('authCacheTtl: the time an auth answer is kept', () => {
  it('without caching headers: the status time of auth-cache-duration, none for other statuses', () => {
    assert.equal(ttl(200), 30 * 60_000);
    assert.equal(ttl(401), 30 * 60_000);
    assert.equal(ttl(403), 0);
    assert.equal(authCacheTtl({ status: 200, headers: {}, lines: {}, failure: 'refused' }, TIMES, NOW), 0);
  });

  it('Cache-Control max-age / s-maxage set the time for any status, s-maxage first', () => {
    assert.equal(ttl(200, { 'cache-control': 'public, max-age=60' }), 60_000);
    assert.equal(
      ttl(403, { 'cache-control': 'max-age=60' }),
      60_000,
      'a status auth-cache-duration does not list',
    );
    assert.equal(ttl(200, { 'cache-control': 'max-age=60, s-maxage=5' }), 5_000);
    assert.equal(
      ttl(200, { 'cache-control': ['public', 'max-age=7'] }),
      7_000,
      'every Cache-Control line counts',
    );
  });

  it('Cache-Control no-cache, no-store, private, max-age=0 or a bad max-age: not stored', () => {
    for (const control of [
      'no-cache',
      'No-Store',
      'private, max-age=60',
      'max-age=0',
      'max-age=ten',
      'max-age=,',
    ])
      assert.equal(ttl(200, { 'cache-control': control }), 0, control);
  });

  it('Expires: until then; in the past or not an HTTP date: not stored; Cache-Control wins over it', () => {
    assert.equal(ttl(200, { expires: 'Fri, 04 Dec 2026 12:05:00 GMT' }), 5 * 60_000);
    assert.equal(ttl(403, { expires: 'Fri, 04 Dec 2026 12:05:00 GMT' }), 5 * 60_000);
    assert.equal(ttl(200, { expires: 'Fri, 04 Dec 2026 11:00:00 GMT' }), 0);
    assert.equal(ttl(200, { expires: '0' }), 0);
    assert.equal(ttl(200, { expires: '2030-01-01' }), 0, 'a date nginx does not read is not one');
    assert.equal(ttl(200, { expires: 'Fri, 04 Dec 2026 11:00:00 GMT', 'cache-control': 'max-age=9' }), 9_000);
  });

  it('X-Accel-Expires wins over both: seconds, @epoch seconds, 0 never stores, invalid is ignored', () => {
    assert.equal(ttl(200, { 'x-accel-expires': '20', 'cache-control': 'no-store' }), 20_000);
    assert.equal(ttl(403, { 'x-accel-expires': '20', expires: 'Fri, 04 Dec 2026 11:00:00 GMT' }), 20_000);
    assert.equal(ttl(200, { 'x-accel-expires': `@${NOW / 1000 + 90}` }), 90_000);
    assert.equal(ttl(200, { 'x-accel-expires': '0', 'cache-control': 'max-age=60' }), 0);
    assert.equal(ttl(200, { 'x-accel-expires': 'soon', 'cache-control': 'max-age=60' }), 60_000);
    assert.equal(ttl(200, { 'x-accel-expires': ['5', '50'] }), 5_000, 'a repeated one: the first counts');
  });

  it('Set-Cookie or Vary: * keep any answer out', () => {
    assert.equal(ttl(200, { 'set-cookie': ['a=b'], 'x-accel-expires': '20' }), 0);
    assert.equal(ttl(200, { vary: '*' }), 0);
    assert.equal(ttl(200, { vary: ['accept', '*'] }), 0, 'a * on a second line');
    assert.equal(ttl(200, { vary: 'cookie, *' }), 0, 'a * in a list');
    assert.equal(ttl(200, { vary: `x-${'a'.repeat(130)}` }), 0, 'longer than nginx keys (128)');
    assert.equal(ttl(200, { vary: 'accept-encoding' }), 30 * 60_000);
  });

  it('each line apart, as nginx reads them (never the lines joined): the later max-age=0 keeps it out', () => {
    assert.equal(ttl(200, { 'cache-control': ['max-age=600', 'max-age=0'] }), 0);
    assert.equal(ttl(200, { 'cache-control': ['max-age=600', 'no-store'] }), 0);
    assert.equal(ttl(200, { 'cache-control': ['max-age=0', 'max-age=600'] }), 0);
    assert.equal(ttl(200, { 'x-accel-expires': ['0', '600'], 'cache-control': 'max-age=60' }), 0);
    assert.equal(ttl(403, { 'x-accel-expires': ['0', '600'] }), 0, 'the first line decides');
  });
});

describe('AuthAnswerCache', () => {
  it('an answer not used for 30 minutes is dropped, however long its own time (inactive=30m)', () => {
    const cache = new AuthAnswerCache();
    cache.put('k', answer(200), 24 * 3_600_000, NOW, {});
    assert.notEqual(
      cache.get('k', NOW + 29 * 60_000, () => ({})),
      null,
      'used at 29 minutes',
    );
    assert.notEqual(
      cache.get('k', NOW + 58 * 60_000, () => ({})),
      null,
      '29 minutes after its last use',
    );
    assert.equal(
      cache.get('k', NOW + 89 * 60_000, () => ({})),
      null,
      '31 minutes after its last use',
    );
  });

  it('an answer past its time is gone', () => {
    const cache = new AuthAnswerCache();
    cache.put('k', answer(200), 60_000, NOW, {});
    assert.equal(
      cache.get('k', NOW + 60_000, () => ({})),
      null,
    );
  });

  it('an answer with Vary holds only for requests with the same values of the named headers', () => {
    const cache = new AuthAnswerCache();
    const carol = { cookie: 'x=carol', authorization: 'Bearer c' };
    cache.put('k', answer(200, { vary: ['Cookie', 'authorization'] }), 60_000, NOW, carol);
    assert.notEqual(
      cache.get('k', NOW, () => ({ ...carol, accept: 'a/b' })),
      null,
      'same variant, other headers',
    );
    assert.equal(
      cache.get('k', NOW, () => ({})),
      null,
      'without the headers: a miss',
    );
    assert.equal(
      cache.get('k', NOW, () => ({ ...carol, cookie: 'x=mallory' })),
      null,
      'another cookie: a miss',
    );
    assert.equal(
      cache.get('k', NOW, () => ({ cookie: 'x=carol' })),
      null,
      'one of the two missing: a miss',
    );
    // The other variant's answer replaces the entry; the first variant then misses.
    cache.put('k', answer(401, { vary: 'cookie' }), 60_000, NOW, {});
    assert.equal(cache.get('k', NOW, () => ({}))?.status, 401);
    assert.equal(
      cache.get('k', NOW, () => carol),
      null,
    );
  });
});

describe('parseHttpTime: the three forms nginx reads', () => {
  it('IMF-fixdate, RFC 850 and asctime give the same instant; other text is not a date', () => {
    const at = Date.UTC(1994, 10, 6, 8, 49, 37);
    assert.equal(parseHttpTime('Sun, 06 Nov 1994 08:49:37 GMT'), at);
    assert.equal(parseHttpTime('Sunday, 06-Nov-94 08:49:37 GMT'), at);
    assert.equal(parseHttpTime('Sun Nov  6 08:49:37 1994'), at);
    for (const text of [
      '',
      '0',
      '2030-01-01',
      'Sun, 06 Nov 1994 08:49:37 UTC',
      'Thu, 31 Feb 2030 00:00:00 GMT',
    ])
      assert.equal(parseHttpTime(text), null, text);
  });
});
