// Attacks on multi-process mode (`keepip gateway --workers 2`) from the outside, with many connections
// so that both workers serve the attacker (named by nginx's $pid in the access log):
//   limits: limit-rpm × limit-burst-multiplier per client address, counted once for the pod: a client
//     spreading its requests over both workers gets what one process gives it (compared with a one-process
//     gateway fed the same sequence), rotating X-Forwarded-For or PROXY sources from an untrusted peer buys
//     no fresh budget in any worker, limit-allowlist exempts only the real address;
//   access: allowlist, denylist, forwarded headers and PROXY trust hold in every worker; a limit key the
//     client writes (limit-conn-zone-variable) crosses the worker-primary channel intact;
//   reloads: a rejected configuration changes nothing anywhere, a tightened allowlist admits the old
//     address in no worker (keep-alive connections opened before the reload included);
//   crashes: a killed worker (no request crashes one from outside) gives the attacker no fresh budget;
//   the IPC limiter: a stalled primary fails closed for the attacker in every worker;
//   /metrics: the workers' counters summed, none counted twice or dropped (a replaced worker's too);
//   lb --workers 2: loadBalancerSourceRanges in every worker, and after a SIGHUP that tightens them.
// Processes are real; every wait is on a log line, a response or the backend.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { manifestDir } from '../fixtures/gateway/manifests.ts';
import { metricSum, scrape, scrapeUntil } from '../helpers/metrics.ts';
import { completeResponses, openRaw, type RawConnection } from '../helpers/net.ts';
import { type Running, startKeepip } from '../helpers/process.ts';
import { exchange as lbExchange, startTarget, type TestTarget } from '../lb/helpers.ts';
import {
  parseServed,
  type ServedLine,
  startWorkersGateway,
  type StdoutLines,
  type WorkersGateway,
  workerLogFormat,
  alive,
} from '../workers/helpers.ts';
import {
  configMapYaml,
  exchange,
  httpRequest,
  ingressYaml,
  type RawReply,
  serviceYaml,
  startSecurityGateway,
  topologyFromYaml,
} from './helpers.ts';
import { nlbManifest } from '../helpers/nlb-manifest.ts';

const ALLOWED = '127.0.0.2';
const ATTACKER = '127.0.0.3';
const SPOOFER = '127.0.0.4';
const SECOND = '127.0.0.6';
const EXEMPT = '127.0.0.9';
const PROXY = '127.0.0.10';

/** limit-rpm 1 × limit-burst-multiplier 5: six requests per key at once, one more a minute. */
const BUDGET = 6;

interface Rules {
  marker: string;
  allow: string;
  trust: string;
  proxyProtocol?: boolean;
  /** The ConfigMap's limit-conn-zone-variable. */
  limitKey?: string;
}

function manifests(backendPort: number, rules: Rules): string {
  const rpm = { 'limit-rpm': '1', 'limit-burst-multiplier': '5' };
  return [
    configMapYaml({
      'log-format-upstream': workerLogFormat(rules.marker),
      'proxy-real-ip-cidr': rules.trust,
      ...(rules.proxyProtocol === true
        ? { 'use-proxy-protocol': 'true' }
        : { 'use-forwarded-headers': 'true' }),
      ...(rules.limitKey === undefined ? {} : { 'limit-conn-zone-variable': rules.limitKey }),
    }),
    serviceYaml('web', backendPort),
    ingressYaml('allow', '/allow', 'web', { 'whitelist-source-range': rules.allow }),
    ingressYaml('deny', '/deny', 'web', { 'denylist-source-range': `${ATTACKER}/32` }),
    ingressYaml('rpm', '/rpm', 'web', { ...rpm, 'limit-allowlist': `${EXEMPT}/32` }),
    ingressYaml('spoof', '/spoof', 'web', rpm),
    ingressYaml('crash', '/crash', 'web', rpm),
    ingressYaml('stall', '/stall', 'web', rpm),
    ingressYaml('open', '/open', 'web'),
  ].join('\n');
}

