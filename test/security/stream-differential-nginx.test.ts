// tcp-services / udp-services, keepip against real nginx 1.22's `stream {}` configured as ingress-nginx's
// template renders an entry `"<port>": "<ns>/<svc>:<port>[:PROXY][:PROXY]"` (rootfs/etc/nginx/template/
// nginx.tmpl, the stream block): `listen <port> [proxy_protocol];`, `proxy_timeout` (proxy-stream-timeout),
// `proxy_next_upstream` / `_timeout` / `_tries` (proxy-stream-next-upstream*), `proxy_pass`, `proxy_protocol
// on;` for the fourth field, `proxy_responses` for UDP, `set_real_ip_from` (proxy-real-ip-cidr) in the stream
// block ONLY with enable-real-ip, and `log_format log_stream` (log-format-stream). Deviations of the nginx
// side, each forced by nginx 1.22 having no Lua here: the upstream is a static `upstream {}` (`max_fails=0`:
// the Lua round robin keeps no failure state), `$proxy_upstream_name` is `set` (the template's preread_by_lua
// sets it), "no endpoints" is a refused loopback port (the Lua balancer sets no peer and nginx dials the
// template's placeholder 0.0.0.1:1234, which fails at once on a normal host — it must not be dialled
// here), listen addresses are 127.0.0.1, and `proxy_protocol_timeout 1s` shortens nginx's 30 s default
// (the template leaves it) so the stalled-header probe fits the time budget.
//
// keepip: the same ConfigMaps through planTcpServices and configMapSettings, the settings mapped as
// src/controller/serving.ts maps them, createTcpRunner in-process: one runner with enable-real-ip (nginx's
// flavour B) and one without it (flavour A: a header read but not believed). One nginx (a server per entry and
// flavour, plus a decoder server that answers what nginx's PROXY parser read), one HAProxy (a second,
// strict PROXY parser: `accept-proxy`, answers src/dst), recording backends that tell connections apart
// by an id the client sends (a `@@id mode` first line, or an `@@id@@` trailer when the bytes right
// after the PROXY header are the generated payload).
//
// Compared: the PROXY v1 header the backend gets (decoded by nginx's and HAProxy's parsers; source,
// destination, raw bytes), the client's bytes at the backend, half-closes, resets, no endpoints, a
// refusing endpoint (next upstream), proxy-stream-timeout, a stalled PROXY header, the stream access log
// line, and one UDP exchange. Generated client headers (fast-check, fixed seed; STREAM_SEED=<n>|random)
// plus hand-picked ones. A difference where keepip is less safe fails (a finding); the ALLOWED table
// lists the differences that pass, and the last test checks each was met by some case.
//
// What nginx 1.22 does that keepip need not copy (seen here, not asserted): for an IPv6 client believed
// through set_real_ip_from it writes `PROXY TCP6 <client> 127.0.0.1 …` (its IPv4 listen address), which
// HAProxy's parser refuses; it refuses a v1 header not complete in the first read at once (`broken
// header`) where keepip waits for proxy-protocol-header-timeout; with proxy_responses 1 it also forwards
// a second UDP answer that came in the same read.
//
// nginx's stream module is Debian's libnginx-mod-stream (not pulled in by the `nginx` package; .ci/run
// installs it): without it the file fails, saying so.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import type { KubeObject } from '../../src/controller/resources.ts';
import type { TcpServiceSettings } from '../../src/controller/stream-entry.ts';
import { createTcpRunner, type TcpRunner } from '../../src/controller/tcp-runner.ts';
import { planTcpServices } from '../../src/controller/tcp-services.ts';
import { mapLimited } from '../helpers/concurrency.ts';
import { type RunningHaproxy, startHaproxy } from '../helpers/haproxy.ts';
import { freePort, listenTracked } from '../helpers/net.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import { configMapSettings, topologyOf } from '../k8s/helpers.ts';

const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';
const SEED =
  process.env.STREAM_SEED === 'random'
    ? Math.floor(Math.random() * 2 ** 31)
    : Number(process.env.STREAM_SEED ?? 20_260_612);
const RUNS = 12;
/** proxy-real-ip-cidr. Sources: 127.60.x.x inside it, 127.61.x.x outside, 127.62.x.x for entries that read no header. */
const TRUSTED = '127.60.0.0/16';
const LOG_FORMAT =
  '$realip_remote_addr|$remote_addr|$protocol|$status|$bytes_sent|$bytes_received|$session_time|' +
  '$proxy_protocol_addr|$upstream_addr|$upstream_bytes_sent|$upstream_bytes_received|$proxy_upstream_name';
const CONFIG_MAP: Record<string, string> = {
  'proxy-real-ip-cidr': TRUSTED,
  'proxy-stream-timeout': '1s',
  'proxy-protocol-header-timeout': '1s',
  'log-format-stream': LOG_FORMAT,
};

/** Differences that pass, each met by some case (checked last). */
const ALLOWED: Record<string, string> = {
  'stricter-trust':
    'a PROXY header from a peer outside proxy-real-ip-cidr: keepip closes the connection (400) where nginx proxies it under the TCP peer; keepip believes less, never more',
  'dst-from-header':
    "`:PROXY:PROXY`: keepip's header to the backend names the destination the load balancer's header named; nginx names its own listen address (for an IPv6 client in a TCP6 line HAProxy refuses). The source (the client) is the same, and only a trusted peer's header is read",
  'half-close':
    'nginx 1.22 as rendered (no proxy_half_close) ends the whole session at the first FIN, dropping the answer after it; keepip passes the half-close on (bounded by proxy-stream-timeout)',
  'stricter-parse':
    "a trusted peer's v1 header in a form the PROXY spec does not allow (a leading zero in a port) that nginx reads anyway: keepip closes the connection; it reads less, never something else",
  'v1-address-text':
    'the same IPv6 source in another valid text form: nginx writes an IPv4-compatible address as ::a.b.c.d, keepip in RFC 5952 hex; both parsers read the same address',
  'log-name-unset':
    "a PROXY header refused: nginx logs an empty $proxy_upstream_name (the template sets it in preread_by_lua, a phase after the PROXY header); keepip logs the entry's name",
  'log-no-endpoint':
    'no endpoints: keepip dials nothing and logs $upstream_* as `-`; nginx dials the Lua placeholder (here a refused port) and logs it',
};
const met = new Set<string>();

// ---------------------------------------------------------------------------------------------------
// Small tools: lines to wait on, a client, address forms.

