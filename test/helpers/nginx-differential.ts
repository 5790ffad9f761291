// The bench of the differential tests against real nginx 1.22 (test/security/*-differential-nginx):
// backends that answer with their id, one nginx whose `http { }` holds a `# BEGIN-CASES`/`# END-CASES`
// block swapped per batch of cases (nginx -t, SIGHUP, then the new generation awaited: every answer
// carries X-Gen and `/__gen` answers the current one), a keepip gateway reloaded with the same cases,
// each probe sent to both, and the generated check: one batch of cases (one host each), the first case
// that differs shrunk by fast-check on a single-host configuration. Each test file keeps its own model of
// ingress-nginx (the servers it renders, the Ingresses keepip gets), its probes and how it reads answers.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type { RequestListener, Server } from 'node:http';
import http from '../../src/node-http.ts';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import type { Topology } from '../../src/config/model.ts';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  ingress,
  type K8sObject,
  type PathSpec,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { mapLimited } from './concurrency.ts';
import { type RunningNginx, startNginx } from './nginx.ts';
import { requireBinary } from './process.ts';

/** The host of the single-case configuration (shrinking, the fixed cases); a batch's are `c<i>.test`. */
export const SINGLE_HOST = 'h.test';

/**
 * Probes in flight per host (8 hosts are checked at once). All of a case's probes at once were
 * thousands of connections, half of them TLS handshakes, to the keepip gateway that runs in the test's
 * own process: under four busy loops some waited past the probes' 20 s safety net and read as "no
 * answer" (redirects, 2 runs in 7), a difference the replay of that one case never showed.
 */
const PROBES_PER_HOST = 24;

const BEGIN = '# BEGIN-CASES';
const END = '# END-CASES';

/** An answer, with the generation (X-Gen) of the nginx workers that gave it; keepip's carry none. */
export interface Generated {
  gen: string | null;
}

/** A backend's handler: 200 with its id as the body and in X-Loc. */
export function idHandler(id: string): RequestListener {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': id.length, 'x-loc': id });
    res.end(id);
  };
}

interface Backends {
  ports: Map<string, number>;
  close(): Promise<void>;
}

async function startBackends(ids: readonly string[], handler: (id: string) => RequestListener) {
  const ports = new Map<string, number>();
  const servers: Server[] = [];
  const close = async () => {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  };
  for (const id of ids) {
    const server = http.createServer(handler(id));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    ports.set(id, (server.address() as AddressInfo).port);
  }
  return { ports, close } satisfies Backends;
}

/** Writes `body` between the markers of nginx's configuration once `nginx -t` accepts the result. */
function swapCases(ngx: RunningNginx, body: string): void {
  const next = readFileSync(ngx.configPath, 'utf8').replace(
    new RegExp(`${BEGIN}[\\s\\S]*${END}`),
    `${BEGIN}\n${body}\n${END}`,
  );
  const candidate = `${ngx.configPath}.next`;
  writeFileSync(candidate, next);
  const args = ['-t', '-q', '-p', ngx.dir, '-e', ngx.errorLogPath, '-c', candidate];
  try {
    execFileSync(requireBinary('nginx'), args, { stdio: 'pipe' });
  } catch (error) {
    throw new Error(
      `nginx refused the generated configuration:\n${(error as { stderr?: Buffer }).stderr}\n${body}`,
    );
  }
  writeFileSync(ngx.configPath, next);
}

/** The cases' block: X-Gen on every answer, a default server (404, `/__gen`), then `servers`. */
function casesHttp(port: number, gen: number, servers: readonly string[]): string {
  return [
    `add_header X-Gen "${gen}" always;`,
    `server { listen 127.0.0.1:${port} default_server; server_name _;`,
    '    location / { return 404; }',
    `    location = /__gen { return 200 "${gen}"; } }`,
    ...servers,
  ].join('\n');
}

export interface DifferentialOptions<P, O extends Generated> {
  /** The backends' ids; `backends` maps each to its port. */
  ids: readonly string[];
  /** Each backend's handler (default: idHandler). */
  handler?: (id: string) => RequestListener;
  /** Sends `probe` for `host` to 127.0.0.1:`port`; the answer. */
  send(port: number, probe: P, host: string): Promise<O>;
  /** The probe of nginx's `/__gen` (sent for the host `probe.invalid`). */
  genProbe: NoInfer<P>;
}

