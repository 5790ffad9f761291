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
  for (const name of ['binary_remote_addr', 'upstream_addr', 'request_id', 'geoip2_country_code', 'http_'])
    assert.ok(!isRequestVariable(name), name);
});