/** Lines to wait on, as test/helpers/lines.ts, with safety timers that do not hold the process open. */
function collector() {
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  return {
    lines,
    push(line: string) {
      lines.push(line);
      for (const w of [...waiters]) w();
    },
    wait(pattern: RegExp, ms = 20_000): Promise<string> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = lines.find((l) => pattern.test(l));
          if (hit === undefined) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(hit);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no line ${pattern} within ${ms} ms:\n${lines.slice(-20).join('\n')}`));
        }, ms);
        timer.unref();
        waiters.add(check);
        check();
      });
    },
  };
}
type Collector = ReturnType<typeof collector>;

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

let serial = 0;
/** A source address of its own for each probe (its log line is found by it). */
function source(block: 60 | 61 | 62): string {
  serial++;
  return `127.${block}.${Math.floor(serial / 250)}.${(serial % 250) + 1}`;
}

interface ClientResult {
  got: Buffer;
  /** The proxy's FIN was read. */
  sawEnd: boolean;
  reset: boolean;
  /** Not closed within 20 s (destroyed by the safety net). */
  hung: boolean;
  localPort: number;
}

/** Connects from `from`, lets `drive` write, collects what comes back; resolves when the socket closed. */
function runClient(
  port: number,
  from: string,
  drive: (socket: net.Socket) => void,
  allowHalfOpen = false,
): Promise<ClientResult> {
  return new Promise((resolve) => {
    const r: ClientResult = { got: Buffer.alloc(0), sawEnd: false, reset: false, hung: false, localPort: 0 };
    const socket = net.connect({ host: '127.0.0.1', port, localAddress: from, allowHalfOpen, noDelay: true });
    const safety = setTimeout(() => {
      r.hung = true;
      socket.destroy();
    }, 20_000);
    safety.unref();
    socket.on('connect', () => {
      r.localPort = socket.localPort ?? 0;
      drive(socket);
    });
    socket.on('data', (c: Buffer) => {
      r.got = Buffer.concat([r.got, c]);
    });
    socket.on('end', () => {
      r.sawEnd = true;
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') r.reset = true;
    });
    socket.on('close', () => {
      clearTimeout(safety);
      resolve(r);
    });
  });
}

/** RFC 5952 text; an IPv4-mapped IPv6 address as its IPv4 (the same client to every reader). */
function canonical(address: string): string {
  if (net.isIPv4(address)) return address;
  const v6 = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
  if (!m) return v6;
  const [hi, lo] = [Number.parseInt(m[1]!, 16), Number.parseInt(m[2]!, 16)];
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

// ---------------------------------------------------------------------------------------------------
// Backends.

interface Seen {
  id: string;
  mode: string;
  /** The raw PROXY header (a backend behind `::PROXY`), null when the bytes did not start with one. */
  header: Buffer | null;
  /** Everything after the header. */
  data: Buffer;
  eof: boolean;
  closed: boolean;
}

interface Recorder {
  port: number;
  accepted: () => number;
  seen: Map<string, Seen[]>;
  /** `id <id>` once a connection named itself, `eof <id>`, `close <id>`. */
  events: Collector;
  close(): Promise<void>;
}

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** The PROXY header at the start of `raw`: 'more' while incomplete, null when there is none. */
function splitHeader(raw: Buffer): { header: Buffer; rest: Buffer } | 'more' | null {
  const text = raw.toString('latin1');
  if (text.startsWith('PROXY ')) {
    const end = text.indexOf('\r\n');
    if (end < 0) return raw.length < 108 ? 'more' : null;
    return { header: raw.subarray(0, end + 2), rest: raw.subarray(end + 2) };
  }
  if (raw.length < 16) return SIG.subarray(0, raw.length).equals(raw) ? 'more' : null;
  if (!raw.subarray(0, 12).equals(SIG)) return null;
  const total = 16 + raw.readUInt16BE(14);
  if (raw.length < total) return 'more';
  return { header: raw.subarray(0, total), rest: raw.subarray(total) };
}

/** What a backend does once a connection named itself (`@@id mode` first line) and at its EOF. */
function onNamed(s: Seen, socket: net.Socket): void {
  if (s.mode === 'finfirst') socket.end();
  if (s.mode === 'reset') socket.resetAndDestroy();
  if (s.mode === 'pingnow') ping(socket);
}

/** Writes every 50 ms until the connection closes: a proxy that forgot its client would keep it open. */
function ping(socket: net.Socket): void {
  const timer = setInterval(() => socket.write('ping'), 50);
  socket.once('close', () => clearInterval(timer));
}

function onEof(s: Seen, socket: net.Socket): void {
  if (s.mode === 'answer') socket.end(`got:${s.data.length}`);
  if (s.mode === 'ping') ping(socket);
  // A server that has nothing to say ends when its client did.
  if (s.mode === 'idle') socket.end();
}

async function recorder(expectHeader: boolean): Promise<Recorder> {
  const events = collector();
  const seen = new Map<string, Seen[]>();
  let accepted = 0;
  const name = (s: Seen, socket: net.Socket, id: string, mode: string) => {
    s.id = id;
    s.mode = mode;
    seen.set(id, [...(seen.get(id) ?? []), s]);
    events.push(`id ${id}`);
    onNamed(s, socket);
  };
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    accepted++;
    socket.on('error', () => {});
    const s: Seen = {
      id: '',
      mode: 'answer',
      header: null,
      data: Buffer.alloc(0),
      eof: false,
      closed: false,
    };
    let raw = Buffer.alloc(0);
    let split = !expectHeader;
    socket.on('data', (chunk: Buffer) => {
      if (split) s.data = Buffer.concat([s.data, chunk]);
      else {
        raw = Buffer.concat([raw, chunk]);
        const h = splitHeader(raw);
        if (h === 'more') return;
        split = true;
        s.header = h?.header ?? null;
        s.data = h ? h.rest : raw;
      }
      const m = s.id === '' ? /^@@([\w.-]+) (\w+)\n/.exec(s.data.toString('latin1')) : null;
      if (m) name(s, socket, m[1]!, m[2]!);
    });
    socket.on('end', () => {
      s.eof = true;
      if (!split) s.data = raw;
      const m = s.id === '' ? /@@([\w.-]+)@@$/.exec(s.data.toString('latin1')) : null;
      if (m) name(s, socket, m[1]!, 'answer');
      if (s.id !== '') events.push(`eof ${s.id}`);
      onEof(s, socket);
    });
    socket.on('close', () => {
      s.closed = true;
      if (s.id !== '') events.push(`close ${s.id}`);
    });
  });
  const { port, close } = await listenTracked(server);
  return { port, accepted: () => accepted, seen, events, close };
}

/** A UDP backend that answers each datagram twice (`a1:`, `a2:`); proxy-stream-responses 1 lets one through. */
async function udpBackend() {
  const events = collector();
  const socket = dgram.createSocket('udp4');
  socket.on('message', (msg, rinfo) => {
    events.push(`from ${rinfo.address} ${msg.toString()}`);
    socket.send(`a1:${msg}`, rinfo.port, rinfo.address);
    socket.send(`a2:${msg}`, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  return {
    port: socket.address().port,
    events,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

// ---------------------------------------------------------------------------------------------------
// nginx as ingress-nginx renders the entries, and keepip with the same ConfigMaps.

const NGINX_SERVERS = [
  'plain',
  'decA',
  'decB',
  'enc',
  'bothA',
  'bothB',
  'none',
  'pair',
  'stall',
  'udp',
  'decoder',
] as const;
type NginxServer = (typeof NGINX_SERVERS)[number];
const KEEPIP_ENTRIES = [
  'plain',
  'dec',
  'enc',
  'both',
  'none',
  'pair',
  'stall',
  'udp',
  'bothA',
  'decA',
] as const;
/** The entries of keepip's second runner: the ConfigMap without enable-real-ip (nginx's flavour A). */
const FLAVOUR_A: readonly KeepipEntry[] = ['bothA', 'decA'];
type KeepipEntry = (typeof KEEPIP_ENTRIES)[number];

interface Upstreams {
  recPlain: number;
  recProxy: number;
  stall: number;
  udp: number;
  refused: number;
}

/** One tcp-services `server` of the template; `realIp`: the stream block's set_real_ip_from (enable-real-ip). */
function tcpServer(
  port: number,
  o: { decode?: boolean; encode?: boolean; realIp?: boolean; upstream: string; name: string },
): string {
  return [
    'server {',
    `  set $proxy_upstream_name ${o.name};`,
    `  listen 127.0.0.1:${port}${o.decode ? ' proxy_protocol' : ''};`,
    o.realIp ? `  set_real_ip_from ${TRUSTED};` : '',
    o.decode ? '  proxy_protocol_timeout 1s;' : '',
    '  proxy_timeout 1s;',
    '  proxy_next_upstream on;',
    '  proxy_next_upstream_timeout 600s;',
    '  proxy_next_upstream_tries 3;',
    `  proxy_pass ${o.upstream};`,
    o.encode ? '  proxy_protocol on;' : '',
    '}',
  ].join('\n');
}

function nginxStream(dir: string, p: Record<NginxServer, number>, b: Upstreams): string {
  const rec = 'tcp-default-rec-plain-80';
  const recP = 'tcp-default-rec-proxy-80';
  return [
    `log_format log_stream '${LOG_FORMAT}';`,
    `access_log ${dir}/stream.log log_stream;`,
    `upstream rec_plain { server 127.0.0.1:${b.recPlain}; }`,
    `upstream rec_proxy { server 127.0.0.1:${b.recProxy}; }`,
    `upstream stall { server 127.0.0.1:${b.stall}; }`,
    `upstream none { server 127.0.0.1:${b.refused} max_fails=0; }`,
    `upstream pair { server 127.0.0.1:${b.refused} max_fails=0; server 127.0.0.1:${b.recProxy} max_fails=0; }`,
    `upstream dns { server 127.0.0.1:${b.udp}; }`,
    tcpServer(p.plain, { upstream: 'rec_plain', name: rec }),
    tcpServer(p.decA, { decode: true, upstream: 'rec_plain', name: rec }),
    tcpServer(p.decB, { decode: true, realIp: true, upstream: 'rec_plain', name: rec }),
    tcpServer(p.enc, { encode: true, upstream: 'rec_proxy', name: recP }),
    tcpServer(p.bothA, { decode: true, encode: true, upstream: 'rec_proxy', name: recP }),
    tcpServer(p.bothB, { decode: true, encode: true, realIp: true, upstream: 'rec_proxy', name: recP }),
    tcpServer(p.none, { upstream: 'none', name: 'tcp-default-none-80' }),
    tcpServer(p.pair, { encode: true, upstream: 'pair', name: 'tcp-default-pair-80' }),
    tcpServer(p.stall, { decode: true, upstream: 'stall', name: 'tcp-default-stall-80' }),
    'server {',
    '  set $proxy_upstream_name udp-default-dns-53;',
    `  listen 127.0.0.1:${p.udp} udp;`,
    '  proxy_responses 1;',
    '  proxy_timeout 1s;',
    '  proxy_next_upstream on;',
    '  proxy_next_upstream_timeout 600s;',
    '  proxy_next_upstream_tries 3;',
    '  proxy_pass dns;',
    '}',
    // Not an entry: what nginx's PROXY parser reads from a header (the backend headers are fed to it).
    `server { listen 127.0.0.1:${p.decoder} proxy_protocol; access_log off;`,
    '  return "$proxy_protocol_addr|$proxy_protocol_port|$proxy_protocol_server_addr|$proxy_protocol_server_port"; }',
  ].join('\n');
}

/** The TcpServiceSettings a ConfigMap gives, mapped as src/controller/serving.ts (reportSnapshot) maps them. */
function settingsOf(data: Record<string, string>): TcpServiceSettings {
  const { s, issues } = configMapSettings(data);
  assert.deepEqual(
    issues.filter((i) => i.severity === 'error'),
    [],
  );
  return {
    trustedCidrs: s.trustedCidrs,
    enableRealIp: s.enableRealIp,
    headerTimeoutMs: s.proxyProtocolHeaderTimeoutMs,
    idleTimeoutMs: s.proxyStreamTimeoutMs,
    drainMs: s.workerShutdownTimeoutMs,
    maxConnections: s.maxWorkerConnections,
    ...(s.stream === undefined ? {} : { stream: s.stream }),
  };
}

function topologyYaml(b: Upstreams): string {
  const svc = (name: string, protocol = 'TCP', port = 80) =>
    `apiVersion: v1\nkind: Service\nmetadata: {namespace: default, name: ${name}}\nspec:\n  ports: [{name: p, port: ${port}, protocol: ${protocol}}]\n`;
  const slice = (service: string, name: string, port: number, protocol = 'TCP') =>
    `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {namespace: default, name: ${name}, labels: {kubernetes.io/service-name: ${service}}}\naddressType: IPv4\nendpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]\nports: [{name: p, port: ${port}, protocol: ${protocol}}]\n`;
  return [
    svc('rec-plain'),
    slice('rec-plain', 'rec-plain-1', b.recPlain),
    svc('rec-proxy'),
    slice('rec-proxy', 'rec-proxy-1', b.recProxy),
    svc('none'),
    svc('pair'),
    slice('pair', 'pair-a', b.refused),
    slice('pair', 'pair-b', b.recProxy),
    svc('stall'),
    slice('stall', 'stall-1', b.stall),
    svc('dns', 'UDP', 53),
    slice('dns', 'dns-1', b.udp, 'UDP'),
  ].join('---\n');
}

async function startKeepip(b: Upstreams, log: Collector, access: Collector) {
  const ports = {} as Record<KeepipEntry, number>;
  for (const entry of KEEPIP_ENTRIES) {
    let port = await freePort();
    while (Object.values(ports).includes(port)) port = await freePort();
    ports[entry] = port;
  }
  const topology = topologyOf(topologyYaml(b));
  const cm = (name: string, data: Record<string, string>) =>
    ({ metadata: { namespace: 'ingress-nginx', name }, data }) as unknown as KubeObject;
  const tcp = planTcpServices(
    cm('tcp-services', {
      [ports.plain]: 'default/rec-plain:80',
      [ports.dec]: 'default/rec-plain:80:PROXY',
      [ports.enc]: 'default/rec-proxy:80::PROXY',
      [ports.both]: 'default/rec-proxy:80:PROXY:PROXY',
      [ports.none]: 'default/none:80',
      [ports.pair]: 'default/pair:80::PROXY',
      [ports.stall]: 'default/stall:80:PROXY',
      [ports.bothA]: 'default/rec-proxy:80:PROXY:PROXY',
      [ports.decA]: 'default/rec-plain:80:PROXY',
    }),
    topology,
    [],
  );
  const udp = planTcpServices(cm('udp-services', { [ports.udp]: 'default/dns:53' }), topology, [], 'UDP');
  assert.deepEqual([...tcp.problems, ...udp.problems], []);
  const pair = tcp.plans.find((p) => p.port === ports.pair)!;
  // The refusing endpoint first, as in nginx's `upstream pair`: the first connection meets it.
  assert.deepEqual(
    pair.targets.map((t) => t.port),
    [b.refused, b.recProxy],
  );
  // nginx's flavours differ by enable-real-ip alone: B (with it) for most entries, A (without) for two.
  const flavourA = new Set(FLAVOUR_A.map((e) => ports[e]));
  const runner = (plans: typeof tcp.plans, data: Record<string, string>) => {
    const r = createTcpRunner({
      host: '127.0.0.1',
      registry: new Registry(),
      log: log.push,
      accessLog: access.push,
    });
    return r.apply(plans, settingsOf(data)).then(() => r);
  };
  const runners = await Promise.all([
    runner([...tcp.plans.filter((p) => !flavourA.has(p.port)), ...udp.plans], {
      ...CONFIG_MAP,
      'enable-real-ip': 'true',
    }),
    runner(
      tcp.plans.filter((p) => flavourA.has(p.port)),
      CONFIG_MAP,
    ),
  ]);
  const listening = runners.reduce((n, r) => n + r.listeners().length, 0);
  assert.equal(listening, KEEPIP_ENTRIES.length, log.lines.join('\n'));
  return { runners, ports };
}

// ---------------------------------------------------------------------------------------------------
// The bench.

interface Bench {
  upstreams: Upstreams;
  nginx: RunningNginx;
  haproxy: RunningHaproxy;
  ngx: Record<NginxServer, number>;
  kip: Record<KeepipEntry, number>;
  runners: TcpRunner[];
  recPlain: Recorder;
  recProxy: Recorder;
  stall: Recorder;
  udp: Awaited<ReturnType<typeof udpBackend>>;
  /** keepip's error and state lines; its connection log. */
  log: Collector;
  access: Collector;
}

async function startBench(): Promise<Bench> {
  const [recPlain, recProxy, stall, udp, refused] = await Promise.all([
    recorder(false),
    recorder(true),
    recorder(false),
    udpBackend(),
    freePort(),
  ]);
  const upstreams = {
    recPlain: recPlain.port,
    recProxy: recProxy.port,
    stall: stall.port,
    udp: udp.port,
    refused,
  };
  const tcpServers = NGINX_SERVERS.filter((s) => s !== 'udp');
  const portsOf = (ports: number[]) =>
    Object.fromEntries(NGINX_SERVERS.map((s, i) => [s, ports[i]!])) as Record<NginxServer, number>;
  const [nginx, haproxy] = await Promise.all([
    startNginx({
      main: [`load_module ${STREAM_MODULE};`],
      freePorts: NGINX_SERVERS.length,
      stream: (dir, ports) => nginxStream(dir, portsOf(ports), upstreams),
      waitFor: (ports) => tcpServers.map((s) => ({ host: '127.0.0.1', port: portsOf(ports)[s] })),
    }),
    startHaproxy({
      freePorts: 1,
      mode: 'http',
      config: (_dir, [port]) =>
        `frontend decoder\n  bind 127.0.0.1:${port} accept-proxy\n  http-request return status 200 content-type text/plain lf-string "%[src]|%[src_port]|%[dst]|%[dst_port]"`,
      waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
    }),
  ]);
  const log = collector();
  const access = collector();
  const { runners, ports } = await startKeepip(upstreams, log, access);
  return {
    upstreams,
    nginx,
    haproxy,
    ngx: portsOf(nginx.ports),
    kip: ports,
    runners,
    recPlain,
    recProxy,
    stall,
    udp,
    log,
    access,
  };
}

type Side = 'keepip' | 'nginx';
const SIDES: readonly Side[] = ['keepip', 'nginx'];

/** The connection log line of the session from `from` (the TCP peer is its first field). */
async function sessionLine(bench: Bench, side: Side, from: string): Promise<string[]> {
  const key = new RegExp(`^${esc(from)}\\|`);
  if (side === 'keepip') return (await bench.access.wait(key)).split('|');
  const deadline = Date.now() + 20_000;
  for (;;) {
    const line = bench.nginx
      .readFile('stream.log')
      .split('\n')
      .find((l) => key.test(l));
    if (line !== undefined) return line.split('|');
    if (Date.now() > deadline) throw new Error(`nginx logged no session from ${from} within 20 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Tuple {
  src: string;
  sport: number;
  dst: string;
  dport: number;
}

function tupleOf(text: string): Tuple | null {
  const [src, sport, dst, dport] = text.trim().split('|');
  if (!src || !dst) return null;
  return { src: canonical(src), sport: Number(sport), dst: canonical(dst), dport: Number(dport) };
}

/** What nginx's PROXY parser (`listen … proxy_protocol`) and HAProxy's (`accept-proxy`) read from `header`; null: refused. */
async function decode(bench: Bench, header: Buffer): Promise<{ nginx: Tuple | null; haproxy: Tuple | null }> {
  const [n, h] = await Promise.all([
    runClient(bench.ngx.decoder, '127.0.0.1', (s) => s.end(header)),
    runClient(bench.haproxy.ports[0]!, '127.0.0.1', (s) =>
      s.end(Buffer.concat([header, Buffer.from('GET / HTTP/1.0\r\n\r\n')])),
    ),
  ]);
  const answer = h.got.toString('latin1');
  return {
    nginx: tupleOf(n.got.toString('latin1')),
    haproxy: /^HTTP\/1\.[01] 200/.test(answer) ? tupleOf(answer.slice(answer.indexOf('\r\n\r\n') + 4)) : null,
  };
}

// ---------------------------------------------------------------------------------------------------
// Generated client headers.

interface Addr {
  text: string;
  bytes: Buffer;
}
type Kind =
  | 'none'
  | 'v1-tcp4'
  | 'v1-tcp6'
  | 'v1-mapped'
  | 'v1-unknown'
  | 'v2-tcp4'
  | 'v2-tcp6'
  | 'v2-mapped'
  | 'v2-local'
  | 'v2-unspec';
const ADDRESSED: readonly Kind[] = ['v1-tcp4', 'v1-tcp6', 'v1-mapped', 'v2-tcp4', 'v2-tcp6', 'v2-mapped'];

interface HeaderCase {
  name: string;
  kind: Kind;
  src: Addr;
  dst: Addr;
  sport: number;
  dport: number;
  tlvs: { type: number; value: Buffer }[];
  unknownTail: string;
  /** A v1 line written as is (a form the generator does not make); the fields above describe it. */
  raw?: string;
  payload: Buffer;
  /** The TCP peer is inside proxy-real-ip-cidr. */
  trusted: boolean;
  /** The header and the bytes after it in two writes (else one segment). */
  split: boolean;
}

const v4Arb = fc
  .array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 })
  .map((b): Addr => ({ text: b.join('.'), bytes: Buffer.from(b) }));
