// `keepip lb` against HAProxy 2.6 `mode tcp` (`server … send-proxy-v2`), behaviour by behaviour: the
// same clients, from the same 127.x addresses, through each, to ONE recording target that decodes
// every PROXY header with the repo's parser (src/proxy-protocol) and keeps its raw bytes, and records
// what each side of each connection saw, in order (data, FIN, RST, close). Timing-free: every wait is
// on a socket event, a header at the target, a /metrics counter, or the kernel's own zero-window
// probe timer (/proc/net/tcp) for "the proxy has stopped reading".
//
// The claims checked (docs/lb.md):
//   "Bytes go through unchanged in both directions; a half-close (FIN) from either side is passed on
//    and the other direction stays open; a reset is passed on as a reset; a target that refuses or
//    does not answer within 10 s makes the client see a reset (counted as `connect-failed`)."
//   "PROXY header. One per connection, written as soon as the upstream connection is established …
//    Source = the client's address and port, destination = the listener address and port the client
//    reached … v2 is what an NLB sends"
//   "`--unique-id`, `--crc32c` | v2 TLVs: a random 16-byte UNIQUE_ID per connection; a CRC32C of the header"
//   "With PROXY on, every check connection starts with a header as an NLB's do (rule A6): v2 `LOCAL`"
//   "Checks come from the source address"; "`--source-address IP` | connect to targets from this address"
//   "Idle timeout. A flow with no bytes in either direction for `--idle-timeout` … is reset on both
//    sides … a flow is reset no earlier than the timeout"; "connected, sends nothing | none of its own:
//    the flow opens at once (target dialled, PROXY header written on connect), then the idle timeout"
//   "Source ranges. … a client outside them is reset as soon as it connects, never reaches a target,
//    and is counted in `keepip_lb_flows_rejected_total{reason="source-range"}`"
//   "Memory per flow is bounded … a side whose peer does not read stops being read (backpressure all
//    the way to the sender)."
//   "`keepip_lb_flows_ended_total` | lb, reason (`closed`, `idle`, `client-reset`, `target-reset`, …)"
//   and the rest of the metrics table: every label value keepip gives is one the table lists.
//   "| the target does not accept within `--connect-timeout` … | connect timeout (the idle timeout does
//    not run yet) | client reset, `keepip_lb_flows_rejected_total{reason="connect-failed"}` |"
//
// Found by this file (fixed with it): a target that never answered, under an --idle-timeout below the
// connect timeout, was reset by the idle deadline and counted as an idle flow, not a failed connect;
// the metrics table omitted flows_rejected_total's `source-range` reason.
//
// Set-up: four `keepip lb` processes (flags: the main listener with a TCP health check; flags: a
// target that refuses; `-f` an NLB Service with loadBalancerSourceRanges, TLVs and a 1 s idle
// timeout; flags: a target that never answers the SYN, 1 s idle timeout, 2 s connect timeout) and one HAProxy with the
// same four `listen` sections configured the nearest way (`source` for --source-address, `check` for
// the health check, `retries 0` as keepip dials once, `tcp-request connection reject unless { src … }`
// for the ranges, `timeout client/server 1s` for the idle timeout, `proxy-v2-options
// crc32c,unique-id`, `timeout connect 2s`) plus a fifth, `blackhole`,
// which holds one connection with a backlog of 1 so that, once filled, it drops SYNs (the target that
// never answers). Where the two differ, the ALLOWED table says why (each entry with the doc line that
// allows it) and each test asserts the difference is still what is seen, so the table cannot rot; the
// last test checks every entry was met. Not repeated here
// (covered elsewhere): client FIN then RST (lb-flows-attack), a forged client header (lb-attack),
// a client that never reads while the target floods (lb-flows-attack), half-open idle flows.
// Clients send a byte before their FIN or RST: HAProxy may reset (or never open) the target side of a
// client that leaves before sending anything, depending on whether it has connected yet; keepip always
// dials, writes the header, then passes the FIN / RST on (lb-attack covers those clients).
// LB_HAPROXY_SEED=<n> changes the bulk payloads.
import assert from 'node:assert/strict';
import { createHash, type Hash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseProxyHeader } from '../../src/proxy-protocol/index.ts';
import type { InetEndpoint, ProxyHeader } from '../../src/proxy-protocol/types.ts';
import { type RunningHaproxy, startHaproxy } from '../helpers/haproxy.ts';
import { metricSum, scrape, scrapeUntil } from '../helpers/metrics.ts';
import { listenTracked, refusingPort } from '../helpers/net.ts';
import { nlbManifest } from '../helpers/nlb-manifest.ts';
import { repoRoot, type Running, startKeepip } from '../helpers/process.ts';
import { seededRandom } from '../helpers/seeded-random.ts';

const SEED = Number(process.env.LB_HAPROXY_SEED ?? 20_261_207);
const MIB = 1024 * 1024;
const WAIT_MS = 20_000;
/** The source ranges of the `-f` listener and of HAProxy's `edge` section: inside, and outside. */
const INSIDE = '127.0.94';
const OUTSIDE = '127.0.95';

type Side = { client: string[]; target: string[] };

/**
 * Differences that pass: what keepip does (as documented), what HAProxy does (as this file observes
 * them: socket events for flows, a description for header fields), and the doc line that allows it.
 */
const ALLOWED: Record<string, { doc: string; keepip: unknown; haproxy: unknown }> = {
  'target-reset': {
    doc: 'docs/lb.md, Behaviour: "a reset is passed on as a reset" (an NLB forwards the RST; HAProxy turns the target\'s RST into a FIN to the client)',
    keepip: { client: ['data', 'reset', 'close'], target: ['data', 'close'] },
    haproxy: { client: ['data', 'end', 'close'], target: ['data', 'close'] },
  },
  'client-reset-after-fin': {
    doc: 'docs/lb.md, Behaviour: "a half-close (FIN) from either side is passed on and the other direction stays open; a reset is passed on as a reset" (after the target\'s FIN, HAProxy passes the client\'s RST on as a FIN)',
    keepip: { client: ['data', 'end', 'close'], target: ['data', 'reset', 'close'] },
    haproxy: { client: ['data', 'end', 'close'], target: ['data', 'end', 'close'] },
  },
  'refused-connect': {
    doc: 'docs/lb.md, Behaviour: "a target that refuses or does not answer within 10 s makes the client see a reset (counted as `connect-failed`)" (HAProxy, retries 0, closes with a FIN)',
    keepip: { client: ['reset', 'close'], target: [] },
    haproxy: { client: ['end', 'close'], target: [] },
  },
  'idle-timeout': {
    doc: 'docs/lb.md, Idle timeout: "A flow with no bytes in either direction for `--idle-timeout` (350 s, the NLB\'s TCP idle timeout) is reset on both sides" (HAProxy\'s timeout client/server closes both with a FIN)',
    keepip: { client: ['reset', 'close'], target: ['reset', 'close'] },
    haproxy: { client: ['end', 'close'], target: ['end', 'close'] },
  },
  'unanswered-connect': {
    doc: 'docs/lb.md, Behaviour: "a target that refuses or does not answer within 10 s makes the client see a reset" (HAProxy closes with a FIN at its `timeout connect`)',
    keepip: ['reset', 'close'],
    haproxy: ['end', 'close'],
  },
  'unique-id': {
    doc: 'docs/lb.md, flags: "`--unique-id` … a random 16-byte UNIQUE_ID per connection" (HAProxy writes its unique-id-format string; both put the CRC32C TLV first, then UNIQUE_ID)',
    keepip: ['16 bytes, new per connection', '16 bytes, new per connection'],
    haproxy: ['the unique-id-format text, naming the client', 'the unique-id-format text, naming the client'],
  },
  'check-close': {
    doc: 'docs/lb.md, Health checks: "TCP: the connection is accepted." (keepip ends its check with a FIN after the LOCAL header; HAProxy with a RST; the header bytes are the same)',
    keepip: ['end', 'close'],
    haproxy: ['reset', 'close'],
  },
};
const met = new Set<string>();

