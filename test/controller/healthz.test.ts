// The health path answers as ingress-nginx's (Kubernetes' healthz handler with the checks `ping` and
// `nginx-ingress-controller`): the path itself, ?verbose, ?exclude=, and one path per check; a failed
// check is 500 and, unlike Kubernetes', says why.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type HealthState, healthAnswer } from '../../src/controller/healthz.ts';

const healthy: HealthState = { unhealthy: null, note: null };
const syncing: HealthState = { unhealthy: 'not ready: waiting for the first complete sync', note: null };
const ask = (path: string, query: string, state: HealthState, root = '/healthz') =>
  healthAnswer(root, path, new URLSearchParams(query), state);

describe('the health path', () => {
  it('healthy: ok, with the note when there is one; ?verbose lists each check', () => {
    assert.deepEqual(ask('/healthz', '', healthy), { status: 200, body: 'ok\n' });
    assert.deepEqual(ask('/healthz', '', { unhealthy: null, note: 'API server unreachable' }), {
      status: 200,
      body: 'ok (API server unreachable)\n',
    });
    assert.deepEqual(ask('/healthz', 'verbose', healthy), {
      status: 200,
      body: '[+]ping ok\n[+]nginx-ingress-controller ok\nhealthz check passed\n',
    });
  });

  it('a failed check is 500 with every check listed, verbose or not', () => {
    const body =
      '[+]ping ok\n[-]nginx-ingress-controller failed: not ready: waiting for the first complete sync\nhealthz check failed\n';
    assert.deepEqual(ask('/healthz', '', syncing), { status: 500, body });
    assert.deepEqual(ask('/healthz', 'verbose=1', syncing), { status: 500, body });
  });

  it('?exclude= skips a check; an unknown name is a warning line, not a failure', () => {
    assert.deepEqual(ask('/healthz', 'exclude=nginx-ingress-controller', syncing), {
      status: 200,
      body: 'ok\n',
    });
    assert.deepEqual(ask('/healthz', 'verbose&exclude=nginx-ingress-controller&exclude=etcd', syncing), {
      status: 200,
      body: '[+]ping ok\n[+]nginx-ingress-controller excluded: ok\nwarn: some health checks cannot be excluded: no matches for "etcd"\nhealthz check passed\n',
    });
  });

  it('one path per check: ping is always ok, the controller check fails with its reason', () => {
    assert.deepEqual(ask('/healthz/ping', '', syncing), { status: 200, body: 'ok\n' });
    assert.deepEqual(ask('/healthz/nginx-ingress-controller', '', syncing), {
      status: 500,
      body: 'internal server error: not ready: waiting for the first complete sync\n',
    });
    assert.deepEqual(ask('/healthz/nginx-ingress-controller', '', healthy), { status: 200, body: 'ok\n' });
  });

  it('anything else under or beside the path is not a health path', () => {
    for (const path of ['/healthz/', '/healthz/etcd', '/healthzx', '/healthz/ping/', '/', '/metrics'])
      assert.equal(ask(path, '', healthy), null, path);
  });

  it('the name in the summary line is the first segment of the path, as Kubernetes names it', () => {
    assert.equal(
      ask('/probe/live', 'verbose', healthy, '/probe/live')?.body.split('\n').at(-2),
      'probe check passed',
    );
    assert.equal(ask('/probe/live/ping', '', healthy, '/probe/live')?.status, 200);
  });
});
