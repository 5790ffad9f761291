// A seed chain (keepip up, in-process, free ports) with the dashboard on 127.0.0.1:0, and the two
// requests the dashboard is about: one let through, one turned away.
import { cp, mkdtemp, rm } from 'node:fs/promises';
import http from '../../src/node-http.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { upSources } from '../../src/dashboard/attach.ts';
import { createDecisionLog, type DecisionLog } from '../../src/gateway/decision-log.ts';
import { type RunningDashboard, startDashboard } from '../../src/dashboard/server.ts';
import { type DemoResponse, send } from '../../src/demo/client.ts';
import { type RunningChain, startChain } from '../../src/up/run.ts';

export const seed = (variant: string) =>
  fileURLToPath(new URL(`../../examples/seed/${variant}`, import.meta.url));

export const ALLOWED = '127.0.20.10';
export const OTHER = '127.0.20.66';
export const LB = { host: '127.0.10.1', port: 80 };
export const POD = { host: '127.0.30.1', port: 80 };
export const HOST = 'gitea.example.com';

export interface Seeded {
  chain: RunningChain;
  log: DecisionLog;
  board: RunningDashboard;
  dir: string;
  /** GET on the dashboard: status, headers and the body parsed as JSON when it is JSON. */
  get(
    path: string,
    headers?: Record<string, string>,
    // biome-ignore lint/suspicious/noExplicitAny: a test reads the JSON it just asserted the shape of
  ): Promise<{ status: number; headers: Headers; body: any; text: string }>;
  close(): Promise<void>;
}

export async function seededDashboard(variant = 'before', token: string | null = null): Promise<Seeded> {
  const dir = await mkdtemp(join(tmpdir(), 'keepip-dashboard-'));
  await cp(seed(variant), dir, { recursive: true });
  return dashboardOnChain(dir, token);
}

/** keepip up on the manifests in `dir` (removed on close) with the dashboard, as `up --dashboard` wires it. */
export async function dashboardOnChain(dir: string, token: string | null): Promise<Seeded> {
  const log = createDecisionLog();
  const chain = await startChain({
    paths: [dir],
    ports: 'ephemeral',
    watch: false,
    log: () => {},
    decisions: log.sink,
  });
  const board = await startDashboard({
    listen: { host: '127.0.0.1', port: 0 },
    token,
    decisions: log,
    sources: upSources(chain),
  });
  return {
    chain,
    log,
    board,
    dir,
    async get(path, headers = {}) {
      const response = await fetch(new URL(path, board.url), { headers });
      const text = await response.text();
      let body: unknown = null;
      if ((response.headers.get('content-type') ?? '').startsWith('application/json'))
        body = JSON.parse(text);
      return { status: response.status, headers: response.headers, body, text };
    },
    async close() {
      await board.close();
      log.close();
      await chain.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Through the LB from `from` (denied in the seed before the fix: the gateway sees the LB's address). */
export function viaLb(s: Seeded, from: string, path = '/'): Promise<DemoResponse> {
  const at = s.chain.actual(LB);
  return send({ host: at.host, port: at.port, from, hostHeader: HOST, path }, 30_000);
}

/** Straight to the gateway pod from `from` (the allowlisted address gets through). */
export function direct(s: Seeded, from: string, path = '/'): Promise<DemoResponse> {
  const at = s.chain.actual(POD);
  return send({ host: at.host, port: at.port, from, hostHeader: HOST, path }, 30_000);
}

/** Waits until the decision log has kept `count` records (the gateway records after answering). */
export async function kept(s: Seeded, count: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (s.log.counters.kept < count) {
    if (Date.now() > deadline) throw new Error(`the decision log kept ${s.log.counters.kept} of ${count}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** GET with a Host header of our choosing (fetch does not let a caller set Host). */
export function getWithHost(
  url: string,
  host: string,
  headers: Record<string, string> = {},
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { headers: { ...headers, host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}