const v6Arb = fc
  .tuple(
    fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 }),
    fc.boolean(),
  )
  .map(([groups, full]): Addr => {
    const bytes = Buffer.alloc(16);
    groups.forEach((g, i) => {
      bytes.writeUInt16BE(g, i * 2);
    });
    const text = groups.map((g) => g.toString(16)).join(':');
    return { text: full ? text : new URL(`http://[${text}]/`).hostname.slice(1, -1), bytes };
  });
const mapped = (a: Addr): Addr => ({
  text: `::ffff:${a.text}`,
  bytes: Buffer.concat([Buffer.alloc(10), Buffer.from([0xff, 0xff]), a.bytes]),
});

const caseArb: fc.Arbitrary<HeaderCase> = fc
  .record({
    kind: fc.constantFrom<Kind>(
      'none',
      'v1-tcp4',
      'v1-tcp6',
      'v1-mapped',
      'v1-unknown',
      'v2-tcp4',
      'v2-tcp6',
      'v2-mapped',
      'v2-local',
      'v2-unspec',
    ),
    v4: fc.tuple(v4Arb, v4Arb),
    v6: fc.tuple(v6Arb, v6Arb),
    sport: fc.integer({ min: 1, max: 65535 }),
    dport: fc.integer({ min: 1, max: 65535 }),
    tlvs: fc.array(
      fc.record({
        type: fc.oneof(fc.constant(0x04), fc.integer({ min: 0xe0, max: 0xef })),
        value: fc.uint8Array({ maxLength: 24 }).map((u) => Buffer.from(u)),
      }),
      { maxLength: 3 },
    ),
    unknownTail: fc.constantFrom('', ' ', ' TCP4 6.6.6.6 6.6.6.6 1 1'),
    lead: fc.constantFrom('', 'PROXY TCP4 6.6.6.6 6.6.6.6 1 1\r\n', SIG.toString('latin1'), '\r\n'),
    payload: fc.uint8Array({ maxLength: 300 }),
    trusted: fc.integer({ min: 0, max: 3 }).map((n) => n > 0),
    split: fc.boolean(),
  })
  .map((r) => {
    const [a, b] = r.kind.endsWith('tcp6') ? r.v6 : r.v4;
    const pick = r.kind.endsWith('mapped') ? [mapped(a), mapped(b)] : [a, b];
    return {
      name: '',
      kind: r.kind,
      src: pick[0]!,
      dst: pick[1]!,
      sport: r.sport,
      dport: r.dport,
      tlvs: r.tlvs,
      unknownTail: r.unknownTail,
      payload: Buffer.concat([Buffer.from(r.lead, 'latin1'), Buffer.from(r.payload)]),
      trusted: r.trusted,
      split: r.split,
    };
  });

