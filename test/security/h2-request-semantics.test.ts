// HTTP/2 requests downgraded to HTTP/1.1 for the backend, with hand-written frames: what the gateway
// routes, checks and logs is what the backend reads. The pseudo-headers become the request line, so
// a `:method` nginx refuses (anything but upper-case letters, `_` and `-`) is refused with 400 rather
// than passed on (a backend that upper-cases it would run a `post` the gateway took for idempotent,
// and retried). Header values with CR, LF or NUL, connection-specific fields and a `host` that
// disagrees with `:authority` never reach the backend as such (regressions, found safe).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import {
  connectRawH2,
  FLAG,
  FRAME,
  frame,
  H2_ERROR,
  headerBlock,
  requestFields,
  rstCode,
  responseStatus,
} from '../helpers/h2-raw.ts';

const HOST = 'app.example';
const CLIENT = '127.0.0.81';

/** A backend that records the raw head of every request and answers 200. */
async function recordingBackend() {
  const heads: string[] = [];
  const server = net.createServer((socket) => {
    let text = '';
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      for (let end = text.indexOf('\r\n\r\n'); end >= 0; end = text.indexOf('\r\n\r\n')) {
        heads.push(text.slice(0, end));
        text = text.slice(end + 4);
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { heads, server, port: (server.address() as net.AddressInfo).port };
}

describe('HTTP/2 to HTTP/1.1: the backend reads the request the gateway checked', () => {
  let backend: Awaited<ReturnType<typeof recordingBackend>>;
  let gw: TestGateway;

  before(async () => {
    backend = await recordingBackend();
    gw = await startTestGateway(
      topologyOf([
        // Refused requests are nginx's info lines: shown only from error-log-level info.
        controllerConfigMap({ 'error-log-level': 'info' }),
        ...serviceWithEndpoints({ name: 'app', ports: [backend.port] }),
        ingress({ name: 'app', host: HOST, paths: [{ path: '/', service: 'app', port: 80 }] }),
        ingress({
          name: 'admin',
          host: 'admin.example',
          paths: [{ path: '/', service: 'app', port: 80 }],
          annotations: { 'whitelist-source-range': '10.0.0.0/8' },
        }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    backend.server.close();
  });

  /** One stream on a fresh connection: the first HEADERS or RST_STREAM the gateway answers with. */
  async function send(fields: [string, string][]): Promise<{ status: number } | { reset: number }> {
    const raw = await connectRawH2({ port: gw.httpsPort, from: CLIENT });
    await raw.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, headerBlock(fields)));
    const f = await raw.waitFrame(
      (x) => (x.type === FRAME.HEADERS || x.type === FRAME.RST_STREAM) && x.streamId === 1,
    );
    raw.close();
    return f.type === FRAME.RST_STREAM ? { reset: rstCode(f) } : { status: responseStatus(f.payload) };
  }

  for (const method of ['get', 'post', 'Post', 'GE.T']) {
    it(`:method ${method}: 400, logged with H2_BAD_METHOD, never sent upstream`, async () => {
      const before = backend.heads.length;
      const reply = await send(requestFields(HOST, '/m', method));
      assert.deepEqual(reply, { status: 400 });
      assert.equal(backend.heads.length, before);
      await gw.errors.waitFor(
        new RegExp(
          `client sent invalid method \\(H2_BAD_METHOD\\), client: ${CLIENT.replaceAll('.', '\\.')}`,
        ),
      );
    });
  }

  it('upper-case methods nginx takes are passed on (GET, M-SEARCH, PROPFIND)', async () => {
    for (const method of ['GET', 'M-SEARCH', 'PROPFIND']) {
      const before = backend.heads.length;
      assert.deepEqual(await send(requestFields(HOST, '/m', method)), { status: 200 });
      assert.match(backend.heads[before] ?? '', new RegExp(`^${method} /m HTTP/1\\.1\\r\\n`));
    }
  });

  it('CR, LF or NUL in a value and connection-specific fields never reach the backend', async () => {
    const before = backend.heads.length;
    for (const value of ['a\r\nx-smuggled: 1', 'a\nGET /admin HTTP/1.1', 'a\0b'])
      await send(requestFields(HOST, '/v', 'GET', [['x-v', value]]));
    for (const [name, value] of [
      ['transfer-encoding', 'chunked'],
      ['connection', 'close'],
      ['upgrade', 'h2c'],
      ['te', 'gzip'],
    ] as const)
      assert.deepEqual(await send(requestFields(HOST, '/c', 'GET', [[name, value]])), {
        reset: H2_ERROR.PROTOCOL_ERROR,
      });
    for (const head of backend.heads.slice(before)) {
      assert.doesNotMatch(head, /x-smuggled|\/admin|\0|\r\nx-v:/);
      assert.doesNotMatch(head, /\r\n(transfer-encoding|upgrade|te):/i);
    }
  });

  it('a host field that disagrees with :authority is refused (400, as nginx) and never forwarded; an equal one passes', async () => {
    const before = backend.heads.length;
    assert.deepEqual(await send(requestFields(HOST, '/h', 'GET', [['host', 'admin.example']])), {
      status: 400,
    });
    assert.deepEqual(await send(requestFields('admin.example', '/h', 'GET', [['host', HOST]])), {
      status: 400,
    });
    assert.equal(backend.heads.length, before);
    assert.deepEqual(await send(requestFields(HOST, '/h', 'GET', [['host', HOST]])), { status: 200 });
    assert.match(backend.heads[before] ?? '', /\r\nhost: app\.example\r\n/);
  });
});
