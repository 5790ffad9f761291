// `keepip demo`: the seed's incident and its fix, live on loopback. Runs examples/seed/before with
// `keepip up`, shows the allowlisted client's 403 and the log line naming the LB's address, asks the
// doctor why, applies the fix by rewriting the manifests (the chain reloads live), and shows the same
// request passing with the client's own address at the gateway and the backend, while a client that
// is not allowlisted is still refused and a forged PROXY header sent straight to the pod is dropped.
import { cp, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { diagnose } from '../doctor/diagnose.ts';
import { encodeProxyHeader } from '../proxy-protocol/index.ts';
import { upSources } from '../dashboard/attach.ts';
import { type DashboardPlan, launchDashboard } from '../dashboard/flag.ts';
import type { RunningDashboard } from '../dashboard/server.ts';
import { type RunningChain, startChain, UpError } from '../up/run.ts';
import { curlCommand, type DemoRequest, type DemoResponse, send } from './client.ts';

export const SEED_DIR = fileURLToPath(new URL('../../examples/seed/', import.meta.url));

/** The seed's cast on loopback (examples/seed/README.md). */
export const CAST = {
  allowedClient: '127.0.20.10',
  otherClient: '127.0.20.66',
  lb: { host: '127.0.10.1', port: 80 },
  gatewayPod: { host: '127.0.30.1', port: 80 },
  host: 'gitea.example.com',
} as const;

export interface DemoIo {
  /** Prints text (the narration). */
  print(text: string): void;
  /** Waits for the user between steps; resolves at once when not interactive. */
  pause(): Promise<void>;
}

export interface DemoStep {
  title: string;
  expected: string;
  observed: string;
  ok: boolean;
}

export interface DemoResult {
  ok: boolean;
  steps: DemoStep[];
}

interface Captured {
  lines: string[];
}

function since(captured: Captured, start: number, component: string): string[] {
  return captured.lines.slice(start).filter((line) => line.startsWith(`${component} `));
}

function backendSaw(response: DemoResponse): { xRealIp: string; xff: string; remote: string } | null {
  try {
    const body = JSON.parse(response.body) as { remoteAddress?: string; headers?: Record<string, string> };
    return {
      xRealIp: body.headers?.['x-real-ip'] ?? '-',
      xff: body.headers?.['x-forwarded-for'] ?? '-',
      remote: body.remoteAddress ?? '-',
    };
  } catch {
    return null;
  }
}

/** A raw connection straight to the gateway pod that sends its own PROXY header claiming `claimed`. */
function forgedProxyRequest(
  target: { host: string; port: number },
  from: string,
  claimed: string,
): Promise<string> {
  return new Promise((resolve) => {
    const header = encodeProxyHeader({
      version: 1,
      command: 'PROXY',
      protocol: 'TCP4',
      source: { address: claimed, port: 40000 },
      destination: { address: target.host, port: target.port },
    });
    const socket = net.connect({ host: target.host, port: target.port, localAddress: from });
    let received = '';
    socket.setTimeout(5_000, () => socket.destroy());
    socket.on('connect', () => {
      socket.write(
        Buffer.concat([Buffer.from(header), Buffer.from(`GET / HTTP/1.1\r\nHost: ${CAST.host}\r\n\r\n`)]),
      );
    });
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(received));
  });
}

/** What every step uses: the narration, the results so far, the chain's log and the two clients. */
interface Demo {
  readonly io: DemoIo;
  readonly steps: DemoStep[];
  readonly captured: Captured;
  readonly chain: RunningChain;
  readonly manifests: string;
  /** The allowlisted laptop's request through the LB, and another machine's. */
  readonly asAllowed: DemoRequest;
  readonly asOther: DemoRequest;
  /** Where the gateway pod actually listens. */
  readonly pod: { host: string; port: number };
}

const STEPS: readonly ((demo: Demo) => Promise<void>)[] = [
  showIncident,
  askDoctor,
  applyFix,
  showFixed,
  showOthersRefused,
  showForgedHeaderDropped,
];

