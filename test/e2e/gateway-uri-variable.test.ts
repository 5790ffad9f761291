// nginx's $uri over real sockets: the decoded, normalised path the location was matched on (not the
// target as sent, which is $request_uri), and after a rewrite-target the rewritten path, as nginx's
// `rewrite … break` leaves it; in log-format-upstream and in an auth-url.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import http from '../../src/node-http.ts';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';

describe('$uri', () => {
  let backend: RunningWhoami;
  let auth: Server;
  const askedFor: string[] = [];
  let gw: TestGateway;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    auth = http.createServer((req, res) => {
      askedFor.push(req.url ?? '');
      res.writeHead(200).end();
    });
    await new Promise<void>((resolve) => auth.listen(0, '127.0.0.1', resolve));
    const authPort = (auth.address() as AddressInfo).port;
    gw = await startTestGateway(
      topologyOf([
        controllerConfigMap({ 'log-format-upstream': 'uri=$uri request_uri=$request_uri host=$host' }),
        ...serviceWithEndpoints({ name: 'web', ports: [backend.address.port] }),
        ingress({
          name: 'plain',
          host: 'plain.example.com',
          paths: [{ path: '/', service: 'web', port: 80 }],
        }),
        ingress({
          name: 'rewrite',
          host: 'rewrite.example.com',
          paths: [
            { path: '/something(/|$)(.*)', pathType: 'ImplementationSpecific', service: 'web', port: 80 },
          ],
          annotations: { 'use-regex': 'true', 'rewrite-target': '/$2' },
        }),
        ingress({
          name: 'auth',
          host: 'auth.example.com',
          paths: [{ path: '/', service: 'web', port: 80 }],
          annotations: { 'auth-url': `http://127.0.0.1:${authPort}/check?uri=$uri` },
        }),
      ]),
    );
  });
  after(async () => {
    await gw.close();
    await backend.close();
    await new Promise((resolve) => auth.close(resolve));
  });

  test('the decoded, normalised path, not the target as sent', async () => {
    assert.equal(
      (await request(gw.httpPort, { host: 'plain.example.com', path: '/a//b/./c/../%64?x=1' })).status,
      200,
    );
    await gw.access.waitFor(
      /^uri=\/a\/b\/d request_uri=\/a\/\/b\/\.\/c\/\.\.\/%64\?x=1 host=plain\.example\.com$/,
    );
  });

  test('after rewrite-target, the rewritten path', async () => {
    assert.equal(
      (await request(gw.httpPort, { host: 'rewrite.example.com', path: '/something/new?q=1' })).status,
      200,
    );
    await gw.access.waitFor(/^uri=\/new request_uri=\/something\/new\?q=1 host=rewrite\.example\.com$/);
  });

  test('in an auth-url', async () => {
    assert.equal(
      (await request(gw.httpPort, { host: 'auth.example.com', path: '/x/%79/./z?y=2' })).status,
      200,
    );
    assert.equal(askedFor.at(-1), '/check?uri=/x/y/z');
  });
});