function v2Header(c: HeaderCase): Buffer {
  const local = c.kind === 'v2-local';
  const family = c.kind === 'v2-unspec' ? 0x00 : c.kind === 'v2-tcp4' || local ? 0x11 : 0x21;
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(c.sport, 0);
  ports.writeUInt16BE(c.dport, 2);
  const addresses = family === 0x00 ? Buffer.alloc(0) : Buffer.concat([c.src.bytes, c.dst.bytes, ports]);
  const tlvs = Buffer.concat(
    c.tlvs.map((t) => {
      const head = Buffer.from([t.type, 0, 0]);
      head.writeUInt16BE(t.value.length, 1);
      return Buffer.concat([head, t.value]);
    }),
  );
  const len = Buffer.alloc(2);
  len.writeUInt16BE(addresses.length + tlvs.length);
  return Buffer.concat([SIG, Buffer.from([local ? 0x20 : 0x21, family]), len, addresses, tlvs]);
}

function clientHeader(c: HeaderCase): Buffer {
  if (c.kind === 'none') return Buffer.alloc(0);
  if (c.raw !== undefined) return Buffer.from(c.raw);
  if (c.kind === 'v1-unknown') return Buffer.from(`PROXY UNKNOWN${c.unknownTail}\r\n`);
  if (c.kind.startsWith('v1-')) {
    const family = c.kind === 'v1-tcp4' ? 'TCP4' : 'TCP6';
    return Buffer.from(`PROXY ${family} ${c.src.text} ${c.dst.text} ${c.sport} ${c.dport}\r\n`);
  }
  return v2Header(c);
}

