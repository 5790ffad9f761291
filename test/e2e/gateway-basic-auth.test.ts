// Basic auth end to end (auth-type basic, auth-secret auth-file / auth-map, auth-realm), as
// ingress-nginx's e2e tests for auth-* assert it: 401 without or with wrong credentials (nginx's
// "401 Authorization Required" page and WWW-Authenticate), 200 with the right ones, 503 for a missing
// Secret, 401 for an entry without a hash; hashes made by htpasswd itself (bcrypt, apr1, SHA1).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { echoOf, request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  ingress,
  serviceWithEndpoints,
  topologyOf,
  opaqueSecret as secret,
} from '../fixtures/gateway/manifests.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';

async function htpasswd(flag: string, user: string, password: string): Promise<string> {
  const out = await runCommand(requireBinary('htpasswd'), ['-nb', flag, user, password]);
  return out.stdout.trim();
}

const basic = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});

describe('basic auth (auth-type basic)', () => {
  let backend: RunningWhoami;
  let gw: TestGateway;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0, name: 'echo' });
    const bcryptLine = await htpasswd('-B', 'foo', 'bar');
    const apr1Line = await htpasswd('-m', 'alice', 's3cret');
    const shaLine = await htpasswd('-s', 'bob', 'hunter2');
    const bcryptMap = (await htpasswd('-B', 'mapuser', 'mappass')).split(':')[1]!;
    const auth = (name: string, extra: Record<string, string> = {}) => ({
      'auth-type': 'basic',
      'auth-secret': name,
      'auth-realm': 'test auth',
      ...extra,
    });
    const objects = [
      ...serviceWithEndpoints({ name: 'echo', ports: [backend.address.port] }),
      secret('htpasswd', { auth: `${bcryptLine}\n${apr1Line}\n${shaLine}\n` }),
      secret('map', { mapuser: bcryptMap }),
      secret('broken', { auth: 'foo:' }),
      ingress({ name: 'site', host: 'guarded.example', paths: [{ path: '/', service: 'echo', port: 80 }] }),
      ingress({
        name: 'admin',
        host: 'guarded.example',
        paths: [{ path: '/admin', service: 'echo', port: 80 }],
        annotations: auth('htpasswd'),
      }),
      ingress({ name: 'open', host: 'open.example', paths: [{ path: '/', service: 'echo', port: 80 }] }),
      ingress({
        name: 'file',
        host: 'auth.example',
        paths: [{ path: '/', service: 'echo', port: 80 }],
        annotations: auth('htpasswd'),
      }),
      ingress({
        name: 'map',
        host: 'map.example',
        paths: [{ path: '/', service: 'echo', port: 80 }],
        annotations: auth('map', { 'auth-secret-type': 'auth-map' }),
      }),
      ingress({
        name: 'missing',
        host: 'missing.example',
        paths: [{ path: '/', service: 'echo', port: 80 }],
        annotations: auth('something'),
      }),
      ingress({
        name: 'broken',
        host: 'broken.example',
        paths: [{ path: '/', service: 'echo', port: 80 }],
        annotations: auth('broken'),
      }),
    ];
    gw = await startTestGateway(topologyOf(objects));
  });

  after(async () => {
    await gw?.close();
    await backend?.close();
  });

  test('no auth configured: 200', async () => {
    const reply = await request(gw.httpPort, { host: 'open.example' });
    assert.equal(reply.status, 200);
  });

  test('no Authorization header: 401 with the realm and nginx page', async () => {
    const reply = await request(gw.httpPort, { host: 'auth.example' });
    assert.equal(reply.status, 401);
    assert.equal(reply.headers['www-authenticate'], 'Basic realm="test auth"');
    assert.match(reply.body, /401 Authorization Required/);
  });

  test('wrong credentials: 401', async () => {
    const reply = await request(gw.httpPort, { host: 'auth.example', headers: basic('user', 'pass') });
    assert.equal(reply.status, 401);
    const wrong = await request(gw.httpPort, { host: 'auth.example', headers: basic('foo', 'nope') });
    assert.equal(wrong.status, 401);
    assert.match(reply.body, /401 Authorization Required/);
  });

  test('right credentials (bcrypt, apr1, SHA1): 200, Authorization not passed on, $remote_user logged', async () => {
    for (const [user, password] of [
      ['foo', 'bar'],
      ['alice', 's3cret'],
      ['bob', 'hunter2'],
    ] as const) {
      const reply = await request(gw.httpPort, {
        host: 'auth.example',
        headers: { ...basic(user, password), accept: 'application/json' },
      });
      assert.equal(reply.status, 200, user);
      assert.equal(echoOf(reply).headers.authorization, undefined);
      await gw.access.waitFor(new RegExp(`^127\\.0\\.0\\.1 - ${user} \\[`));
    }
  });

  test("$remote_user is the Basic user the client sent, verified or not, as nginx's", async () => {
    // nginx's $remote_user decodes the Authorization header whatever auth_basic decided: a failed
    // login and a location without auth log the name too; a header that is not Basic logs '-'.
    const failed = await request(gw.httpPort, {
      host: 'auth.example',
      path: '/failed',
      headers: basic('mallet', 'nope'),
    });
    assert.equal(failed.status, 401);
    await gw.access.waitFor(/^127\.0\.0\.1 - mallet \[.*"GET \/failed HTTP\/1\.1" 401 /);
    const open = await request(gw.httpPort, {
      host: 'open.example',
      path: '/no-auth',
      headers: basic('carol', 'x'),
    });
    assert.equal(open.status, 200);
    await gw.access.waitFor(/^127\.0\.0\.1 - carol \[.*"GET \/no-auth HTTP\/1\.1" 200 /);
    const bearer = await request(gw.httpPort, {
      host: 'open.example',
      path: '/bearer',
      headers: { authorization: 'Bearer abc' },
    });
    assert.equal(bearer.status, 200);
    await gw.access.waitFor(/^127\.0\.0\.1 - - \[.*"GET \/bearer HTTP\/1\.1" 200 /);
  });

  test('auth-map: each key a user', async () => {
    assert.equal(
      (await request(gw.httpPort, { host: 'map.example', headers: basic('mapuser', 'mappass') })).status,
      200,
    );
    assert.equal(
      (await request(gw.httpPort, { host: 'map.example', headers: basic('mapuser', 'x') })).status,
      401,
    );
  });

  test('a Secret that does not exist: 503 for everyone, and the reason in the error log', async () => {
    const reply = await request(gw.httpPort, { host: 'missing.example', headers: basic('foo', 'bar') });
    assert.equal(reply.status, 503);
    assert.match(reply.body, /503 Service Temporarily Unavailable/);
    await gw.errors.waitFor(
      /location denied by its annotations \(nginx\.ingress\.kubernetes\.io\/auth-secret: Secret default\/something/,
    );
  });

  test('an entry without a hash ("foo:"): 401', async () => {
    const reply = await request(gw.httpPort, { host: 'broken.example', headers: basic('foo', 'bar') });
    assert.equal(reply.status, 401);
  });

  test('other readings of a protected path (case, ;params, backslash) need the credentials too', async () => {
    assert.equal((await request(gw.httpPort, { host: 'guarded.example', path: '/' })).status, 200);
    for (const path of ['/admin', '/ADMIN', '/admin;x/users', '/public\\..\\admin']) {
      const reply = await request(gw.httpPort, { host: 'guarded.example', path });
      assert.equal(reply.status, 401, path);
    }
    assert.equal(
      (
        await request(gw.httpPort, {
          host: 'guarded.example',
          path: '/ADMIN',
          headers: basic('bob', 'hunter2'),
        })
      ).status,
      200,
    );
  });
});