/** What one request on a fresh connection got, and which worker logged it. */
interface Outcome {
  reply: RawReply;
  served: ServedLine;
}

let sent = 0;

/** One request from `from` on a fresh connection, with the access log line that names its worker. */
async function once(
  gw: StdoutLines & { port: number },
  from: string,
  prefix: string,
  headers: Record<string, string> = {},
  proxyHeader = '',
): Promise<Outcome> {
  const path = `${prefix}/${++sent}`;
  const reply = await exchange(gw.port, from, httpRequest(path, headers), proxyHeader);
  const escaped = path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const [line] = await gw.waitForLines(new RegExp(` "GET ${escaped} HTTP/1\\.1"$`), 1);
  const served = parseServed(line ?? '');
  assert.ok(served !== null, `a log line for ${path}: ${line}`);
  return { reply, served };
}

/**
 * Requests from `from` (10 at a time, each on a fresh connection; `extra(i)` varies the headers) until
 * every worker of `pids` has served at least `each`; at most 40 rounds.
 */
async function spread(
  gw: StdoutLines & { port: number },
  pids: readonly number[],
  from: string,
  prefix: string,
  each: number,
  extra: (i: number) => { headers?: Record<string, string>; proxy?: string } = () => ({}),
): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  for (let round = 0; round < 40; round++) {
    const batch = Array.from({ length: 10 }, (_, i) => {
      const { headers, proxy } = extra(round * 10 + i);
      return once(gw, from, prefix, headers, proxy);
    });
    outcomes.push(...(await Promise.all(batch)));
    if (pids.every((pid) => outcomes.filter((o) => o.served.pid === pid).length >= each)) return outcomes;
  }
  throw new Error(`not every worker of ${pids.join(', ')} served ${each}: ${outcomes.length} sent`);
}

const statuses = (outcomes: readonly Outcome[]) => outcomes.map((o) => o.reply.status);
const admitted = (outcomes: readonly Outcome[]) => outcomes.filter((o) => o.reply.status === 200).length;

/** Asserts no outcome reached the backend and every one was answered `status` by the gateway. */
function allRefused(outcomes: readonly Outcome[], status: number, what: string): void {
  const wrong = outcomes.filter((o) => o.reply.status !== status || o.served.status !== status);
  assert.deepEqual(wrong, [], `${what}: every request answered ${status}`);
  assert.ok(
    outcomes.every((o) => o.reply.echo === null),
    `${what}: nothing reached the backend`,
  );
}

/** The pids of the last `count` `worker N serving again (pid P)` lines, once there are `total` in all. */
async function servingAgain(gw: WorkersGateway, total: number, count: number): Promise<number[]> {
  await gw.running.waitFor(new RegExp(`(?:[\\s\\S]*?worker \\d serving again \\(pid \\d+\\)){${total}}`));
  const all = [...gw.running.output().matchAll(/worker \d serving again \(pid (\d+)\)/g)];
  return all.slice(-count).map((m) => Number(m[1]));
}

const restartsSoFar = (gw: WorkersGateway) =>
  [...gw.running.output().matchAll(/worker \d serving again \(pid \d+\)/g)].length;

/** SIGKILLs `victims`, waits for their replacements; returns the pids serving afterwards. */
async function killWorkers(gw: WorkersGateway, victims: readonly number[]): Promise<number[]> {
  const before = restartsSoFar(gw);
  for (const pid of victims) process.kill(pid, 'SIGKILL');
  for (const pid of victims)
    await gw.running.waitFor(new RegExp(`worker \\d \\(pid ${pid}\\) exited \\(signal SIGKILL\\)`));
  const replacements = await servingAgain(gw, before + victims.length, victims.length);
  for (const pid of replacements) assert.ok(alive(pid) && !victims.includes(pid));
  return [...gw.pids.filter((pid) => !victims.includes(pid)), ...replacements];
}

