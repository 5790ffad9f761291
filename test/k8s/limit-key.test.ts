// limit-conn-zone-variable (src/k8s/access-annotations.ts): the client address by default, nginx
// request variables otherwise; a variable keepip cannot expand is refused so limits never key on "".
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configMapSettings } from './helpers.ts';

const read = (value: string) => {
  const { s, issues } = configMapSettings({ 'limit-conn-zone-variable': value });
  return { key: s.limitKey, issues: issues.map((i) => i.code), unsupported: s.unsupportedKeys };
};

test('the client address (the default, written either way) leaves the default key', () => {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: nginx's ${name} form
  for (const value of ['$binary_remote_addr', ' $remote_addr ', '${binary_remote_addr}', ''])
    assert.deepEqual(read(value), { key: undefined, issues: [], unsupported: [] }, value);
});

test('request variables key the limits; unknown ones are warned and the address stays', () => {
  assert.deepEqual(read('$http_x_api_key'), { key: '$http_x_api_key', issues: [], unsupported: [] });
  assert.equal(read('$binary_remote_addr$http_x_user').key, '$binary_remote_addr$http_x_user');
  // biome-ignore lint/suspicious/noTemplateCurlyInString: nginx's ${name} form
  assert.equal(read('${cookie_session}:${server_name}').key, '${cookie_session}:${server_name}');
  for (const value of [
    '$upstream_addr',
    'static-text',
    '$geoip2_country_code',
    '$http_x_api_key$jwt_claim_sub',
    // New on every request: each would be counted alone ($req_id is even the client's to choose).
    '$msec',
    '$req_id',
    '$binary_remote_addr$time_iso8601',
  ]) {
    const { key, issues } = read(value);
    assert.equal(key, undefined, value);
    assert.deepEqual(issues, ['INVALID_CONFIGMAP_VALUE'], value);
  }
});
