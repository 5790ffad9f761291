// `keepip controller`: a drop-in for the ingress-nginx controller. Takes its flags (same names and
// defaults), watches the API server, serves through the gateway, elects a leader with a Lease, writes
// Ingress status and Events, answers admission reviews. Lines go to stderr; SIGTERM/SIGINT shut down.
import { FLAGS, parseControllerFlags } from '../controller/flags.ts';
import { controllerSources } from '../dashboard/attach.ts';
import { launchDashboard, prepareDashboard } from '../dashboard/flag.ts';
import { usageError } from './args.ts';
import type { Command } from './main.ts';
import { catchSignals } from './signals.ts';

function usage(): string {
  const implemented = FLAGS.filter((f) => f.implemented);
  const width = Math.max(...implemented.map((f) => f.name.length)) + 2;
  const lines = implemented.map(
    (f) => `  --${f.name.padEnd(width)}${f.note}${f.default !== '' ? ` (default ${f.default})` : ''}`,
  );
  const ignored = FLAGS.filter((f) => !f.implemented).map((f) => `--${f.name}`);
  return [
    'Usage: keepip controller [flags]   (ingress-nginx controller flags; --flag=value or --flag value)',
    '',
    'Watches Ingress, IngressClass, Service, EndpointSlice, Secret and ConfigMap objects and serves them',
    'like ingress-nginx, keeping the client IP. $(POD_NAMESPACE) and $POD_NAME are read as ingress-nginx does.',
    '',
    'Flags:',
    ...lines,
    '',
    `Accepted with a warning, no effect (see docs/controller.md): ${ignored.join(' ')}`,
    '',
    'Exit codes: 0 stopped cleanly, 1 cannot start (kubeconfig, listeners), 2 usage error.',
    '',
  ].join('\n');
}

const USAGE = { command: 'controller', help: usage() };

export const command: Command = {
  summary: 'A drop-in for the ingress-nginx controller: watch the cluster, serve its Ingresses',
  async run(argv) {
    const parsed = parseControllerFlags(argv, process.env);
    if (parsed.ok === 'help') {
      process.stdout.write(USAGE.help);
      return 0;
    }
    if (parsed.ok === 'version') {
      const pkg = await import('../../package.json', { with: { type: 'json' } });
      process.stdout.write(`keepip ${pkg.default.version} (controller)\n`);
      return 0;
    }
    if (!parsed.ok) return usageError(USAGE, parsed.error);
    // keepip's own --dashboard (the token from KEEPIP_DASHBOARD_TOKEN: the flag table is ingress-nginx's).
    const dashboard = await prepareDashboard(
      { dashboard: parsed.options.dashboard ?? undefined },
      process.env,
    );
    if (!dashboard.ok) return usageError(USAGE, dashboard.error);
    const log = (line: string) => process.stderr.write(`keepip controller: ${line}\n`);
    for (const warning of parsed.warnings) log(`warning: ${warning}`);
    // Loaded here: the Kubernetes client is large and only this command needs it.
    const { startController } = await import('../controller/controller.ts');
    let running: Awaited<ReturnType<typeof startController>>;
    try {
      running = await startController(parsed.options, {
        env: process.env,
        log,
        ...(dashboard.plan ? { decisionLog: dashboard.plan.log } : {}),
      });
    } catch (error) {
      log(`error: ${(error as Error).message}`);
      return 1;
    }
    let board: Awaited<ReturnType<typeof launchDashboard>>['running'] | null = null;
    if (dashboard.plan) {
      try {
        const launched = await launchDashboard(
          dashboard.plan,
          controllerSources(
            () => running.gateway(),
            () => running.manifests(),
          ),
        );
        board = launched.running;
        for (const line of launched.lines)
          log(`${line.level === 'warning' ? 'warning: ' : ''}${line.message}`);
      } catch (error) {
        log(`error: the dashboard cannot listen: ${(error as Error).message}`);
        await running.close();
        return 1;
      }
    }
    const signals = catchSignals();
    const stoppedBy = await Promise.race([signals.stopped, running.failed.then(() => null)]);
    if (stoppedBy !== null) log(`${stoppedBy}: stopping`);
    await running.close();
    await board?.close();
    signals.release();
    return stoppedBy === null ? 1 : 0;
  },
};