/** The status of the `n`th response (1-based) on a kept-alive connection, or 0 when it closed first. */
async function nthStatus(conn: RawConnection, n: number): Promise<number> {
  const raw = await conn.until((r) => completeResponses(r) >= n).catch(() => conn.received());
  if (completeResponses(raw) < n) return 0;
  const heads = [...raw.toString('latin1').matchAll(/HTTP\/1\.1 (\d{3}) /g)];
  return Number(heads[n - 1]?.[1] ?? 0);
}

const keepAliveRequest = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: app.example.com\r\nAccept: application/json\r\n\r\n`;

describe('keepip gateway --workers 2 under attack', () => {
  let backend: RunningWhoami;
  let dir: ReturnType<typeof manifestDir>;
  let file: string;
  let gw: WorkersGateway;
  const rules: Rules = { marker: 'v1', allow: `${ALLOWED}/32,${SECOND}/32`, trust: `${PROXY}/32` };

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    dir = manifestDir();
    file = dir.write('web.yaml', manifests(backend.address.port, rules));
    gw = await startWorkersGateway(file, ['--workers', '2']);
  });
  after(async () => {
    try {
      if (gw !== undefined) process.kill(gw.running.child.pid ?? 0, 'SIGCONT');
    } catch {}
    assert.equal(await gw?.running.stop(), 0);
    await backend?.close();
    dir?.remove();
  });

  test('limit-rpm × burst over both workers admits exactly what one process admits for the same sequence', async () => {
    const outcomes = await spread(gw, gw.pids, ATTACKER, '/rpm', BUDGET + 1);
    const one = await startSecurityGateway(topologyFromYaml(manifests(backend.address.port, rules)));
    const single: number[] = [];
    try {
      for (let i = 0; i < outcomes.length; i += 10) {
        const size = Math.min(10, outcomes.length - i);
        const batch = Array.from({ length: size }, (_, j) =>
          exchange(one.port, ATTACKER, httpRequest(`/rpm/one-${i + j}`)),
        );
        single.push(...(await Promise.all(batch)).map((r) => r.status));
      }
    } finally {
      await one.close();
    }
    assert.equal(single.filter((s) => s === 200).length, BUDGET, `one process: ${single.join(' ')}`);
    assert.equal(admitted(outcomes), BUDGET, `two workers: ${statuses(outcomes).join(' ')}`);
    assert.ok(statuses(outcomes).every((s) => s === 200 || s === 503));
    for (const pid of gw.pids) {
      const refused = outcomes.filter((o) => o.served.pid === pid && o.served.status === 503);
      assert.ok(refused.length >= 1, `worker ${pid} refused its share too`);
    }
  });

  test('forwarded addresses from an untrusted peer buy no fresh budget and no limit-allowlist exemption in any worker', async () => {
    // Every request names another client, the exempt address among them: the key stays the peer's.
    const spoofed = await spread(gw, gw.pids, SPOOFER, '/rpm', BUDGET + 1, (i) => ({
      headers: { 'X-Forwarded-For': i % 2 === 0 ? EXEMPT : `10.7.${i >> 8}.${i & 255}` },
    }));
    assert.equal(admitted(spoofed), BUDGET, statuses(spoofed).join(' '));
    // The real exempt address is never limited, whichever worker serves it.
    const exempt = await spread(gw, gw.pids, EXEMPT, '/rpm', BUDGET + 1);
    assert.equal(admitted(exempt), exempt.length, statuses(exempt).join(' '));
    // From the trusted proxy the header is the client: each request is a new key (the headers are read).
    const relayed = await spread(gw, gw.pids, PROXY, '/rpm', BUDGET + 1, (i) => ({
      headers: { 'X-Forwarded-For': `10.8.${i >> 8}.${i & 255}` },
    }));
    assert.equal(admitted(relayed), relayed.length, statuses(relayed).join(' '));
  });

  test('allowlist and denylist hold in every worker, whatever forwarded headers an untrusted peer sends', async () => {
    const claim = {
      'X-Forwarded-For': ALLOWED,
      'X-Real-IP': ALLOWED,
      Forwarded: `for=${ALLOWED}`,
    };
    const outside = await spread(gw, gw.pids, ATTACKER, '/allow', 3, () => ({ headers: claim }));
    allRefused(outside, 403, 'allowlist miss with forged headers');
    const listed = await spread(gw, gw.pids, ATTACKER, '/deny', 3, (i) => ({
      headers: { 'X-Forwarded-For': `10.9.0.${i & 255}` },
    }));
    allRefused(listed, 403, 'denylisted peer with forged headers');
    // The trusted proxy relaying the denylisted address is refused in every worker; relaying the allowed
    // one is admitted (the headers are honoured where they should be).
    const relayedDeny = await spread(gw, gw.pids, PROXY, '/deny', 2, () => ({
      headers: { 'X-Forwarded-For': ATTACKER },
    }));
    allRefused(relayedDeny, 403, 'denylisted address relayed by the trusted proxy');
    const relayedAllow = await spread(gw, gw.pids, PROXY, '/allow', 2, () => ({
      headers: { 'X-Forwarded-For': ALLOWED },
    }));
    assert.equal(admitted(relayedAllow), relayedAllow.length, statuses(relayedAllow).join(' '));
  });

  test('/metrics sums the workers: requests and denials counted once each, none dropped', async () => {
    const lines = gw
      .stdoutLines()
      .map(parseServed)
      .filter((s): s is ServedLine => s !== null);
    const denied = lines.filter((s) => s.status === 403 || s.status === 503).length;
    assert.deepEqual(new Set(lines.map((s) => s.pid)), new Set(gw.pids), 'both workers served');
    const text = await scrapeUntil(
      '127.0.0.1',
      gw.metricsPort,
      (t) => metricSum(t, 'keepip_gateway_requests_total') >= lines.length,
      'every request counted',
    );
    assert.equal(metricSum(text, 'keepip_gateway_requests_total'), lines.length);
    assert.equal(metricSum(text, 'nginx_ingress_controller_nginx_process_requests_total'), lines.length);
    assert.equal(metricSum(text, 'keepip_gateway_denials_total'), denied);
  });

  test('a rejected reload (loosened allowlist, invalid proxy-real-ip-cidr) changes nothing in any worker', async () => {
    const loose = { marker: 'bad', allow: '127.0.0.0/8', trust: 'not-a-cidr' };
    dir.write('web.yaml', manifests(backend.address.port, loose));
    await gw.running.waitFor(/reload rejected \(.*\); still serving config v1/);
    const outside = await spread(gw, gw.pids, ATTACKER, '/allow', 2);
    allRefused(outside, 403, 'the old allowlist');
    assert.ok(outside.every((o) => o.served.marker === 'v1'));
    // The old trust too: the proxy's header still names the client, in every worker.
    const relayed = await spread(gw, gw.pids, PROXY, '/allow', 2, () => ({
      headers: { 'X-Forwarded-For': ALLOWED },
    }));
    assert.equal(admitted(relayed), relayed.length, statuses(relayed).join(' '));
  });

  test('a tightened allowlist: once the reload is reported, no worker admits the old address, kept-alive connections included', async (t) => {
    // Keep-alive connections from the address about to be removed, until both workers hold some.
    const kept: Array<{ conn: RawConnection; pid: number }> = [];
    for (let i = 0; i < 40 && !gw.pids.every((pid) => kept.some((k) => k.pid === pid)); i++) {
      const conn = await openRaw({ host: '127.0.0.1', port: gw.port, localAddress: ALLOWED });
      const path = `/allow/kept-${i}`;
      conn.socket.write(keepAliveRequest(path));
      assert.equal(await nthStatus(conn, 1), 200);
      const [line] = await gw.waitForLines(new RegExp(` "GET ${path} HTTP/1\\.1"$`), 1);
      kept.push({ conn, pid: parseServed(line ?? '')?.pid ?? 0 });
    }
    try {
      assert.ok(
        gw.pids.every((pid) => kept.some((k) => k.pid === pid)),
        'both workers hold one',
      );
      dir.write(
        'web.yaml',
        manifests(backend.address.port, { ...rules, marker: 'v2', allow: `${SECOND}/32` }),
      );
      await gw.running.waitFor(/reloaded: config v2 from/);
      const again = await Promise.all(
        kept.map(({ conn }, i) => {
          conn.socket.write(keepAliveRequest(`/allow/again-${i}`));
          return nthStatus(conn, 2);
        }),
      );
      t.diagnostic(`kept-alive connections after the reload answered: ${again.join(' ')}`);
      assert.ok(
        again.every((status) => status !== 200),
        `old keep-alive connections after the reload: ${again.join(' ')}`,
      );
    } finally {
      for (const { conn } of kept) conn.destroy();
    }
    const removed = await spread(gw, gw.pids, ALLOWED, '/allow', 2);
    allRefused(removed, 403, 'the removed address');
    const kept2 = await spread(gw, gw.pids, SECOND, '/allow', 2);
    assert.equal(admitted(kept2), kept2.length, statuses(kept2).join(' '));
  });

  test('killed workers are replaced, and the attacker gets no fresh limit-rpm budget from the restart', async () => {
    const first = await spread(gw, gw.pids, ATTACKER, '/crash', BUDGET + 1);
    assert.equal(admitted(first), BUDGET, statuses(first).join(' '));
    gw.pids = await killWorkers(gw, gw.pids);
    const afterwards = await spread(gw, gw.pids, ATTACKER, '/crash', 2);
    allRefused(afterwards, 503, 'the spent budget after both workers were replaced');
  });

  test("/metrics counters never go backwards when a worker is replaced (a dead worker's counts are kept)", async () => {
    const served = await spread(gw, gw.pids, ALLOWED, '/open', 2);
    assert.equal(admitted(served), served.length);
    const before = await scrape('127.0.0.1', gw.metricsPort);
    const requests = metricSum(before, 'keepip_gateway_requests_total');
    const denials = metricSum(before, 'keepip_gateway_denials_total');
    const [victim] = gw.pids as [number];
    gw.pids = await killWorkers(gw, [victim]);
    const after = await scrape('127.0.0.1', gw.metricsPort);
    assert.ok(
      metricSum(after, 'keepip_gateway_requests_total') >= requests,
      `keepip_gateway_requests_total ${requests} -> ${metricSum(after, 'keepip_gateway_requests_total')}`,
    );
    assert.ok(
      metricSum(after, 'keepip_gateway_denials_total') >= denials,
      `keepip_gateway_denials_total ${denials} -> ${metricSum(after, 'keepip_gateway_denials_total')}`,
    );
  });

  test('a stalled primary fails closed for the attacker in every worker; exempt and unlimited traffic is served', async (t) => {
    const primary = gw.running.child.pid ?? 0;
    process.kill(primary, 'SIGSTOP');
    let stalled: Outcome[] = [];
    try {
      stalled = await spread(gw, gw.pids, ATTACKER, '/stall', 2);
      // The exempt address and an unlimited location never ask the primary.
      assert.equal((await once(gw, EXEMPT, '/rpm')).reply.status, 200);
      assert.equal((await once(gw, ATTACKER, '/open')).reply.status, 200);
    } finally {
      process.kill(primary, 'SIGCONT');
    }
    allRefused(stalled, 503, 'limited requests while the primary is stopped');
    // The checks queued during the stall are answered late and counted: the attacker never gets more
    // than one budget in all from the stall.
    const afterwards = await spread(gw, gw.pids, ATTACKER, '/stall', BUDGET + 1);
    t.diagnostic(`after the stall: ${admitted(afterwards)} of ${afterwards.length} admitted`);
    assert.ok(admitted(afterwards) <= BUDGET, statuses(afterwards).join(' '));
  });
});

describe('keepip gateway --workers 2 with use-proxy-protocol', () => {
  let backend: RunningWhoami;
  let dir: ReturnType<typeof manifestDir>;
  let gw: WorkersGateway;
  const from = (address: string) => `PROXY TCP4 ${address} 127.0.0.1 5555 80\r\n`;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    dir = manifestDir();
    const rules: Rules = {
      marker: 'p',
      allow: `${ALLOWED}/32`,
      trust: `${PROXY}/32`,
      proxyProtocol: true,
      limitKey: '$binary_remote_addr$http_x_key',
    };
    const file = dir.write('proxy.yaml', manifests(backend.address.port, rules));
    gw = await startWorkersGateway(file, ['--workers', '2']);
  });
  after(async () => {
    assert.equal(await gw?.running.stop(), 0);
    await backend?.close();
    dir?.remove();
  });

  test("an untrusted peer's PROXY header is refused by every worker before any request is read", async () => {
    const refusals = (pid: number) =>
      [
        ...gw.running
          .output()
          .matchAll(
            new RegExp(
              `\\] ${pid}#\\d+: \\*\\d+ PROXY protocol peer ${ATTACKER} is not a trusted proxy`,
              'g',
            ),
          ),
      ].length;
    let total = 0;
    for (let round = 0; round < 40 && !gw.pids.every((pid) => refusals(pid) > 0); round++) {
      const batch = Array.from({ length: 10 }, (_, i) =>
        exchange(gw.port, ATTACKER, httpRequest(`/allow/forged-${round}-${i}`), from(ALLOWED)),
      );
      const replies = await Promise.all(batch);
      assert.ok(
        replies.every((r) => r.status === 0 && r.closedByServer),
        'closed unanswered',
      );
      total += replies.length;
      await gw.running.waitFor(
        new RegExp(`(?:[\\s\\S]*?PROXY protocol peer ${ATTACKER} is not a trusted proxy){${total}}`),
      );
    }
    assert.ok(
      gw.pids.every((pid) => refusals(pid) > 0),
      'both workers refused some',
    );
    assert.ok(!gw.stdoutLines().some((line) => line.includes('/allow/forged-')), 'no request was served');
  });

  test('addresses relayed by the trusted proxy meet the allowlist, denylist and limit-rpm in every worker', async () => {
    const allowed = await spread(gw, gw.pids, PROXY, '/allow', 2, () => ({ proxy: from(ALLOWED) }));
    assert.equal(admitted(allowed), allowed.length, statuses(allowed).join(' '));
    const outside = await spread(gw, gw.pids, PROXY, '/allow', 2, () => ({ proxy: from(ATTACKER) }));
    allRefused(outside, 403, 'a relayed address off the allowlist');
    const denied = await spread(gw, gw.pids, PROXY, '/deny', 2, (i) => ({
      proxy: from(ATTACKER),
      headers: { 'X-Forwarded-For': `10.6.0.${i & 255}` },
    }));
    allRefused(denied, 403, 'a relayed denylisted address');
    // One relayed client rotating X-Forwarded-For (not read: the PROXY header names the client).
    const limited = await spread(gw, gw.pids, PROXY, '/spoof', BUDGET + 1, (i) => ({
      proxy: from('10.5.5.5'),
      headers: { 'X-Forwarded-For': `10.4.${i >> 8}.${i & 255}` },
    }));
    assert.equal(admitted(limited), BUDGET, statuses(limited).join(' '));
  });
  test('hostile limit keys (quotes, brackets, backslashes, high bytes, long) cross the IPC intact: one budget each over both workers, the channel unbroken', async () => {
    const short = `"],[0,0],null,1]\\\\\\u0000\\${'é'.repeat(8)}`;
    const long = `${short}${'["x",1e999]'.repeat(20)}`;
    for (const key of [short, long]) {
      const outcomes = await spread(gw, gw.pids, PROXY, '/crash', BUDGET + 1, () => ({
        proxy: from('10.3.3.3'),
        headers: { 'X-Key': key },
      }));
      assert.equal(admitted(outcomes), BUDGET, `${key.length} chars: ${statuses(outcomes).join(' ')}`);
    }
    // Another key still gets its own budget in every worker: the limiter channels still answer.
    const fresh = await spread(gw, gw.pids, PROXY, '/stall', 2, () => ({
      proxy: from('10.3.3.3'),
      headers: { 'X-Key': 'fresh' },
    }));
    assert.equal(admitted(fresh), Math.min(fresh.length, BUDGET), statuses(fresh).join(' '));
    assert.doesNotMatch(gw.running.output(), /WORKER_LIMITER_UNAVAILABLE/);
  });
});