// ---------------------------------------------------------------------------------------------------
// Recording both ends.

/** Records a socket's events, normalised: consecutive data as one 'data', ECONNRESET/EPIPE as 'reset'. */
function recordEvents(socket: net.Socket, tokens: string[], onData: (chunk: Buffer) => void): void {
  socket.on('data', (chunk: Buffer) => {
    if (tokens.at(-1) !== 'data') tokens.push('data');
    onData(chunk);
  });
  socket.on('end', () => tokens.push('end'));
  socket.on('error', (e: NodeJS.ErrnoException) =>
    tokens.push(e.code === 'ECONNRESET' || e.code === 'EPIPE' ? 'reset' : `error ${e.code}`),
  );
  socket.on('close', () => tokens.push('close'));
}

/** Bytes of a stream: counted, hashed, the first 64 KiB kept as text. */
class Tally {
  bytes = 0;
  #hash: Hash = createHash('sha256');
  #head: Buffer[] = [];
  add(chunk: Buffer): void {
    if (this.bytes < 64 * 1024) this.#head.push(chunk);
    this.bytes += chunk.length;
    this.#hash.update(chunk);
  }
  text(): string {
    return Buffer.concat(this.#head).toString('latin1');
  }
  digest(): string {
    return this.#hash.copy().digest('hex');
  }
}

interface TargetConn {
  /** The TCP peer: the proxy's source address. */
  peer: string;
  raw: Buffer;
  header: ProxyHeader;
  /** After the header (so a 'data' token appears only for bytes after the header). */
  events: string[];
  got: Tally;
  socket: net.Socket;
  closed: Promise<void>;
}

type Behave = (conn: TargetConn, rest: Buffer) => void;

/** `address>port`: the client's address and the listener port its header names (which proxy). */
const keyOf = (source: string, listenerPort: number) => `${source}>${listenerPort}`;

/** Where a connection is filed: by client and listener, or 'LOCAL' / 'LOCAL+tlv' for health checks. */
function keyOfHeader(header: ProxyHeader): string {
  if (header.command === 'LOCAL') return header.tlvs.length > 0 ? 'LOCAL+tlv' : 'LOCAL';
  const source = header.source as InetEndpoint | null;
  const destination = header.destination as InetEndpoint | null;
  return keyOf(source?.address ?? '', destination?.port ?? 0);
}

/** A target that closes its side when the peer has closed its own. */
const endOnEnd: Behave = (c) => c.socket.on('end', () => c.socket.end());

/** Echoes every byte (those that came with the header too: HAProxy writes them together) and the FIN. */
const echo: Behave = (c, rest) => {
  if (rest.length > 0) c.socket.write(rest);
  c.socket.on('data', (d: Buffer) => c.socket.write(d));
  endOnEnd(c, rest);
};

/**
 * One target for both proxies: parses the PROXY header (keeping its raw bytes), files the connection
 * under its header's client and listener port (health checks under 'LOCAL' / 'LOCAL+tlv'), then runs
 * the behaviour registered for that key (default: record only; checks: end on end).
 */
async function startRecordingTarget() {
  const conns = new Map<string, TargetConn[]>();
  const behaviours = new Map<string, Behave>();
  const waiters = new Set<() => void>();
  /** Connections whose first bytes were no PROXY header (none expected). */
  const bad: string[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const peer = socket.remoteAddress ?? '';
    let pending = Buffer.alloc(0);
    const onHeaderBytes = (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      const parsed = parseProxyHeader(pending);
      if (parsed.kind === 'incomplete') return;
      socket.off('data', onHeaderBytes);
      if (parsed.kind === 'error') {
        bad.push(`${peer}: ${parsed.error.code} ${pending.toString('hex')}`);
        socket.destroy();
        return;
      }
      const { header, consumed } = parsed;
      const conn: TargetConn = {
        peer,
        raw: Buffer.from(pending.subarray(0, consumed)),
        header,
        events: [],
        got: new Tally(),
        socket,
        closed: new Promise((resolve) => socket.once('close', () => resolve())),
      };
      const rest = pending.subarray(consumed);
      if (rest.length > 0) {
        conn.events.push('data');
        conn.got.add(rest);
      }
      recordEvents(socket, conn.events, (c) => conn.got.add(c));
      const key = keyOfHeader(header);
      conns.set(key, [...(conns.get(key) ?? []), conn]);
      const behave = behaviours.get(key) ?? (key.startsWith('LOCAL') ? endOnEnd : () => {});
      behave(conn, rest);
      for (const w of [...waiters]) w();
    };
    socket.on('data', onHeaderBytes);
    socket.on('error', () => {});
  });
  const listening = await listenTracked(server);
  return {
    port: listening.port,
    close: listening.close,
    conns,
    bad,
    /** The behaviour for the next connections of this client through this listener. */
    expect(source: string, listenerPort: number, behave: Behave): void {
      behaviours.set(keyOf(source, listenerPort), behave);
    },
    /** Resolves with what `find` returns once it is defined (checked on every new connection). */
    until<T>(find: () => T | undefined, what: string): Promise<T> {
      return within(
        new Promise<T>((resolve) => {
          const check = () => {
            const found = find();
            if (found === undefined) return;
            waiters.delete(check);
            resolve(found);
          };
          waiters.add(check);
          check();
        }),
        what,
      );
    },
    /** Resolves with the first connection filed under `key`. */
    conn(key: string): Promise<TargetConn> {
      return this.until(() => conns.get(key)?.[0], `a connection of ${key} at the target`);
    },
  };
}

type RecordingTarget = Awaited<ReturnType<typeof startRecordingTarget>>;

