import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { GatewaySettings } from '../../src/config/model.ts';
import { newRequestId, requestIdFor } from '../../src/gateway/request-id.ts';
import { defaultGatewaySettings } from '../../src/k8s/annotations.ts';
import type { LocationModel } from '../../src/config/model.ts';
import {
  applyLocationHeaders,
  buildUpstreamHeaders,
  forwardedView,
  type IncomingHeaders,
  type UpstreamHeadersInput,
} from '../../src/gateway/upstream-headers.ts';

function settings(over: Partial<GatewaySettings> = {}): GatewaySettings {
  return {
    ...defaultGatewaySettings(),
    trustedCidrs: ['127.0.0.0/8'],
    trustedCidrsDefaulted: false,
    logFormatUpstream: '',
    ...over,
  };
}

const CLIENT_HEADERS: IncomingHeaders = {
  host: 'gitea.example.com',
  'user-agent': 'curl/8',
  accept: '*/*',
  'x-forwarded-for': '203.0.113.9, 10.0.0.5',
  'x-forwarded-proto': 'https',
  'x-forwarded-host': 'public.example.com, inner',
  'x-forwarded-port': '443',
  'x-real-ip': '6.6.6.6',
  'x-scheme': 'forged',
  'x-original-forwarded-for': 'forged',
  proxy: 'http://evil:8080',
  connection: 'keep-alive, X-Secret',
  'x-secret': 'hop',
  'keep-alive': 'timeout=5',
  te: 'trailers',
  trailer: 'x-t',
  'transfer-encoding': 'chunked',
  upgrade: 'websocket',
  'proxy-connection': 'keep-alive',
  cookie: 'a=1',
  'set-cookie': ['x=1', 'y=2'],
};

function input(
  over: Partial<UpstreamHeadersInput> = {},
  s: Partial<GatewaySettings> = {},
): UpstreamHeadersInput {
  return {
    incoming: CLIENT_HEADERS,
    clientAddress: '203.0.113.9',
    headersTrusted: true,
    settings: settings(s),
    scheme: 'http',
    serverPort: 8080,
    host: 'gitea.example.com',
    requestId: '0123456789abcdef0123456789abcdef',
    peerAddress: '127.0.0.5',
    proxyProtocolAddress: null,
    ...over,
  };
}