const fixedV4 = (text: string): Addr => ({ text, bytes: Buffer.from(text.split('.').map(Number)) });
const hand = (name: string, kind: Kind, o: Partial<HeaderCase> = {}): HeaderCase => ({
  name,
  kind,
  src: kind.endsWith('mapped') ? mapped(fixedV4('198.51.100.7')) : fixedV4('198.51.100.7'),
  dst: kind.endsWith('mapped') ? mapped(fixedV4('10.0.0.1')) : fixedV4('10.0.0.1'),
  sport: 40000,
  dport: 5432,
  tlvs: [],
  unknownTail: '',
  payload: Buffer.from('hello'),
  trusted: true,
  split: false,
  ...o,
});

/** Hand-picked client headers, then the generated ones. */
function headerCases(): HeaderCase[] {
  // v1 only: the bytes are not written.
  const v6 = (text: string): Addr => ({ text, bytes: Buffer.alloc(16) });
  const picked = [
    hand('v1 TCP4 from a trusted peer', 'v1-tcp4'),
    hand('v1 TCP6', 'v1-tcp6', {
      src: v6('2001:db8::7'),
      dst: v6('2001:db8::1'),
    }),
    hand('v1 TCP4, the bytes after it in a second write', 'v1-tcp4', { split: true }),
    hand('v1 TCP6 v4-mapped', 'v1-mapped'),
    hand('v2 TCP6 v4-mapped', 'v2-mapped'),
    hand('v1 UNKNOWN', 'v1-unknown'),
    hand('v2 LOCAL', 'v2-local'),
    hand('v2 TCP6 from an IPv4-compatible address (::a.b.c.d)', 'v2-tcp6', {
      src: { text: '::94.195.67.88', bytes: Buffer.from([...Buffer.alloc(12), 94, 195, 67, 88]) },
      dst: { text: '2001:db8::1', bytes: Buffer.from('20010db8000000000000000000000001', 'hex') },
    }),
    hand('v1 with a leading zero in the source port', 'v1-tcp4', {
      raw: 'PROXY TCP4 198.51.100.7 10.0.0.1 040000 5432\r\n',
    }),
    hand('v2 with TLVs', 'v2-tcp4', { tlvs: [{ type: 0xe1, value: Buffer.from('tenant=a') }] }),
    hand('a forged v1 TCP4 from a peer outside proxy-real-ip-cidr', 'v1-tcp4', { trusted: false }),
    hand('payload that looks like a PROXY header, same segment', 'v1-tcp4', {
      payload: Buffer.from('PROXY TCP4 6.6.6.6 6.6.6.6 1 1\r\nsecond'),
    }),
    hand('payload that looks like a PROXY header, no header read', 'none', {
      payload: Buffer.from('PROXY TCP4 6.6.6.6 6.6.6.6 1 1\r\nsecond'),
    }),
  ];
  const generated = fc.sample(caseArb, { seed: SEED, numRuns: RUNS });
  return [...picked, ...generated.map((c, i) => ({ ...c, name: `generated #${i} (seed ${SEED})` }))];
}

// ---------------------------------------------------------------------------------------------------
// Probes. Each runs against keepip's entry and nginx's server for it, concurrently with the others.

/** keepip's listener for an entry, or nginx's server for it (`server` when its flavour has another name). */
function portOf(bench: Bench, side: Side, entry: KeepipEntry, server: NginxServer = entry as NginxServer) {
  return side === 'keepip' ? bench.kip[entry] : bench.ngx[server];
}

async function bothSides<T>(run: (side: Side) => Promise<T>): Promise<Record<Side, T>> {
  const [keepip, nginx] = await Promise.all(SIDES.map(run));
  return { keepip: keepip!, nginx: nginx! };
}

interface HeaderOutcome {
  from: string;
  port: number;
  /** What the client wrote after its header (the backend must get exactly this). */
  sent: Buffer;
  client: ClientResult;
  line: string[];
  seen: Seen | null;
  decoded: { nginx: Tuple | null; haproxy: Tuple | null } | null;
  /** keepip's reason for closing it unread, from its log. */
  refused: string | null;
}

