// The ConfigMap's log-format-escape-json and log-format-escape-none over real sockets: the same request
// logged with nginx's three escapings. escape-none wins over escape-json, as ingress-nginx's template
// writes `escape=none` first; unlike nginx it still writes control bytes as \xHH, so a Basic user with a
// line feed cannot forge a second log line.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { controllerConfigMap, topologyOf, webApp } from '../fixtures/gateway/manifests.ts';

// A quote, a backslash and é as the UTF-8 bytes a client sends (Node writes the string as latin1).
const USER_AGENT = 'a"b\\\xc3\xa9';
// The Basic user `us<LF>er`, password `pw`.
const AUTHORIZATION = `Basic ${Buffer.from('us\ner:pw').toString('base64')}`;

function gatewayWith(escaping: Record<string, string>): Promise<TestGateway> {
  return startTestGateway(
    topologyOf([
      controllerConfigMap({ 'log-format-upstream': 'ua=$http_user_agent user=$remote_user', ...escaping }),
      ...webApp(backend.address.port),
    ]),
  );
}

async function loggedLine(gw: TestGateway): Promise<string> {
  const reply = await request(gw.httpPort, {
    host: 'web.example.com',
    headers: { 'user-agent': USER_AGENT, authorization: AUTHORIZATION },
  });
  assert.equal(reply.status, 200);
  return (await gw.access.waitFor(/^ua=/)).trimEnd();
}

let backend: RunningWhoami;
before(async () => {
  backend = await startWhoami({ host: '127.0.0.1', port: 0 });
});
after(() => backend.close());

describe('access log escaping (log-format-escape-json, log-format-escape-none)', () => {
  const gateways: TestGateway[] = [];
  after(async () => {
    for (const gw of gateways) await gw.close();
  });
  const started = async (escaping: Record<string, string>) => {
    const gw = await gatewayWith(escaping);
    gateways.push(gw);
    return gw;
  };

  test("default: nginx's escape=default, \\xHH for quotes, backslashes, control and high bytes", async () => {
    assert.equal(await loggedLine(await started({})), 'ua=a\\x22b\\x5C\\xC3\\xA9 user=us\\x0Aer');
  });

  test('escape-json: JSON string escaping, UTF-8 as text', async () => {
    const line = await loggedLine(await started({ 'log-format-escape-json': 'true' }));
    assert.equal(line, 'ua=a\\"b\\\\é user=us\\ner');
  });

  test('escape-none wins over escape-json: values as sent, control bytes still \\xHH', async () => {
    const gw = await started({ 'log-format-escape-json': 'true', 'log-format-escape-none': 'true' });
    assert.equal(await loggedLine(gw), 'ua=a"b\\é user=us\\x0Aer');
  });
});
