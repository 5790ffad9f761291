// The compression decision (src/gateway/compression.ts) and the ConfigMap keys behind it
// (src/k8s/compression-settings.ts), against nginx's rules.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { acceptsCoding, chooseEncoding, gzipMemory } from '../../src/gateway/compression.ts';
import { DEFAULT_GZIP_TYPES } from '../../src/k8s/compression-settings.ts';
import { configMapSettings } from '../k8s/helpers.ts';

function parse(data: Record<string, string>) {
  const { s, issues } = configMapSettings(data);
  return { compression: s.compression, unsupported: s.unsupportedKeys, issues };
}

test("ConfigMap: off by default; ingress-nginx's defaults when on; bad values warned and replaced", () => {
  assert.equal(parse({}).compression, undefined);
  assert.equal(parse({ 'use-gzip': 'false', 'gzip-level': '5' }).compression, undefined);
  const on = parse({ 'use-gzip': 'true' });
  assert.deepEqual(on.compression, {
    gzip: { level: 1, minLength: 256, types: DEFAULT_GZIP_TYPES.split(' ') },
    brotli: null,
    disable: [],
  });
  assert.deepEqual(on.unsupported, []);
  const bad = parse({
    'use-gzip': 'true',
    'gzip-level': '10',
    'gzip-min-length': 'x',
    'gzip-disable': 'ok( msie6',
  });
  assert.equal(bad.compression?.gzip?.level, 1);
  assert.equal(bad.compression?.gzip?.minLength, 256);
  assert.deepEqual(bad.compression?.disable, ['~*MSIE [4-6]\\.']);
  assert.deepEqual(
    bad.issues.map((i) => i.field),
    ['data["gzip-level"]', 'data["gzip-min-length"]', 'data["gzip-disable"]'],
  );
  const brotli = parse({ 'enable-brotli': 'true', 'brotli-level': '11', 'brotli-types': 'text/plain *' });
  assert.deepEqual(brotli.compression?.brotli, { level: 11, minLength: 20, types: ['text/plain', '*'] });
  assert.equal(brotli.compression?.gzip, null);
});

test('Accept-Encoding as nginx reads it: the token, then q above 0 with at most three decimals', () => {
  assert.equal(acceptsCoding('gzip', 'gzip'), true);
  assert.equal(acceptsCoding('deflate, GZIP;q=0.001', 'gzip'), true);
  assert.equal(acceptsCoding('gzip;q=0', 'gzip'), false);
  assert.equal(acceptsCoding('gzip;q=0.000', 'gzip'), false);
  assert.equal(acceptsCoding('gzip;q=1.0001', 'gzip'), false);
  assert.equal(acceptsCoding('x-gzip', 'gzip'), false);
  assert.equal(acceptsCoding('br;q=0.5, gzip;q=0', 'br'), true);
  assert.equal(acceptsCoding(undefined, 'gzip'), false);
  // A parameter other than `q=` first declines the coding, as nginx: never taken for acceptance.
  for (const refused of ['gzip;q =0', 'gzip; level=1', 'gzip;q', 'br;q =0'])
    assert.equal(acceptsCoding(refused, refused.slice(0, refused.indexOf(';'))), false, refused);
  assert.equal(acceptsCoding('gzip;', 'gzip'), true);
  assert.equal(acceptsCoding('gzip ; Q=0.5', 'gzip'), true);
});

test('the decision: status, type (text/html always), declared length, existing encoding, HEAD, HTTP/1.0', () => {
  const model = parse({ 'use-gzip': 'true', 'gzip-types': 'application/json' }).compression!;
  const req = { method: 'GET', httpVersion: '1.1', headers: { 'accept-encoding': 'gzip' } };
  const choose = (status: number, headers: Record<string, string>, r = req) =>
    chooseEncoding(model, r, status, headers);
  assert.deepEqual(choose(200, { 'content-type': 'application/json' }), { encoding: 'gzip', vary: true });
  assert.deepEqual(choose(404, { 'content-type': 'text/html; charset=utf-8' }), {
    encoding: 'gzip',
    vary: true,
  });
  assert.deepEqual(choose(200, { 'content-type': 'text/css' }), { encoding: null, vary: false });
  assert.deepEqual(choose(200, { 'content-type': 'application/json', 'content-length': '255' }), {
    encoding: null,
    vary: false,
  });
  assert.deepEqual(choose(200, { 'content-type': 'application/json', 'content-length': '256' }), {
    encoding: 'gzip',
    vary: true,
  });
  assert.deepEqual(choose(200, { 'content-type': 'application/json', 'content-encoding': 'br' }), {
    encoding: null,
    vary: false,
  });
  assert.deepEqual(choose(502, { 'content-type': 'text/html' }), { encoding: null, vary: false });
  // HEAD: the head a GET gets (nginx's gzip header filter runs before HEAD drops the body).
  assert.deepEqual(choose(200, { 'content-type': 'text/html' }, { ...req, method: 'HEAD' }), {
    encoding: 'gzip',
    vary: true,
  });
  assert.deepEqual(choose(200, { 'content-type': 'text/html' }, { ...req, httpVersion: '1.0' }), {
    encoding: null,
    vary: true,
  });
  assert.deepEqual(choose(200, { 'content-type': 'text/html' }, { ...req, httpVersion: '2.0' }), {
    encoding: 'gzip',
    vary: true,
  });
});

test("zlib's state sized to the declared length, as nginx's ngx_http_gzip_filter_memory", () => {
  assert.deepEqual(gzipMemory(-1), { windowBits: 15, memLevel: 8 });
  assert.deepEqual(gzipMemory(1_000_000), { windowBits: 15, memLevel: 8 });
  assert.deepEqual(gzipMemory(20_000), { windowBits: 15, memLevel: 8 });
  assert.deepEqual(gzipMemory(16_000), { windowBits: 14, memLevel: 7 });
  assert.deepEqual(gzipMemory(300), { windowBits: 10, memLevel: 3 });
  assert.deepEqual(gzipMemory(10), { windowBits: 9, memLevel: 2 });
});