/** `dashboard`: serve the dashboard beside the chain (keepip demo --dashboard) and say where. */
export async function runSeedDemo(
  io: DemoIo,
  options: { dashboard?: DashboardPlan } = {},
): Promise<DemoResult> {
  const steps: DemoStep[] = [];
  const workDir = await mkdtemp(join(tmpdir(), 'keepip-demo-'));
  const manifests = join(workDir, 'manifests');
  await cp(join(SEED_DIR, 'before'), manifests, { recursive: true });
  const captured: Captured = { lines: [] };
  introduce(io, manifests);
  const chain = await startSeedChain(io, manifests, captured, options.dashboard);
  let closeBoard: () => Promise<void> = async () => {};
  try {
    const board = options.dashboard ? await startDemoDashboard(io, options.dashboard, chain) : null;
    closeBoard = () => board?.close() ?? Promise.resolve();
    io.print('The chain (keepip up):\n');
    for (const line of captured.lines) io.print(`  ${line}\n`);
    io.print('\n');
    const lb = chain.actual(CAST.lb);
    const demo: Demo = {
      io,
      steps,
      captured,
      chain,
      manifests,
      asAllowed: { ...lb, from: CAST.allowedClient, hostHeader: CAST.host, path: '/' },
      asOther: { ...lb, from: CAST.otherClient, hostHeader: CAST.host, path: '/' },
      pod: chain.actual(CAST.gatewayPod),
    };
    for (const step of STEPS) {
      await io.pause();
      await step(demo);
      io.print('\n');
    }
  } finally {
    await closeBoard();
    await chain.close();
    await rm(workDir, { recursive: true, force: true });
  }
  const ok = steps.every((step) => step.ok);
  io.print(
    ok
      ? 'Every step behaved as expected. Run it yourself: keepip up -f examples/seed/before (then after), keepip doctor -f examples/seed/before --client 127.0.20.10 --host gitea.example.com\n'
      : `${steps.filter((s) => !s.ok).length} step(s) did not behave as expected (see ✘ above).\n`,
  );
  return { ok, steps };
}

function record(demo: Demo, title: string, expected: string, observed: string, ok: boolean): void {
  demo.steps.push({ title, expected, observed, ok });
  demo.io.print(`${ok ? '  ✔' : '  ✘'} expected ${expected}; observed ${observed}\n`);
}

function introduce(io: DemoIo, manifests: string): void {
  io.print(
    [
      "keepip demo: the seed's incident, live on loopback",
      '',
      'Gitea runs behind an internal AWS NLB and ingress-nginx. Its Ingress allows one address:',
      `  nginx.ingress.kubernetes.io/whitelist-source-range: ${CAST.allowedClient}/32`,
      `The allowlisted laptop is ${CAST.allowedClient}; the NLB is ${CAST.lb.host}; the controller pod is ${CAST.gatewayPod.host}.`,
      `Manifests: a copy of examples/seed/before in ${manifests}`,
      '',
    ].join('\n'),
  );
}

/** `keepip up` on the manifests' own ports, or on free ports when those are taken here. */
async function startSeedChain(
  io: DemoIo,
  manifests: string,
  captured: Captured,
  dashboard: DashboardPlan | undefined,
): Promise<RunningChain> {
  const log = (component: string, line: string) => captured.lines.push(`${component} | ${line}`);
  const decisions = dashboard ? { decisions: dashboard.log.sink } : {};
  try {
    return await startChain({ paths: [manifests], ports: 'exact', log, ...decisions });
  } catch (error) {
    if (!(error instanceof UpError) || error.code !== 'UP_LISTEN_FAILED') throw error;
    io.print(
      `(the manifests' ports are not available here: ${error.message.split('\n')[0]}; using free ports)\n\n`,
    );
    captured.lines.length = 0;
    return startChain({ paths: [manifests], ports: 'ephemeral', log, ...decisions });
  }
}

