// `keepip up`: run the chain a directory of manifests describes on this machine — an lb per
// LoadBalancer Service, kube-proxy's NodePort hop, the gateway for the Ingresses, whoami for backends
// nothing else serves — as one log stream, prefixed per component. Ctrl-C stops everything.
import { upSources } from '../dashboard/attach.ts';
import { escapeControlBytes } from '../gateway/access-log.ts';
import {
  DASHBOARD_FLAG_OPTIONS,
  DASHBOARD_USAGE,
  type DashboardPlan,
  launchDashboard,
  prepareDashboard,
} from '../dashboard/flag.ts';
import type { RunningDashboard } from '../dashboard/server.ts';
import { type RunningChain, startChain, UpError } from '../up/run.ts';
import { parseCommandArgs, usageError } from './args.ts';
import type { Command } from './main.ts';
import { catchSignals } from './signals.ts';

const HELP = `Usage: keepip up -f <file|dir>... [options]

Runs the chain the manifests describe on 127.0.0.0/8: a load balancer for each Service of type
LoadBalancer (PROXY protocol, source address and client-IP preservation from its annotations), the
kube-proxy NodePort hop for instance targets (SNAT to the node under externalTrafficPolicy: Cluster),
the gateway for the Ingress objects on the controller pod's address, ClusterIP hops, and keepip whoami
on every backend endpoint. Addresses come from the manifests (status.loadBalancer, Node objects,
Endpoints/EndpointSlices, keepip.dev/* annotations; see docs/up.md for the defaults).

Options:
  -f, --filename <path>      manifest file or directory (repeatable)
      --ephemeral-ports      listen on free ports instead of the manifests' ports (printed at start-up);
                             use it when ports below 1024 need root or another chain is running
      --configmap <ns/name>  the controller ConfigMap (default ingress-nginx/ingress-nginx-controller)
      --ingress-class <name> serve Ingresses of this class (default nginx)
      --no-watch             do not reload when the manifests change
${DASHBOARD_USAGE}  -h, --help                 this help

The manifests are watched: a valid change is applied live (the gateway reloads in place, changed
hops restart on the same address); an invalid one is reported and the chain keeps running.
Exit codes: 0 stopped by Ctrl-C/SIGTERM, 1 the chain cannot start, 2 usage error.
`;

const USAGE = { command: 'up', help: HELP };

/** `component | line`, components aligned, one stream for the whole chain. */
export function createPrefixedLog(write: (text: string) => void): (component: string, line: string) => void {
  let width = 8;
  return (component, line) => {
    width = Math.max(width, Math.min(component.length, 32));
    // Names come from the manifests: a newline in one must not write a line that another component seems to.
    write(`${escapeControlBytes(component).padEnd(width)} | ${escapeControlBytes(line)}\n`);
  };
}

export const command: Command = {
  summary: 'Run the chain a directory of manifests describes (lb, kube-proxy hop, gateway, backends)',
  async run(argv) {
    const values = parseValues(argv);
    if (typeof values === 'number') return values;
    const dashboard = await prepareDashboard(values, process.env);
    if (!dashboard.ok) return usageError(USAGE, dashboard.error);
    const log = createPrefixedLog((text) => process.stdout.write(text));
    // Signals are handled from the start: a test (or a user) reacts to the start-up lines at once, and
    // a signal that arrived before its handler would kill the process without closing anything.
    const signals = catchSignals({
      hangups: true,
      onSecondStop: () => {
        log('up', 'second signal: exiting without waiting');
        process.exit(130);
      },
    });
    let chain: RunningChain;
    try {
      chain = await startChain({
        paths: values.filename,
        ports: values['ephemeral-ports'] ? 'ephemeral' : 'exact',
        log,
        watch: !values['no-watch'],
        ...(dashboard.plan ? { decisions: dashboard.plan.log.sink } : {}),
        ...(values.configmap !== undefined ? { configMap: values.configmap } : {}),
        ...(values['ingress-class'] !== undefined ? { ingressClass: values['ingress-class'] } : {}),
      });
    } catch (error) {
      const code = error instanceof UpError ? ` [${error.code}]` : '';
      process.stderr.write(`keepip up: ${(error as Error).message}${code}\n`);
      signals.release();
      return 1;
    }
    const board = dashboard.plan ? await serveDashboard(dashboard.plan, chain, log) : null;
    if (board === undefined) {
      await chain.close();
      signals.release();
      return 1;
    }
    signals.onHangup(() => void chain.reload());
    log('up', `the chain is running (${chain.plan.components.length} components); Ctrl-C stops it`);
    await signals.stopped;
    log('up', 'stopping');
    await board?.close();
    dashboard.plan?.log.close();
    await chain.close();
    signals.release();
    log('up', 'stopped');
    return 0;
  },
};

/** The options, or the exit code when they are help or wrong. */
function parseValues(argv: string[]) {
  const parsed = parseCommandArgs(USAGE, {
    args: argv,
    options: {
      filename: { type: 'string', short: 'f', multiple: true },
      'ephemeral-ports': { type: 'boolean' },
      configmap: { type: 'string' },
      'ingress-class': { type: 'string' },
      'no-watch': { type: 'boolean' },
      ...DASHBOARD_FLAG_OPTIONS,
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  if (!values.filename || values.filename.length === 0)
    return usageError(USAGE, 'give the manifests with -f <file|dir>');
  return { ...values, filename: values.filename };
}

/** --dashboard beside the chain; undefined (and an error line) when it cannot listen. */
async function serveDashboard(
  plan: DashboardPlan,
  chain: RunningChain,
  log: (component: string, line: string) => void,
): Promise<RunningDashboard | undefined> {
  try {
    const launched = await launchDashboard(plan, upSources(chain));
    for (const line of launched.lines)
      log('dashboard', `${line.level === 'warning' ? 'warning: ' : ''}${line.message}`);
    return launched.running;
  } catch (error) {
    process.stderr.write(`keepip up: the dashboard cannot listen: ${(error as Error).message}\n`);
    return undefined;
  }
}
