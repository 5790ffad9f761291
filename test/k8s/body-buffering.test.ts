// proxy-request-buffering and client-body-buffer-size: the values ingress-nginx accepts (ValidateOptions
// on/off; the template's size regex, so "1b" is not written: clientbodybuffersize.go "should not set
// client_body_buffer_size to invalid 1b"), the ConfigMap as the default, the annotation over it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LocationModel, Topology } from '../../src/config/model.ts';
import { parseBufferSize } from '../../src/k8s/body-buffering.ts';
import { codes, configMap, find, ingress, topologyOf } from './helpers.ts';

const P = 'nginx.ingress.kubernetes.io/';

function locationOf(topology: Topology, host: string): LocationModel {
  const vhost = topology.gateway.virtualHosts.find((v) => v.host === host);
  const location = vhost?.locations[0];
  assert.ok(location, `no location for ${host}`);
  return location;
}

const buffering = (l: LocationModel) => ({
  requestBuffering: l.requestBuffering,
  clientBodyBufferBytes: l.clientBodyBufferBytes,
});

test('sizes as the ingress-nginx template writes client_body_buffer_size: digits and k, K, m or M', () => {
  for (const from of ['annotation', 'configmap'] as const) {
    assert.equal(parseBufferSize('1000', from), 1000);
    assert.equal(parseBufferSize('1k', from), 1024);
    assert.equal(parseBufferSize('1K', from), 1024);
    assert.equal(parseBufferSize('1m', from), 1024 * 1024);
    assert.equal(parseBufferSize(' 16k ', from), 16 * 1024);
    assert.equal(parseBufferSize('0', from), 0);
    for (const bad of ['1b', '1g', '1G', '', 'k', '-1k', '1.5k', '8 k', '2048m', '\ufeff8k']) {
      assert.equal(parseBufferSize(bad, from), null, bad);
    }
  }
  // The ConfigMap's is written as it is: U+3000 is no blank to nginx (refused); an annotation's was
  // trimmed by ingress-nginx (Go's TrimSpace) before it is written.
  assert.equal(parseBufferSize('\u30008k', 'configmap'), null);
  assert.equal(parseBufferSize('\u30008k', 'annotation'), 8192);
});

test('defaults: buffering on, 8k; a location says nothing of them', () => {
  const t = topologyOf(ingress({ name: 'a', host: 'a.example' }));
  assert.deepEqual(buffering(locationOf(t, 'a.example')), {
    requestBuffering: undefined,
    clientBodyBufferBytes: undefined,
  });
  assert.equal(t.gateway.settings.requestBuffering, undefined);
});

test('annotations per location; invalid values warn and the default applies', () => {
  const t = topologyOf(
    ingress({
      name: 'off',
      host: 'off.example',
      annotations: { [`${P}proxy-request-buffering`]: 'off', [`${P}client-body-buffer-size`]: '1m' },
    }) +
      ingress({
        name: 'on',
        host: 'on.example',
        annotations: { [`${P}proxy-request-buffering`]: ' on ', [`${P}client-body-buffer-size`]: '1K' },
      }) +
      ingress({
        name: 'bad',
        host: 'bad.example',
        annotations: { [`${P}proxy-request-buffering`]: 'OFF', [`${P}client-body-buffer-size`]: '1b' },
      }),
  );
  assert.deepEqual(buffering(locationOf(t, 'off.example')), {
    requestBuffering: false,
    clientBodyBufferBytes: 1024 * 1024,
  });
  assert.deepEqual(buffering(locationOf(t, 'on.example')), {
    requestBuffering: undefined,
    clientBodyBufferBytes: 1024,
  });
  // ValidateOptions is case-sensitive: "OFF" is refused and buffering stays on.
  assert.deepEqual(buffering(locationOf(t, 'bad.example')), {
    requestBuffering: undefined,
    clientBodyBufferBytes: undefined,
  });
  const warnings = t.issues.filter((i) => i.code === 'INVALID_ANNOTATION_VALUE');
  assert.equal(warnings.length, 2);
  assert.match(warnings[0]!.message, /proxy-request-buffering.*"OFF" is not "on" or "off"/);
  assert.match(warnings[1]!.message, /client-body-buffer-size.*"1b" is not a size/);
  assert.deepEqual(
    codes(t.issues).filter((c) => c.includes('ANNOTATION') && c !== 'INVALID_ANNOTATION_VALUE'),
    [],
    'both names are implemented: no NO_EFFECT, REFUSED or UNSUPPORTED',
  );
});

test('the ConfigMap sets the default; an annotation overrides it either way', () => {
  const t = topologyOf(
    configMap({ 'proxy-request-buffering': 'off', 'client-body-buffer-size': '64k' }) +
      ingress({ name: 'inherits', host: 'inherits.example' }) +
      ingress({
        name: 'own',
        host: 'own.example',
        annotations: { [`${P}proxy-request-buffering`]: 'on', [`${P}client-body-buffer-size`]: '8k' },
      }),
  );
  assert.equal(t.gateway.settings.requestBuffering, false);
  assert.equal(t.gateway.settings.clientBodyBufferBytes, 64 * 1024);
  assert.deepEqual(buffering(locationOf(t, 'inherits.example')), {
    requestBuffering: false,
    clientBodyBufferBytes: 64 * 1024,
  });
  assert.deepEqual(buffering(locationOf(t, 'own.example')), {
    requestBuffering: undefined,
    clientBodyBufferBytes: undefined,
  });
  assert.deepEqual(
    codes(t.issues).filter((c) => c.startsWith('CONFIGMAP_KEY') || c === 'UNSUPPORTED_CONFIGMAP_KEY'),
    [],
  );
});

test('invalid ConfigMap values warn and keep on / 8k', () => {
  const t = topologyOf(
    configMap({ 'proxy-request-buffering': 'maybe', 'client-body-buffer-size': '8 kb' }) +
      ingress({ name: 'a', host: 'a.example' }),
  );
  assert.equal(t.gateway.settings.requestBuffering, undefined);
  assert.equal(t.gateway.settings.clientBodyBufferBytes, undefined);
  const issue = find(t.issues, 'INVALID_CONFIGMAP_VALUE');
  assert.match(issue.message, /proxy-request-buffering/);
  assert.equal(t.issues.filter((i) => i.code === 'INVALID_CONFIGMAP_VALUE').length, 2);
});
