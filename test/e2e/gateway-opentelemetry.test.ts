// enable-opentelemetry over real sockets: a test collector (OTLP/gRPC on 127.0.0.1, decoding with its
// own .proto, not the exporter's code) receives the gateway's SERVER spans, and the backend (whoami)
// shows the traceparent it was sent. As ingress-nginx's nginx module: the client's traceparent is the
// parent when trusted, the backend continues the gateway's span, refused requests are traced too, an
// Ingress's enable-opentelemetry "false" leaves the client's context untouched.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
  webApp,
} from '../fixtures/gateway/manifests.ts';
import { type OtlpReceiver, startOtlpReceiver } from '../fixtures/otlp/receiver.ts';
import { h2Request } from '../helpers/h2-client.ts';
import { refusingPort } from '../helpers/net.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE}-${PARENT}-01`;
const W3C = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;

/** The traceparent the backend got (whoami echoes the request's headers). */
async function backendTraceparent(
  port: number,
  host: string,
  headers: Record<string, string> = {},
  path = '/x?y=1',
) {
  const reply = await request(port, { host, path, headers: { accept: 'application/json', ...headers } });
  assert.equal(reply.status, 200, reply.body);
  return {
    parsed: W3C.exec(
      (JSON.parse(reply.body) as { headers: Record<string, string> }).headers.traceparent ?? '',
    ),
    reply,
  };
}

describe('enable-opentelemetry: spans to an OTLP/gRPC collector, context to the backend', () => {
  let backend: RunningWhoami;
  let collector: OtlpReceiver;
  let gw: TestGateway;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    collector = await startOtlpReceiver();
    const port = backend.address.port;
    gw = await startTestGateway(
      topologyOf([
        controllerConfigMap({
          'enable-opentelemetry': 'true',
          'otlp-collector-host': '127.0.0.1',
          'otlp-collector-port': String(collector.port),
          'otel-service-name': 'edge',
          'otel-schedule-delay-millis': '50',
        }),
        ...webApp(port),
        ...serviceWithEndpoints({ name: 'quiet', ports: [port] }),
        ingress({
          name: 'quiet',
          host: 'quiet.example.com',
          paths: [{ path: '/', service: 'quiet', port: 80 }],
          annotations: { 'enable-opentelemetry': 'false' },
        }),
        ingress({
          name: 'named',
          host: 'named.example.com',
          paths: [{ path: '/api', service: 'web', port: 80 }],
          annotations: {
            'enable-opentelemetry': 'true',
            'opentelemetry-operation-name': 'checkout_api',
            'opentelemetry-trust-incoming-span': 'false',
          },
        }),
        ingress({
          name: 'closed',
          host: 'closed.example.com',
          paths: [{ path: '/', service: 'web', port: 80 }],
          annotations: { 'allowlist-source-range': '10.0.0.0/8' },
        }),
      ]),
    );
  });

  after(async () => {
    await gw?.close();
    await collector?.close();
    await backend?.close();
  });

  test("a trusted client's traceparent is the parent; the backend gets the gateway's span as its parent", async () => {
    const { parsed } = await backendTraceparent(gw.httpPort, 'web.example.com', { traceparent: TRACEPARENT });
    assert.ok(parsed, 'the backend got a W3C traceparent');
    assert.equal(parsed[1], TRACE, 'same trace');
    assert.notEqual(parsed[2], PARENT, "the gateway's span, not the client's");
    assert.equal(parsed[3], '01');
    const span = (await collector.waitForSpans(1)).find((s) => s.spanId === parsed[2]);
    assert.ok(span, `the collector got the span the backend continues: ${JSON.stringify(collector.spans)}`);
    assert.equal(span.traceId, TRACE);
    assert.equal(span.parentSpanId, PARENT);
    assert.equal(span.name, '/', 'named after the location');
    assert.equal(span.kind, 'SPAN_KIND_SERVER');
    assert.equal(span.scope, 'nginx');
    assert.equal(span.resource['service.name'], 'edge');
    assert.deepEqual(span.attributes, {
      'http.method': 'GET',
      'http.flavor': '1.1',
      'http.target': '/x?y=1',
      'http.host': 'web.example.com',
      'http.server_name': 'web.example.com',
      'http.status_code': 200,
      'http.scheme': 'http',
      // The module's default script attributes: $server_port, $remote_addr, $remote_port.
      'net.host.port': gw.httpPort,
      'net.peer.ip': '127.0.0.1',
      'net.peer.port': span.attributes['net.peer.port'],
    });
    assert.ok(Number(span.attributes['net.peer.port']) > 0);
    assert.ok(span.startMs <= span.endMs && Math.abs(span.startMs - Date.now()) < 60_000);
  });

  test('an Ingress with enable-opentelemetry "false": no span, the client\'s traceparent reaches the backend as sent', async () => {
    const { parsed } = await backendTraceparent(gw.httpPort, 'quiet.example.com', {
      traceparent: TRACEPARENT,
    });
    assert.deepEqual(parsed?.slice(1), [TRACE, PARENT, '01']);
    // A traced request after it: its span ends later, so a span of the first would have arrived by then.
    const before = collector.spans.length;
    const { parsed: next } = await backendTraceparent(gw.httpPort, 'web.example.com');
    await collector.waitForSpans(before + 1);
    assert.ok(collector.spans.some((s) => s.spanId === next?.[2]));
    assert.ok(!collector.spans.some((s) => s.attributes['http.host'] === 'quiet.example.com'));
  });

  test('opentelemetry-operation-name names the span; trust-incoming-span "false" starts a new trace', async () => {
    const before = collector.spans.length;
    const { parsed } = await backendTraceparent(
      gw.httpPort,
      'named.example.com',
      { traceparent: TRACEPARENT },
      '/api/orders',
    );
    assert.ok(parsed);
    assert.notEqual(parsed[1], TRACE, 'a new trace');
    await collector.waitForSpans(before + 1);
    const span = collector.spans.find((s) => s.spanId === parsed[2]);
    assert.equal(span?.name, 'checkout_api');
    assert.equal(span?.parentSpanId, '');
  });

  test('over HTTP/2 (TLS, ALPN h2): http.flavor 2.0, http.scheme https, the same context to the backend', async () => {
    const before = collector.spans.length;
    const reply = await h2Request({
      port: gw.httpsPort,
      host: 'web.example.com',
      path: '/h2',
      headers: { accept: 'application/json', traceparent: TRACEPARENT },
    });
    assert.equal(reply.status, 200);
    const sent = W3C.exec(JSON.parse(reply.body.toString()).headers.traceparent ?? '');
    assert.equal(sent?.[1], TRACE);
    await collector.waitForSpans(before + 1);
    const span = collector.spans.find((s) => s.spanId === sent?.[2]);
    assert.equal(span?.attributes['http.flavor'], '2.0');
    assert.equal(span?.attributes['http.scheme'], 'https');
    assert.equal(span?.attributes['http.target'], '/h2');
    assert.equal(span?.parentSpanId, PARENT);
  });

  test('a request the allowlist refuses is traced with its 403', async () => {
    const before = collector.spans.length;
    const reply = await request(gw.httpPort, {
      host: 'closed.example.com',
      headers: { traceparent: TRACEPARENT },
    });
    assert.equal(reply.status, 403);
    await collector.waitForSpans(before + 1);
    const span = collector.spans.find((s) => s.attributes['http.host'] === 'closed.example.com');
    assert.equal(span?.attributes['http.status_code'], 403);
    assert.equal(span?.traceId, TRACE);
  });
});

