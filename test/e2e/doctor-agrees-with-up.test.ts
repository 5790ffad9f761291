// Issue 6: the doctor's prediction agrees with what `keepip up` actually does. For every doctor
// fixture (test/fixtures/doctor/*, enumerated), the agreement fixtures (test/fixtures/agree/*) and the
// seed, the same request from the same client address is simulated by the doctor and sent through the
// running chain's LB listener; the status (null: closed or reset without a response) and the address
// the gateway logs as $remote_addr must be the same.
//
// Per fixture: a client on the Ingress allowlist, a client on no list, and that client again with an
// X-Forwarded-For naming the listed client (a forged header must fool both or neither). Cases that
// need a path the local chain does not have are listed in NOT_RUNNABLE with the reason; the test
// asserts that list is exactly the set it leaves out.
//
// "The gateway logged nothing for this request" is proven with a positive marker, not a quiet window:
// after the request, a marker connection goes straight to the gateway; once the gateway has logged the
// marker, everything it logged for the earlier request is in the log before it.
import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import http from '../../src/node-http.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { LocationModel, Topology } from '../../src/config/model.ts';
import { selectLoadBalancer } from '../../src/doctor/chain.ts';
import { defaultHost, simulate } from '../../src/doctor/simulate.ts';
import type { ClientPath, Simulation } from '../../src/doctor/types.ts';
import { loadTopology } from '../../src/k8s/index.ts';
import { CidrSet } from '../../src/net/cidr-set.ts';
import { parseCidr } from '../../src/net/cidr.ts';
import { formatIp } from '../../src/net/ip.ts';
import { type RunningChain, startChain } from '../../src/up/run.ts';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const DOCTOR_FIXTURES = here('../fixtures/doctor/');
const AGREE_FIXTURES = here('../fixtures/agree/');
const SEED = here('../../examples/seed/');

/** On no allow or deny list of any fixture (checked per fixture below). */
const OUTSIDE = '127.0.20.66';
/** The source of the marker connections, used by nothing else. */
const MARKER_CLIENT = '127.0.99.1';

/** The in-cluster callers the doctor's own fixture table asks about (test/doctor/fixtures.test.ts). */
const IN_CLUSTER_CALLERS: Record<string, { client: string; via: ClientPath }[]> = {
  'doctor/hairpin-timeout': [{ client: '127.0.1.1', via: 'in-cluster' }],
  'doctor/in-cluster-bypass': [{ client: '127.0.50.5', via: 'in-cluster' }],
};

/** Cases the local chain cannot play, and why. Must be exactly the cases left out. */
const NOT_RUNNABLE: Record<string, string> = {
  'doctor/hairpin-timeout: 127.0.1.1 via in-cluster':
    'a node calling its own internal NLB is sent back to itself and times out (A8); keepip up has no ' +
    'in-cluster network, and on loopback a connection from a target to itself simply works',
  'doctor/in-cluster-bypass: 127.0.50.5 via in-cluster':
    "a pod calling the LB's IP is short-circuited by kube-proxy straight to the gateway pod, without " +
    'the PROXY header (K3); keepip up has no in-cluster path, every local client goes through the LB listener',
};

interface Case {
  id: string;
  client: string;
  via?: ClientPath;
  forwardedFor?: string;
}

interface Subject {
  name: string;
  dir: string;
  topology: Topology;
  host: string;
  runnable: Case[];
  skipped: { id: string; reason: string }[];
}