/** Step 1: the incident. */
async function showIncident(demo: Demo): Promise<void> {
  const { io, captured, asAllowed } = demo;
  io.print(`Step 1. The allowlisted laptop asks Gitea through the NLB:\n  $ ${curlCommand(asAllowed)}\n`);
  const mark = captured.lines.length;
  const response = await send(asAllowed);
  io.print(`  -> ${response.status ?? response.error}\n`);
  const forbidden = since(captured, mark, 'gateway').find((line) =>
    line.includes('access forbidden by rule'),
  );
  if (forbidden) io.print(`  gateway error log: ${forbidden.replace(/^gateway\s*\| /, '')}\n`);
  record(
    demo,
    'before: the allowlisted client',
    `403 and "access forbidden by rule, client: ${CAST.lb.host}"`,
    `${response.status ?? response.error}${forbidden ? ` and "${/access forbidden by rule, client: [^,]+/.exec(forbidden)?.[0]}"` : ', no forbidden line'}`,
    response.status === 403 &&
      forbidden?.includes(`access forbidden by rule, client: ${CAST.lb.host},`) === true,
  );
  io.print("  The gateway saw the NLB's address, not the laptop's: the client IP was lost at the NLB.\n");
}

/** Step 2: the doctor explains. */
async function askDoctor(demo: Demo): Promise<void> {
  const { io } = demo;
  io.print(
    `Step 2. Ask the doctor:\n  $ keepip doctor -f examples/seed/before --client ${CAST.allowedClient} --host ${CAST.host}\n`,
  );
  const diagnosis = diagnose(demo.chain.topology, { client: CAST.allowedClient, host: CAST.host, path: '/' });
  if (!diagnosis.ok) {
    record(demo, 'doctor on the seed', 'a diagnosis', diagnosis.error.message, false);
    return;
  }
  const report = diagnosis.report;
  io.print(`  ${report.summary}\n`);
  for (const hop of report.hops) io.print(`    ${hop.name.padEnd(14)} sees ${hop.sees ?? '-'}\n`);
  for (const finding of report.findings) io.print(`  ${finding.severity.toUpperCase()} ${finding.id}\n`);
  const fix = report.findings.find((f) => f.fix !== null)?.fix;
  if (fix) io.print(`  fix: ${fix.summary}\n${fix.patches.map((p) => `    $ ${p.kubectl}\n`).join('')}`);
  record(
    demo,
    'doctor on the seed',
    'a 403 verdict explained by CLIENT_IP_LOST_AT_LB',
    `${report.status ?? report.verdict} with ${report.findings.map((f) => f.id).join(', ') || 'no findings'}`,
    report.status === 403 && report.findings.some((f) => f.id === 'CLIENT_IP_LOST_AT_LB'),
  );
}

/** Step 3: apply the fix, both ends at once; the chain reloads live. */
async function applyFix(demo: Demo): Promise<void> {
  const { io, captured, chain } = demo;
  io.print(
    [
      'Step 3. Apply the fix to the manifests (the chain watches them and reloads live):',
      '  Service ingress-nginx/ingress-nginx-controller:',
      '    service.beta.kubernetes.io/aws-load-balancer-proxy-protocol: "*"   # the NLB sends PROXY v2',
      '  ConfigMap ingress-nginx/ingress-nginx-controller:',
      '    use-proxy-protocol: "true"                                        # the gateway expects it',
      `    proxy-real-ip-cidr: ${CAST.lb.host}/32                               # ...from the NLB only`,
      '',
    ].join('\n'),
  );
  const mark = captured.lines.length;
  const reloaded = chain.nextReload();
  await cp(join(SEED_DIR, 'after', 'ingress-nginx.yaml'), join(demo.manifests, 'ingress-nginx.yaml'));
  // A watcher that missed the copy gets 5 s, then the reload is asked for; the timer never holds the exit.
  let fallback: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    reloaded,
    new Promise<null>((resolve) => {
      fallback = setTimeout(() => resolve(null), 5_000);
    }),
  ]);
  clearTimeout(fallback);
  const applied = outcome ?? (await chain.reload());
  for (const line of captured.lines.slice(mark)) io.print(`  ${line}\n`);
  record(
    demo,
    'the fix reloads',
    'a live reload',
    applied.ok ? 'reloaded' : applied.messages.join('; '),
    applied.ok,
  );
}

