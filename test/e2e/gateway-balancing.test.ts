// upstream-hash-by (+ -subset, -subset-size) and load-balance over real sockets, drawn from
// ingress-nginx's e2e test test/e2e/annotations/upstreamhashby.go (release 1.15): six endpoints of one
// Service, a hundred requests, and which endpoints answered.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { echoOf, request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';

describe('upstream-hash-by-* (upstreamhashby.go), load-balance', () => {
  const pods: RunningWhoami[] = [];
  let gw: TestGateway;

  before(async () => {
    for (let i = 0; i < 6; i++)
      pods.push(await startWhoami({ host: '127.0.0.1', port: 0, name: `pod-${i}` }));
    const ports = pods.map((p) => p.address.port);
    const echo = (name: string, annotations: Record<string, string>) => [
      ...serviceWithEndpoints({ name: `svc-${name}`, ports }),
      ingress({
        name,
        host: `${name}.foo.com`,
        annotations,
        paths: [{ path: '/', service: `svc-${name}`, port: 80 }],
      }),
    ];
    gw = await startTestGateway(
      topologyOf([
        ...echo('hash', { 'upstream-hash-by': '$request_uri' }),
        ...echo('subset', {
          'upstream-hash-by': '$request_uri',
          'upstream-hash-by-subset': 'true',
          'upstream-hash-by-subset-size': '3',
        }),
        ...echo('by-header', { 'upstream-hash-by': '$http_x_user' }),
        ...echo('by-arg', { 'upstream-hash-by': '$arg_user' }),
        ...echo('ewma', { 'load-balance': 'ewma' }),
        ...echo('plain', {}),
        controllerConfigMap({ 'load-balance': 'round_robin' }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await Promise.all(pods.map((p) => p.close()));
  });

  const answered = async (host: string, count: number, path = '/', headers: Record<string, string> = {}) => {
    const names = new Set<string>();
    for (let i = 0; i < count; i++) {
      const reply = await request(gw.httpPort, {
        host,
        path,
        headers: { accept: 'application/json', ...headers },
      });
      assert.equal(reply.status, 200);
      names.add(echoOf(reply).name);
    }
    return names;
  };

  test('should connect to the same pod', async () => {
    assert.equal((await answered('hash.foo.com', 100)).size, 1);
    // Another value may land elsewhere, but always on its own one.
    assert.equal((await answered('hash.foo.com', 20, '/other?x=1')).size, 1);
  });

  test('should connect to the same subset of pods', async () => {
    assert.equal((await answered('subset.foo.com', 100)).size, 3);
  });

  test('a header as the key: each user sticks to one pod, and the users spread', async () => {
    const all = new Set<string>();
    for (let user = 0; user < 30; user++) {
      const names = await answered('by-header.foo.com', 3, '/', { 'x-user': `user-${user}` });
      assert.equal(names.size, 1);
      all.add([...names][0]!);
    }
    assert.ok(all.size >= 3, `30 users over ${all.size} pods`);
  });

  test("an argument as the key, read as nginx's $arg_: the name in any case, the first `name=` pair", async () => {
    const pod = async (query: string) => [...(await answered('by-arg.foo.com', 1, `/${query}`))][0]!;
    // A user whose pod is not the empty key's, so that losing the value would show.
    const nobody = await pod('?user=');
    let user = '';
    for (let n = 0; n < 30 && user === ''; n++) if ((await pod(`?user=u${n}`)) !== nobody) user = `u${n}`;
    assert.notEqual(user, '');
    const home = await pod(`?user=${user}`);
    assert.equal(await pod(`?USER=${user}`), home);
    assert.equal(await pod(`?x=1&User=${user}`), home);
    assert.equal(await pod(`?user&user=${user}`), home);
  });

  test('load-balance: ewma still reaches every pod; round robin (the default) cycles through them', async () => {
    assert.ok((await answered('ewma.foo.com', 60)).size >= 2);
    assert.equal((await answered('plain.foo.com', 6)).size, 6);
  });
});
