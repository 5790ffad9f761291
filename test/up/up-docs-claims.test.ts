// The claims of docs/up.md, the README's sections on `keepip up`, `keepip demo` (npm start) and
// `keepip whoami`, and the three commands' --help, that no other test checks end to end, against real
// `keepip` processes and clients bound to distinct 127.x sources. Quoted claims (doc: words):
//
//   up.md "What runs": lb/<service>:<port> "each Service of type LoadBalancer" listening on
//     "status.loadBalancer.ingress[0].ip : Service port", sending to "ip targets: the Service's endpoints
//     (the pods); instance targets: every node's NodePort"; kube-proxy/<node>:<nodePort> sends to "the
//     Service's endpoints; from the node's address under externalTrafficPolicy: Cluster (SNAT)"; the
//     gateway sends to "the backends' endpoints, or their ClusterIP with service-upstream";
//     cluster-ip/<service>:<port> sends to "its endpoints, keeping the caller's address"; whoami/<service>
//     runs on "every endpoint of a backend Service".
//   up.md: "PROXY protocol v1/v2 from the provider's annotation, client-IP preservation (AWS: on for
//     instance targets, off for ip targets, preserve_client_ip.enabled overrides), its own address from
//     keepip.dev/lb-source-address. When the Service says clients arrive over a VPN, a transit gateway or
//     PrivateLink (keepip.dev/client-path, or keepip.dev/vpc-endpoint-id), the LB connects from its own
//     address whatever the preservation setting" (rules.md A4: "and says so at start-up").
//   up.md: "Defaults when the manifests do not say: LB address 127.0.10.N, LB source address 127.0.11.N,
//     one node node-1 at 127.0.1.1, the gateway at 127.0.30.1:80 when no controller Service has ready
//     endpoints, NodePorts from 30000 when a Service port has none." "Start-up lines list each component,
//     where it listens and where it sends; anything the plan could not do as written is said at
//     start-up, never silently changed."
//   up.md "One log stream": "Every line is prefixed with its component".
//   up.md "Live reload": "A valid change is applied in place: the gateway swaps its configuration
//     atomically (in-flight requests finish on the old one), and any L4 hop whose settings changed
//     (PROXY version, source address, targets) restarts on the same address. An invalid change is
//     reported, naming file, document and field, and the running chain keeps its configuration. SIGHUP
//     reloads too (one sent while the chain starts is kept for it); Ctrl-C or SIGTERM stops everything,
//     outside in; a second one exits at once (130)."
//   up.md: `keepip up -f examples/seed/before  # ports as written`; --help: "-f ... (repeatable)",
//     "--configmap <ns/name> the controller ConfigMap", "--ingress-class <name> serve Ingresses of this
//     class", "--no-watch do not reload when the manifests change", "--ephemeral-ports ... use it when
//     ... another chain is running", "Exit codes: 0 stopped by Ctrl-C/SIGTERM, 1 the chain cannot start".
//   up.md "The dashboard": "--dashboard ADDR:PORT (a bare port is 127.0.0.1:PORT) serves the read-only
//     dashboard beside the chain".
//   up.md "keepip demo": "It waits for Enter between steps when stdin is a terminal (--no-pause to run
//     through) ... It uses the manifests' ports when it may bind them and free ports otherwise." "Each
//     step prints the curl command that repeats it by hand". README "What npm start shows": the sample
//     output; package.json: npm start is `keepip demo`.
//   whoami --help: "--listen ADDR:PORT (default 127.0.0.1:8080)", "--name NAME the "name" shown in every
//     answer (default whoami)", "?wait=250ms delays the answer (at most 30s; 2s, or a plain number of
//     seconds)".
//
// Claim -> the test that already covers it end to end (not repeated here):
//   seed before/after through up, forged PROXY to the pod, Local/Cluster instance targets:
//     test/e2e/up-seed.test.ts; --ephemeral-ports lines and SIGTERM exit 0: test/cli/up.test.ts:5;
//     missing -f (2) and a missing directory (1): test/cli/up.test.ts:21; UP_CONFIG_INVALID and
//     UP_LISTEN_FAILED (EADDRNOTAVAIL): test/cli/error-codes-behaviour.test.ts:1196,1206; demo steps,
//     --json, no prompt without a terminal: test/cli/demo.test.ts:5; demo --dashboard says where:
//     test/dashboard/cli.test.ts; whoami echo fields, JSON/text, /health, WebSocket 1 MiB / 1009:
//     test/whoami/server.test.ts; whoami --listen/--name, exit 0 on SIGTERM, usage errors:
//     test/cli/whoami.test.ts; limits and auth through up: test/e2e/up-access.test.ts; HAProxy as the
//     NLB: test/interop/up-haproxy.test.ts; a SIGHUP kept before the reload exists (unit):
//     test/cli/signals.test.ts.
//
// Found here, fixed (the tests say so in their names): each asserts the documented/safe behaviour.
// Seeds: the ports of the exact-port chain come from test/helpers/net.ts freePort (retried on a clash).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { send } from '../../src/demo/client.ts';
import { childEnv, keepipBin, repoRoot, type Running, runKeepip, startKeepip } from '../helpers/process.ts';
import { framedResponses, freePort, isPortClash, listenTracked, openRaw } from '../helpers/net.ts';

// ---------------------------------------------------------------------------------------------------
// ALLOWED: differences between a doc's words and what keepip does that are acceptable, with the reason.
// Each one is checked below to still be what is seen (the test named in `checkedBy`).
const ALLOWED = {
  gatewayLineNoDestinations: {
    doc: 'up.md: "Start-up lines list each component, where it listens and where it sends"',
    seen: 'the gateway line is "listening http ADDR:PORT" with no "->"',
    reason:
      "the gateway's destinations are per route (many); the access log's upstream address and the dashboard's Routes page show them",
    checkedBy: 'B: defaults',
  },
  demoStepsNotAllCurl: {
    doc: 'up.md: "Each step prints the curl command that repeats it by hand"',
    seen: 'steps 1, 4, 5 print curl; step 2 the keepip doctor command; step 3 the manifest change; step 6 printf | nc',
    reason: 'only three steps are HTTP requests; the others are repeated by the command or change printed',
    checkedBy: 'H: --no-pause on a terminal',
  },
  healthHasNoName: {
    doc: 'whoami --help: "--name NAME the "name" shown in every answer"',
    seen: 'GET /health answers "ok\\n" and a bad ?wait= a 400 naming the code, without the name',
    reason: 'those are not echoes; every echo (JSON or text) carries the name',
    checkedBy: 'G: whoami defaults',
  },
  readmeSampleVariesPerRun: {
    doc: 'README "What npm start shows": the sample output',
    seen: 'timestamps, pids, connection numbers, the temp dir, ports (free ports here), byte counts, durations and the request id differ',
    reason:
      'they differ on every run; the test normalises exactly these and compares everything else line by line',
    checkedBy: 'H: --no-pause on a terminal',
  },
} as const;
void ALLOWED;