async function headerProbe(bench: Bench, side: Side, c: HeaderCase, index: number): Promise<HeaderOutcome> {
  const id = `h${index}-${side[0]}`;
  const port = c.kind === 'none' ? portOf(bench, side, 'enc') : portOf(bench, side, 'both', 'bothB');
  const from = source(c.kind === 'none' ? 62 : c.trusted ? 60 : 61);
  const head = clientHeader(c);
  const sent = Buffer.concat([c.payload, Buffer.from(`\n@@${id}@@`)]);
  const client = await runClient(port, from, (s) => {
    if (!c.split || head.length === 0) s.end(Buffer.concat([head, sent]));
    else {
      s.write(head);
      setImmediate(() => s.end(sent));
    }
  });
  const line = await sessionLine(bench, side, from);
  let seen: Seen | null = null;
  if (line[8] !== '-') {
    await bench.recProxy.events.wait(new RegExp(`^eof ${esc(id)}$`));
    seen = bench.recProxy.seen.get(id)![0]!;
  }
  const decoded = seen?.header ? await decode(bench, seen.header) : null;
  const refusal = bench.log.lines.find((l) => l.includes(`PROXY header refused from ${from} (`));
  const refused = refusal === undefined ? null : /\((\w+)/.exec(refusal.split('refused from')[1]!)![1]!;
  return { from, port, sent, client, line, seen, decoded, refused };
}

/** The plain entry (no PROXY either way): a client FIN, then the backend answers. */
async function finClient(bench: Bench, side: Side) {
  const id = `fin-client-${side[0]}`;
  const from = source(62);
  const sent = `@@${id} answer\nhello, then FIN`;
  const client = await runClient(portOf(bench, side, 'plain'), from, (s) => s.end(sent));
  await bench.recPlain.events.wait(new RegExp(`^eof ${esc(id)}$`));
  return { from, sent, client, seen: bench.recPlain.seen.get(id)! };
}

/** The backend sends its FIN first; the client then sends more and its own FIN. */
async function finBackend(bench: Bench, side: Side) {
  const id = `fin-backend-${side[0]}`;
  const from = source(62);
  const client = await runClient(
    portOf(bench, side, 'plain'),
    from,
    (s) => {
      s.write(`@@${id} finfirst\n`);
      s.once('end', () => s.end('more'));
    },
    true,
  );
  await bench.recPlain.events.wait(new RegExp(`^close ${esc(id)}$`));
  return { from, client, seen: bench.recPlain.seen.get(id)! };
}

/** The backend resets the connection: the client must be closed. */
async function resetBackend(bench: Bench, side: Side) {
  const from = source(62);
  const client = await runClient(portOf(bench, side, 'plain'), from, (s) =>
    s.write(`@@reset-${side[0]} reset\n`),
  );
  return { from, client };
}

/**
 * The client goes away (`how`: a reset, or a FIN and a closed socket) while the backend writes every
 * 50 ms: the backend's connection must be closed (the writes keep proxy-stream-timeout from doing it).
 */
async function clientGone(bench: Bench, side: Side, how: 'reset' | 'fin') {
  const id = `gone-${how}-${side[0]}`;
  const from = source(62);
  const named = bench.recPlain.events.wait(new RegExp(`^id ${esc(id)}$`));
  const client = await runClient(portOf(bench, side, 'plain'), from, (s) => {
    s.write(`@@${id} ${how === 'reset' ? 'pingnow' : 'ping'}\n`);
    void named.then(() => (how === 'reset' ? s.resetAndDestroy() : s.destroy()));
  });
  const closed = await bench.recPlain.events
    .wait(new RegExp(`^close ${esc(id)}$`))
    .then(() => true)
    .catch(() => false);
  return { from, client, backendClosed: closed };
}

/** An entry whose Service has no endpoints. */
async function noEndpoints(bench: Bench, side: Side) {
  const from = source(62);
  const client = await runClient(portOf(bench, side, 'none'), from, (s) => s.write('hello'));
  return { from, client, line: await sessionLine(bench, side, from) };
}

/** `::PROXY` to two endpoints, the first refusing: the second gets the connection, its header, the bytes once. */
async function nextUpstream(bench: Bench, side: Side) {
  const id = `pair-${side[0]}`;
  const from = source(62);
  const sent = `@@${id} answer\nfirst bytes`;
  const client = await runClient(portOf(bench, side, 'pair'), from, (s) => s.end(sent));
  await bench.recProxy.events.wait(new RegExp(`^eof ${esc(id)}$`));
  const seen = bench.recProxy.seen.get(id)!;
  const decoded = seen[0]?.header ? await decode(bench, seen[0].header) : null;
  return { from, sent, client, seen, decoded, line: await sessionLine(bench, side, from) };
}

/** Nothing either way after the first line: proxy-stream-timeout (1 s) closes both sides. */
async function idle(bench: Bench, side: Side) {
  const id = `idle-${side[0]}`;
  const from = source(62);
  const client = await runClient(portOf(bench, side, 'plain'), from, (s) => s.write(`@@${id} idle\n`));
  await bench.recPlain.events.wait(new RegExp(`^close ${esc(id)}$`));
  return { from, client, line: await sessionLine(bench, side, from) };
}

/**
 * A trusted peer's PROXY header that stops halfway: keepip closes it at proxy-protocol-header-timeout,
 * nginx at once (a v1 header must be whole in its first read); nothing dialled either way.
 */
async function stalledHeader(bench: Bench, side: Side) {
  const from = source(60);
  const client = await runClient(portOf(bench, side, 'stall'), from, (s) => s.write('PROXY TCP4 198.51.'));
  return { from, client };
}

/**
 * A peer inside proxy-real-ip-cidr sends a header naming another client to the `:PROXY:PROXY` and
 * `:PROXY` entries; nginx's flavour A is the same ConfigMap as rendered without enable-real-ip.
 */
async function forgedWithoutRealIp(bench: Bench, side: Side) {
  const id = `forged-${side[0]}`;
  const from = source(60);
  const forged = 'PROXY TCP4 203.0.113.9 10.0.0.1 40000 22\r\n';
  await runClient(portOf(bench, side, 'bothA'), from, (s) => s.end(`${forged}@@${id} answer\nx`));
  await bench.recProxy.events.wait(new RegExp(`^eof ${esc(id)}$`));
  const header = bench.recProxy.seen.get(id)![0]!.header!;
  const decodedSource = (await decode(bench, header)).nginx?.src ?? null;
  const fromDec = source(60);
  await runClient(portOf(bench, side, 'decA'), fromDec, (s) =>
    s.end(`${forged}@@forged-dec-${side[0]} answer\n`),
  );
  const logged = (await sessionLine(bench, side, fromDec))[1]!;
  return { from, fromDec, decodedSource, logged };
}

/** One datagram each way, twice from the same client port: proxy-stream-responses 1 ends each session at its first answer. */
async function udpExchange(bench: Bench, side: Side) {
  const from = source(62);
  const id = `udp-${side[0]}`;
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, from, () => resolve()));
  const next = () =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${side}: no UDP answer in 20 s`)), 20_000);
      timer.unref();
      socket.once('message', (m) => {
        clearTimeout(timer);
        resolve(m.toString());
      });
    });
  const port = portOf(bench, side, 'udp');
  const answers: string[] = [];
  try {
    for (const q of [`q-${id}`, `r-${id}`]) {
      const answer = next();
      socket.send(q, port, '127.0.0.1');
      answers.push(await answer);
    }
  } finally {
    socket.close();
  }
  const seenFrom = bench.udp.events.lines.filter((l) => l.endsWith(`q-${id}`)).map((l) => l.split(' ')[1]);
  return { from, answers, seenFrom, line: await sessionLine(bench, side, from) };
}

async function runAll(bench: Bench) {
  const cases = headerCases();
  // The two 1 s deadlines first, so the rest runs while they wait.
  const slow = Promise.all([bothSides((s) => idle(bench, s)), bothSides((s) => stalledHeader(bench, s))]);
  const [headers, finC, finB, resetB, goneReset, goneFin, none, pair, forged, udp, [idled, stalled]] =
    await Promise.all([
      mapLimited(cases, 6, (c, i) => bothSides((s) => headerProbe(bench, s, c, i))),
      bothSides((s) => finClient(bench, s)),
      bothSides((s) => finBackend(bench, s)),
      bothSides((s) => resetBackend(bench, s)),
      bothSides((s) => clientGone(bench, s, 'reset')),
      bothSides((s) => clientGone(bench, s, 'fin')),
      bothSides((s) => noEndpoints(bench, s)),
      bothSides((s) => nextUpstream(bench, s)),
      bothSides((s) => forgedWithoutRealIp(bench, s)),
      bothSides((s) => udpExchange(bench, s)),
      slow,
    ]);
  return { cases, headers, finC, finB, resetB, goneReset, goneFin, none, pair, forged, udp, idled, stalled };
}

// ---------------------------------------------------------------------------------------------------
// Checks.

interface Problem {
  tag: 'header' | 'bytes';
  text: string;
}
type Say = (tag: Problem['tag'], text: string) => void;
const show = (b: Buffer | null | undefined) => JSON.stringify(b?.toString('latin1') ?? null);

/** One client header through keepip's `:PROXY:PROXY` (or `::PROXY`) entry and nginx's (flavour B, enable-real-ip). */
function checkHeaderCase(c: HeaderCase, o: Record<Side, HeaderOutcome>): Problem[] {
  const out: Problem[] = [];
  const say: Say = (tag, text) =>
    out.push({ tag, text: `${c.name} [${c.kind}${c.trusted ? '' : ', peer outside the CIDR'}] ${text}` });
  const { keepip: k, nginx: n } = o;
  if (n.seen === null) {
    say('header', `nginx did not proxy it (the model is wrong): ${n.line.join('|')}`);
    return out;
  }
  if (k.seen === null) {
    if (k.refused === 'untrusted' && !c.trusted) met.add('stricter-trust');
    else if (k.refused === 'malformed' && c.raw !== undefined) met.add('stricter-parse');
    else say('header', `keepip closed it (${k.refused ?? k.line.join('|')}) where nginx proxied it`);
    return out;
  }
  if (!c.trusted && c.kind !== 'none')
    say('header', 'keepip read a PROXY header from a peer outside proxy-real-ip-cidr');
  for (const side of SIDES) {
    const x = o[side];
    if (!x.seen!.data.equals(x.sent))
      say('bytes', `${side}: the backend got ${show(x.seen!.data)}, the client sent ${show(x.sent)}`);
  }
  if (!k.client.got.equals(Buffer.from(`got:${k.sent.length}`)))
    say('bytes', `keepip: the backend's answer to the client's FIN did not arrive (${show(k.client.got)})`);
  else if (n.client.got.length === 0) met.add('half-close');
  checkUpstreamHeader(c, o, say);
  return out;
}

/** The header each backend got: the client both name, read alike by nginx's and HAProxy's parsers, nginx's bytes for it. */
function checkUpstreamHeader(c: HeaderCase, o: Record<Side, HeaderOutcome>, say: Say): void {
  const believed = ADDRESSED.includes(c.kind);
  for (const side of SIDES) {
    const x = o[side];
    if (x.seen!.header === null || x.decoded === null) {
      say('header', `${side}: no PROXY header reached the backend`);
      return;
    }
    const read = x.decoded.nginx;
    const client = believed
      ? { src: canonical(c.src.text), sport: c.sport }
      : { src: x.from, sport: x.client.localPort };
    if (read?.src !== client.src || read.sport !== client.sport)
      say(
        'header',
        `${side}: ${show(x.seen!.header)} reads as ${JSON.stringify(read)}; the client is ${client.src}:${client.sport}`,
      );
    if (read === null || (read.dst === '127.0.0.1' && read.dport === x.port)) continue;
    if (side === 'keepip' && believed && read.dst === canonical(c.dst.text) && read.dport === c.dport)
      met.add('dst-from-header');
    else
      say(
        'header',
        `${side}: the destination ${read.dst}:${read.dport} is neither its listener nor the header's`,
      );
  }
  const k = o.keepip;
  if (JSON.stringify(k.decoded!.nginx) !== JSON.stringify(k.decoded!.haproxy))
    say(
      'header',
      `keepip's ${show(k.seen!.header)}: nginx reads ${JSON.stringify(k.decoded!.nginx)}, HAProxy ${JSON.stringify(k.decoded!.haproxy)}`,
    );
  const tokens = (side: Side) => o[side].seen!.header!.toString('latin1').split(' ');
  if (believed) {
    // The same client in the same words: family, source address, source port.
    const [kt, nt] = [tokens('keepip'), tokens('nginx')];
    if (kt[1] !== nt[1] || canonical(kt[2]!) !== canonical(nt[2]!) || kt[4] !== nt[4])
      say('header', `keepip writes ${show(k.seen!.header)} where nginx writes ${show(o.nginx.seen!.header)}`);
    else if (kt[2] !== nt[2]) met.add('v1-address-text');
    return;
  }
  for (const side of SIDES) {
    const x = o[side];
    const want = `PROXY TCP4 ${x.from} 127.0.0.1 ${x.client.localPort} ${x.port}\r\n`;
    if (x.seen!.header!.toString('latin1') !== want)
      say('header', `${side}: ${show(x.seen!.header)}, not ${JSON.stringify(want)}`);
  }
}