export interface Differential<P, O extends Generated> {
  nginx: RunningNginx;
  gateway: TestGateway;
  /** Backend id -> port. */
  backends: ReadonlyMap<string, number>;
  /**
   * Swaps in nginx's `servers` (given its port: nginx -t, SIGHUP) and keepip's `topology`; resolves
   * when nginx's new workers answer.
   */
  configure(servers: (port: number) => readonly string[], topology: Topology): Promise<void>;
  /** nginx's answer from the current generation's workers (an old worker may still take a connection). */
  askNginx(probe: P, host: string): Promise<O>;
  askKeepip(probe: P, host: string): Promise<O>;
  /**
   * Each probe sent to both at once, PROBES_PER_HOST probes at a time; what `judge` says of the pairs
   * (null: they agree), sorted.
   */
  disagreements(
    probes: readonly P[],
    host: string,
    judge: (probe: P, ngx: O, kip: O) => string | null,
  ): Promise<string[]>;
  close(): Promise<void>;
}

/** The backends, nginx (one port, no cases yet) and a keepip gateway (no Ingress yet). */
export async function startDifferential<P, O extends Generated>(
  options: DifferentialOptions<P, O>,
): Promise<Differential<P, O>> {
  const backends = await startBackends(options.ids, options.handler ?? idHandler);
  let nginx: RunningNginx | undefined;
  try {
    nginx = await startNginx({
      freePorts: 1,
      http: (_dir, [port]) => `${BEGIN}\nserver { listen 127.0.0.1:${port} default_server; }\n${END}`,
      waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
    });
    const gateway = await startTestGateway(topologyOf([]));
    return differential(nginx, gateway, backends, options);
  } catch (error) {
    await nginx?.stop();
    await backends.close();
    throw error;
  }
}