async function directories(root: string, prefix: string): Promise<{ name: string; dir: string }[]> {
  const entries = await readdir(root, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => ({ name: `${prefix}/${e.name}`, dir: join(root, e.name) }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The first location of `host` that has an allowlist (valid or not: its valid entries count). */
function allowlisted(topology: Topology, host: string): LocationModel | undefined {
  const vhost = topology.gateway.virtualHosts.find((v) => v.host === host);
  return vhost?.locations.find((l) => l.allow !== null);
}

/** An address inside the first usable entry of an allow list (the raw annotation for an invalid one). */
function clientFrom(location: LocationModel): string {
  const allow = location.allow!;
  const entries = allow.valid ? allow.cidrs : allow.raw.split(',').map((e) => e.trim());
  for (const entry of entries) {
    const parsed = parseCidr(entry);
    if (!parsed.ok) continue;
    const network = formatIp(parsed.cidr.address);
    const maxPrefix = parsed.cidr.address.family === 4 ? 32 : 128;
    if (parsed.cidr.prefix === maxPrefix) return network;
    // Not the network address itself: a host inside the range.
    if (parsed.cidr.address.family === 4) {
      const octets = network.split('.').map(Number);
      octets[3] = (octets[3] ?? 0) + 1;
      return octets.join('.');
    }
    return network.replace(/::$/, '::1');
  }
  throw new Error(`no usable entry in the allowlist "${allow.raw}"`);
}

function onAnyList(topology: Topology, address: string): boolean {
  for (const vhost of topology.gateway.virtualHosts) {
    for (const location of vhost.locations) {
      for (const list of [location.allow, location.deny]) {
        if (list === null || !list.valid) continue;
        const built = CidrSet.build(list.cidrs);
        if (built.ok && built.set.has(address)) return true;
      }
    }
  }
  return false;
}

const isLoopback = (address: string) => address.startsWith('127.') || address === '::1';

function caseId(subject: string, c: Omit<Case, 'id'>): string {
  return (
    `${subject}: ${c.client}` +
    (c.via !== undefined ? ` via ${c.via}` : '') +
    (c.forwardedFor !== undefined ? ` forging X-Forwarded-For ${c.forwardedFor}` : '')
  );
}

async function prepare(name: string, dir: string): Promise<Subject> {
  const topology = await loadTopology([dir]);
  const host = defaultHost(topology);
  const location = allowlisted(topology, host);
  assert.ok(location, `${name}: the fixture's host ${host} has an allowlist`);
  const listed = clientFrom(location);
  assert.ok(!onAnyList(topology, OUTSIDE), `${name}: ${OUTSIDE} is on no list`);
  const wanted: Omit<Case, 'id'>[] = [
    { client: listed },
    { client: OUTSIDE },
    { client: OUTSIDE, forwardedFor: listed },
    ...(IN_CLUSTER_CALLERS[name] ?? []),
  ];
  const runnable: Case[] = [];
  const skipped: Subject['skipped'] = [];
  for (const c of wanted) {
    const id = caseId(name, c);
    const via = simulate(topology, { client: c.client, host, ...(c.via ? { via: c.via } : {}) }).via;
    if (via === 'in-cluster') skipped.push({ id, reason: 'in-cluster client path' });
    else if (!isLoopback(c.client)) skipped.push({ id, reason: 'client outside 127.0.0.0/8' });
    else runnable.push({ ...c, id });
  }
  return { name, dir, topology, host, runnable, skipped };
}

const subjects: Subject[] = [];
for (const { name, dir } of [
  ...(await directories(DOCTOR_FIXTURES, 'doctor')),
  ...(await directories(AGREE_FIXTURES, 'agree')),
  ...(await directories(SEED, 'seed')),
]) {
  subjects.push(await prepare(name, dir));
}

interface Observed {
  status: number | null;
  /** $remote_addr of the request's access log line; null when the gateway logged none. */
  logs: string | null;
}

function send(
  target: { host: string; port: number },
  from: string,
  host: string,
  path: string,
  forwardedFor: string | undefined,
): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const request = http.request({
      host: target.host,
      port: target.port,
      localAddress: from,
      path,
      headers: {
        host,
        accept: 'application/json',
        ...(forwardedFor !== undefined ? { 'x-forwarded-for': forwardedFor } : {}),
      },
      agent: false,
      timeout: 30_000,
    });
    request.on('response', (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? null));
      response.on('error', () => resolve(response.statusCode ?? null));
    });
    // A bound for a hung chain, not a verdict: no answer at all is a failure, never "closed".
    request.on('timeout', () => {
      request.destroy();
      reject(new Error(`no response and no close within 30 s from ${target.host}:${target.port}`));
    });
    request.on('error', () => resolve(null)); // closed or reset without a response
    request.end();
  });
}

const ACCESS_LINE = /^(\S+) - \S+ \[[^\]]+\] "((?:[^"\\]|\\.)*)" (\d{3}) /;
const WELL_FORMED_REQUEST = /^[A-Z]+ \S+ HTTP\/\d\.\d$/;

