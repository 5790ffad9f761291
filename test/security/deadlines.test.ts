// Issue 11, "connections that never end": every state in which the gateway waits on a client has a
// deadline (src/gateway/client-timeouts.ts). Each test puts one connection in one such state, with
// deadlines of a few hundred milliseconds, and proves the gateway lets go of it within its deadline plus
// a generous slack (never an exact time): the connection closed, the reason counted in
// keepip_gateway_connections_closed_total, the gateway's descriptor gone, the backend freed. The last
// test holds 500 such connections at once while a normal client is served.
import assert from 'node:assert/strict';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { RunningGateway } from '../../src/gateway/gateway.ts';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { acceptedOn, openDescriptors, waitForCount } from '../helpers/descriptors.ts';
import {
  answerEarly,
  answerOk,
  type Backend,
  type Client,
  collectBody,
  connectClient,
  startBackend,
  streamBody,
} from './deadline-peers.ts';
import { counterValue } from './helpers.ts';

/** The deadlines of the gateway under test; each test says which one it is about. */
const T = {
  clientHeaderTimeoutMs: 400,
  clientBodyTimeoutMs: 400,
  keepAliveTimeoutMs: 600,
  sendTimeoutMs: 400,
  lingeringTimeMs: 1_500,
  lingeringTimeoutMs: 300,
};
/** What a busy 2-core machine may add to a deadline (the sweep, the event loop, the scheduler). */
const SLACK_MS = 8_000;
/** Time allowed for what has no deadline of its own to wait for (an answer, a connect). */
const PROMPT_MS = 15_000;
const CLOSES = 'keepip_gateway_connections_closed_total';
const HOST = 'd.example';
const DECLARED = 'Content-Length: 100000\r\n';

const closes = (gateway: RunningGateway, reason: string) => counterValue(gateway, CLOSES, { reason });

/** Waits until the counter for `reason` reaches `count`. */
async function waitForCloses(gateway: RunningGateway, reason: string, count: number, timeoutMs: number) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await closes(gateway, reason);
    if (value >= count) return value;
    if (performance.now() > deadline)
      throw new Error(`${CLOSES}{reason="${reason}"} is ${value} after ${timeoutMs} ms, waited for ${count}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A request that declares 100,000 body bytes and sends 11. */
function post(path: string, extra = ''): string {
  return `POST ${path} HTTP/1.1\r\nHost: ${HOST}\r\n${extra}${DECLARED}\r\nfirst bytes`;
}

function upgrade(path: string, host = HOST): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`;
}

interface Peers {
  ok: Backend;
  early: Backend;
  collect: Backend;
  refuse: Backend;
  big: Backend;
}

async function startPeers(bigBytes: number): Promise<Peers> {
  return {
    ok: await startBackend(answerOk),
    early: await startBackend(answerEarly(401, 'Unauthorized')),
    collect: await startBackend(collectBody),
    refuse: await startBackend(answerEarly(403, 'Forbidden')),
    big: await startBackend(streamBody(bigBytes)),
  };
}

function topologyFor(peers: Peers, configMap: Record<string, string> = {}) {
  return topologyOf([
    controllerConfigMap(configMap),
    ...serviceWithEndpoints({ name: 'ok', ports: [peers.ok.port] }),
    ...serviceWithEndpoints({ name: 'early', ports: [peers.early.port] }),
    ...serviceWithEndpoints({ name: 'collect', ports: [peers.collect.port] }),
    ...serviceWithEndpoints({ name: 'refuse', ports: [peers.refuse.port] }),
    ...serviceWithEndpoints({ name: 'big', ports: [peers.big.port] }),
    ingress({
      name: 'open',
      host: HOST,
      // These deadlines are those of a body streamed to the backend (one that answers early, one that
      // stalls mid-way); buffered bodies (the default) have their own tests in
      // test/e2e/gateway-request-buffering.test.ts.
      annotations: { 'proxy-request-buffering': 'off' },
      paths: [
        { path: '/app', service: 'ok', port: 80 },
        { path: '/early', service: 'early', port: 80 },
        { path: '/collect', service: 'collect', port: 80 },
        { path: '/ws', service: 'refuse', port: 80 },
        { path: '/big', service: 'big', port: 80 },
      ],
    }),
    ingress({
      name: 'small',
      host: HOST,
      paths: [{ path: '/small', service: 'ok', port: 80 }],
      annotations: { 'proxy-body-size': '1k' },
    }),
    ingress({
      name: 'admin',
      host: HOST,
      paths: [{ path: '/admin', service: 'ok', port: 80 }],
      annotations: { 'whitelist-source-range': '10.0.0.0/8' },
    }),
    ingress({
      name: 'slow-upload',
      host: HOST,
      paths: [{ path: '/upload', service: 'collect', port: 80 }],
      annotations: {
        'proxy-send-timeout': '1',
        'proxy-read-timeout': '30',
        'proxy-request-buffering': 'off',
      },
    }),
  ]);
}

