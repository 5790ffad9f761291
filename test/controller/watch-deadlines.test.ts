// The two deadlines of a watch stream (src/controller/kube-client.ts): the server must answer within
// the request timeout, and an answered stream may then stay silent well past it, for the API server's
// bookmarks come about once a minute. A stream cut at the request timeout never saw a bookmark, so a
// quiet resource kept resuming from its list's resourceVersion until 410 Gone relisted it.
import assert from 'node:assert/strict';
import http from '../../src/node-http.ts';
import type { AddressInfo } from 'node:net';
import { after, before, it } from 'node:test';
import { createKubeClient, loadKubeConfig } from '../../src/controller/kube-client.ts';
import type { WatchEnd, WatchEvent } from '../../src/controller/reflector.ts';

/**
 * A watch that answers at once and stays silent, then sends a BOOKMARK after twice the request timeout;
 * `/hang` never answers. The request timeout is 2 s, so that a busy machine still answers a watch in it.
 */
const REQUEST_TIMEOUT_MS = 2_000;
const server = http.createServer((req, res) => {
  if (req.url?.startsWith('/hang')) return;
  res.writeHead(200, { 'content-type': 'application/json' });
  res.flushHeaders();
  const bookmark = { type: 'BOOKMARK', object: { kind: 'ConfigMap', metadata: { resourceVersion: '42' } } };
  const timer = setTimeout(() => res.write(`${JSON.stringify(bookmark)}\n`), 2 * REQUEST_TIMEOUT_MS);
  res.on('close', () => clearTimeout(timer));
});
let client: ReturnType<typeof createKubeClient>;

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const source = { kubeconfig: null, apiserverHost: `http://127.0.0.1:${port}`, certificateAuthority: null };
  client = createKubeClient(loadKubeConfig(source, {}), REQUEST_TIMEOUT_MS);
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** The first thing the watch of `path` reports: an event, or how it ended. */
function firstOf(path: string): Promise<{ event?: WatchEvent; end?: WatchEnd }> {
  return new Promise((resolve) => {
    const watch = client.listWatcher(path, {}).watch('5', {
      open: () => {},
      event: (event) => {
        watch.stop();
        resolve({ event });
      },
      end: (end) => resolve({ end }),
    });
  });
}

it('an answered watch stays open past the request timeout: the bookmark that comes later arrives', async () => {
  const first = await firstOf('/api/v1/configmaps');
  assert.equal(first.end, undefined, `the stream ended first: ${JSON.stringify(first.end)}`);
  assert.equal(first.event?.type, 'BOOKMARK');
});

it('a watch the server never answers ends at the request timeout', async () => {
  const first = await firstOf('/hang/api/v1/configmaps');
  assert.equal(first.end?.kind, 'timeout');
});