describe('upstream headers', () => {
  it('copies end-to-end headers and drops hop-by-hop ones, Proxy and what Connection lists', () => {
    const h = buildUpstreamHeaders(input());
    for (const name of [
      'connection',
      'keep-alive',
      'te',
      'trailer',
      'transfer-encoding',
      'upgrade',
      'proxy-connection',
      'proxy',
      'x-secret',
    ]) {
      assert.equal(h[name], undefined, name);
    }
    assert.equal(h['user-agent'], 'curl/8');
    assert.equal(h.accept, '*/*');
    assert.equal(h.cookie, 'a=1');
    assert.deepEqual(h['set-cookie'], ['x=1', 'y=2']);
  });

  it('never lets the client set X-Real-IP, X-Scheme or X-Original-Forwarded-For itself', () => {
    const h = buildUpstreamHeaders(input({ headersTrusted: false }));
    assert.equal(h['x-real-ip'], '203.0.113.9');
    assert.equal(h['x-scheme'], 'http');
    assert.equal(h['x-original-forwarded-for'], '203.0.113.9, 10.0.0.5');
  });

  // ingress-nginx >= 1.13 (test/e2e/settings/forwarded_headers.go): the incoming X-Forwarded-Host as
  // it came, from anyone, whether or not it is believed; a client's own X-Original-Forwarded-Host never passes.
  it("X-Original-Forwarded-Host is the incoming X-Forwarded-Host (forwarded-host-header), never the client's own", () => {
    const untrusted = buildUpstreamHeaders(
      input({
        headersTrusted: false,
        incoming: { ...CLIENT_HEADERS, 'x-original-forwarded-host': 'forged' },
      }),
    );
    assert.equal(untrusted['x-original-forwarded-host'], 'public.example.com, inner');
    assert.equal(untrusted['x-forwarded-host'], 'gitea.example.com');
    const none = buildUpstreamHeaders(
      input({ incoming: { host: 'a.example', 'x-original-forwarded-host': 'forged' } }),
    );
    assert.equal(none['x-original-forwarded-host'], undefined);
    const other = buildUpstreamHeaders(
      input({ incoming: { ...CLIENT_HEADERS, 'x-host': 'edge.example' } }, { forwardedHostHeader: 'X-Host' }),
    );
    assert.equal(other['x-original-forwarded-host'], 'edge.example');
  });

  // Each ConfigMap combination: [name, settings, peer trusted, expected headers]
  const combos: Array<
    [
      string,
      Partial<GatewaySettings>,
      boolean,
      Partial<UpstreamHeadersInput>,
      Record<string, string | undefined>,
    ]
  > = [
    [
      'defaults: X-Forwarded-For replaced by the client, forwarded headers ignored',
      {},
      true,
      {},
      {
        host: 'gitea.example.com',
        'x-forwarded-for': '203.0.113.9',
        'x-forwarded-host': 'gitea.example.com',
        'x-forwarded-port': '8080',
        'x-forwarded-proto': 'http',
        'x-forwarded-scheme': 'http',
      },
    ],
    [
      'use-forwarded-headers, trusted peer: proto, host (first entry) and port passed on',
      { useForwardedHeaders: true },
      true,
      {},
      {
        host: 'public.example.com',
        'x-forwarded-for': '203.0.113.9',
        'x-forwarded-host': 'public.example.com',
        'x-forwarded-port': '443',
        'x-forwarded-proto': 'https',
        'x-forwarded-scheme': 'https',
        'x-scheme': 'https',
      },
    ],
    [
      'use-forwarded-headers, untrusted peer: nothing believed',
      { useForwardedHeaders: true },
      false,
      { clientAddress: '10.9.9.9', peerAddress: '10.9.9.9' },
      {
        host: 'gitea.example.com',
        'x-real-ip': '10.9.9.9',
        'x-forwarded-for': '10.9.9.9',
        'x-forwarded-host': 'gitea.example.com',
        'x-forwarded-port': '8080',
        'x-forwarded-proto': 'http',
      },
    ],
    [
      'compute-full-forwarded-for without use-forwarded-headers: replaced (as ingress-nginx)',
      { computeFullForwardedFor: true },
      true,
      {},
      { 'x-forwarded-for': '203.0.113.9' },
    ],
    [
      'compute-full-forwarded-for with use-forwarded-headers: appends the peer',
      { computeFullForwardedFor: true, useForwardedHeaders: true },
      true,
      {},
      { 'x-forwarded-for': '203.0.113.9, 10.0.0.5, 127.0.0.5', 'x-real-ip': '203.0.113.9' },
    ],
    [
      'compute-full-forwarded-for with PROXY protocol: appends the PROXY address',
      { computeFullForwardedFor: true, useForwardedHeaders: true, useProxyProtocol: true },
      true,
      { proxyProtocolAddress: '198.51.100.1', proxyDestinationPort: 80 },
      { 'x-forwarded-for': '203.0.113.9, 10.0.0.5, 198.51.100.1', 'x-forwarded-port': '443' },
    ],
    [
      'compute-full-forwarded-for with no incoming chain',
      { computeFullForwardedFor: true, useForwardedHeaders: true },
      true,
      { incoming: { host: 'h' } },
      { 'x-forwarded-for': '127.0.0.5', 'x-original-forwarded-for': undefined },
    ],
    [
      'PROXY header to port 443: https, port from the header',
      { useProxyProtocol: true },
      true,
      { proxyDestinationPort: 443 },
      { 'x-forwarded-proto': 'https', 'x-forwarded-port': '443' },
    ],
    [
      'TLS listener without its port known: the port as the socket says',
      {},
      true,
      { scheme: 'https', serverPort: 8443 },
      { 'x-forwarded-proto': 'https', 'x-forwarded-port': '8443', 'x-scheme': 'https' },
    ],
    [
      "TLS listener on 8443: X-Forwarded-Port 443 (ingress-nginx's $pass_port for --https-port)",
      {},
      true,
      { scheme: 'https', serverPort: 8443, httpsPort: 8443 },
      { 'x-forwarded-proto': 'https', 'x-forwarded-port': '443', 'x-scheme': 'https' },
    ],
    [
      'plain listener: its own port, not 443',
      {},
      true,
      { serverPort: 8080, httpsPort: 8443 },
      { 'x-forwarded-proto': 'http', 'x-forwarded-port': '8080' },
    ],
    [
      'a PROXY destination port equal to the HTTPS listener port is 443 as well',
      { useProxyProtocol: true },
      true,
      { proxyDestinationPort: 8443, httpsPort: 8443 },
      { 'x-forwarded-port': '443' },
    ],
    [
      "a trusted X-Forwarded-Port naming the HTTPS listener's port is 443",
      { useForwardedHeaders: true },
      true,
      { incoming: { host: 'h', 'x-forwarded-port': '8443' }, httpsPort: 8443 },
      { 'x-forwarded-port': '443' },
    ],
    [
      'a trusted X-Forwarded-Port that is not digits is not believed (it would end up in a Location)',
      { useForwardedHeaders: true },
      true,
      { incoming: { host: 'h', 'x-forwarded-port': '@evil.example' } },
      { 'x-forwarded-port': '8080' },
    ],
    [
      'a custom forwarded-for-header feeds X-Original-Forwarded-For',
      { forwardedForHeader: 'CF-Connecting-IP' },
      true,
      { incoming: { host: 'h', 'cf-connecting-ip': '192.0.2.44' } },
      { 'x-original-forwarded-for': '192.0.2.44', 'cf-connecting-ip': '192.0.2.44' },
    ],
  ];
  for (const [name, s, trusted, over, expected] of combos) {
    it(name, () => {
      const h = buildUpstreamHeaders(input({ headersTrusted: trusted, ...over }, s));
      for (const [key, value] of Object.entries(expected)) assert.equal(h[key], value, key);
    });
  }

  it('sets X-Request-ID to $req_id', () => {
    assert.equal(buildUpstreamHeaders(input())['x-request-id'], '0123456789abcdef0123456789abcdef');
  });

  it('gives routing the scheme ssl-redirect decides on', () => {
    const view = (headers: IncomingHeaders, trusted: boolean) =>
      forwardedView({
        incoming: headers,
        headersTrusted: trusted,
        settings: settings({ useForwardedHeaders: true }),
        scheme: 'http',
        serverPort: 80,
        host: 'h',
      }).routeScheme;
    assert.equal(view({ 'x-forwarded-proto': 'https' }, true), 'https');
    assert.equal(view({ 'x-forwarded-proto': 'https' }, false), 'http');
    assert.equal(view({}, true), 'http');
  });
});