/** The fields of a connection log line that are compared (not $session_time), the side's own values neutral. */
function logFields(
  line: string[],
  own: { from: string; header?: number },
  skip: readonly string[] = [],
): Record<string, string> {
  const names = [
    'peer',
    'remote_addr',
    'protocol',
    'status',
    'bytes_sent',
    'bytes_received',
    'session_time',
    'proxy_protocol_addr',
    'upstream_addr',
    'upstream_bytes_sent',
    'upstream_bytes_received',
    'proxy_upstream_name',
  ];
  const address = (a: string) => (a === own.from ? '<peer>' : net.isIP(a) === 0 ? a : canonical(a));
  const out: Record<string, string> = {};
  names.forEach((name, i) => {
    let value = line[i] ?? '(none)';
    if (name === 'remote_addr' || name === 'proxy_protocol_addr' || name === 'peer') value = address(value);
    // Less the PROXY header to the backend (its bytes differ with the listener port).
    if (name === 'upstream_bytes_sent' && own.header !== undefined)
      value = value.replace(/\d+$/, (last) => `${Number(last) - own.header!}`);
    if (name !== 'session_time' && !skip.includes(name)) out[name] = value;
  });
  return out;
}

// ---------------------------------------------------------------------------------------------------
// The tests.

type Results = Awaited<ReturnType<typeof runAll>>;

/** A peer inside proxy-real-ip-cidr names another client: nginx (without enable-real-ip) shows the TCP peer. */
function assertForged(r: Results): void {
  const { keepip: k, nginx: n } = r.forged;
  assert.deepEqual(
    { backend: n.decodedSource, log: n.logged },
    { backend: n.from, log: n.fromDec },
    'nginx (the model)',
  );
  assert.deepEqual(
    { backend: k.decodedSource, log: k.logged },
    { backend: k.from, log: k.fromDec },
    'without enable-real-ip keepip must not believe a client-chosen address that ingress-nginx ignores: the template writes set_real_ip_from into the stream block only with enable-real-ip (default false)',
  );
}

/** The client's FIN: bytes and EOF at the backend, its answer back to the client. */
function assertClientFin(r: Results): void {
  for (const side of SIDES) {
    const x = r.finC[side];
    assert.equal(x.seen.length, 1, side);
    assert.deepEqual(
      [x.seen[0]!.data.toString(), x.seen[0]!.eof, x.client.hung],
      [x.sent, true, false],
      side,
    );
  }
  assert.equal(r.finC.keepip.client.got.toString(), `got:${r.finC.keepip.sent.length}`);
  if (r.finC.nginx.client.got.length === 0) met.add('half-close');
}

/** The backend's FIN: the client sees it; the client's bytes after it still reach the backend. */
function assertBackendFin(r: Results): void {
  for (const side of SIDES)
    assert.deepEqual([r.finB[side].client.sawEnd, r.finB[side].client.hung], [true, false], side);
  assert.equal(r.finB.keepip.seen[0]!.data.toString(), '@@fin-backend-k finfirst\nmore');
  if (r.finB.nginx.seen[0]!.data.toString() === '@@fin-backend-n finfirst\n') met.add('half-close');
}

/** A reset or a client gone on one side closes the other. */
function assertResets(r: Results): void {
  for (const side of SIDES) {
    assert.deepEqual([r.resetB[side].client.hung, r.resetB[side].client.got.toString()], [false, ''], side);
    assert.equal(
      r.goneReset[side].backendClosed,
      true,
      `${side}: the backend stays connected after the client's reset`,
    );
    assert.equal(
      r.goneFin[side].backendClosed,
      true,
      `${side}: the backend stays connected after the client left`,
    );
  }
}

