// `--dashboard ADDR:PORT` and its token, the same for every command that serves the dashboard:
// parse the flag, read the token (a file or KEEPIP_DASHBOARD_TOKEN, never the command line, which
// other users can see), and say where it listens (with a warning when it is reachable from other
// machines without a token).
import { readFile } from 'node:fs/promises';
import { type HostPort, parseListenAddress } from '../net/host-port.ts';
import { isLoopbackAddress } from '../net/ip.ts';
import { createDecisionLog, type DecisionLog } from '../gateway/decision-log.ts';
import type { RunningDashboard } from './server.ts';
import type { DashboardSources } from './sources.ts';

export const DASHBOARD_USAGE = `      --dashboard <ADDR:PORT>
                             serve the read-only dashboard here (a bare PORT is 127.0.0.1:PORT; off by
                             default; docs/dashboard.md)
      --dashboard-token-file <FILE>
                             require "Authorization: Bearer <first line of FILE>" on the dashboard's API
                             (or set KEEPIP_DASHBOARD_TOKEN)
`;

/** A bare port means loopback: the dashboard is never exposed by accident. */
export function parseDashboardAddress(
  text: string,
): { ok: true; value: HostPort } | { ok: false; error: string } {
  const parsed = parseListenAddress(text);
  return parsed.ok ? parsed : { ok: false, error: `--dashboard: ${parsed.error}` };
}

/** The token from --dashboard-token-file (first line) or KEEPIP_DASHBOARD_TOKEN; null when neither. */
export async function readDashboardToken(
  file: string | undefined,
  env: NodeJS.ProcessEnv,
): Promise<{ ok: true; token: string | null } | { ok: false; error: string }> {
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      return { ok: false, error: `--dashboard-token-file: ${(error as Error).message}` };
    }
    const token = text.split(/\r?\n/)[0]?.trim() ?? '';
    const problem = tokenProblem(token);
    if (problem !== null) return { ok: false, error: `--dashboard-token-file: the token ${problem}` };
    return { ok: true, token };
  }
  const fromEnv = env.KEEPIP_DASHBOARD_TOKEN?.trim();
  if (fromEnv === undefined || fromEnv === '') return { ok: true, token: null };
  const problem = tokenProblem(fromEnv);
  if (problem !== null) return { ok: false, error: `KEEPIP_DASHBOARD_TOKEN ${problem}` };
  return { ok: true, token: fromEnv };
}

/**
 * Why a token cannot serve, or null: too short to resist guessing, or with a character that
 * `Authorization: Bearer <token>` cannot carry as one word (a space, a control byte, non-ASCII), so
 * that no request could ever match it.
 */
function tokenProblem(token: string): string | null {
  if (token.length < 16) return 'must be at least 16 characters';
  if (!/^[\x21-\x7e]+$/.test(token))
    return 'must be printable ASCII without spaces (it is sent as "Authorization: Bearer <token>")';
  return null;
}

/** The start-up lines: where it listens, and a warning when others can reach it without a token. */
export function dashboardLines(
  running: RunningDashboard,
  token: string | null,
): { level: 'info' | 'warning'; message: string }[] {
  const lines: { level: 'info' | 'warning'; message: string }[] = [
    {
      level: 'info',
      message: `dashboard ${running.url} (read-only${token === null ? '' : ', bearer token required'})`,
    },
  ];
  if (token === null && !isLoopbackAddress(running.address.address))
    lines.push({
      level: 'warning',
      message: `the dashboard listens on ${running.address.address} without a token: anyone who reaches it sees client addresses and routes; set --dashboard-token-file`,
    });
  return lines;
}

/** The parseArgs options of the two flags, to spread into a command's own. */
export const DASHBOARD_FLAG_OPTIONS = {
  dashboard: { type: 'string' },
  'dashboard-token-file': { type: 'string' },
} as const;

/** What a command needs before it starts its gateway: the sink to hand it, and where to serve later. */
export interface DashboardPlan {
  listen: HostPort;
  token: string | null;
  log: DecisionLog;
}

/** null when --dashboard is absent (the default: no decision log, no sink, nothing listens). */
export async function prepareDashboard(
  values: { dashboard?: string | undefined; 'dashboard-token-file'?: string | undefined },
  env: NodeJS.ProcessEnv,
): Promise<{ ok: true; plan: DashboardPlan | null } | { ok: false; error: string }> {
  if (values.dashboard === undefined) {
    if (values['dashboard-token-file'] !== undefined)
      return { ok: false, error: '--dashboard-token-file needs --dashboard' };
    return { ok: true, plan: null };
  }
  const listen = parseDashboardAddress(values.dashboard);
  if (!listen.ok) return listen;
  const token = await readDashboardToken(values['dashboard-token-file'], env);
  if (!token.ok) return token;
  return { ok: true, plan: { listen: listen.value, token: token.token, log: createDecisionLog() } };
}

/** Starts the dashboard of a prepared plan; the lines are for the command's start-up output. */
export async function launchDashboard(
  plan: DashboardPlan,
  sources: DashboardSources,
): Promise<{ running: RunningDashboard; lines: { level: 'info' | 'warning'; message: string }[] }> {
  // Loaded when a dashboard is asked for: with the doctor it needs, 47 modules every gateway start read.
  const { startDashboard } = await import('./server.ts');
  const running = await startDashboard({
    listen: plan.listen,
    token: plan.token,
    decisions: plan.log,
    sources,
  });
  return { running, lines: dashboardLines(running, plan.token) };
}
