// The variable names readers accept (src/config/nginx-variables.ts) are the ones the gateway expands
// (src/gateway/access/nginx-vars.ts): a name in one list only would be accepted and expand to "".
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isRequestVariable, REQUEST_VARIABLE_NAMES } from '../../src/config/nginx-variables.ts';
import { type RequestVars, variable } from '../../src/gateway/access/nginx-vars.ts';
import { controllerConfigMap, topologyOf } from '../fixtures/gateway/manifests.ts';

const vars: RequestVars = {
  scheme: 'https',
  passAccessScheme: 'https',
  httpHost: 'app.example.com:8443',
  host: 'app.example.com',
  requestUri: '/a%20b?x=1',
  uri: '/a b',
  method: 'GET',
  remoteAddr: '203.0.113.7',
  remoteUser: 'alice',
  serverName: 'app.example.com',
  headers: { 'x-api-key': 'k1', cookie: 'session=s1' },
  peerAddress: '10.0.0.2',
  proxyProtocolAddr: '203.0.113.7',
  serverPort: '443',
  reqId: 'b3a1f0e2c4d5e6f708192a3b4c5d6e7f',
  location: {
    ingress: { namespace: 'shop', name: 'web' },
    backend: { service: { namespace: 'shop', name: 'api' }, port: 8080, upstreamName: 'shop-api-8080' },
    path: '/api',
  },
};

test('every accepted name expands to something for a request that has it; unknown names are not accepted', () => {
  for (const name of REQUEST_VARIABLE_NAMES) assert.notEqual(variable(vars, name), '', name);
  assert.equal(variable(vars, 'http_x_api_key'), 'k1');
  assert.equal(variable(vars, 'cookie_session'), 's1');
  assert.equal(variable(vars, 'arg_x'), '1');
  for (const name of ['http_x_api_key', 'cookie_session', 'arg_x']) assert.ok(isRequestVariable(name));
  for (const name of ['upstream_addr', 'request_id', 'geoip2_country_code', 'http_'])
    assert.ok(!isRequestVariable(name), name);
});

test('$req_id and the time ($msec, $time_iso8601, $time_local) as nginx prints them, at the expansion', () => {
  assert.equal(variable(vars, 'req_id'), 'b3a1f0e2c4d5e6f708192a3b4c5d6e7f');
  const before = Date.now();
  const msec = variable(vars, 'msec');
  const after = Date.now();
  assert.match(msec, /^\d+\.\d{3}$/);
  const ms = Number(msec.replace('.', ''));
  assert.ok(ms >= before && ms <= after, `${msec} not within [${before}, ${after}]`);
  assert.match(variable(vars, 'time_iso8601'), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/);
  assert.match(variable(vars, 'time_local'), /^\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}$/);
});

test('$binary_remote_addr: a fixed length per family (nginx: 4 or 16 bytes), no form the start of another', () => {
  assert.equal(variable(vars, 'binary_remote_addr'), 'xcb007107');
  assert.equal(variable({ ...vars, remoteAddr: '127.0.45.15' }, 'binary_remote_addr'), 'x7f002d0f');
  assert.equal(
    variable({ ...vars, remoteAddr: '2001:db8::1' }, 'binary_remote_addr'),
    '20010db8000000000000000000000001',
  );
  // An IPv4-mapped address is the IPv4 client.
  assert.equal(variable({ ...vars, remoteAddr: '::ffff:203.0.113.7' }, 'binary_remote_addr'), 'xcb007107');
  assert.equal(variable({ ...vars, remoteAddr: '' }, 'binary_remote_addr'), '');
});

test('the variables proxy-set-headers values borrow from nginx expand as nginx expands them', () => {
  const forwarded = {
    ...vars,
    headers: { 'x-forwarded-for': '198.51.100.1' },
    bestHttpHost: 'public.example',
  };
  assert.equal(variable(forwarded, 'proxy_add_x_forwarded_for'), '198.51.100.1, 203.0.113.7');
  assert.equal(variable(vars, 'proxy_add_x_forwarded_for'), '203.0.113.7');
  // A client the walk could not resolve (keepip sends no X-Real-IP then): nothing is appended.
  assert.equal(variable({ ...forwarded, remoteAddr: '' }, 'proxy_add_x_forwarded_for'), '198.51.100.1');
  // An empty X-Forwarded-For line still counts, and several lines are joined (nginx 1.22: `[, 127.0.0.1]`, `[a, b, 127.0.0.1]`).
  const empty = { ...vars, headers: { 'x-forwarded-for': '' } };
  assert.equal(variable(empty, 'proxy_add_x_forwarded_for'), ', 203.0.113.7');
  const lines = { ...vars, headers: { 'x-forwarded-for': ['a', 'b'] } };
  assert.equal(variable(lines, 'proxy_add_x_forwarded_for'), 'a, b, 203.0.113.7');
  assert.equal(variable(forwarded, 'best_http_host'), 'public.example');
  assert.equal(variable(vars, 'best_http_host'), 'app.example.com:8443');
  assert.deepEqual(
    ['realip_remote_addr', 'proxy_protocol_addr', 'server_port'].map((name) => variable(vars, name)),
    ['10.0.0.2', '203.0.113.7', '443'],
  );
});

test('proxy-set-headers: a variable keepip does not expand is named at load, not silently sent as ""', () => {
  const topology = topologyOf([
    controllerConfigMap({ 'proxy-set-headers': 'ingress-nginx/proxy-headers' }),
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'proxy-headers', namespace: 'ingress-nginx' },
      // biome-ignore lint/suspicious/noTemplateCurlyInString: nginx's ${name} form
      data: { 'X-Upstream': '$upstream_addr', 'X-Client': '$remote_addr', 'X-Request-Start': 't=${msec}' },
    },
  ]);
  const warnings = topology.issues.filter((i) => i.message.includes('is not a variable keepip expands'));
  assert.deepEqual(
    warnings.map((i) => i.message.split(': ').slice(-2).join(': ').split(';')[0]),
    ['x-upstream: $upstream_addr is not a variable keepip expands'],
  );
});