// ---------------------------------------------------------------------------------------------------
// Helpers.

type Obj = Record<string, unknown>;

/** Documents as YAML (JSON is YAML), one per `---`. */
const docs = (...objects: Obj[]): string =>
  `${objects.map((o) => JSON.stringify(o, null, 1)).join('\n---\n')}\n`;

function service(
  ns: string,
  name: string,
  spec: Obj,
  annotations: Record<string, string> = {},
  statusIp?: string,
): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns, annotations },
    spec,
    ...(statusIp ? { status: { loadBalancer: { ingress: [{ ip: statusIp }] } } } : {}),
  };
}

function slice(ns: string, svc: string, portName: string, port: number, addresses: string[]): Obj {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${svc}-slice`, namespace: ns, labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    ports: [{ name: portName, port, protocol: 'TCP' }],
    endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
  };
}

function ingress(
  ns: string,
  name: string,
  className: string,
  rules: [host: string, svc: string][],
  annotations: Record<string, string> = {},
): Obj {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: {
      name,
      namespace: ns,
      annotations: { 'nginx.ingress.kubernetes.io/ssl-redirect': 'false', ...annotations },
    },
    spec: {
      ingressClassName: className,
      rules: rules.map(([host, svc]) => ({
        host,
        http: {
          paths: [
            { path: '/', pathType: 'Prefix', backend: { service: { name: svc, port: { number: 3000 } } } },
          ],
        },
      })),
    },
  };
}

const configMap = (ns: string, name: string, data: Record<string, string>): Obj => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: ns },
  data,
});

const node = (name: string, address: string): Obj => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name },
  status: { addresses: [{ type: 'InternalIP', address }] },
});

const AWS = 'service.beta.kubernetes.io/aws-load-balancer-';
const nlb = (extra: Record<string, string> = {}) => ({ [`${AWS}type`]: 'external', ...extra });
const lbSpec = (ports: Obj[], extra: Obj = {}): Obj => ({ type: 'LoadBalancer', ports, ...extra });
const httpPort = (port: number, extra: Obj = {}): Obj => ({ name: 'http', port, protocol: 'TCP', ...extra });

/** Writes `text` to `dir/name` atomically (a rename), so a watcher never reads half a file. */
function writeAtomically(dir: string, name: string, text: string): void {
  writeFileSync(join(dir, `.${name}.next`), text);
  renameSync(join(dir, `.${name}.next`), join(dir, name));
}

/** The line `name | ...` of a component (first, or the last one when `last`). */
function componentLine(output: string, name: string, last = false): string | undefined {
  const lines = output
    .split('\n')
    .filter(
      (l) =>
        l.startsWith(name) &&
        / *\| listening /.test(l.slice(name.length, name.length + 40)) &&
        /^ *\| /.test(l.slice(name.length)),
    );
  return last ? lines.at(-1) : lines[0];
}

/** Where the component says it listens. */
function listensAt(output: string, name: string, last = false): { host: string; port: number } {
  const line = componentLine(output, name, last);
  const match = /^\S+ +\| listening (?:on |http )(?:http:\/\/)?([\d.]+):(\d+)/.exec(line ?? '');
  assert.ok(match, `a listening line for ${name}; output:\n${output}`);
  return { host: match[1]!, port: Number(match[2]) };
}

/** A line after `from` (a character offset into the output) matching `pattern`, waited for. */
async function lineAfter(
  running: Running,
  from: number,
  pattern: RegExp,
  timeoutMs = 20_000,
): Promise<string> {
  const sticky = new RegExp(`^.*${pattern.source}.*$`, 'm');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = sticky.exec(running.output().slice(from));
    if (match) return match[0];
    if (running.child.exitCode !== null || running.child.signalCode !== null)
      throw new Error(`keepip exited before ${pattern}; output:\n${running.output()}`);
    if (Date.now() > deadline)
      throw new Error(`no ${pattern} within ${timeoutMs} ms; output:\n${running.output()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A pod that records every connection's source address and bytes. */
interface Pod {
  host: string;
  port: number;
  /** The connection whose bytes include `marker` (waited for). */
  seen(marker: string): Promise<{ remote: string; data: string }>;
  close(): Promise<void>;
}

async function startPod(host: string): Promise<Pod> {
  const conns: { remote: string; data: string }[] = [];
  const waiters = new Set<() => void>();
  const server = net.createServer((socket) => {
    const conn = { remote: socket.remoteAddress ?? '', data: '' };
    conns.push(conn);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      conn.data += chunk.toString('latin1');
      for (const waiter of [...waiters]) waiter();
    });
  });
  const tracked = await listenTracked(server, host);
  return {
    host,
    port: tracked.port,
    seen: (marker) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const conn = conns.find((c) => c.data.includes(marker));
          if (conn) {
            done();
            resolve(conn);
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`pod ${host}:${tracked.port} never got ${marker}; got ${JSON.stringify(conns)}`));
        }, 20_000);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
    close: tracked.close,
  };
}

/** One connection from `from` through `target` that writes `marker`; resolves with what the pod saw. */
async function flow(target: { host: string; port: number }, from: string, marker: string, pod: Pod) {
  const socket = net.connect({ host: target.host, port: target.port, localAddress: from });
  socket.on('error', () => {});
  socket.on('connect', () => socket.write(`${marker}\n`));
  try {
    return await pod.seen(marker);
  } finally {
    socket.destroy();
  }
}

/** Resolves true when something accepts a TCP connection at host:port, false when it is refused. */
function accepts(host: string, port: number, from = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, localAddress: from });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const echoOf = (body: string) =>
  JSON.parse(body) as {
    name: string;
    remoteAddress: string;
    localAddress: string;
    headers: Record<string, string>;
  };

/** The directories this process's inotify instances watch, as inode numbers (Linux /proc). */
function watchedInodes(pid: number): Set<number> {
  const inodes = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target = '';
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    if (target !== 'anon_inode:inotify') continue;
    for (const match of readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').matchAll(
      /inotify wd:\S+ ino:([0-9a-f]+)/g,
    ))
      inodes.add(Number.parseInt(match[1]!, 16));
  }
  return inodes;
}