async function closePeers(peers: Peers): Promise<void> {
  for (const peer of Object.values(peers)) await peer.close();
}

describe('gateway deadlines: a connection never stays open because a client stalls', () => {
  let gw: TestGateway;
  let peers: Peers;
  const clients: Client[] = [];
  const client = async (...args: Parameters<typeof connectClient>) => {
    const c = await connectClient(...args);
    clients.push(c);
    return c;
  };

  before(async () => {
    peers = await startPeers(64 * 1024 * 1024);
    gw = await startTestGateway(topologyFor(peers), T);
  });

  after(async () => {
    for (const c of clients) c.socket.destroy();
    await gw.close();
    await closePeers(peers);
  });

  /** The gateway holds no client socket any more. */
  const released = (what: string) =>
    waitForCount(
      () => acceptedOn(gw.httpPort),
      (n) => n === 0,
      SLACK_MS,
      `${what}: gateway sockets`,
    );

  for (const [name, payload, status] of [
    ['404 (no such host)', `POST /x HTTP/1.1\r\nHost: nowhere.example\r\n${DECLARED}\r\nfirst bytes`, 404],
    ['403 (whitelist-source-range)', post('/admin'), 403],
  ] as const) {
    it(`a declared body that never comes, answered ${name}, is dropped for lingering_timeout, then the connection closes`, async () => {
      const was = await closes(gw.gateway, 'lingering_close');
      const c = await client(gw.httpPort, '127.0.0.41', payload, { allowHalfOpen: true });
      const answer = await c.head(PROMPT_MS);
      assert.equal(answer.status, status);
      assert.match(
        answer.head,
        /\r\nconnection: keep-alive/i,
        'kept alive: the rest of the body is read and dropped',
      );
      const gone = await c.serverGone(T.lingeringTimeoutMs + SLACK_MS);
      assert.ok(gone - answer.at <= T.lingeringTimeoutMs + SLACK_MS);
      assert.equal(await closes(gw.gateway, 'lingering_close'), was + 1);
      await released(name);
    });
  }

  it('413: a client that trickles its declared body is cut after lingering_time', async () => {
    const was = await closes(gw.gateway, 'lingering_close');
    const c = await client(gw.httpPort, '127.0.0.42', post('/small'), { allowHalfOpen: true });
    const answer = await c.head(PROMPT_MS);
    assert.equal(answer.status, 413);
    assert.match(answer.head, /\r\nconnection: close/i);
    // One byte every 100 ms: each read restarts lingering_timeout, lingering_time bounds them all.
    const trickle = setInterval(() => {
      if (!c.socket.destroyed) c.socket.write('x');
    }, 100);
    try {
      await waitForCloses(gw.gateway, 'lingering_close', was + 1, T.lingeringTimeMs + SLACK_MS);
      await released('413');
    } finally {
      clearInterval(trickle);
    }
  });

  it('an Expect other than 100-continue is ignored, as nginx: a declared body that never comes gets 408', async () => {
    const was = await closes(gw.gateway, 'client_body_timeout');
    const c = await client(gw.httpPort, '127.0.0.43', post('/collect', 'Expect: something-else\r\n'), {
      allowHalfOpen: true,
    });
    assert.equal((await c.head(T.clientBodyTimeoutMs + SLACK_MS)).status, 408);
    await waitForCloses(gw.gateway, 'client_body_timeout', was + 1, PROMPT_MS);
    await released('unknown expectation');
  });

  it('a backend that answers before reading the body: the answer reaches the client, then both connections close', async () => {
    const backendClosed = peers.early.closed();
    const c = await client(gw.httpPort, '127.0.0.44', post('/early'), { allowHalfOpen: true });
    const answer = await c.head(PROMPT_MS);
    assert.equal(answer.status, 401);
    // The upstream request was never completed: that connection cannot be reused, it is closed.
    await peers.early.waitClosed(backendClosed + 1, PROMPT_MS);
    const gone = await c.serverGone(T.lingeringTimeoutMs + SLACK_MS);
    assert.ok(gone - answer.at <= T.lingeringTimeoutMs + SLACK_MS);
    await released('early answer');
  });

  it('a body that stalls mid-way while proxied gets 408 after client_body_timeout, and the backend is freed', async () => {
    const was = await closes(gw.gateway, 'client_body_timeout');
    const backendClosed = peers.collect.closed();
    const sent = performance.now();
    const c = await client(gw.httpPort, '127.0.0.45', post('/collect'), { allowHalfOpen: true });
    const answer = await c.head(T.clientBodyTimeoutMs + SLACK_MS);
    assert.equal(answer.status, 408);
    assert.match(answer.head, /\r\nconnection: close/i);
    assert.ok(answer.at - sent >= T.clientBodyTimeoutMs - 50, 'not before client_body_timeout');
    await peers.collect.waitClosed(backendClosed + 1, PROMPT_MS);
    assert.equal(await closes(gw.gateway, 'client_body_timeout'), was + 1);
    await gw.access.waitFor(/"POST \/collect HTTP\/1\.1" 408 /);
    await released('408');
  });

  it('refused upgrades (the gateway answers 404 or 403) are closed fully within lingering_timeout', async () => {
    const was = await closes(gw.gateway, 'upgrade_refused');
    for (const [path, host, status] of [
      ['/ws', 'nowhere.example', 404],
      ['/admin', HOST, 403],
    ] as const) {
      // The client never closes its side and never sends again: without a deadline the gateway's
      // socket stays half-open (FIN-WAIT-2, owned by the process) for good.
      const c = await client(gw.httpPort, '127.0.0.46', upgrade(path, host), { allowHalfOpen: true });
      assert.equal((await c.head(PROMPT_MS)).status, status);
      await c.serverGone(PROMPT_MS); // the gateway's FIN
    }
    await waitForCloses(gw.gateway, 'upgrade_refused', was + 2, T.lingeringTimeoutMs + SLACK_MS);
    await released('refused upgrade');
  });

  it('an upgrade the backend refuses: its answer reaches the client, then both connections close', async () => {
    const was = await closes(gw.gateway, 'upgrade_refused');
    const backendClosed = peers.refuse.closed();
    const c = await client(gw.httpPort, '127.0.0.47', upgrade('/ws'), { allowHalfOpen: true });
    assert.equal((await c.head(PROMPT_MS)).status, 403);
    // Not after proxy-read-timeout (60 s): the answer is complete once its Content-Length is.
    await c.serverGone(PROMPT_MS);
    assert.match(c.received().toString('latin1'), /\r\n\r\nno$/);
    await peers.refuse.waitClosed(backendClosed + 1, PROMPT_MS);
    await waitForCloses(gw.gateway, 'upgrade_refused', was + 1, T.lingeringTimeoutMs + SLACK_MS);
    await released('upgrade refused by the backend');
  });

  it('a client that never reads a large response is reset after send_timeout, and the backend is freed', async () => {
    const was = await closes(gw.gateway, 'send_timeout');
    const backendClosed = peers.big.closed();
    const heads = peers.big.heads.length;
    await client(gw.httpPort, '127.0.0.48', `GET /big HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, { read: false });
    await waitForCount(
      () => peers.big.heads.length,
      (n) => n > heads,
      PROMPT_MS,
      'backend request',
    );
    // The buffers fill within moments; from then on nothing moves and send_timeout runs.
    await waitForCloses(gw.gateway, 'send_timeout', was + 1, PROMPT_MS + T.sendTimeoutMs + SLACK_MS);
    await peers.big.waitClosed(backendClosed + 1, PROMPT_MS);
    assert.equal(peers.big.open(), 0);
    await released('slow reader');
  });

  it('a head that stalls gets 408 after client_header_timeout; an idle connection closes after keepalive_timeout; both counted', async () => {
    const header = await closes(gw.gateway, 'header_timeout');
    const keepAlive = await closes(gw.gateway, 'keepalive_timeout');
    const partial = await client(gw.httpPort, '127.0.0.49', `GET /app HTTP/1.1\r\nHost: ${HOST}\r\n`);
    assert.equal((await partial.head(T.clientHeaderTimeoutMs + SLACK_MS)).status, 408);
    // Logged with the request line as far as it came, as nginx logs it: a slow-header client shows.
    await gw.access.waitFor(/^127\.0\.0\.49 .*"GET \/app HTTP\/1\.1" 408 /);
    const idle = await client(gw.httpPort, '127.0.0.49', `GET /app HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    const answer = await idle.head(PROMPT_MS);
    assert.equal(answer.status, 200);
    const gone = await idle.serverGone(T.keepAliveTimeoutMs + SLACK_MS);
    assert.ok(gone - answer.at >= T.keepAliveTimeoutMs - 50, 'not before keepalive_timeout');
    // An idle kept-alive connection closing is no request: no line for it (nginx writes none either).
    assert.deepEqual(
      gw.access.lines
        .filter((l) => l.startsWith('127.0.0.49 '))
        .map((l) => / (\d{3}) /.exec(l.split('"')[2] ?? '')?.[1]),
      ['408', '200'],
    );
    assert.equal(await closes(gw.gateway, 'header_timeout'), header + 1);
    assert.equal(await closes(gw.gateway, 'keepalive_timeout'), keepAlive + 1);
  });
});

describe('gateway deadlines from the ConfigMap', () => {
  let peers: Peers;
  before(async () => {
    peers = await startPeers(1024);
  });
  after(async () => {
    await closePeers(peers);
  });

  it('a body that stalls longer than proxy-send-timeout (1 s) but within client-body-timeout (10 s) is 504', async () => {
    const gw = await startTestGateway(topologyFor(peers, { 'client-body-timeout': '10' }));
    try {
      assert.equal(gw.gateway.snapshot().clientTimeouts.bodyMs, 10_000);
      const sent = performance.now();
      const c = await connectClient(gw.httpPort, '127.0.0.51', post('/upload'));
      try {
        const answer = await c.head(1_000 + SLACK_MS);
        assert.equal(answer.status, 504);
        assert.ok(answer.at - sent >= 950, 'not before proxy-send-timeout');
        await gw.errors.waitFor(
          /upstream timed out \(110: Connection timed out\) while sending request to upstream/,
        );
      } finally {
        c.socket.destroy();
      }
    } finally {
      await gw.close();
    }
  });

  it('keep-alive "0" closes after every response; a reload to keep-alive "5" applies to new connections', async () => {
    const gw = await startTestGateway(
      topologyFor(peers, { 'keep-alive': '0', 'client-header-timeout': '1' }),
    );
    try {
      const first = await request(gw.httpPort, { host: HOST, path: '/app' });
      assert.equal(first.status, 200);
      assert.equal(first.headers.connection, 'close');
      const started = performance.now();
      const partial = await connectClient(
        gw.httpPort,
        '127.0.0.52',
        `GET /app HTTP/1.1\r\nHost: ${HOST}\r\n`,
      );
      const timedOut = await partial.head(1_000 + SLACK_MS);
      assert.equal(timedOut.status, 408, 'client-header-timeout "1": 408 after a second');
      assert.ok(timedOut.at - started >= 950);
      const reloaded = gw.gateway.reload(topologyFor(peers, { 'keep-alive': '5' }));
      assert.equal(reloaded.ok, true);
      const kept = await connectClient(
        gw.httpPort,
        '127.0.0.52',
        `GET /app HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
      );
      try {
        const second = await kept.head(PROMPT_MS);
        assert.equal(second.status, 200);
        assert.match(second.head, /\r\nconnection: keep-alive\r\nkeep-alive: timeout=5(\r\n|$)/);
      } finally {
        kept.socket.destroy();
      }
    } finally {
      await gw.close();
    }
  });
});

describe('gateway deadlines: 500 stalled connections at once', () => {
  // Deadlines long enough for all 500 to be held at the same time on a busy machine. The stalled
  // bodies and half-open upgrades keep their connections alive (a byte every 500 ms restarts
  // lingering_timeout) until all are in place; the slow readers come last and never read. Then the
  // attackers stop at once: from then on each connection must be let go within its deadline.
  const H = {
    clientHeaderTimeoutMs: 3_000,
    clientBodyTimeoutMs: 3_000,
    keepAliveTimeoutMs: 3_000,
    sendTimeoutMs: 3_000,
    lingeringTimeMs: 30_000,
    lingeringTimeoutMs: 3_000,
  };
  const STALLED = 230;
  const UPGRADES = 230;
  const SLOW_READERS = 40;
  let gw: TestGateway;
  let peers: Peers;
  const attackers: net.Socket[] = [];

  before(async () => {
    peers = await startPeers(16 * 1024 * 1024);
    gw = await startTestGateway(topologyFor(peers), H);
  });

  after(async () => {
    for (const socket of attackers) socket.destroy();
    await gw.close();
    await closePeers(peers);
  });

  /** Opens attacker `i` and waits until it is in its state; returns what keeps it alive, if anything. */
  const attack = async (i: number): Promise<(() => void) | null> => {
    const from = `127.0.${2 + Math.floor(i / 200)}.${1 + (i % 200)}`;
    if (i < STALLED) {
      // Declared bodies that never come, answered 404, 403 or (by the backend) 401.
      const path = ['/x', '/admin', '/early'][i % 3] as string;
      const host = i % 3 === 0 ? 'nowhere.example' : HOST;
      const payload = `POST ${path} HTTP/1.1\r\nHost: ${host}\r\n${DECLARED}\r\nfirst bytes`;
      const c = await connectClient(gw.httpPort, from, payload, { allowHalfOpen: true });
      attackers.push(c.socket);
      await c.head(PROMPT_MS);
      return () => c.socket.destroyed || c.socket.write('x');
    }
    if (i < STALLED + UPGRADES) {
      // Upgrades refused by the backend (403) or the gateway (404), kept half-open by the client.
      const target = i % 2 === 0 ? upgrade('/ws') : upgrade('/ws', 'nowhere.example');
      const c = await connectClient(gw.httpPort, from, target, { allowHalfOpen: true });
      attackers.push(c.socket);
      await c.serverGone(PROMPT_MS);
      return () => c.socket.destroyed || c.socket.write('x');
    }
    // Readers of a 16 MiB answer that never read.
    const path = `GET /big HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
    const c = await connectClient(gw.httpPort, from, path, { read: false });
    attackers.push(c.socket);
    return null;
  };

  it('all are released within their deadlines (descriptors back to baseline) while a normal client is served', async (t) => {
    const normal = async () => {
      const reply = await request(gw.httpPort, { host: HOST, path: '/app', from: '127.0.1.1' });
      assert.equal(reply.status, 200);
    };
    await normal();
    await waitForCount(
      () => acceptedOn(gw.httpPort),
      (n) => n === 0,
      SLACK_MS,
      'warm-up connection',
    );
    const baseline = openDescriptors();
    const keepAlive: (() => void)[] = [];
    const ticker = setInterval(() => {
      for (const tick of keepAlive) tick();
    }, 500);
    try {
      const total = STALLED + UPGRADES + SLOW_READERS;
      for (let first = 0; first < total; first += 50) {
        const batch = Array.from({ length: Math.min(50, total - first) }, (_, k) => attack(first + k));
        for (const tick of await Promise.all(batch)) if (tick !== null) keepAlive.push(tick);
      }
      await waitForCount(
        () => peers.big.heads.length,
        (n) => n >= SLOW_READERS,
        2 * PROMPT_MS, // 40 answers of 16 MiB start behind 460 held connections: generous on a busy machine
        'slow readers',
      );
      const held = acceptedOn(gw.httpPort);
      assert.ok(held >= total, `the gateway holds all ${total} at once (held ${held})`);
      for (let i = 0; i < 3; i += 1) await normal();
      // The attackers stop at once: stalled bodies, half-open upgrades; the readers never read.
      keepAlive.length = 0;
      const stopped = performance.now();
      const deadline = Math.max(H.lingeringTimeoutMs, H.sendTimeoutMs);
      const releasing = waitForCount(
        () => acceptedOn(gw.httpPort),
        (n) => n === 0,
        deadline + 3 * SLACK_MS,
        'gateway sockets',
      );
      await normal();
      await releasing;
      const releasedIn = performance.now() - stopped;
      await waitForCount(
        () => peers.big.open(),
        (n) => n === 0,
        SLACK_MS,
        'slow readers upstream',
      );
      await waitForCount(
        () => peers.early.open() + peers.refuse.open(),
        (n) => n === 0,
        SLACK_MS,
        'refused upstreams',
      );
      assert.equal(await closes(gw.gateway, 'send_timeout'), SLOW_READERS);
      assert.equal(await closes(gw.gateway, 'upgrade_refused'), UPGRADES);
      assert.equal(await closes(gw.gateway, 'lingering_close'), STALLED);
      assert.equal(
        await closes(gw.gateway, 'client_body_timeout'),
        0,
        'each stalled body was answered early',
      );
      await normal();
      // The attackers give up: every descriptor the attack cost this process is back.
      for (const socket of attackers) socket.destroy();
      await waitForCount(
        openDescriptors,
        (n) => n <= baseline,
        SLACK_MS,
        `descriptors (baseline ${baseline})`,
      );
      t.diagnostic(
        `gateway sockets held ${held}; all released ${Math.round(releasedIn)} ms after the attackers stopped`,
      );
    } finally {
      clearInterval(ticker);
    }
  });
});