describe('otel-sampler AlwaysOff: nothing exported, the context still goes on (unsampled)', () => {
  test('the backend gets a new span id with flags 00 and the collector nothing', async () => {
    const backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    const collector = await startOtlpReceiver();
    const gw = await startTestGateway(
      topologyOf([
        controllerConfigMap({
          'enable-opentelemetry': 'true',
          'otlp-collector-host': '127.0.0.1',
          'otlp-collector-port': String(collector.port),
          'otel-sampler': 'AlwaysOff',
          'otel-sampler-parent-based': 'false',
          'otel-schedule-delay-millis': '50',
        }),
        ...webApp(backend.address.port),
      ]),
    );
    try {
      const { parsed } = await backendTraceparent(gw.httpPort, 'web.example.com', {
        traceparent: TRACEPARENT,
      });
      assert.equal(parsed?.[1], TRACE);
      assert.notEqual(parsed?.[2], PARENT);
      assert.equal(parsed?.[3], '00');
    } finally {
      // close() exports what is queued: had a span been sampled, the collector would have it now.
      await gw.close();
      assert.deepEqual(collector.spans, []);
      await collector.close();
      await backend.close();
    }
  });
});

describe('the collector: unreachable, then another by a reload', () => {
  test('requests are answered while the collector is down (one error line); a reload sends spans to the new one', async () => {
    const backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    const downPort = await refusingPort();
    const collector = await startOtlpReceiver();
    const topology = (port: number) =>
      topologyOf([
        controllerConfigMap({
          'enable-opentelemetry': 'true',
          'otlp-collector-host': '127.0.0.1',
          'otlp-collector-port': String(port),
          'otel-schedule-delay-millis': '50',
        }),
        ...webApp(backend.address.port),
      ]);
    const gw = await startTestGateway(topology(downPort));
    try {
      for (let i = 0; i < 3; i++)
        assert.ok((await backendTraceparent(gw.httpPort, 'web.example.com')).parsed);
      await gw.errors.waitFor(
        /\[error\].*opentelemetry: export failed.*spans to http:\/\/127\.0\.0\.1:\d+ lost/,
      );
      assert.equal(
        gw.errors.lines.filter((l) => l.includes('opentelemetry')).length,
        1,
        'at most one a minute',
      );
      const reloaded = gw.gateway.reload(topology(collector.port));
      assert.ok(reloaded.ok);
      const { parsed } = await backendTraceparent(gw.httpPort, 'web.example.com');
      const spans = await collector.waitForSpans(1);
      assert.equal(spans[0]?.spanId, parsed?.[2]);
    } finally {
      await gw.close();
      await collector.close();
      await backend.close();
    }
  });
});