interface ClientRun {
  socket: net.Socket;
  events: string[];
  got: Tally;
  localPort: number;
  /** Date.now() just before connect(): nothing the proxy does for this client comes earlier. */
  startedAt: number;
  closedAt: number;
  closed: Promise<void>;
}

/**
 * A client from `from` (allowHalfOpen: scripts end their side themselves); `script` runs on connect.
 * Resolves once connected, or once closed without connecting.
 */
function connectClient(port: number, from: string, script: (c: ClientRun) => void): Promise<ClientRun> {
  const startedAt = Date.now();
  const socket = net.connect({ host: '127.0.0.1', port, localAddress: from, allowHalfOpen: true });
  const run: ClientRun = {
    socket,
    events: [],
    got: new Tally(),
    localPort: 0,
    startedAt,
    closedAt: 0,
    closed: new Promise((resolve) =>
      socket.once('close', () => {
        run.closedAt = Date.now();
        resolve();
      }),
    ),
  };
  recordEvents(socket, run.events, (c) => run.got.add(c));
  // A proxy that resets at once may do so before the connect is reported: then the connect fails
  // with ECONNRESET (recorded as 'reset'), the script never runs, and the run is over.
  return within(
    new Promise((resolve) => {
      socket.once('connect', () => {
        run.localPort = socket.localPort ?? 0;
        script(run);
        resolve(run);
      });
      socket.once('close', () => resolve(run));
    }),
    `a connection from ${from}`,
  );
}

/** `promise`, or a failure naming `what` after WAIT_MS: a bound for a broken peer, never a window. */
function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------------
// The proxies.

interface Proxy {
  name: 'keepip' | 'haproxy';
  port: number;
}

interface Setup {
  target: RecordingTarget;
  haproxy: RunningHaproxy;
  keepip: { main: Running; refused: Running; edge: Running; dark: Running };
  /**
   * Listener ports: main (flags), refused (a closed target port), edge (-f, ranges, TLVs, 1 s idle),
   * dark (a target that never answers the SYN: HAProxy's `blackhole`, once full; 1 s idle).
   */
  main: [Proxy, Proxy];
  refused: [Proxy, Proxy];
  edge: [Proxy, Proxy];
  dark: [Proxy, Proxy];
  /** HAProxy's listener that accepts one connection, holds it, and lets its backlog of 1 fill. */
  blackhole: number;
  /** The keepip processes' /metrics ports. */
  metrics: { main: number; refused: number; edge: number; dark: number };
}

const KEEPIP_SOURCE = '127.0.11.91';
const HAPROXY_SOURCE = '127.0.11.92';
const KEEPIP_EDGE_SOURCE = '127.0.11.94';

function haproxyConfig(
  target: number,
  closed: number,
  [main, refused, edge, blackhole, dark]: number[],
): string {
  return `listen main
  bind 127.0.0.1:${main}
  option tcplog
  source ${HAPROXY_SOURCE}
  server t 127.0.0.1:${target} send-proxy-v2 check inter 500ms
listen refused
  bind 127.0.0.1:${refused}
  retries 0
  server t 127.0.0.1:${closed} send-proxy-v2
listen edge
  bind 127.0.0.1:${edge}
  tcp-request connection reject unless { src ${INSIDE}.0/24 }
  timeout client 1s
  timeout server 1s
  unique-id-format %{+X}o%ci:%cp_%fi:%fp_%Ts_%rt:%pid
  source 127.0.11.93
  server t 127.0.0.1:${target} send-proxy-v2 proxy-v2-options crc32c,unique-id check inter 500ms
listen blackhole
  bind 127.0.0.1:${blackhole} backlog 1
  maxconn 1
  tcp-request inspect-delay 60s
  tcp-request content accept if WAIT_END
  server none 127.0.0.1:${closed}
listen dark
  bind 127.0.0.1:${dark}
  timeout client 1s
  timeout server 1s
  timeout connect 2s
  retries 0
  server t 127.0.0.1:${blackhole} send-proxy-v2
`;
}

interface KeepipLb {
  running: Running;
  port: number;
  metrics: number;
}

