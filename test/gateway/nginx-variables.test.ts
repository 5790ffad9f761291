// The variable names readers accept (src/config/nginx-variables.ts) are the ones the gateway expands
// (src/gateway/access/nginx-vars.ts): a name in one list only would be accepted and expand to "".
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isRequestVariable, REQUEST_VARIABLE_NAMES } from '../../src/config/nginx-variables.ts';
import { type RequestVars, variable } from '../../src/gateway/access/nginx-vars.ts';

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