describe('keepip lb --workers 2: loadBalancerSourceRanges', () => {
  let target: TestTarget;
  let dir: ReturnType<typeof manifestDir>;
  let file: string;
  let lb: Running;
  let port: number;

  before(async () => {
    target = await startTarget({ behave: (socket) => socket.end('ok') });
    dir = manifestDir();
    file = dir.write('edge.yaml', nlbManifest(target.port, { ranges: [`${ALLOWED}/32`, `${ATTACKER}/32`] }));
    lb = startKeepip(['lb', '-f', file, '--listen', '127.0.0.1:0', '--workers', '2']);
    port = Number((await lb.waitFor(/listening on 127\.0\.0\.1:(\d+) \(web\/edge\)/))[1]);
    await lb.waitFor(/workers: 2 processes/);
  });
  after(async () => {
    await lb?.stop();
    await target?.close();
    dir?.remove();
  });

  /** `count` flows from `from`: what each received ('reset' when the lb reset it). */
  const flows = (from: string, count: number) =>
    Promise.all(
      Array.from({ length: count }, () =>
        lbExchange(port, 'hi', { localAddress: from }).then(
          (r) => r.received.toString(),
          () => 'reset',
        ),
      ),
    );

  test('an address outside the ranges is reset by every worker; a listed one is served', async () => {
    const refusedBy = () =>
      new Set(
        [...lb.output().matchAll(/worker (\d): web\/edge: client 127\.0\.0\.4 is outside the allowed/g)].map(
          (m) => m[1],
        ),
      );
    for (let round = 0; round < 20 && refusedBy().size < 2; round++) {
      assert.deepEqual(new Set(await flows(SPOOFER, 10)), new Set(['reset']));
      await lb.waitFor(/client 127\.0\.0\.4 is outside the allowed source ranges/);
    }
    assert.equal(refusedBy().size, 2, 'both workers reset the outsider');
    assert.deepEqual(new Set(await flows(ATTACKER, 20)), new Set(['ok']), 'listed: served');
  });

  test('after a SIGHUP that removes an address from loadBalancerSourceRanges, no worker forwards its flows', async () => {
    const before = target.accepted.length;
    writeFileSync(file, nlbManifest(target.port, { ranges: [`${ALLOWED}/32`] }));
    lb.child.kill('SIGHUP');
    await lb.waitFor(/reload: web\/edge targets 127\.0\.0\.1:\d+/);
    const removed = await flows(ATTACKER, 20);
    assert.deepEqual(
      { answers: new Set(removed), reachedTarget: target.accepted.length - before },
      { answers: new Set(['reset']), reachedTarget: 0 },
      'the address removed from loadBalancerSourceRanges by the reload',
    );
  });
});
