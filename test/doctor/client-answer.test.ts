// What the doctor says a client sees beyond the HTTP status (src/doctor/client-answer.ts): the
// protocols the listener offers, and the gRPC status of an answer on a gRPC route.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diagnose } from '../../src/doctor/diagnose.ts';
import { renderJson, renderText } from '../../src/doctor/report.ts';
import { configMap, ingress, topologyOf } from '../k8s/helpers.ts';

const GRPC = ingress({
  name: 'grpc',
  host: 'grpc.example.com',
  annotations: {
    'nginx.ingress.kubernetes.io/backend-protocol': 'GRPC',
    'nginx.ingress.kubernetes.io/whitelist-source-range': '10.0.0.0/8',
  },
});
const WEB = ingress({ name: 'web', host: 'web.example.com' });

function report(yaml: string, client: string, host: string, scheme: 'http' | 'https' = 'https') {
  const result = diagnose(topologyOf(yaml), { client, host, path: '/pkg.Echo/Call', scheme });
  assert.ok(result.ok);
  return result.report;
}

test('a gRPC client outside the allowlist is told PERMISSION_DENIED, in the summary, the text and the JSON', () => {
  const denied = report(`${GRPC}---\n${WEB}`, '192.0.2.7', 'grpc.example.com');
  assert.equal(denied.status, 403);
  assert.deepEqual(denied.clientAnswer?.protocols, ['h2', 'http/1.1']);
  assert.equal(denied.clientAnswer?.grpc?.code, 7);
  assert.equal(denied.clientAnswer?.grpc?.name, 'PERMISSION_DENIED');
  assert.match(denied.summary, /; a gRPC client sees grpc-status 7 PERMISSION_DENIED$/);
  assert.match(renderText(denied), /offered: h2, http\/1\.1 \(ALPN, use-http2\)/);
  assert.match(renderText(denied), /gRPC: the gateway's 403 reaches a gRPC client as a trailers-only answer/);
  const json = JSON.parse(renderJson(denied)) as { clientAnswer: { grpc: { code: number } } };
  assert.equal(json.clientAnswer.grpc.code, 7);
});

test("an admitted gRPC call gets the backend's own status; a plain route has no gRPC answer", () => {
  const allowed = report(`${GRPC}---\n${WEB}`, '10.1.2.3', 'grpc.example.com');
  assert.equal(allowed.status, 200);
  assert.equal(allowed.clientAnswer?.grpc?.code, null);
  assert.doesNotMatch(allowed.summary, /gRPC/);
  const web = report(`${GRPC}---\n${WEB}`, '10.1.2.3', 'web.example.com');
  assert.equal(web.clientAnswer?.grpc, null);
});

test('HTTP/2 by ALPN on the TLS listener, with prior knowledge on the HTTP one; neither with use-http2 "false"', () => {
  const plain = report(WEB, '10.1.2.3', 'web.example.com', 'http');
  assert.deepEqual(plain.clientAnswer?.protocols, ['http/1.1', 'h2']);
  assert.match(renderText(plain), /offered: http\/1\.1, h2 \(h2 with prior knowledge, use-http2\)/);
  const off = `${configMap({ 'use-http2': 'false' })}${WEB}`;
  assert.deepEqual(report(off, '10.1.2.3', 'web.example.com').clientAnswer?.protocols, ['http/1.1']);
  assert.deepEqual(report(off, '10.1.2.3', 'web.example.com', 'http').clientAnswer?.protocols, ['http/1.1']);
});