function differential<P, O extends Generated>(
  nginx: RunningNginx,
  gateway: TestGateway,
  backends: Backends,
  { send, genProbe }: DifferentialOptions<P, O>,
): Differential<P, O> {
  const port = nginx.ports[0]!;
  let gen = 0;
  // After a reload nginx's old workers still take new connections for a while (longer on a busy
  // machine: a count of attempts ran out under two busy loops): ask again until the answer carries
  // this generation, for at most 10 s, after which the stale answer is judged (and fails).
  const askNginx = async (probe: P, host: string) => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const reply = await send(port, probe, host);
      if (reply.gen === String(gen) || Date.now() > deadline) return reply;
    }
  };
  const askKeepip = (probe: P, host: string) => send(gateway.httpPort, probe, host);
  return {
    nginx,
    gateway,
    backends: backends.ports,
    async configure(servers, topology) {
      gen++;
      swapCases(nginx, casesHttp(port, gen, servers(port)));
      process.kill(nginx.pid, 'SIGHUP');
      const reloaded = gateway.gateway.reload(topology);
      assert.ok(reloaded.ok, `keepip refused the configuration: ${JSON.stringify(reloaded)}`);
      const deadline = Date.now() + 20_000;
      while ((await send(port, genProbe, 'probe.invalid')).gen !== String(gen)) {
        if (Date.now() > deadline) throw new Error(`nginx never served generation ${gen}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
    askNginx,
    askKeepip,
    async disagreements(probes, host, judge) {
      const out: string[] = [];
      await mapLimited(probes, PROBES_PER_HOST, async (probe) => {
        const [ngx, kip] = await Promise.all([askNginx(probe, host), askKeepip(probe, host)]);
        const finding = judge(probe, ngx, kip);
        if (finding !== null) out.push(finding);
      });
      return out.sort();
    },
    async close() {
      await gateway.close();
      await nginx.stop();
      await backends.close();
    },
  };
}

/** One Ingress of a case as keepip gets it. */
export interface CaseIngress {
  annotations: Record<string, string>;
  paths: PathSpec[];
}

/**
 * keepip's topology for a batch: `objects` (a Secret…), a Service `svc-<id>` per backend but those
 * of `noService`, and case i's Ingresses on hosts[i], named `c<i>-ing<j>` and created one second apart
 * in their order (merge order).
 */
export function casesTopology<C>(spec: {
  cases: readonly C[];
  hosts: readonly string[];
  backends: ReadonlyMap<string, number>;
  ingressesOf: (c: C) => CaseIngress[];
  objects?: readonly K8sObject[];
  noService?: readonly string[];
}): Topology {
  const services = [...spec.backends]
    .filter(([id]) => !spec.noService?.includes(id))
    .flatMap(([id, port]) => serviceWithEndpoints({ name: `svc-${id}`, ports: [port] }));
  const ingresses = spec.cases.flatMap((c, i) =>
    spec.ingressesOf(c).map(({ annotations, paths }, j) =>
      ingress({
        name: `c${i}-ing${j}`,
        host: spec.hosts[i]!,
        annotations,
        createdAt: `2024-01-01T00:00:${String(j).padStart(2, '0')}Z`,
        paths,
      }),
    ),
  );
  return topologyOf([...(spec.objects ?? []), ...services, ...ingresses]);
}

export interface GeneratedCheck<C> {
  arb: fc.Arbitrary<C>;
  runs: number;
  /** The variable that replays a run (`<n>`) or explores (`random`); else the fixed `defaultSeed`. */
  seedVariable: string;
  defaultSeed: number;
  /** The cases nginx accepts (default: all); at least half the runs must be. */
  accepts?: (c: C) => boolean;
  /** Configures the batch, case i on hosts[i]. */
  configure(cases: readonly C[], hosts: readonly string[]): Promise<void>;
  /** The disagreements on `host`, where `c` is served. */
  differences(c: C, host: string): Promise<string[]>;
  /** Configures `c` alone and asserts that it shows no difference: what fast-check shrinks on. */
  assertAlone(c: C): Promise<void>;
  describe(c: C): string;
  shrinkTimeLimitMs: number;
}

/** The first case of the batch (checked 8 hosts at a time) that shows a difference, and its differences. */
async function firstDiffering<C>(
  check: GeneratedCheck<C>,
  cases: readonly C[],
): Promise<{ c: C; differences: string[] } | null> {
  const hosts = cases.map((_, i) => `c${i}.test`);
  await check.configure(cases, hosts);
  let failing: { c: C; differences: string[] } | null = null;
  for (let i = 0; i < cases.length && failing === null; i += 8) {
    const batch = cases
      .slice(i, i + 8)
      .map((c, j) => check.differences(c, hosts[i + j]!).then((d) => [c, d] as const));
    for (const [c, d] of await Promise.all(batch))
      if (failing === null && d.length > 0) failing = { c, differences: d };
  }
  return failing;
}

/**
 * `runs` cases of `arb` in one batch; when one differs, fast-check shrinks it (reconfiguring per
 * candidate) and the assertion names the smallest case, its differing requests and the seed.
 */
export async function checkGenerated<C>(check: GeneratedCheck<C>): Promise<void> {
  const { arb, runs, accepts } = check;
  const chosen = process.env[check.seedVariable];
  const seed = chosen === 'random' ? Date.now() % 2 ** 31 : Number(chosen ?? check.defaultSeed);
  let cases = fc.sample(arb, { numRuns: runs, seed });
  if (accepts !== undefined) {
    cases = cases.filter(accepts);
    // nginx refuses few of them (duplicate locations): the run is not vacuous.
    assert.ok(
      cases.length >= runs / 2,
      `only ${cases.length} of ${runs} cases are configurations nginx accepts`,
    );
  }
  const first = await firstDiffering(check, cases);
  if (first === null) return;
  const failing = first.c;
  await fc.assert(
    fc.asyncProperty(arb, async (c) => {
      if (accepts !== undefined) fc.pre(accepts(c));
      await check.assertAlone(c);
    }),
    // numRuns 1: the example alone, then its shrinking.
    { examples: [[failing]], numRuns: 1, seed, interruptAfterTimeLimit: check.shrinkTimeLimitMs },
  );
  assert.fail(
    `seed ${seed}: ${check.describe(failing)}\ndiffers, but did not when replayed; in the batch:\n` +
      first.differences.join('\n'),
  );
}
