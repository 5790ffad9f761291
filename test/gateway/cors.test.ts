import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CorsModel } from '../../src/config/model.ts';
import { compileCors, corsAnswer } from '../../src/gateway/cors.ts';

const base: CorsModel = {
  allowOrigin: ['*'],
  allowMethods: 'GET',
  allowHeaders: 'X-A',
  allowCredentials: false,
  exposeHeaders: '',
  maxAge: 5,
};

test('`*`: every request, Allow-Origin *, whatever the Origin', () => {
  const cors = compileCors(base);
  assert.deepEqual(corsAnswer(cors, 'GET', undefined), {
    headers: {
      'access-control-allow-origin': '*',
      'access-control-allow-methods': 'GET',
      'access-control-allow-headers': 'X-A',
      'access-control-max-age': '5',
    },
    preflight: false,
  });
  assert.equal(corsAnswer(cors, 'OPTIONS', 'https://x.example')?.preflight, true);
});

test('a list: the Origin echoed when it matches an entry (anchored, case-insensitive, * one label)', () => {
  const cors = compileCors({
    ...base,
    allowOrigin: ['https://a.example', 'http://*.b.example:8080', 'null'],
  });
  const origin = (o: string) => corsAnswer(cors, 'GET', o)?.headers['access-control-allow-origin'];
  assert.equal(origin('https://a.example'), 'https://a.example');
  assert.equal(origin('HTTPS://A.EXAMPLE'), 'HTTPS://A.EXAMPLE');
  assert.equal(origin('https://a.example.evil'), undefined);
  assert.equal(origin('xhttps://a.example'), undefined);
  assert.equal(origin('http://x.b.example:8080'), 'http://x.b.example:8080');
  assert.equal(origin('http://x.y.b.example:8080'), undefined);
  assert.equal(origin('http://x.b.example'), undefined);
  assert.equal(origin('null'), 'null');
  assert.equal(corsAnswer(cors, 'OPTIONS', undefined), null);
  assert.equal(corsAnswer(compileCors({ ...base, allowOrigin: [] }), 'GET', 'https://a.example'), null);
});