const tempDirs: string[] = [];
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------
describe('docs/up.md, README and --help claims of keepip up / demo / whoami', { concurrency: true }, () => {
  // -------------------------------------------------------------------------------------------------
  // B: one chain of many Services that leave things to the defaults, on free ports.
  describe('B: what runs, defaults, preservation and A4 (one chain, many load balancers)', {
    concurrency: false,
  }, () => {
    let up: Running;
    const pods: Record<string, Pod> = {};
    const FORGED = 'FORGED-BY-MANIFEST';
    before(async () => {
      const dir = tempDir('keepip-up-claims-b-');
      for (const [key, host] of [
        ['a', '127.0.82.1'],
        ['b', '127.0.82.2'],
        ['c', '127.0.82.3'],
        ['d', '127.0.82.4'],
        ['e', '127.0.82.5'],
        ['f', '127.0.82.6'],
        ['other', '127.0.82.8'],
      ] as const)
        pods[key] = await startPod(host);
      const ep = (ns: string, svc: string, key: string, portName = 'http') =>
        slice(ns, svc, portName, pods[key]!.port, [pods[key]!.host]);
      const ipPreserved = (extra: Record<string, string>) =>
        nlb({
          [`${AWS}nlb-target-type`]: 'ip',
          [`${AWS}target-group-attributes`]: 'preserve_client_ip.enabled=true',
          ...extra,
        });
      writeFileSync(
        join(dir, 'lbs.yaml'),
        docs(
          service('apps', 'a-edge', lbSpec([httpPort(80, { targetPort: 8080 })]), nlb()),
          ep('apps', 'a-edge', 'a'),
          service(
            'apps',
            'b-edge',
            lbSpec([
              { name: 'tcp', port: 7000, protocol: 'TCP' },
              { name: 'dns', port: 53, protocol: 'UDP' },
            ]),
            nlb({ [`${AWS}nlb-target-type`]: 'ip' }),
          ),
          ep('apps', 'b-edge', 'b', 'tcp'),
          service('apps', 'c-edge', lbSpec([httpPort(80)]), {
            'service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol': 'true',
          }),
          ep('apps', 'c-edge', 'c'),
          service('apps', 'd-keep', lbSpec([httpPort(7000)]), ipPreserved({}), '127.0.83.4'),
          ep('apps', 'd-keep', 'd'),
          service(
            'apps',
            'e-vpn',
            lbSpec([httpPort(7000)]),
            ipPreserved({ 'keepip.dev/client-path': 'vpn', 'keepip.dev/lb-source-address': '127.0.83.50' }),
            '127.0.83.5',
          ),
          ep('apps', 'e-vpn', 'e'),
          service(
            'apps',
            'f-pl',
            lbSpec([httpPort(7000)]),
            ipPreserved({
              'keepip.dev/vpc-endpoint-id': 'vpce-0123456789abcdef0',
              'keepip.dev/lb-source-address': '127.0.83.60',
            }),
            '127.0.83.6',
          ),
          ep('apps', 'f-pl', 'f'),
          service('apps', 'g-noeps', lbSpec([httpPort(8081, { targetPort: 80 })]), nlb(), '127.0.83.7'),
          service(
            'other',
            'b-edge',
            lbSpec([{ name: 'tcp', port: 7000, protocol: 'TCP' }]),
            nlb({ [`${AWS}nlb-target-type`]: 'ip' }),
            '127.0.83.8',
          ),
          ep('other', 'b-edge', 'other', 'tcp'),
          service(
            'zz',
            `x\ngateway | ${FORGED}`,
            lbSpec([httpPort(7001)]),
            nlb({ [`${AWS}nlb-target-type`]: 'ip' }),
            '127.0.83.9',
          ),
        ),
      );
      writeFileSync(
        join(dir, 'apps.yaml'),
        docs(
          ingress('apps', 'web', 'nginx', [
            ['web.test', 'web'],
            ['pair.test', 'pair'],
          ]),
          ingress('apps', 'su', 'nginx', [['su.test', 'web']], {
            'nginx.ingress.kubernetes.io/service-upstream': 'true',
          }),
          ingress('apps', 'far', 'nginx', [['far.test', 'far']], {
            'nginx.ingress.kubernetes.io/service-upstream': 'true',
          }),
          service('apps', 'web', { type: 'ClusterIP', clusterIP: '127.0.81.1', ports: [httpPort(3000)] }),
          slice('apps', 'web', 'http', 3000, ['127.0.81.11']),
          service('apps', 'pair', { type: 'ClusterIP', ports: [httpPort(3000)] }),
          slice('apps', 'pair', 'http', 3000, ['127.0.81.12', '127.0.81.13']),
          service('apps', 'far', { type: 'ClusterIP', clusterIP: '10.96.0.10', ports: [httpPort(3000)] }),
          slice('apps', 'far', 'http', 3000, ['127.0.81.21']),
        ),
      );
      up = startKeepip(['up', '-f', dir, '--ephemeral-ports', '--no-watch', '--dashboard', '0']);
      await up.waitFor(/the chain is running/, 30_000);
    });
    after(async () => {
      await up?.stop();
      for (const pod of Object.values(pods)) await pod.close();
    });

    test('defaults: LB 127.0.10.N, source 127.0.11.N, node-1 at 127.0.1.1, gateway 127.0.30.1:80, NodePorts from 30000', async () => {
      const out = up.output();
      const kubeA = listensAt(out, 'kube-proxy/node-1:30000');
      assert.equal(kubeA.host, '127.0.1.1');
      assert.match(
        componentLine(out, 'kube-proxy/node-1:30000')!,
        new RegExp(`-> 127\\.0\\.82\\.1:${pods.a!.port} \\(connects from 127\\.0\\.1\\.1\\)$`),
      );
      assert.match(
        componentLine(out, 'lb/a-edge:80')!,
        new RegExp(
          `listening on 127\\.0\\.10\\.1:\\d+ -> 127\\.0\\.1\\.1:${kubeA.port} \\(keeps the client's address\\)$`,
        ),
      );
      assert.match(
        componentLine(out, 'lb/apps/b-edge:7000')!,
        /listening on 127\.0\.10\.2:\d+ -> 127\.0\.82\.2:\d+ \(connects from 127\.0\.11\.2\)$/,
      );
      assert.equal(listensAt(out, 'lb/c-edge:80').host, '127.0.10.3');
      assert.ok(componentLine(out, 'kube-proxy/node-1:30001'), 'the second NodePort is 30001');
      assert.ok(componentLine(out, 'kube-proxy/node-1:30002'), 'the third NodePort is 30002');
      assert.match(
        out,
        /^up +\| no controller Service with ready endpoints: the gateway listens on 127\.0\.30\.1:80$/m,
      );
      // ALLOWED gatewayLineNoDestinations: the gateway line says where it listens, not where it sends.
      assert.match(out, /^gateway +\| listening http 127\.0\.30\.1:\d+$/m);
      // What the pods really see: the default source address (ip targets, preservation off), and the node
      // address behind kube-proxy under Cluster.
      assert.equal(
        (await flow(listensAt(out, 'lb/apps/b-edge:7000'), '127.0.20.31', 'B-b', pods.b!)).remote,
        '127.0.11.2',
      );
      assert.equal(
        (await flow(listensAt(out, 'lb/a-edge:80'), '127.0.20.32', 'B-a', pods.a!)).remote,
        '127.0.1.1',
      );
    });

    test("PROXY v1 from the provider's annotation (DigitalOcean), carried through the kube-proxy hop", async () => {
      const out = up.output();
      assert.match(componentLine(out, 'lb/c-edge:80')!, /\(connects from 127\.0\.11\.3, sends PROXY v1\)$/);
      const lb = listensAt(out, 'lb/c-edge:80');
      const seen = await flow(lb, '127.0.20.33', 'B-c', pods.c!);
      assert.equal(seen.remote, '127.0.1.1');
      assert.match(
        seen.data,
        new RegExp(`^PROXY TCP4 127\\.0\\.20\\.33 127\\.0\\.10\\.3 \\d+ ${lb.port}\\r\\nB-c\\n`),
      );
    });

    test('preserve_client_ip.enabled=true overrides the ip-target default: the pod sees the client', async () => {
      assert.match(componentLine(up.output(), 'lb/d-keep:7000')!, /\(keeps the client's address\)$/);
      const seen = await flow(listensAt(up.output(), 'lb/d-keep:7000'), '127.0.20.34', 'B-d', pods.d!);
      assert.equal(seen.remote, '127.0.20.34');
    });

    test('A4: over a VPN or PrivateLink the LB connects from its own address whatever preservation says, and says so', async () => {
      const out = up.output();
      assert.match(
        out,
        /^up +\| \S*e-vpn: clients arrive via vpn, where the LB cannot keep their address \(A4\): it connects from 127\.0\.83\.50$/m,
      );
      assert.match(
        out,
        /^up +\| \S*f-pl: clients arrive via privatelink, where the LB cannot keep their address \(A4\): it connects from 127\.0\.83\.60$/m,
      );
      assert.equal(
        (await flow(listensAt(out, 'lb/e-vpn:7000'), '127.0.20.35', 'B-e', pods.e!)).remote,
        '127.0.83.50',
      );
      assert.equal(
        (await flow(listensAt(out, 'lb/f-pl:7000'), '127.0.20.35', 'B-f', pods.f!)).remote,
        '127.0.83.60',
      );
    });

    test('a UDP Service port is said at start-up (keepip up runs TCP only)', () => {
      assert.match(up.output(), /^up +\| \S*b-edge port 53\/UDP: keepip up runs TCP only$/m);
    });

    test("the gateway sends to the endpoints, or the ClusterIP hop with service-upstream; that hop keeps the caller's address", async () => {
      const out = up.output();
      const gateway = listensAt(out, 'gateway');
      const hop = listensAt(out, 'cluster-ip/web:3000');
      const direct = await send(
        { ...gateway, from: '127.0.20.36', hostHeader: 'web.test', path: '/?m=B-direct' },
        30_000,
      );
      assert.equal(direct.status, 200, direct.error ?? direct.body);
      assert.equal(echoOf(direct.body).localAddress, '127.0.81.11');
      const viaHop = await send(
        { ...gateway, from: '127.0.20.36', hostHeader: 'su.test', path: '/?m=B-hop' },
        30_000,
      );
      assert.equal(viaHop.status, 200, viaHop.error ?? viaHop.body);
      const hopLog = await lineAfter(up, 0, /"GET \/\?m=B-hop HTTP\/1\.1" 200 /);
      assert.ok(
        hopLog.includes(` 127.0.81.1:${hop.port} `),
        `the access log names the ClusterIP hop: ${hopLog}`,
      );
      // An in-cluster caller straight to the ClusterIP: the backend sees the caller.
      const caller = await send({ ...hop, from: '127.0.50.5', hostHeader: 'web.test', path: '/' }, 30_000);
      assert.equal(echoOf(caller.body).remoteAddress, '127.0.50.5');
    });

    test('--dashboard with a bare port serves the dashboard on 127.0.0.1 beside the chain', async () => {
      const url = (
        await up.waitFor(/^dashboard +\| dashboard (http:\/\/127\.0\.0\.1:\d+\/) \(read-only\)$/m)
      )[1]!;
      const info = (await (await fetch(new URL('/api/info', url))).json()) as { mode: string };
      assert.equal(info.mode, 'up');
    });

    test('whoami runs on every endpoint of a backend Service (a second endpoint gets none) (found here, fixed)', () => {
      const out = up.output();
      // One name each (the lines' prefix): the second endpoint's says its address.
      assert.match(
        out,
        /^whoami\/pair +\| listening on http:\/\/127\.0\.81\.12:\d+$/m,
        'a whoami on 127.0.81.12',
      );
      assert.match(
        out,
        /^whoami\/pair@127\.0\.81\.13:\d+ +\| listening on http:\/\/127\.0\.81\.13:\d+$/m,
        'a whoami on 127.0.81.13',
      );
    });

    test('a LoadBalancer Service whose name another namespace also uses still runs (other/b-edge) (found here, fixed)', () => {
      assert.match(
        up.output(),
        /\| listening on 127\.0\.83\.8:\d+ -> 127\.0\.82\.8:\d+/,
        'a listener for other/b-edge on 127.0.83.8',
      );
    });

    test('a ClusterIP the chain cannot run (10.96.0.10, used by service-upstream) is said at start-up (found here, fixed)', () => {
      const startUp = up.output().split(/^up +\| the chain is running/m)[0]!;
      assert.match(
        startUp,
        /^(?:up|config) +\|.*10\.96\.0\.10/m,
        'a start-up line about the ClusterIP requests for far.test go to',
      );
    });

    test('kube-proxy for a Service with no endpoints sends nowhere (its note says "no healthy target") (found here, fixed)', async () => {
      const out = up.output();
      assert.match(out, /^up +\| \S*g-noeps port 8081: no ready endpoints; the LB has no healthy target$/m);
      const lb = listensAt(out, 'lb/g-noeps:8081');
      // kube-proxy rejects a connection to a Service without endpoints: a reset as soon as it is open
      // is an answer of nothing, as is a close after the request.
      const conn = await openRaw({ ...lb, localAddress: '127.0.20.37' }).catch(
        (error: NodeJS.ErrnoException) => {
          assert.equal(error.code, 'ECONNRESET');
          return null;
        },
      );
      if (conn === null) return;
      try {
        conn.socket.write('GET / HTTP/1.1\r\nHost: nothing.test\r\n\r\n');
        await conn
          .until((bytes) => framedResponses(bytes).length > 0 || conn.closed(), 20_000)
          .catch(() => undefined);
        assert.equal(
          framedResponses(conn.received()).length,
          0,
          `no HTTP answer; got ${conn.received().toString('latin1').split('\r\n')[0]}`,
        );
      } finally {
        conn.destroy();
      }
    });

    test("every line is prefixed with its component (a Service's name cannot forge a gateway line) (found here, fixed)", () => {
      const forged = up
        .output()
        .split('\n')
        .filter((l) => new RegExp(`^gateway +\\| ${FORGED}`).test(l));
      assert.deepEqual(forged, [], 'lines that start with text from a manifest');
    });

    test('Ctrl-C (SIGINT) stops everything: exit 0 after "stopped"', async () => {
      up.child.kill('SIGINT');
      assert.equal(await up.exited(), 0, up.output());
      assert.match(up.output(), /^up +\| stopped$/m);
    });
  });

  // -------------------------------------------------------------------------------------------------
  // C: live reload (watching) and the stop, outside in, with a second signal.
  describe('C: live reload and stopping', { concurrency: false }, () => {
    let up: Running;
    let dir: string;
    let pod: Pod;
    const controller = (cidr: string) =>
      docs(
        service(
          'ingress-nginx',
          'ingress-nginx-controller',
          lbSpec([httpPort(80, { targetPort: 'http' })]),
          nlb({
            [`${AWS}nlb-target-type`]: 'ip',
            [`${AWS}proxy-protocol`]: '*',
            'keepip.dev/lb-source-address': '127.0.84.2',
          }),
          '127.0.84.1',
        ),
        configMap('ingress-nginx', 'ingress-nginx-controller', {
          'use-proxy-protocol': 'true',
          'proxy-real-ip-cidr': cidr,
        }),
        slice('ingress-nginx', 'ingress-nginx-controller', 'http', 80, ['127.0.84.30']),
        node('n1', '127.0.84.101'),
        node('n2', '127.0.84.102'),
      );
    const web = (allow: string, rawProxy: boolean) =>
      docs(
        ingress('web', 'app', 'nginx', [['app.test', 'app']], {
          'nginx.ingress.kubernetes.io/whitelist-source-range': allow,
        }),
        service('web', 'app', { type: 'ClusterIP', clusterIP: '127.0.84.41', ports: [httpPort(3000)] }),
        slice('web', 'app', 'http', 3000, ['127.0.84.40']),
        service(
          'web',
          'raw',
          lbSpec([{ name: 'tcp', port: 7000, nodePort: 31000, protocol: 'TCP' }], {
            externalTrafficPolicy: 'Cluster',
          }),
          nlb(rawProxy ? { [`${AWS}proxy-protocol`]: '*' } : {}),
          '127.0.84.5',
        ),
        slice('web', 'raw', 'tcp', pod.port, [pod.host]),
      );
    before(async () => {
      dir = tempDir('keepip-up-claims-c-');
      pod = await startPod('127.0.84.50');
      writeFileSync(join(dir, 'ingress-nginx.yaml'), controller('127.0.84.0/30'));
      writeFileSync(join(dir, 'web.yaml'), web('127.0.20.10/32', false));
      up = startKeepip(['up', '-f', dir, '--ephemeral-ports']);
      await up.waitFor(/the chain is running/, 30_000);
    });
    after(async () => {
      await up?.stop();
      await pod?.close();
    });

    test("instance targets: every node's NodePort, each node SNATs under Cluster", async () => {
      const out = up.output();
      const n1 = listensAt(out, 'kube-proxy/n1:31000');
      const n2 = listensAt(out, 'kube-proxy/n2:31000');
      assert.deepEqual([n1.host, n2.host], ['127.0.84.101', '127.0.84.102']);
      assert.match(
        componentLine(out, 'lb/raw:7000')!,
        new RegExp(`-> 127\\.0\\.84\\.101:${n1.port}, 127\\.0\\.84\\.102:${n2.port} `),
      );
      const seen = await flow(listensAt(out, 'lb/raw:7000'), '127.0.20.41', 'C-raw-1', pod);
      assert.ok(['127.0.84.101', '127.0.84.102'].includes(seen.remote), seen.remote);
      assert.ok(seen.data.startsWith('C-raw-1'), 'no PROXY header yet');
    });

    test('a valid change: in-flight requests finish on the old rules, changed hops restart on the same address, others do not', async () => {
      const lb = listensAt(up.output(), 'lb/ingress-nginx-controller:80');
      const raw = listensAt(up.output(), 'lb/raw:7000');
      // In flight: the gateway has passed the allowlist (it answers 100 Continue after its access checks).
      const inflight = await openRaw({ ...lb, localAddress: '127.0.20.10' });
      try {
        inflight.socket.write(
          'POST /?format=json HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n',
        );
        await inflight.until((b) => b.toString('latin1').startsWith('HTTP/1.1 100 '), 20_000);
        const mark = up.output().length;
        writeAtomically(dir, 'web.yaml', web('127.0.20.99/32', true));
        await lineAfter(up, mark, /^up +\| gateway reloaded \(configuration version 2\)$/);
        const reloadLines = up.output().slice(mark);
        assert.match(reloadLines, /^up +\| restarted lb\/raw:7000$/m);
        assert.doesNotMatch(
          reloadLines,
          /restarted (?:lb\/ingress-nginx-controller|kube-proxy|whoami|cluster-ip)/,
        );
        assert.deepEqual(listensAt(reloadLines, 'lb/raw:7000'), raw, 'the restarted LB listens where it did');
        inflight.socket.write('body');
        const done = await inflight.until((b) => framedResponses(b).some((r) => r.status >= 200), 20_000);
        assert.equal(
          framedResponses(done).find((r) => r.status >= 200)?.status,
          200,
          'the request admitted before the reload',
        );
      } finally {
        inflight.destroy();
      }
      assert.equal(
        (await send({ ...lb, from: '127.0.20.10', hostHeader: 'app.test', path: '/' }, 30_000)).status,
        403,
      );
      assert.equal(
        (await send({ ...lb, from: '127.0.20.99', hostHeader: 'app.test', path: '/' }, 30_000)).status,
        200,
      );
      const seen = await flow(raw, '127.0.20.42', 'C-raw-2', pod);
      assert.ok(seen.data.startsWith('\r\n\r\n\0\r\nQUIT\n'), 'the restarted LB sends PROXY v2 now');
      assert.ok(seen.data.includes(String.fromCharCode(127, 0, 20, 42)), "with the client's address");
    });

    test('an invalid change is reported naming file, document and field; the chain keeps its configuration', async () => {
      const mark = up.output().length;
      writeAtomically(dir, 'ingress-nginx.yaml', controller('127.0.84.0/33'));
      await lineAfter(up, mark, /^up +\| the change is invalid; the running chain keeps its configuration$/);
      assert.match(
        up.output().slice(mark),
        /^config +\| \S*ingress-nginx\.yaml, document 2 \(ConfigMap ingress-nginx\/ingress-nginx-controller\) data\["proxy-real-ip-cidr"\]: /m,
      );
      const lb = listensAt(up.output(), 'lb/ingress-nginx-controller:80');
      assert.equal(
        (await send({ ...lb, from: '127.0.20.99', hostHeader: 'app.test', path: '/' }, 30_000)).status,
        200,
      );
    });

    test('the manifests are watched (inotify on their directory): the positive control of --no-watch', () => {
      assert.ok(watchedInodes(up.child.pid!).has(statSync(dir).ino));
    });

    test('Ctrl-C stops outside in (the LB first, the backend last); a second signal exits at once with 130', async () => {
      const gateway = listensAt(up.output(), 'gateway');
      const lb = listensAt(up.output(), 'lb/ingress-nginx-controller:80');
      const whoami = listensAt(up.output(), 'whoami/app');
      // A request the gateway has admitted and waits on keeps it draining.
      const held = await openRaw({ ...gateway, localAddress: '127.0.84.3' });
      try {
        held.socket.write(
          `PROXY TCP4 127.0.20.99 ${gateway.host} 5000 80\r\nPOST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n`,
        );
        await held.until((b) => b.toString('latin1').startsWith('HTTP/1.1 100 '), 20_000);
        const mark = up.output().length;
        up.child.kill('SIGINT');
        await lineAfter(up, mark, /^up +\| stopping$/);
        const deadline = Date.now() + 8_000;
        while ((await accepts(lb.host, lb.port, '127.0.20.43')) && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 20));
        assert.equal(await accepts(lb.host, lb.port, '127.0.20.43'), false, 'the LB has stopped');
        assert.equal(await accepts(whoami.host, whoami.port, '127.0.20.43'), true, 'the backend still runs');
        assert.doesNotMatch(up.output().slice(mark), /\| stopped$/m);
        up.child.kill('SIGTERM');
        assert.equal(await up.exited(), 130, up.output());
        assert.match(up.output().slice(mark), /^up +\| second signal: exiting without waiting$/m);
      } finally {
        held.destroy();
      }
    });
  });

  // -------------------------------------------------------------------------------------------------
  // D: --no-watch, SIGHUP during start-up, and a reload that cannot bind.
  describe('D: --no-watch, SIGHUP, a change that cannot run', { concurrency: false }, () => {
    let up: Running;
    let dir: string;
    let hupSentBeforeRunning = false;
    before(async () => {
      dir = tempDir('keepip-up-claims-d-');
      for (const name of ['gitea.yaml', 'ingress-nginx.yaml'])
        writeFileSync(join(dir, name), readFileSync(join(repoRoot, 'examples/seed/before', name)));
      up = startKeepip(['up', '-f', dir, '--ephemeral-ports', '--no-watch']);
      await up.waitFor(/^whoami\/gitea-http +\| listening/m, 30_000);
      hupSentBeforeRunning = !up.output().includes('the chain is running');
      up.child.kill('SIGHUP');
      await up.waitFor(/the chain is running/, 30_000);
    });
    after(async () => {
      await up?.stop();
    });

    test('SIGHUP sent while the chain starts is kept: one reload once it runs', async () => {
      await lineAfter(up, 0, /^up +\| gateway reloaded \(configuration version 2\)$/);
      assert.ok(up.child.exitCode === null, 'still running');
      void hupSentBeforeRunning; // informational: the child may have finished starting before the signal landed
    });

    test('--no-watch: nothing watches the manifests (no inotify watch on their directory)', () => {
      assert.equal(watchedInodes(up.child.pid!).has(statSync(dir).ino), false);
    });

    test('the controller pod moving (127.0.30.1 -> 127.0.30.2) is applied: requests through the LB still get answers (found here, fixed)', async () => {
      const file = join(dir, 'ingress-nginx.yaml');
      writeFileSync(
        file,
        readFileSync(file, 'utf8').replace('addresses: ["127.0.30.1"]', 'addresses: ["127.0.30.2"]'),
      );
      const mark = up.output().length;
      up.child.kill('SIGHUP');
      // The gateway's pods moved: it listens anew (`restarted gateway`), the LB sends there.
      await lineAfter(
        up,
        mark,
        /^up +\| (?:reload failed|the change is invalid|gateway reloaded|restarted gateway)/,
      );
      const lb = listensAt(up.output(), 'lb/ingress-nginx-controller:80', true);
      const reply = await send(
        { ...lb, from: '127.0.20.45', hostHeader: 'gitea.example.com', path: '/' },
        30_000,
      );
      assert.equal(reply.status, 403, `the gateway answers (the seed's 403); got ${reply.error}`);
    });

    test('a change that cannot run (the LB on 192.0.2.1) is reported and the running LB keeps serving (found here, fixed)', async () => {
      const lb = listensAt(up.output(), 'lb/ingress-nginx-controller:80');
      assert.equal(await accepts(lb.host, lb.port, '127.0.20.44'), true);
      const file = join(dir, 'ingress-nginx.yaml');
      writeFileSync(
        file,
        readFileSync(file, 'utf8').replace('      - ip: 127.0.10.1', '      - ip: 192.0.2.1'),
      );
      const mark = up.output().length;
      up.child.kill('SIGHUP');
      const outcome = await lineAfter(
        up,
        mark,
        /^up +\| (?:reload failed|the change is invalid|gateway reloaded)/,
      );
      assert.match(up.output().slice(mark), /192\.0\.2\.1/, `the failure is said: ${outcome}`);
      assert.equal(
        await accepts(lb.host, lb.port, '127.0.20.44'),
        true,
        'the LB that ran before the change still accepts',
      );
    });

    test('SIGTERM after all that: exit 0', async () => {
      assert.equal(await up.stop(), 0, up.output());
    });
  });

  // -------------------------------------------------------------------------------------------------
  // E: the manifests' own ports, -f twice, --configmap, --ingress-class; a second chain on them: exit 1.
  describe('E: ports as written, -f files, --configmap, --ingress-class', { concurrency: false }, () => {
    let up: Running | undefined;
    let args: string[] = [];
    let ports = { lb: 0, gateway: 0, whoami: 0 };
    before(async () => {
      const dir = tempDir('keepip-up-claims-e-');
      for (let attempt = 1; ; attempt++) {
        ports = {
          lb: await freePort('127.0.79.1'),
          gateway: await freePort('127.0.79.30'),
          whoami: await freePort('127.0.79.40'),
        };
        writeFileSync(
          join(dir, 'lb.yaml'),
          docs(
            service(
              'apps',
              'edge',
              lbSpec([httpPort(ports.lb, { targetPort: ports.gateway })]),
              nlb({
                [`${AWS}nlb-target-type`]: 'ip',
                [`${AWS}proxy-protocol`]: '*',
                'keepip.dev/lb-source-address': '127.0.79.2',
              }),
              '127.0.79.1',
            ),
            slice('apps', 'edge', 'http', ports.gateway, ['127.0.79.30']),
            configMap('apps', 'edge-config', {
              'use-proxy-protocol': 'true',
              'proxy-real-ip-cidr': '127.0.79.2/32',
            }),
            configMap('ingress-nginx', 'ingress-nginx-controller', { 'use-proxy-protocol': 'false' }),
          ),
        );
        writeFileSync(
          join(dir, 'app.yaml'),
          docs(
            ingress('apps', 'internal-app', 'internal', [['internal.test', 'app']]),
            ingress('apps', 'nginx-app', 'nginx', [['nginx.test', 'app']]),
            service('apps', 'app', {
              type: 'ClusterIP',
              ports: [httpPort(3000, { targetPort: ports.whoami })],
            }),
            slice('apps', 'app', 'http', ports.whoami, ['127.0.79.40']),
          ),
        );
        args = [
          'up',
          '-f',
          join(dir, 'lb.yaml'),
          '-f',
          join(dir, 'app.yaml'),
          '--configmap',
          'apps/edge-config',
          '--ingress-class',
          'internal',
          '--no-watch',
        ];
        const running = startKeepip(args);
        try {
          await running.waitFor(/the chain is running/, 30_000);
          up = running;
          return;
        } catch (error) {
          await running.stop();
          if (attempt >= 5 || !isPortClash(running.output())) throw error;
        }
      }
    });
    after(async () => {
      await up?.stop();
    });

    test("ports as written: every listener on the manifests' address and port", () => {
      const out = up!.output();
      assert.deepEqual(listensAt(out, `lb/edge:${ports.lb}`), { host: '127.0.79.1', port: ports.lb });
      assert.deepEqual(listensAt(out, 'gateway'), { host: '127.0.79.30', port: ports.gateway });
      assert.deepEqual(listensAt(out, 'whoami/app'), { host: '127.0.79.40', port: ports.whoami });
    });

    test('-f twice (files), --configmap read (PROXY expected from 127.0.79.2), --ingress-class chooses the Ingresses', async () => {
      const lb = { host: '127.0.79.1', port: ports.lb };
      const served = await send(
        { ...lb, from: '127.0.20.51', hostHeader: 'internal.test', path: '/' },
        30_000,
      );
      assert.equal(served.status, 200, served.error ?? served.body);
      assert.equal(echoOf(served.body).headers['x-real-ip'], '127.0.20.51');
      assert.equal(
        (await send({ ...lb, from: '127.0.20.51', hostHeader: 'nginx.test', path: '/' }, 30_000)).status,
        404,
      );
    });

    test('another chain on the same ports cannot start: exit 1, UP_LISTEN_FAILED, with the --ephemeral-ports hint', async () => {
      const second = await runKeepip(args, { timeoutMs: 30_000 });
      assert.equal(second.code, 1, second.stdout + second.stderr);
      assert.match(
        second.stderr,
        /^keepip up: listen EADDRINUSE: .* \(try --ephemeral-ports: every listener on a free port\) \[UP_LISTEN_FAILED\]$/m,
      );
    });
  });

  // -------------------------------------------------------------------------------------------------
  // G: keepip whoami's defaults and ?wait=.
  describe('G: whoami defaults and ?wait=', { concurrency: false }, () => {
    let whoami: Running;
    let port = 0;
    before(async () => {
      whoami = startKeepip(['whoami', '--listen', '127.0.0.1:0']);
      port = Number((await whoami.waitFor(/^keepip whoami: listening on http:\/\/127\.0\.0\.1:(\d+)$/m))[1]);
    });
    after(async () => {
      await whoami?.stop();
    });
    const get = (path: string, accept = 'application/json') =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const socket = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.20.61' });
        let bytes = Buffer.alloc(0);
        socket.on('connect', () =>
          socket.write(`GET ${path} HTTP/1.1\r\nHost: w\r\nAccept: ${accept}\r\nConnection: close\r\n\r\n`),
        );
        socket.on('data', (c: Buffer) => {
          bytes = Buffer.concat([bytes, c]);
        });
        socket.on('error', reject);
        socket.on('close', () => {
          const [first] = framedResponses(bytes);
          if (first) resolve({ status: first.status, body: first.body });
          else reject(new Error(`no response: ${bytes.toString('latin1')}`));
        });
      });

    test('the default name is "whoami"; ALLOWED healthHasNoName: /health is "ok\\n"', async () => {
      assert.equal(echoOf((await get('/')).body).name, 'whoami');
      assert.match((await get('/', 'text/plain')).body, /^Name: whoami$/m);
      assert.deepEqual(await get('/health'), { status: 200, body: 'ok\n' });
    });

    test('?wait=: a plain number is seconds (0.2 waits at least 200 ms, 250 is over 30 s), 31s is refused', async () => {
      const started = Date.now();
      assert.equal((await get('/?wait=0.2')).status, 200);
      assert.ok(Date.now() - started >= 200, 'waited 0.2 s');
      for (const wait of ['250', '31s', '30001ms']) {
        const reply = await get(`/?wait=${wait}`);
        assert.equal(reply.status, 400, wait);
        assert.match(reply.body, /WHOAMI_WAIT_TOO_LONG/, wait);
      }
    });

    test('without --listen it listens on 127.0.0.1:8080 (or says it cannot)', async () => {
      const defaulted = startKeepip(['whoami']);
      try {
        const code = await Promise.race([
          defaulted.exited(),
          defaulted.waitFor(/listening on http:\/\/127\.0\.0\.1:8080$/m, 30_000).then(() => 'listening'),
        ]);
        if (code === 'listening') return;
        assert.equal(code, 1, defaulted.output());
        assert.match(defaulted.output(), /^keepip whoami: cannot listen on 127\.0\.0\.1:8080: /m);
      } finally {
        await defaulted.stop();
      }
    });
  });

  // -------------------------------------------------------------------------------------------------
  // H: keepip demo on a terminal (script(1) gives it one).
  describe('H: keepip demo on a terminal', { concurrency: false }, () => {
    let hold: net.Server | null = null;
    before(async () => {
      // The seed's LB port, held so that the demo cannot have it: it must use free ports. Another test's
      // demo may hold it for a moment; wait for it (bounded).
      const deadline = Date.now() + 30_000;
      for (;;) {
        const server = net.createServer();
        const error = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
          server.once('error', resolve);
          server.listen({ host: '127.0.10.1', port: 80, exclusive: true }, () => resolve(null));
        });
        if (error === null) {
          hold = server;
          break;
        }
        if (error.code !== 'EADDRINUSE' || Date.now() > deadline) break; // EACCES: not root, nobody may bind it
        await new Promise((r) => setTimeout(r, 50));
      }
    });
    after(async () => {
      await new Promise<void>((resolve) => (hold ? hold.close(() => resolve()) : resolve()));
    });

    /** `keepip demo` with a terminal as stdin and stdout; `onOutput` may answer. Killed once it has finished. */
    function demoOnTerminal(
      flags: string[],
      onOutput: (text: string, child: ChildProcess) => void,
    ): Promise<string> {
      const child = spawn(
        'script',
        ['-qfec', `exec ${process.execPath} ${keepipBin} demo ${flags.join(' ')}`, '/dev/null'],
        {
          cwd: repoRoot,
          env: childEnv({ TERM: 'dumb' }),
          stdio: ['pipe', 'pipe', 'pipe'],
        },
      );
      let text = '';
      const result = new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`demo did not finish:\n${text}`)), 60_000);
        child.stdout?.on('data', (chunk: Buffer) => {
          text += chunk.toString('utf8').replaceAll('\r\n', '\n');
          onOutput(text, child);
          if (/Every step behaved as expected|did not behave as expected/.test(text)) {
            clearTimeout(timer);
            resolve(text);
          }
        });
        child.stderr?.on('data', (chunk: Buffer) => {
          text += chunk.toString('utf8');
        });
        // 'close', not 'exit': the last lines may still be in the pipe when the process exits.
        child.once('close', () => {
          clearTimeout(timer);
          resolve(text);
        });
      });
      const stop = () => {
        // The demo's own process, under script's: end it (its chain and temp dir are gone by the last line).
        try {
          for (const pid of readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8')
            .trim()
            .split(/\s+/))
            if (pid) process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
        child.kill('SIGKILL');
      };
      return result.finally(stop);
    }

    test('it waits for Enter between steps when stdin is a terminal', async () => {
      let answered = 0;
      const early: number[] = [];
      const text = await demoOnTerminal([], (out, child) => {
        const prompts = out.split('[press Enter to continue]').length - 1;
        while (answered < prompts) {
          answered += 1;
          // Not shown yet: the step waits for this Enter.
          if (out.includes(`Step ${answered}.`)) early.push(answered);
          child.stdin?.write('\r');
        }
      });
      assert.equal(answered, 6, text);
      assert.deepEqual(early, [], 'steps shown before their Enter');
      assert.match(text, /Every step behaved as expected/);
    });

    test("--no-pause on a terminal runs through; free ports when the manifests' are taken; the README sample", async () => {
      const text = await demoOnTerminal(['--no-pause'], () => {});
      assert.doesNotMatch(text, /press Enter/);
      assert.match(text, /Every step behaved as expected/);
      assert.match(text, /^\(the manifests' ports are not available here: .*; using free ports\)$/m);
      assert.match(
        text,
        /\$ curl -sS .* http:\/\/127\.0\.10\.1:\d+\//,
        'the curl command names the free port',
      );
      // ALLOWED demoStepsNotAllCurl: what each step prints to repeat it.
      const steps = text.split(/^Step \d\. /m).slice(1);
      assert.deepEqual(
        steps.map((s) => /^ {2}\$ (\S+)/m.exec(s)?.[1] ?? 'none'),
        ['curl', 'keepip', 'none', 'curl', 'curl', 'printf'],
      );
      // ALLOWED readmeSampleVariesPerRun: the README's sample, line by line, up to what varies per run.
      const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
      const sample = /```\n(keepip demo: the seed's incident[\s\S]*?)```/.exec(readme)?.[1];
      assert.ok(sample, 'the README has the sample');
      const ours = text.slice(text.indexOf("keepip demo: the seed's incident"));
      assert.notEqual(ours.trim(), sample.trim(), 'free ports and times make the raw text differ');
      assert.deepEqual(normaliseDemo(ours), normaliseDemo(sample));
      const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
        scripts: { start: string };
      };
      assert.equal(pkg.scripts.start, 'node bin/keepip demo');
    });
  });
});