/** Step 4: the same request passes, with the client's own address everywhere. */
async function showFixed(demo: Demo): Promise<void> {
  const { io, captured, asAllowed } = demo;
  io.print(`Step 4. The same request again:\n  $ ${curlCommand(asAllowed)}\n`);
  const mark = captured.lines.length;
  const response = await send(asAllowed);
  const access = since(captured, mark, 'gateway').find((line) => /"GET \/ HTTP\/1\.1"/.test(line));
  const accessLine = access?.replace(/^gateway\s*\| /, '') ?? '';
  const saw = backendSaw(response);
  io.print(`  -> ${response.status ?? response.error}\n`);
  if (accessLine) io.print(`  gateway access log: ${accessLine}\n`);
  if (saw) io.print(`  Gitea (whoami) received X-Real-IP: ${saw.xRealIp}, X-Forwarded-For: ${saw.xff}\n`);
  record(
    demo,
    'after: the allowlisted client',
    `200, an access log line starting with ${CAST.allowedClient}, X-Real-IP and X-Forwarded-For ${CAST.allowedClient}`,
    `${response.status ?? response.error}, log ${accessLine.split(' ')[0] || '-'}, X-Real-IP ${saw?.xRealIp ?? '-'}, X-Forwarded-For ${saw?.xff ?? '-'}`,
    response.status === 200 &&
      accessLine.startsWith(`${CAST.allowedClient} `) &&
      saw?.xRealIp === CAST.allowedClient &&
      saw?.xff === CAST.allowedClient,
  );
}

/** Step 5: access control still works for everyone else. */
async function showOthersRefused(demo: Demo): Promise<void> {
  const { io, captured, asOther } = demo;
  io.print(`Step 5. Another office machine, not on the allowlist:\n  $ ${curlCommand(asOther)}\n`);
  const mark = captured.lines.length;
  const response = await send(asOther);
  const denied = since(captured, mark, 'gateway').find((line) => line.includes('access forbidden by rule'));
  io.print(`  -> ${response.status ?? response.error}\n`);
  if (denied) io.print(`  gateway error log: ${denied.replace(/^gateway\s*\| /, '')}\n`);
  record(
    demo,
    'after: a client not on the allowlist',
    `403 naming ${CAST.otherClient}`,
    `${response.status ?? response.error}`,
    response.status === 403 && denied?.includes(`client: ${CAST.otherClient},`) === true,
  );
}

/** Step 6: a forged header straight to the pod goes nowhere. */
async function showForgedHeaderDropped(demo: Demo): Promise<void> {
  const { io, captured, pod } = demo;
  io.print(
    `Step 6. ${CAST.otherClient} skips the NLB and sends its own PROXY header to the gateway pod, claiming to be ${CAST.allowedClient}:\n` +
      `  $ printf 'PROXY TCP4 ${CAST.allowedClient} ${pod.host} 40000 ${pod.port}\\r\\nGET / HTTP/1.1\\r\\nHost: ${CAST.host}\\r\\n\\r\\n' | nc -s ${CAST.otherClient} ${pod.host} ${pod.port}\n`,
  );
  const mark = captured.lines.length;
  const forged = await forgedProxyRequest(pod, CAST.otherClient, CAST.allowedClient);
  const why = since(captured, mark, 'gateway').find((line) => /PROXY|proxy/.test(line));
  io.print(`  -> ${forged === '' ? 'connection closed without a response' : forged.split('\r\n')[0]}\n`);
  if (why) io.print(`  gateway error log: ${why.replace(/^gateway\s*\| /, '')}\n`);
  record(
    demo,
    'a forged PROXY header from an untrusted peer',
    'the connection closed without a response',
    forged === '' ? 'closed without a response' : forged.split('\r\n')[0]!,
    forged === '',
  );
}

async function startDemoDashboard(
  io: DemoIo,
  plan: DashboardPlan,
  chain: RunningChain,
): Promise<RunningDashboard> {
  const { running, lines } = await launchDashboard(plan, upSources(chain));
  for (const line of lines) io.print(`${line.level === 'warning' ? 'warning: ' : ''}${line.message}\n`);
  io.print(`Open ${running.url} to watch each step's requests, who was let in or turned away, and why.\n\n`);
  return running;
}