/** Resolves with `find()` once it is defined; fails after a generous bound (a broken chain, not a busy machine). */
async function waitFor<T>(find: () => T | undefined, what: () => string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    assert.ok(Date.now() < deadline, what());
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Sends a marker request straight to the gateway from MARKER_CLIENT and resolves once the gateway has
 * logged it: an access line with the marker, or (a listener that expects a PROXY header refuses it) an
 * error line naming MARKER_CLIENT. Returns the index of that line.
 */
async function markerLogged(
  chain: RunningChain,
  lines: string[],
  mark: number,
  marker: string,
): Promise<number> {
  const component = chain.plan.components.find((c) => c.kind === 'gateway');
  assert.ok(component?.kind === 'gateway' && component.http, 'the chain has a gateway with an HTTP listener');
  const status = await send(
    chain.actual(component.http),
    MARKER_CLIENT,
    // An invalid Host: a 400, always logged (the 404 of an unknown host is not, as in ingress-nginx,
    // unless enable-access-log-for-default-backend is on).
    'marker..invalid',
    `/?${marker}`,
    undefined,
  );
  const ofMarker = (line: string) =>
    line.includes(marker) ||
    line.startsWith(`${MARKER_CLIENT} `) ||
    line.includes(`client: ${MARKER_CLIENT},`);
  return waitFor(
    () => {
      const at = lines.findIndex((line, i) => i >= mark && ofMarker(line));
      return at < 0 ? undefined : at;
    },
    () =>
      `the gateway logged nothing for the marker (status ${status}):\n  ${lines.slice(mark).join('\n  ')}`,
  );
}

/**
 * What the gateway logged for the request marked `marker`: its access line, or, for a request the
 * gateway could not read as one (a PROXY header taken for the request line, G2), the unreadable
 * request lines logged meanwhile, which must all name the same address. Read once the marker that
 * follows it is logged, so nothing of the request can still come.
 */
function loggedAddress(lines: string[], status: number | null, marker: string): string | null {
  const access = lines.map((line) => ACCESS_LINE.exec(line)).filter((m): m is RegExpExecArray => m !== null);
  const ours = access.find((m) => m[2]!.includes(marker));
  if (ours) return ours[1]!;
  if (status === null) return null;
  const unreadable = access.filter(
    (m) => !WELL_FORMED_REQUEST.test(m[2]!) && m[3] === String(status) && m[1] !== MARKER_CLIENT,
  );
  const addresses = new Set(unreadable.map((m) => m[1]!));
  assert.ok(addresses.size <= 1, `one address in the unreadable request lines: ${[...addresses]}`);
  return [...addresses][0] ?? null;
}

function describeSimulation(sim: Simulation): string {
  return [
    `doctor: ${sim.outcome} ${sim.status ?? 'no status'} (${sim.decidedBy}), logs ${sim.gatewayLogsAddress}`,
    ...sim.hops.map((h) => `  ${h.name}: ${h.sees ?? '-'} ${h.detail}`),
  ].join('\n');
}

test('every case the local chain cannot run is listed, with its reason, and nothing else is left out', () => {
  const skipped = subjects.flatMap((s) => s.skipped.map((k) => k.id)).sort();
  assert.deepEqual(skipped, Object.keys(NOT_RUNNABLE).sort());
  const doctorFixtures = subjects.filter((s) => s.name.startsWith('doctor/'));
  assert.ok(doctorFixtures.length >= 13, 'every doctor fixture directory is a subject');
  for (const subject of subjects) assert.ok(subject.runnable.length >= 3, `${subject.name} runs its clients`);
});

let sequence = 0;

for (const subject of subjects) {
  describe(`doctor and keepip up agree: ${subject.name}`, () => {
    let chain: RunningChain;
    let dir: string;
    const lines: string[] = [];
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'keepip-agree-'));
      await cp(subject.dir, dir, { recursive: true });
      chain = await startChain({
        paths: [dir],
        ports: 'ephemeral',
        watch: false,
        log: (component, line) => {
          if (component === 'gateway') lines.push(line);
        },
      });
    });
    after(async () => {
      await chain?.close();
      await rm(dir, { recursive: true, force: true });
    });

    for (const c of subject.runnable) {
      test(c.id, async () => {
        const sim = simulate(subject.topology, {
          client: c.client,
          host: subject.host,
          path: '/',
          ...(c.via ? { via: c.via } : {}),
          ...(c.forwardedFor !== undefined ? { forwardedFor: c.forwardedFor } : {}),
        });
        const lb = selectLoadBalancer(subject.topology);
        assert.ok(lb, `${subject.name} has a load balancer in front of the gateway`);
        const port = lb.ports.find((p) => p.protocol === 'TCP' && p.port !== 443) ?? lb.ports[0]!;
        const listener = chain.actual({ host: lb.listenAddress, port: port.port });

        // A query string marks the request in the logs; routing and policy look at the path only.
        const marker = `agree=${++sequence}`;
        const mark = lines.length;
        const status = await send(listener, c.client, subject.host, `/?${marker}`, c.forwardedFor);
        const markerAt = await markerLogged(chain, lines, mark, `agree-marker=${sequence}`);
        const logged = loggedAddress(lines.slice(mark, markerAt), status, marker);
        const observed: Observed = { status, logs: logged };
        const predicted: Observed = { status: sim.status, logs: sim.gatewayLogsAddress };
        const context = `${describeSimulation(sim)}\nkeepip up logged:\n  ${lines.slice(mark).join('\n  ')}`;
        assert.deepEqual(observed, predicted, context);

        if (sim.status === 403) {
          // The error line names the same client as the access line (ingress-nginx's pair of lines).
          const forbidden = lines
            .slice(mark)
            .find((l) => l.includes('access forbidden by rule') && l.includes(marker));
          assert.ok(forbidden, `a forbidden line for the request\n${context}`);
          assert.match(forbidden, new RegExp(`client: ${sim.gatewayLogsAddress!.replaceAll('.', '\\.')},`));
        }
        if (sim.outcome === 'connection-closed') {
          // Closed before HTTP: the error line names the TCP peer the doctor says the gateway sees.
          const peer = sim.hops.find((h) => h.name === 'gateway')?.sees;
          assert.ok(peer, context);
          const closed = lines
            .slice(mark, markerAt)
            .find((l) => l.includes('[error]') && l.includes(`client: ${peer},`));
          assert.ok(closed, `an error line naming the peer ${peer}\n${context}`);
        }
      });
    }
  });
}