/** The demo's text without what varies per run (ALLOWED readmeSampleVariesPerRun), one entry per line. */
function normaliseDemo(text: string): string[] {
  return text
    .replace(/^\(the manifests' ports are not available here: .*\)\n\n/m, '')
    .split('\n')
    .map((line) =>
      line
        .replace(/\S*keepip-demo-\w+/g, 'DIR')
        .replace(/\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[error\] \d+#\d+: \*\d+/g, 'TIME [error] PID: *N')
        .replace(/http:\/\/(127(?:\.\d+){3})(?::\d+)?\//g, 'http://$1:P/')
        .replace(/(PROXY TCP4 \S+ \S+ \d+) \d+\\r/g, '$1 P\\r')
        .replace(/(nc -s \S+ \S+) \d+$/g, '$1 P')
        .replace(/(127(?:\.\d+){3}):\d+/g, '$1:P')
        .replace(
          /^( {2}gateway access log: \S+ - - )\[[^\]]+\](.*)$/,
          (_m, head: string, rest: string) =>
            `${head}[T]${rest.replace(/[0-9a-f]{32}/, 'ID').replace(/\b\d+(?:\.\d+)?\b/g, 'N')}`,
        )
        .replace(/^(\S+) +\| /, '$1 | ')
        .replace(/^( {2}\S+) +\| /, '$1 | '),
    )
    .filter((line, i, all) => !(line === '' && i === all.length - 1));
}
