// mirror-target / mirror-host / mirror-request-body parsing, with the cases of ingress-nginx's
// internal/ingress/annotations/mirror/main_test.go (where keepip can use the target), and the copy's
// path and headers (src/gateway/mirror.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { MirrorModel } from '../../src/config/model.ts';
import { mirrorHeaders, mirrorPath } from '../../src/gateway/mirror.ts';
import { readMirror } from '../../src/k8s/mirror-annotations.ts';

function read(annotations: Record<string, string>): { model: MirrorModel | null; invalid: string[] } {
  const invalid: string[] = [];
  const model = readMirror((name) => annotations[name], { invalid: (name) => invalid.push(name) });
  return { model, invalid };
}

describe('mirror annotations', () => {
  test("ingress-nginx's cases: target kept as written, Host the target's host name without port", () => {
    for (const [target, host] of [
      ['https://test.env.com/$request_uri', 'test.env.com'],
      ['https://test.env.com$request_uri', 'test.env.com'],
      ['https://test.env.com:8080$request_uri', 'test.env.com'],
      ['https://test.env.com:8080/$request_uri', 'test.env.com'],
      ['http://some.test.env.com:2121/$someparam=1&$someotherparam=2', 'some.test.env.com'],
    ] as const) {
      const { model, invalid } = read({ 'mirror-target': target });
      assert.deepEqual(invalid, []);
      assert.equal(model?.target, target);
      assert.equal(model?.host, host);
      assert.equal(model?.requestBody, true);
    }
    const https = read({ 'mirror-target': 'https://test.env.com:8080$request_uri' }).model!;
    assert.deepEqual(
      [https.scheme, https.hostname, https.port, https.origin],
      ['https', 'test.env.com', 8080, 'https://test.env.com:8080'],
    );
    assert.equal(read({ 'mirror-target': 'HTTP://a.example/x' }).model?.port, 80);
  });

  test('mirror-host overrides; an invalid one is warned and the target host applies', () => {
    const t = 'http://some.test.env.com/$someparam';
    assert.equal(read({ 'mirror-target': t, 'mirror-host': 'test.env.com' }).model?.host, 'test.env.com');
    for (const bad of ['someInvalidParam.%^&*()_=!@#\'"', '_sbrubles-i"@xpto:12345']) {
      const { model, invalid } = read({ 'mirror-target': 'http://some.test.env.com', 'mirror-host': bad });
      assert.equal(model?.host, 'some.test.env.com');
      assert.deepEqual(invalid, ['mirror-host']);
    }
  });

  test('mirror-request-body: off, else on (an invalid value warned)', () => {
    const t = { 'mirror-target': 'http://m.example/' };
    assert.equal(read({ ...t, 'mirror-request-body': 'off' }).model?.requestBody, false);
    assert.equal(read({ ...t, 'mirror-request-body': ' o f f ' }).model?.requestBody, false);
    const bad = read({ ...t, 'mirror-request-body': 'no' });
    assert.equal(bad.model?.requestBody, true);
    assert.deepEqual(bad.invalid, ['mirror-request-body']);
    // Without a target there is no mirror, as ingress-nginx's empty Source.
    assert.equal(read({ 'mirror-request-body': 'off' }).model, null);
  });

  test('targets nginx could not use, or with a variable in the host, are warned and give no mirror', () => {
    for (const target of [
      'IamNotAURL',
      'ftp://m.example/',
      'http://$host/x',
      'http://m.example:$port/',
      'http://m..example/',
      'http://m.example:0/',
      'http://user@m.example/',
      'http://m.example/ x',
      'http://m.example/\nx',
      'http://m.example/#frag',
    ]) {
      const { model, invalid } = read({ 'mirror-target': target });
      assert.equal(model, null, target);
      assert.deepEqual(invalid, ['mirror-target'], target);
    }
  });
});

describe('the copy', () => {
  const model = (target: string): MirrorModel => read({ 'mirror-target': target }).model!;

  test('path: the expansion after the origin; the request URI without one; arguments appended without variables', () => {
    assert.equal(mirrorPath(model('http://m.example$request_uri'), 'http://m.example/a?b', '/a?b'), '/a?b');
    assert.equal(mirrorPath(model('http://m.example/x$request_uri'), 'http://m.example/x/a', '/a'), '/x/a');
    assert.equal(mirrorPath(model('http://m.example'), 'http://m.example', '/a?b=1'), '/a?b=1');
    assert.equal(
      mirrorPath(model('http://m.example/mirror'), 'http://m.example/mirror', '/a?b=1'),
      '/mirror?b=1',
    );
    assert.equal(
      mirrorPath(model('http://m.example/m?x=1'), 'http://m.example/m?x=1', '/a?b=1'),
      '/m?x=1&b=1',
    );
    assert.equal(
      mirrorPath(model('http://m.example$is_args$args'), 'http://m.example?b=1', '/a?b=1'),
      '/?b=1',
    );
  });

  test('path: an expansion that changes the host is refused', () => {
    const m = model('http://m.example$http_x');
    assert.equal(mirrorPath(m, 'http://m.example.evil/', '/'), null);
    assert.equal(mirrorPath(m, 'http://m.example:81/', '/'), null);
    assert.equal(mirrorPath(m, 'http://m.example@evil/', '/'), null);
  });

  test("headers: the backend's, hop-by-hop out, Host and Connection set, the length of the copy's body", () => {
    const headers = mirrorHeaders(
      {
        host: 'app.example',
        'x-forwarded-for': '10.0.0.1',
        'content-length': '99',
        connection: 'upgrade',
        'keep-alive': '5',
        te: 'trailers',
        upgrade: 'websocket',
        'transfer-encoding': 'chunked',
        expect: '100-continue',
        accept: 'text/plain',
      },
      'shadow.example',
      4,
    );
    assert.deepEqual(headers, {
      'x-forwarded-for': '10.0.0.1',
      accept: 'text/plain',
      host: 'shadow.example',
      connection: 'close',
      'content-length': '4',
    });
    assert.equal(mirrorHeaders({ 'content-length': '3' }, 'h', null)['content-length'], undefined);
  });
});