async function startKeepipLb(args: string[]): Promise<KeepipLb> {
  const running = startKeepip(['lb', '--listen', '127.0.0.1:0', '--metrics', '127.0.0.1:0', ...args]);
  try {
    const port = Number((await running.waitFor(/listening on 127\.0\.0\.1:(\d+)/))[1]);
    const metrics = Number((await running.waitFor(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);
    return { running, port, metrics };
  } catch (error) {
    await running.stop();
    throw error;
  }
}

/** Registers how to stop what just started, and passes it on. */
function keep<T>(stops: (() => Promise<unknown>)[], stop: (started: T) => Promise<unknown>) {
  return (started: T): T => {
    stops.push(() => stop(started));
    return started;
  };
}

async function setUp(stops: (() => Promise<unknown>)[]): Promise<Setup> {
  const target = await startRecordingTarget();
  stops.push(() => target.close());
  const closed = await refusingPort();
  const dir = mkdtempSync(join(tmpdir(), 'keepip-lb-haproxy-'));
  stops.push(async () => rmSync(dir, { recursive: true, force: true }));
  const manifest = join(dir, 'edge.yaml');
  writeFileSync(manifest, nlbManifest(target.port, { ranges: [`${INSIDE}.0/24`] }));
  // Settled, not all: a start that fails must not leave the others running unstopped.
  const haproxyStarted = startHaproxy({
    freePorts: 5,
    config: (_dir, ports) => haproxyConfig(target.port, closed, ports),
    waitFor: (ports) => ports.map((port) => ({ host: '127.0.0.1', port })),
  }).then(keep(stops, (h) => h.stop()));
  const started = await Promise.allSettled([
    haproxyStarted,
    startKeepipLb([
      ...['--target', `127.0.0.1:${target.port}`, '--proxy-protocol', 'v2'],
      ...['--source-address', KEEPIP_SOURCE, '--health-check', 'tcp', '--health-interval', '60s'],
    ]).then(keep(stops, (k) => k.running.stop())),
    startKeepipLb(['--target', `127.0.0.1:${closed}`, '--proxy-protocol', 'v2']).then(
      keep(stops, (k) => k.running.stop()),
    ),
    startKeepipLb([
      ...['-f', manifest, '--proxy-protocol', 'v2', '--crc32c', '--unique-id'],
      ...['--idle-timeout', '1s', '--source-address', KEEPIP_EDGE_SOURCE],
      ...['--health-check', 'tcp', '--health-interval', '60s'],
    ]).then(keep(stops, (k) => k.running.stop())),
    // Its target is HAProxy's blackhole port (known once HAProxy runs).
    haproxyStarted.then((h) =>
      startKeepipLb([
        ...['--target', `127.0.0.1:${h.ports[3]}`, '--proxy-protocol', 'v2', '--idle-timeout', '1s'],
        ...['--connect-timeout', '2s'],
      ]).then(keep(stops, (k) => k.running.stop())),
    ),
  ]);
  for (const result of started) if (result.status === 'rejected') throw result.reason;
  const [haproxy, main, refused, edge, dark] = started.map(
    (r) => (r as PromiseFulfilledResult<unknown>).value,
  ) as [RunningHaproxy, KeepipLb, KeepipLb, KeepipLb, KeepipLb];
  const [hMain, hRefused, hEdge, blackhole, hDark] = haproxy.ports as [
    number,
    number,
    number,
    number,
    number,
  ];
  const pair = (k: number, h: number): [Proxy, Proxy] => [
    { name: 'keepip', port: k },
    { name: 'haproxy', port: h },
  ];
  return {
    target,
    haproxy,
    keepip: { main: main.running, refused: refused.running, edge: edge.running, dark: dark.running },
    main: pair(main.port, hMain),
    refused: pair(refused.port, hRefused),
    edge: pair(edge.port, hEdge),
    dark: pair(dark.port, hDark),
    blackhole,
    metrics: { main: main.metrics, refused: refused.metrics, edge: edge.metrics, dark: dark.metrics },
  };
}

// ---------------------------------------------------------------------------------------------------
// Scenarios.

interface Observed extends Side {
  clientGot: string;
  targetGot: string;
  clientRun: ClientRun;
  conn: TargetConn | null;
}

/**
 * One client through `proxy` to the target (behaving as `behave`), until both of the target's and
 * the client's sockets have closed. `reaches: false` for flows that never reach the target.
 */
async function flowThrough(
  s: Setup,
  proxy: Proxy,
  from: string,
  behave: Behave,
  script: (c: ClientRun) => void,
  reaches = true,
): Promise<Observed> {
  s.target.expect(from, proxy.port, behave);
  const client = await connectClient(proxy.port, from, script);
  const conn = reaches ? await s.target.conn(keyOf(from, proxy.port)) : null;
  await within(
    Promise.all([client.closed, conn?.closed]),
    `${proxy.name}: both ends of ${from} closed`,
  ).catch((error: Error) => {
    throw new Error(`${error.message}: client ${client.events}, target ${conn?.events}`);
  });
  return {
    client: client.events,
    target: conn?.events ?? [],
    clientGot: client.got.text(),
    targetGot: conn?.got.text() ?? '',
    clientRun: client,
    conn,
  };
}

/** keepip's and HAProxy's observations: equal, or the ALLOWED difference `allowed` exactly. */
function compare(keepip: Side, haproxy: Side, documented: Side, allowed?: string): void {
  const sides = (o: Side): Side => ({ client: o.client, target: o.target });
  assert.deepEqual(sides(keepip), documented, 'keepip, as docs/lb.md says');
  if (allowed === undefined) {
    assert.deepEqual(sides(haproxy), documented, 'HAProxy saw the same');
    return;
  }
  const entry = ALLOWED[allowed]!;
  assert.deepEqual(documented, entry.keepip, `ALLOWED ${allowed}: keepip's side`);
  assert.deepEqual(sides(haproxy), entry.haproxy, `ALLOWED ${allowed}: HAProxy's side is still what differs`);
  met.add(allowed);
}

async function bothWays(
  s: Setup,
  pair: [Proxy, Proxy],
  from: string,
  behave: Behave,
  script: (c: ClientRun) => void,
  reaches = true,
): Promise<[Observed, Observed]> {
  const k = await flowThrough(s, pair[0], from, behave, script, reaches);
  const h = await flowThrough(s, pair[1], from, behave, script, reaches);
  return [k, h];
}

/** `keepip_lb_flows_ended_total{reason}` etc. of one keepip process. */
async function counter(port: number, name: string, labels: Record<string, string>): Promise<number> {
  return metricSum(await scrape('127.0.0.1', port), name, labels);
}

async function counterReaches(port: number, name: string, labels: Record<string, string>, value: number) {
  await scrapeUntil(
    '127.0.0.1',
    port,
    (text) => metricSum(text, name, labels) >= value,
    `${name}${JSON.stringify(labels)} >= ${value}`,
  );
  assert.equal(await counter(port, name, labels), value, `${name}${JSON.stringify(labels)}`);
}

const ENDED = 'keepip_lb_flows_ended_total';
const REJECTED = 'keepip_lb_flows_rejected_total';
const BYTES = 'keepip_lb_bytes_total';

/** A PROXY v2 header with both ports zeroed (TCP4: bytes 24-27), for byte comparison across listeners. */
function withoutPorts(raw: Buffer): Buffer {
  const copy = Buffer.from(raw);
  copy.fill(0, 24, 28);
  return copy;
}

/** Every series of a scrape: its name and labels. */
function series(text: string): [string, Record<string, string>][] {
  const out: [string, Record<string, string>][] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)\{(.*)\} \S+$/.exec(line);
    if (match === null) continue;
    const labels = Object.fromEntries(
      [...match[2]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]),
    );
    out.push([match[1]!, labels]);
  }
  return out;
}

/** docs/lb.md's metrics table: for each metric, the values it lists for a label (`reason (\`a\`, \`b\`)`). */
function documentedLabelValues(): Map<string, Map<string, Set<string>>> {
  const table = new Map<string, Map<string, Set<string>>>();
  for (const line of readFileSync(join(repoRoot, 'docs/lb.md'), 'utf8').split('\n')) {
    const row = /^\| `(keepip_lb_\w+)` \| ([^|]*) \|/.exec(line);
    if (row === null) continue;
    const labels = new Map<string, Set<string>>();
    for (const [, label, values] of row[2]!.matchAll(/(\w+) \(([^)]*)\)/g))
      labels.set(label!, new Set([...values!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!)));
    table.set(row[1]!, labels);
  }
  return table;
}

// ---------------------------------------------------------------------------------------------------
// Bulk: seeded payloads and the kernel's zero-window probe as the "stopped reading" signal.

/** Chunk `i` of a seeded stream: one of 16 random CHUNK-byte blocks, its first 4 bytes the index. */
function chunker(seed: number): (i: number) => Buffer {
  const random = seededRandom(seed);
  const blocks = Array.from({ length: 16 }, () => {
    const block = Buffer.alloc(CHUNK);
    for (let j = 0; j < block.length; j += 4) block.writeUInt32LE(Math.floor(random() * 2 ** 32), j);
    return block;
  });
  const order = Array.from({ length: 4096 }, () => Math.floor(random() * 16));
  return (i) => {
    const chunk = Buffer.from(blocks[order[i % order.length]!]!);
    chunk.writeUInt32BE(i, 0);
    return chunk;
  };
}

/** 127.0.94.31 -> 7F005E1F (HAProxy's %{+X}o). */
const hexIp = (ip: string) =>
  ip
    .split('.')
    .map((b) => Number(b).toString(16).padStart(2, '0'))
    .join('')
    .toUpperCase();

