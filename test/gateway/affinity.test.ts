import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import type { AffinityModel } from '../../src/config/model.ts';
import { affinitizedTo, affinityCookie, cookieTime, stickyChoice } from '../../src/gateway/affinity.ts';
import type { BalancedUpstream, UpstreamMember } from '../../src/gateway/upstream.ts';

const md5 = (t: string) => createHash('md5').update(t).digest('hex');
const member = (hostPort: string) => ({ hostPort }) as UpstreamMember;
const upstream: BalancedUpstream = {
  name: 'default-web-80',
  members: [member('10.0.0.1:8080'), member('10.0.0.2:8080')],
  cursor: { value: 0 },
};
const affinity: AffinityModel = {
  mode: 'persistent',
  cookieName: 'route',
  expires: null,
  maxAge: null,
  path: null,
  domain: null,
  secure: false,
  sameSite: null,
  conditionalSameSiteNone: false,
  changeOnFailure: false,
};

test("ingress-nginx's keys: md5(name + address:port) | md5(md5(name) + name)", () => {
  const backend = md5(`${md5('default-web-80')}default-web-80`);
  const second = md5('default-web-8010.0.0.2:8080');
  assert.deepEqual(stickyChoice(affinity, upstream, `a=1; route=${second}|${backend}`), {
    index: 1,
    newKey: null,
  });
  assert.equal(affinitizedTo(affinity, upstream, `route=${second}|${backend}`), true);
  assert.equal(affinitizedTo(affinity, upstream, `route=${second}|other`), false);
  // Unknown or missing: a random member, and its key for the cookie.
  assert.deepEqual(
    stickyChoice(affinity, upstream, 'route=nope', () => 0.6),
    { index: 1, newKey: second },
  );
  assert.deepEqual(
    stickyChoice(affinity, upstream, undefined, () => 0),
    {
      index: 0,
      newKey: md5('default-web-8010.0.0.1:8080'),
    },
  );
});

test("the cookie's attributes in lua-resty-cookie's order; SameSite=None left out for clients that mishandle it", () => {
  const c = (model: Partial<AffinityModel>, https = false, userAgent?: string) =>
    affinityCookie(
      { ...affinity, ...model },
      { upstream, key: 'K', locationPath: '/app', https, userAgent, nowMs: Date.UTC(2026, 0, 2, 3, 4, 5) },
    );
  const bk = md5(`${md5('default-web-80')}default-web-80`);
  assert.equal(c({}), `route=K|${bk}; Path=/app; HttpOnly`);
  assert.equal(
    c({ expires: 60, maxAge: 120, domain: 'x.example', path: '/', sameSite: 'Lax' }, true),
    `route=K|${bk}; Expires=Fri, 02-Jan-26 03:05:05 GMT; Max-Age=120; Domain=x.example; Path=/; Secure; HttpOnly; SameSite=Lax`,
  );
  // nginx's cookie_time writes two-digit years up to 2037 and four-digit ones after.
  const at = (nowMs: number) =>
    affinityCookie(
      { ...affinity, expires: 120 },
      { upstream, key: 'K', locationPath: '/', https: false, userAgent: undefined, nowMs },
    );
  assert.match(at(Date.UTC(2037, 0, 1)), /; Expires=Thu, 01-Jan-37 00:02:00 GMT;/);
  assert.match(at(Date.UTC(2037, 11, 31, 23, 59)), /; Expires=Fri, 01-Jan-2038 00:01:00 GMT;/);
  const none = { sameSite: 'None', conditionalSameSiteNone: true };
  assert.match(c(none, false, 'Mozilla/5.0 Chrome/120.0'), /; SameSite=None$/);
  assert.doesNotMatch(c(none, false, 'Mozilla/5.0 Chrome/59.0'), /SameSite/);
  assert.doesNotMatch(c(none, false, 'Mozilla/5.0 (iPhone; CPU iPhone OS 12_0 like Mac OS X)'), /SameSite/);
});

test('the session cookie is read as lua-resty-cookie reads it: exact name, the last of two wins', () => {
  const backend = md5(`${md5('default-web-80')}default-web-80`);
  const first = `${md5('default-web-8010.0.0.1:8080')}|${backend}`;
  const second = `${md5('default-web-8010.0.0.2:8080')}|${backend}`;
  const choice = (cookie: string | string[]) => stickyChoice(affinity, upstream, cookie, () => 0)?.index;
  assert.equal(choice(`route=${second}; route=${first}`), 0);
  assert.equal(choice(`route=${first}; route=${second}`), 1);
  assert.equal(choice([`route=${first}`, `route=${second}`]), 1, 'across Cookie lines too');
  // Not the session: another name, and a pair whose key runs on from a cookie without `=`.
  assert.equal(affinitizedTo(affinity, upstream, `Route=${second}`), false);
  assert.equal(affinitizedTo(affinity, upstream, `flag; route=${second}`), false);
  assert.equal(affinitizedTo(affinity, upstream, `a=1, route=${second}`), true);
});

test('a cookie date outside 1970..9999 (session-cookie-expires of 10^13 s) is written as the nearest end, never a throw', () => {
  assert.equal(cookieTime(Date.parse('2010-11-18T11:27:35Z')), 'Thu, 18-Nov-10 11:27:35 GMT');
  assert.equal(cookieTime(Date.parse('2040-01-02T03:04:05Z')), 'Mon, 02-Jan-2040 03:04:05 GMT');
  assert.equal(cookieTime(Date.now() + 9_999_999_999_999 * 1000), 'Fri, 31-Dec-9999 23:59:59 GMT');
  assert.equal(cookieTime(Date.now() - 9_999_999_999_999 * 1000), 'Thu, 01-Jan-70 00:00:00 GMT');
});