/** No endpoints: closed at once, nothing sent, 502. */
function assertNoEndpoints(r: Results): void {
  for (const side of SIDES) {
    const x = r.none[side];
    assert.deepEqual([x.client.hung, x.client.got.toString(), x.line[3]], [false, '', '502'], side);
  }
}

/** A refusing endpoint, then the next: one connection, its own header, the bytes once. */
function assertNextUpstream(r: Results, bench: Bench): void {
  const { refused, recProxy } = bench.upstreams;
  for (const side of SIDES) {
    const x = r.pair[side];
    assert.equal(x.seen.length, 1, `${side}: connections to the second endpoint`);
    assert.equal(x.seen[0]!.data.toString(), x.sent, side);
    assert.deepEqual(
      x.decoded?.nginx,
      { src: x.from, sport: x.client.localPort, dst: '127.0.0.1', dport: portOf(bench, side, 'pair') },
      side,
    );
    assert.equal(x.line[8], `127.0.0.1:${refused}, 127.0.0.1:${recProxy}`, side);
  }
}

/** proxy-stream-timeout: both sides closed, nothing sent. */
function assertIdle(r: Results): void {
  for (const side of SIDES) {
    const x = r.idled[side];
    assert.deepEqual(
      [x.client.hung, x.client.got.toString(), x.line[3], x.line[4]],
      [false, '', '200', '0'],
      side,
    );
  }
}

/** A stalled partial PROXY header: the client closed, nothing dialled. */
function assertStalledHeader(r: Results, bench: Bench): void {
  for (const side of SIDES)
    assert.deepEqual([r.stalled[side].client.hung, r.stalled[side].client.got.toString()], [false, ''], side);
  assert.equal(bench.stall.accepted(), 0);
}

/** UDP: the proxy's address at the backend, one answer per datagram. */
function assertUdp(r: Results): void {
  for (const side of SIDES) assert.deepEqual(r.udp[side].seenFrom, ['127.0.0.1'], side);
  assert.deepEqual(r.udp.keepip.answers, ['a1:q-udp-k', 'a1:r-udp-k']);
  // nginx 1.22 also forwards a second answer when it came in the same read as the first (a race):
  // keepip's exactly-one is the directive's meaning; nginx's first answer is all that is compared.
  assert.equal(r.udp.nginx.answers[0], 'a1:q-udp-n');
}

/** The connection log lines of the same sessions, field by field (not $session_time): the differences. */
async function logDifferences(r: Results, bench: Bench): Promise<string[]> {
  const differences: string[] = [];
  const compare = (
    what: string,
    pair: Record<Side, { from: string; line: string[]; header?: number }>,
    skip: string[] = [],
  ) => {
    const [k, n] = SIDES.map((side) => logFields(pair[side].line, pair[side], skip));
    if (JSON.stringify(k) !== JSON.stringify(n))
      differences.push(`${what}:\n  keepip ${JSON.stringify(k)}\n  nginx  ${JSON.stringify(n)}`);
  };
  // After a client's FIN nginx sends nothing more (half-close): what went to the client after it is not compared.
  const afterFin = ['bytes_sent', 'upstream_bytes_received'];
  r.cases.forEach((c, i) => {
    const o = r.headers[i]!;
    if (o.keepip.seen === null || o.nginx.seen === null) return;
    const header = (side: Side) => ({ ...o[side], header: o[side].seen!.header?.length ?? 0 });
    compare(c.name, { keepip: header('keepip'), nginx: header('nginx') }, afterFin);
  });
  const pairHeader = (side: Side) => ({
    ...r.pair[side],
    header: r.pair[side].seen[0]!.header?.length ?? 0,
  });
  compare('next upstream', { keepip: pairHeader('keepip'), nginx: pairHeader('nginx') }, afterFin);
  compare('idle', r.idled);
  compare('no endpoints', r.none, ['upstream_addr', 'upstream_bytes_sent', 'upstream_bytes_received']);
  if (r.none.keepip.line[8] === '-' && r.none.nginx.line[8] !== '-') met.add('log-no-endpoint');
  // The first session of each (nginx may have forwarded the race's second answer in it: see the UDP test).
  compare('udp', r.udp, ['bytes_sent', 'upstream_bytes_received']);
  const stalled = async (side: Side) => ({
    from: r.stalled[side].from,
    line: await sessionLine(bench, side, r.stalled[side].from),
  });
  const refusedHeader = { keepip: await stalled('keepip'), nginx: await stalled('nginx') };
  compare('stalled PROXY header', refusedHeader, ['proxy_upstream_name']);
  if (refusedHeader.nginx.line[11] === '' && refusedHeader.keepip.line[11] !== '') met.add('log-name-unset');
  return differences;
}

describe('tcp-/udp-services against nginx 1.22 stream as ingress-nginx renders them', () => {
  let bench: Bench;
  let r: Results;
  before(async () => {
    // .ci/run installs it; a missing module is a failure that says so, never a silent skip.
    assert.ok(
      existsSync(STREAM_MODULE),
      `nginx's stream module (${STREAM_MODULE}, Debian's libnginx-mod-stream) is not installed`,
    );
    bench = await startBench();
    r = await runAll(bench);
  });
  after(async () => {
    await Promise.all(bench?.runners.map((r) => r.close()) ?? []);
    await Promise.all([
      bench?.nginx.stop(),
      bench?.haproxy.stop(),
      bench?.recPlain.close(),
      bench?.recProxy.close(),
      bench?.stall.close(),
      bench?.udp.close(),
    ]);
  });

  const headerProblems = (tag: Problem['tag']) =>
    r.cases
      .flatMap((c, i) => checkHeaderCase(c, r.headers[i]!))
      .filter((p) => p.tag === tag)
      .map((p) => p.text);

  it('the PROXY header a backend gets names the client nginx names, and nginx and HAProxy read it alike', () =>
    assert.deepEqual(headerProblems('header'), []));
  it("the client's bytes reach the backend unchanged, after a header in the same segment or not", () =>
    assert.deepEqual(headerProblems('bytes'), []));
  it('a PROXY header from a peer in proxy-real-ip-cidr without enable-real-ip: the backend and the log get the TCP peer, as from nginx', () =>
    assertForged(r));
  it("a client's FIN: the backend reads every byte and EOF, and its answer still reaches the client", () =>
    assertClientFin(r));
  it("a backend's FIN: the client sees it, and what the client sends after still reaches the backend", () =>
    assertBackendFin(r));
  it('a reset on one side closes the other: the client after a backend reset, the backend after a client reset or a client gone', () =>
    assertResets(r));
  it('no endpoints: the client is closed at once with nothing sent, status 502', () => assertNoEndpoints(r));
  it('a refusing endpoint: the next one gets the connection once, with its own PROXY header and the first bytes', () =>
    assertNextUpstream(r, bench));
  it('proxy-stream-timeout: an idle connection is closed on both sides, nothing sent either way', () =>
    assertIdle(r));
  it('a partial PROXY header that stalls: the client is closed, the backend never dialled', () =>
    assertStalledHeader(r, bench));
  it("UDP: one datagram each way, the backend sees the proxy's address, one answer per datagram (proxy-stream-responses 1)", () =>
    assertUdp(r));
  it("the connection log line: nginx's fields for the same sessions", async () =>
    assert.deepEqual(await logDifferences(r, bench), []));
  it('every ALLOWED difference was met by some case', () =>
    assert.deepEqual(
      Object.keys(ALLOWED).filter((key) => !met.has(key)),
      [],
    ));
});