/** /proc/net/tcp's "address:port" for an IPv4 endpoint (host-order hex, as the kernel prints it). */
function procEndpoint(address: string, port: number): string {
  const hex = address
    .split('.')
    .map((b) => Number(b).toString(16).padStart(2, '0'))
    .reverse()
    .join('');
  return `${hex}:${port.toString(16).padStart(4, '0')}`.toUpperCase();
}

/** The timer of this socket in /proc/net/tcp: '04' is the zero-window probe (the peer stopped reading). */
function tcpTimer(local: string, remote: string): string | null {
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local && f[2] === remote) return f[5]?.split(':')[0] ?? null;
  }
  return null;
}

/** The local ends of the sockets in SYN_SENT (state 02 in /proc/net/tcp) whose remote end is `remote`. */
function synSentTo(remote: string): string[] {
  const locals: string[] = [];
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[2] === remote && f[3] === '02' && f[1] !== undefined) locals.push(f[1]);
  }
  return locals;
}

/**
 * Makes HAProxy's `blackhole` listener drop SYNs: it accepts one connection and holds it (maxconn 1,
 * a 60 s inspect-delay), two more complete in the kernel's accept queue (backlog 1), and the queue is
 * then full. A connect there stays in SYN_SENT. The fillers are the caller's to destroy.
 */
async function fillBlackhole(port: number, fillers: net.Socket[]): Promise<void> {
  for (const n of [1, 2, 3]) {
    const filler = net.connect({ host: '127.0.0.1', port, localAddress: `127.0.97.${n}` });
    filler.on('error', () => {});
    fillers.push(filler);
    // A SYN dropped while HAProxy had not yet taken the first is sent again a second later.
    await within(new Promise((resolve) => filler.once('connect', resolve)), `blackhole filler ${n}`);
  }
}

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN);
}

