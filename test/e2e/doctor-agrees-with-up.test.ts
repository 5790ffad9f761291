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
import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import http from 'node:http';
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
  return new Promise((resolve) => {
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
      timeout: 5_000,
    });
    request.on('response', (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? null));
      response.on('error', () => resolve(response.statusCode ?? null));
    });
    request.on('timeout', () => request.destroy(new Error('no response within 5 s')));
    request.on('error', () => resolve(null)); // closed or reset without a response
    request.end();
  });
}

const ACCESS_LINE = /^(\S+) - \S+ \[[^\]]+\] "((?:[^"\\]|\\.)*)" (\d{3}) /;
const WELL_FORMED_REQUEST = /^[A-Z]+ \S+ HTTP\/\d\.\d$/;

async function waitFor<T>(find: () => T | undefined, timeoutMs = 1_000): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined || Date.now() > deadline) return found;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * What the gateway logged for the request marked `marker`: its access line, or, for a request the
 * gateway could not read as one (a PROXY header taken for the request line, G2), the unreadable
 * request lines logged meanwhile, which must all name the same address.
 */
async function loggedAddress(lines: string[], mark: number, marker: string, status: number | null) {
  const access = () =>
    lines
      .slice(mark)
      .map((line) => ACCESS_LINE.exec(line))
      .filter((m): m is RegExpExecArray => m !== null);
  const unreadable = () =>
    access().filter((m) => !WELL_FORMED_REQUEST.test(m[2]!) && m[3] === String(status));
  const started = Date.now();
  const ours = await waitFor(
    () =>
      access().find((m) => m[2]!.includes(marker)) ??
      // No line of ours yet, but the gateway could not read a request: give ours 100 ms more.
      (Date.now() - started > 100 && unreadable().length > 0 ? null : undefined),
    status === null ? 200 : 1_000,
  );
  if (ours) return { address: ours[1]! };
  if (status === null) return { address: null };
  const addresses = new Set(unreadable().map((m) => m[1]!));
  assert.ok(addresses.size <= 1, `one address in the unreadable request lines: ${[...addresses]}`);
  return { address: [...addresses][0] ?? null };
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
        const logged = await loggedAddress(lines, mark, marker, status);
        const observed: Observed = { status, logs: logged.address };
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
          const closed = await waitFor(() =>
            lines.slice(mark).find((l) => l.includes('[error]') && l.includes(`client: ${peer},`)),
          );
          assert.ok(closed, `an error line naming the peer ${peer}\n${context}`);
        }
      });
    }
  });
}