describe('request ids', () => {
  it('are 32 lower-case hex digits and do not repeat', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const id = newRequestId();
      assert.match(id, /^[0-9a-f]{32}$/);
      seen.add(id);
    }
    assert.equal(seen.size, 2000);
  });

  it('keep an incoming X-Request-ID ($req_id), else generate one', () => {
    assert.equal(requestIdFor({ 'x-request-id': 'abc-123' }), 'abc-123');
    assert.match(requestIdFor({}), /^[0-9a-f]{32}$/);
    assert.match(requestIdFor({ 'x-request-id': '' }), /^[0-9a-f]{32}$/);
  });
});

describe('applyLocationHeaders: X-Forwarded-Prefix', () => {
  const location = {} as LocationModel;
  it("sets the location's value over a trusted hop's", () => {
    const headers: Record<string, string> = { 'x-forwarded-prefix': '/from-hop' };
    applyLocationHeaders(headers, location, '/api');
    assert.equal(headers['x-forwarded-prefix'], '/api');
  });
  it('an empty value (its captures empty) sends none at all, as nginx drops an empty proxy_set_header', () => {
    const headers: Record<string, string> = { 'x-forwarded-prefix': '/from-hop' };
    applyLocationHeaders(headers, location, '');
    assert.equal('x-forwarded-prefix' in headers, false);
  });
});