const CHUNK = 64 * 1024;
/** The most a TCP socket's buffers can hold here: tcp_wmem's and tcp_rmem's maximum (the third field). */
function socketBufferMax(): number {
  const max = (name: string) =>
    Number(readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8').trim().split(/\s+/)[2]);
  return max('tcp_wmem') + max('tcp_rmem');
}
/**
 * What the kernel can hold between a flooding side and a reader that reads nothing, through a proxy:
 * two connections, each a send and a receive buffer at their largest (autotuning stays far below:
 * about 10 MiB is seen). A proxy's own buffers come on top: HAProxy's 2 x 16 KiB, keepip's 2 x 64 KiB.
 */
const KERNEL_MAX = 2 * socketBufferMax();
/** The proxy's own share allowed on top of the kernel's (and the slow reader's one 64 KiB read ahead). */
const PROXY_SLACK = MIB;
/** What the side facing a slow reader may write at most: more than a proxy that keeps to its buffers lets through. */
const FLOOD_CAP = KERNEL_MAX + PROXY_SLACK + 16 * MIB;
/** What the other side sends meanwhile, the other way. */
const STEADY_BYTES = 8 * MIB;

/** Bytes written to a socket with backpressure: hashed as written. */
interface Pour {
  sent: number;
  hash: Hash;
  /** Stop before the next chunk (a write waiting on 'drain' then writes nothing more). */
  stop(): void;
}

/** Writes chunks until `bytes` (then `done`, and FIN when `end`) or stop(). */
function pour(
  socket: net.Socket,
  chunk: (i: number) => Buffer,
  bytes: number,
  options: { end: boolean; done?: () => void },
): Pour {
  let stopped = false;
  const out: Pour = { sent: 0, hash: createHash('sha256'), stop: () => (stopped = true) };
  const pump = () => {
    while (!stopped && out.sent < bytes && !socket.destroyed) {
      const next = chunk(out.sent / CHUNK);
      out.hash.update(next);
      out.sent += next.length;
      const last = out.sent >= bytes;
      if (last && options.end) socket.end(next);
      else if (!socket.write(next)) return void socket.once('drain', pump);
      if (last) options.done?.();
    }
  };
  pump();
  return out;
}

interface BulkResult {
  stalled: boolean;
  /** Bytes the flooding side had handed to its kernel when the stall was seen, minus what the slow side read. */
  inFlight: number;
  rssGrowthKiB: number;
  up: { sent: number; sentHash: string; got: number; gotHash: string };
  down: { sent: number; sentHash: string; got: number; gotHash: string };
  client: string[];
  target: string[];
}

/**
 * Both ways at once through `proxy`: the `slow` side reads nothing (after the header) while its peer
 * floods it until the flooding socket shows the zero-window probe (the proxy stopped reading it) or
 * FLOOD_CAP, and STEADY_BYTES go the other way; then the slow side reads everything, both sides end,
 * and both streams are compared by hash.
 */
async function bulk(s: Setup, proxy: Proxy, pid: number, from: string, slow: 'target' | 'client') {
  const [up, down] = [chunker(SEED), chunker(SEED + 1)];
  let stallSeen: (stalled: boolean) => void = () => {};
  const stalled = new Promise<boolean>((resolve) => (stallSeen = resolve));
  const flood = { end: false, done: () => stallSeen(false) };
  let downPour: Pour | null = null;
  s.target.expect(from, proxy.port, (conn) => {
    if (slow === 'target') conn.socket.pause();
    downPour = pour(
      conn.socket,
      down,
      slow === 'client' ? FLOOD_CAP : STEADY_BYTES,
      slow === 'client' ? flood : { end: true },
    );
  });
  const rssBefore = rssKiB(pid);
  let upPour: Pour | null = null;
  const client = await connectClient(proxy.port, from, (c) => {
    if (slow === 'client') c.socket.pause();
    upPour = pour(
      c.socket,
      up,
      slow === 'target' ? FLOOD_CAP : STEADY_BYTES,
      slow === 'target' ? flood : { end: true },
    );
  });
  const conn = await s.target.conn(keyOf(from, proxy.port));
  const [flooder, reader] = slow === 'target' ? [client.socket, conn] : [conn.socket, client];
  const local = procEndpoint(flooder.localAddress!, flooder.localPort!);
  const remote = procEndpoint(flooder.remoteAddress!, flooder.remotePort!);
  // Stalled: the zero-window probe on five polls in a row with nothing more handed to the kernel (a
  // proxy that stopped reading stays so; a busy one that only fell behind for a moment moves on).
  const handed = () => flooder.bytesWritten - flooder.writableLength;
  let still = 0;
  let last = -1;
  const poll = setInterval(() => {
    still = tcpTimer(local, remote) === '04' && handed() === last ? still + 1 : 0;
    last = handed();
    if (still >= 5) stallSeen(true);
  }, 10);
  const wasStalled = await within(stalled, `${proxy.name}: the flooding socket stalls`).finally(() =>
    clearInterval(poll),
  );
  const inFlight = handed() - reader.got.bytes;
  const rssGrowthKiB = rssKiB(pid) - rssBefore;
  // Stop flooding, let everything through, then end.
  const [u, d] = [upPour as Pour | null, downPour as Pour | null];
  (slow === 'target' ? u : d)?.stop();
  flooder.end();
  reader.socket.resume();
  await within(Promise.all([client.closed, conn.closed]), `${proxy.name}: the bulk flow closed`);
  return {
    stalled: wasStalled,
    inFlight,
    rssGrowthKiB,
    up: { sent: u!.sent, sentHash: u!.hash.digest('hex'), got: conn.got.bytes, gotHash: conn.got.digest() },
    down: {
      sent: d!.sent,
      sentHash: d!.hash.digest('hex'),
      got: client.got.bytes,
      gotHash: client.got.digest(),
    },
    client: client.events,
    target: conn.events,
  } satisfies BulkResult;
}

/** What every bulk run must show, whichever proxy: a stall, bounded buffering, both streams whole, FINs. */
function checkBulk(r: BulkResult, slow: 'target' | 'client', what: string): void {
  assert.equal(
    r.stalled,
    true,
    `${what}: ${FLOOD_CAP} bytes written without the proxy ever stopping to read`,
  );
  assert.ok(
    r.inFlight <= KERNEL_MAX + PROXY_SLACK,
    `${what}: bytes between the flooding side and the slow one`,
  );
  assert.ok(r.rssGrowthKiB < 16 * 1024, `${what}: the proxy's RSS grew by ${r.rssGrowthKiB} KiB`);
  assert.deepEqual([r.up.got, r.up.gotHash], [r.up.sent, r.up.sentHash], `${what}: client -> target`);
  assert.deepEqual([r.down.got, r.down.gotHash], [r.down.sent, r.down.sentHash], `${what}: target -> client`);
  assert.equal(slow === 'target' ? r.down.sent : r.up.sent, STEADY_BYTES, what);
  assert.deepEqual(r.client, ['data', 'end', 'close'], what);
  assert.deepEqual(r.target, ['data', 'end', 'close'], what);
}

// ---------------------------------------------------------------------------------------------------

describe('keepip lb against HAProxy mode tcp (send-proxy-v2), behaviour by behaviour', () => {
  const stops: (() => Promise<unknown>)[] = [];
  let s: Setup;
  before(async () => {
    s = await setUp(stops);
  });
  after(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  it('the PROXY v2 header: the same bytes from both (ports aside), naming each client and the listener it reached', async () => {
    for (const from of ['127.0.92.1', '127.0.92.2', '127.0.93.7']) {
      const [k, h] = await bothWays(
        s,
        s.main,
        from,
        echo,
        // A byte first: HAProxy resets the target side of a client that closes before sending any.
        (c) => {
          c.socket.write('x');
          c.socket.once('data', () => c.socket.end());
        },
      );
      for (const [proxy, o] of [
        [s.main[0], k],
        [s.main[1], h],
      ] as const) {
        const { header, raw } = o.conn!;
        assert.equal(header.version, 2);
        assert.equal(header.command, 'PROXY');
        assert.equal(header.protocol, 'TCP4');
        assert.deepEqual(header.source, { address: from, port: o.clientRun.localPort }, proxy.name);
        assert.deepEqual(header.destination, { address: '127.0.0.1', port: proxy.port }, proxy.name);
        assert.deepEqual(header.tlvs, []);
        assert.equal(raw.length, 28, `${proxy.name}: 16 + 12 bytes, no TLVs`);
        assert.equal(o.conn!.peer, proxy.name === 'keepip' ? KEEPIP_SOURCE : HAPROXY_SOURCE);
      }
      assert.deepEqual(withoutPorts(k.conn!.raw), withoutPorts(h.conn!.raw), 'byte for byte, ports aside');
      compare(k, h, { client: ['data', 'end', 'close'], target: ['data', 'end', 'close'] });
    }
    // One header per flow, counted.
    await counterReaches(s.metrics.main, 'keepip_lb_proxy_headers_sent_total', { version: 'v2' }, 3);
  });

  it('health checks: a LOCAL header, byte for byte the same from both, with the same TLVs; keepip checks from its source address', async () => {
    const expected = {
      LOCAL: { hex: '0d0a0d0a000d0a515549540a20000000', keepip: KEEPIP_SOURCE },
      // --crc32c --unique-id / proxy-v2-options crc32c,unique-id: a CRC32C TLV, no UNIQUE_ID on a check.
      'LOCAL+tlv': { hex: '0d0a0d0a000d0a515549540a20000007030004a9b87e8f', keepip: KEEPIP_EDGE_SOURCE },
    };
    const entry = ALLOWED['check-close']!;
    for (const [key, { hex, keepip: from }] of Object.entries(expected)) {
      const checks = () => s.target.conns.get(key) ?? [];
      const keepip = await s.target.until(
        () => checks().find((c) => c.peer === from),
        `keepip's ${key} check`,
      );
      // HAProxy's: from its `source`, or unnamed when its RST came before the target looked.
      const haproxy = await s.target.until(
        () => checks().find((c) => c.peer !== from),
        `HAProxy's ${key} check`,
      );
      await within(Promise.all([keepip.closed, haproxy.closed]), `the ${key} checks closed`);
      for (const c of [keepip, haproxy]) {
        assert.equal(c.raw.toString('hex'), hex, `${key} from ${c.peer}`);
        assert.equal(c.header.command, 'LOCAL');
        assert.equal(c.header.source, null);
      }
      assert.deepEqual(keepip.events, entry.keepip, `keepip's ${key} check`);
      assert.deepEqual(haproxy.events, entry.haproxy, `HAProxy's ${key} check`);
    }
    met.add('check-close');
  });

  it('client half-close after sending: the target reads the data then FIN, and its answer after the FIN reaches the client', async () => {
    const before = await counter(s.metrics.main, ENDED, { reason: 'closed' });
    const [k, h] = await bothWays(
      s,
      s.main,
      '127.0.90.1',
      (c) => c.socket.on('end', () => c.socket.end(`after-fin:${c.got.text()}`)),
      (c) => c.socket.end('hello'),
    );
    for (const o of [k, h]) {
      assert.equal(o.targetGot, 'hello');
      assert.equal(o.clientGot, 'after-fin:hello');
    }
    compare(k, h, { client: ['data', 'end', 'close'], target: ['data', 'end', 'close'] });
    await counterReaches(s.metrics.main, ENDED, { reason: 'closed' }, before + 1);
  });

  it('target half-closes first: the client reads the banner then FIN, and its reply after the FIN reaches the target', async () => {
    const [k, h] = await bothWays(
      s,
      s.main,
      '127.0.90.2',
      (c) => c.socket.end('banner'),
      (c) => c.socket.on('end', () => c.socket.end(`reply:${c.got.text()}`)),
    );
    for (const o of [k, h]) {
      assert.equal(o.clientGot, 'banner');
      assert.equal(o.targetGot, 'reply:banner');
    }
    compare(k, h, { client: ['data', 'end', 'close'], target: ['data', 'end', 'close'] });
  });

  it('client RST mid-flow: the target sees a reset', async () => {
    const before = await counter(s.metrics.main, ENDED, { reason: 'client-reset' });
    const [k, h] = await bothWays(s, s.main, '127.0.90.3', echo, (c) => {
      c.socket.write('ping');
      c.socket.once('data', () => c.socket.resetAndDestroy());
    });
    compare(k, h, { client: ['data', 'close'], target: ['data', 'reset', 'close'] });
    await counterReaches(s.metrics.main, ENDED, { reason: 'client-reset' }, before + 1);
  });

  it('target RST mid-flow: keepip passes the reset to the client (HAProxy: a FIN)', async () => {
    const before = await counter(s.metrics.main, ENDED, { reason: 'target-reset' });
    const [k, h] = await bothWays(
      s,
      s.main,
      '127.0.90.4',
      (c, rest) => {
        c.socket.write('pong');
        if (rest.length > 0) c.socket.resetAndDestroy();
        else c.socket.once('data', () => c.socket.resetAndDestroy());
      },
      (c) => {
        c.socket.write('ping');
        c.socket.on('end', () => c.socket.end());
      },
    );
    compare(k, h, ALLOWED['target-reset']!.keepip as Side, 'target-reset');
    await counterReaches(s.metrics.main, ENDED, { reason: 'target-reset' }, before + 1);
  });

  it("client RST after the target's FIN: the target, still reading, sees a reset (HAProxy: a FIN)", async () => {
    const before = await counter(s.metrics.main, ENDED, { reason: 'client-reset' });
    const [k, h] = await bothWays(
      s,
      s.main,
      '127.0.90.5',
      (c, rest) => {
        if (rest.length > 0) c.socket.end('bye');
        else c.socket.once('data', () => c.socket.end('bye'));
      },
      (c) => {
        c.socket.write('x');
        c.socket.on('end', () => c.socket.resetAndDestroy());
      },
    );
    compare(k, h, ALLOWED['client-reset-after-fin']!.keepip as Side, 'client-reset-after-fin');
    await counterReaches(s.metrics.main, ENDED, { reason: 'client-reset' }, before + 1);
  });

  it('a target that refuses the connect: the client gets no byte and a reset (HAProxy: a FIN); no header anywhere', async () => {
    const [k, h] = await bothWays(
      s,
      s.refused,
      '127.0.90.6',
      () => {},
      (c) => c.socket.on('end', () => c.socket.end()),
      false,
    );
    compare(k, h, ALLOWED['refused-connect']!.keepip as Side, 'refused-connect');
    assert.equal(k.clientGot + h.clientGot, '');
    await counterReaches(
      s.metrics.refused,
      'keepip_lb_flows_rejected_total',
      { reason: 'connect-failed' },
      1,
    );
    await counterReaches(s.metrics.refused, ENDED, { reason: 'connect-failed' }, 1);
    await counterReaches(s.metrics.refused, 'keepip_lb_flows_total', {}, 1);
  });

  for (const slow of ['target', 'client'] as const) {
    it(`both ways at once, the ${slow} not reading: the proxy stops reading its peer, holds little, and every byte arrives in order`, async (t) => {
      const pids = { keepip: s.keepip.main.child.pid!, haproxy: s.haproxy.pid };
      const bytes = (direction: string) => counter(s.metrics.main, BYTES, { direction });
      const before = { up: await bytes('to_target'), down: await bytes('to_client') };
      const from = (i: number) => `127.0.96.${(slow === 'target' ? 1 : 11) + i}`;
      const [keepip, haproxy] = s.main;
      const k = await bulk(s, keepip, pids.keepip, from(0), slow);
      checkBulk(k, slow, `keepip: ${JSON.stringify(k)}`);
      // keepip's byte counters: every byte of the flow, each way (nothing else ran through it meanwhile).
      await counterReaches(s.metrics.main, BYTES, { direction: 'to_target' }, before.up + k.up.sent);
      await counterReaches(s.metrics.main, BYTES, { direction: 'to_client' }, before.down + k.down.sent);
      // The reference: HAProxy once cut such a flow short under a loaded machine (seen once in ~30 runs,
      // not reproduced); its run is repeated once then, with the first one and its log reported.
      for (const attempt of [1, 2]) {
        const h = await bulk(s, haproxy, pids.haproxy, from(attempt), slow);
        const what = `haproxy: ${JSON.stringify(h)}\nHAProxy's log:\n${s.haproxy.output().slice(-4000)}`;
        try {
          checkBulk(h, slow, what);
          break;
        } catch (error) {
          if (attempt === 2) throw error;
          t.diagnostic(`HAProxy's first run failed, repeated: ${(error as Error).message}`);
        }
      }
    });
  }

  it('loadBalancerSourceRanges / tcp-request connection reject: a client outside is reset at once and no header reaches the target', async () => {
    const [k, h] = await bothWays(
      s,
      s.edge,
      `${OUTSIDE}.7`,
      () => {},
      () => {},
      false,
    );
    compare(k, h, { client: ['reset', 'close'], target: [] });
    // A client inside is served through the same listeners afterwards.
    const inside = await bothWays(
      s,
      s.edge,
      `${INSIDE}.20`,
      (c) => c.socket.on('end', () => c.socket.end('in')),
      (c) => c.socket.end('hi'),
    );
    for (const o of inside) assert.equal(o.clientGot, 'in');
    for (const proxy of s.edge)
      assert.equal(s.target.conns.get(keyOf(`${OUTSIDE}.7`, proxy.port)), undefined);
    await counterReaches(s.metrics.edge, 'keepip_lb_flows_rejected_total', { reason: 'source-range' }, 1);
  });

  it('v2 TLVs (--crc32c --unique-id / proxy-v2-options crc32c,unique-id): CRC32C first and valid in both; UNIQUE_ID as each documents it', async () => {
    const seen: ProxyHeader[][] = [[], []];
    for (const n of [1, 2]) {
      const pair = await bothWays(
        s,
        s.edge,
        `${INSIDE}.${30 + n}`,
        (c) => c.socket.on('end', () => c.socket.end()),
        (c) => c.socket.end('tlv'),
      );
      for (const [i, o] of pair.entries()) {
        const { header } = o.conn!;
        assert.deepEqual(
          header.tlvs.map((t) => t.type),
          [0x03, 0x05],
          `${s.edge[i]!.name}: CRC32C, then UNIQUE_ID`,
        );
        assert.equal(typeof header.crc32c, 'number', 'the repo parser verified the checksum');
        assert.equal(o.targetGot, 'tlv');
        seen[i]!.push(header);
      }
      // The header before its TLVs: the same bytes but for the ports and the length (the ids differ in size).
      const [k, h] = pair.map((o) => withoutPorts(o.conn!.raw));
      assert.deepEqual([k!.subarray(0, 14), k!.subarray(16, 28)], [h!.subarray(0, 14), h!.subarray(16, 28)]);
      assert.deepEqual(k!.subarray(28, 31), h!.subarray(28, 31), 'the CRC32C TLV: type 0x03, length 4');
    }
    const [keepip, haproxy] = seen as [ProxyHeader[], ProxyHeader[]];
    const ids = keepip.map((h) => Buffer.from(h.uniqueId ?? []).toString('hex'));
    const entry = ALLOWED['unique-id']!;
    assert.deepEqual(
      ids.map(
        (id) =>
          `${id.length / 2} bytes, ${ids.indexOf(id) === ids.lastIndexOf(id) ? 'new' : 'the same'} per connection`,
      ),
      entry.keepip,
    );
    assert.deepEqual(
      haproxy.map((h, i) => {
        const text = Buffer.from(h.uniqueId ?? []).toString('latin1');
        // unique-id-format %{+X}o%ci:…: the client's address in hex first.
        return text.startsWith(`${hexIp(`${INSIDE}.${31 + i}`)}:`)
          ? 'the unique-id-format text, naming the client'
          : text;
      }),
      entry.haproxy,
    );
    met.add('unique-id');
  });

  // The two deadline cases wait on timers (1 s, 2 s): run side by side, on separate listeners.
  describe('deadlines', { concurrency: true }, () => {
    it('a client that connects and sends nothing: the header goes out at once; at the idle timeout keepip resets both (HAProxy: FINs), never earlier', async () => {
      const [k, h] = await Promise.all(
        s.edge.map((proxy) =>
          flowThrough(
            s,
            proxy,
            `${INSIDE}.10`,
            (c) => c.socket.on('end', () => c.socket.end()),
            (c) => c.socket.on('end', () => c.socket.end()),
          ),
        ),
      );
      compare(k!, h!, ALLOWED['idle-timeout']!.keepip as Side, 'idle-timeout');
      for (const o of [k!, h!]) {
        assert.equal(o.conn!.header.command, 'PROXY', 'the header was sent before any client byte');
        assert.equal(o.targetGot, '');
      }
      const keepipAfter = k!.clientRun.closedAt - k!.clientRun.startedAt;
      assert.ok(keepipAfter >= 1000, `keepip reset the idle flow after ${keepipAfter} ms, before its 1 s`);
      const haproxyAfter = h!.clientRun.closedAt - h!.clientRun.startedAt;
      assert.ok(haproxyAfter >= 990, `HAProxy closed after ${haproxyAfter} ms`);
      await counterReaches(s.metrics.edge, ENDED, { reason: 'idle' }, 1);
    });

    // Found here (fixed): with an --idle-timeout below the connect timeout, the idle deadline ran during
    // the connect: a target that never answers the SYN was reset at the idle timeout and counted as
    // flows_ended{reason="idle"}, never as flows_rejected_total{reason="connect-failed"} (nor logged as a
    // failed connect). Now only --connect-timeout (2 s here, as HAProxy's `timeout connect 2s`) runs
    // until the target accepts; the idle timeout (1 s) counts from then.
    it('a target that never answers the SYN: the client is reset, and counted as a failed connect, not as an idle flow', async () => {
      const fillers: net.Socket[] = [];
      const pending = new Set<string>();
      let watch: NodeJS.Timeout | undefined;
      try {
        await fillBlackhole(s.blackhole, fillers);
        // Every socket seen in SYN_SENT towards the blackhole, watched from before the proxies dial (the
        // fillers are connected by now; a pending connect lasts at least the 1 s idle timeout).
        const towards = procEndpoint('127.0.0.1', s.blackhole);
        watch = setInterval(() => {
          for (const local of synSentTo(towards)) pending.add(local);
        }, 10);
        const runs = await Promise.all(
          s.dark.map((proxy) =>
            connectClient(proxy.port, '127.0.97.10', (c) => c.socket.on('end', () => c.socket.end())),
          ),
        );
        await within(Promise.all(runs.map((r) => r.closed)), 'both clients closed');
        clearInterval(watch);
        assert.equal(pending.size, 2, "both proxies' connects stayed in SYN_SENT: the target never answered");
        const [k, h] = runs as [ClientRun, ClientRun];
        const entry = ALLOWED['unanswered-connect']!;
        assert.deepEqual([k.events, h.events], [entry.keepip, entry.haproxy]);
        met.add('unanswered-connect');
        assert.ok(k.closedAt - k.startedAt >= 1990, `keepip reset after ${k.closedAt - k.startedAt} ms`);
        assert.ok(h.closedAt - h.startedAt >= 1990, `HAProxy closed after ${h.closedAt - h.startedAt} ms`);
        const text = await scrapeUntil(
          '127.0.0.1',
          s.metrics.dark,
          (t) => metricSum(t, ENDED) >= 1,
          'the flow ended',
        );
        assert.deepEqual(
          {
            rejected: metricSum(text, REJECTED, { reason: 'connect-failed' }),
            idle: metricSum(text, ENDED, { reason: 'idle' }),
          },
          { rejected: 1, idle: 0 },
          'a client reset without reaching a target is a failed connect (docs/lb.md: flows_rejected_total)',
        );
      } finally {
        clearInterval(watch);
        for (const f of fillers) f.destroy();
      }
    });
  });

  it('no flow is left open in any keepip, and every connection to the target opened with a PROXY header', async () => {
    for (const port of Object.values(s.metrics))
      await scrapeUntil(
        '127.0.0.1',
        port,
        (t) => metricSum(t, 'keepip_lb_flows_active') === 0,
        'no open flow',
      );
    assert.deepEqual(s.target.bad, []);
  });

  // Found here (fixed): docs/lb.md's metrics table listed `keepip_lb_flows_rejected_total` reasons as
  // `no-target`, `connect-failed`, `header`; keepip also gives `source-range`.
  it("every label value keepip's /metrics gave is one docs/lb.md's metrics table lists", async () => {
    const documented = documentedLabelValues();
    const undocumented = new Set<string>();
    for (const port of Object.values(s.metrics)) {
      for (const [name, labels] of series(await scrape('127.0.0.1', port))) {
        for (const [label, value] of Object.entries(labels)) {
          const listed = documented.get(name)?.get(label);
          if (listed !== undefined && !listed.has(value)) undocumented.add(`${name}{${label}="${value}"}`);
        }
      }
    }
    assert.deepEqual([...undocumented], [], 'label values missing from the metrics table of docs/lb.md');
  });

  it('every ALLOWED difference was met', () => {
    assert.deepEqual([...met].sort(), Object.keys(ALLOWED).sort());
  });
});
