// `npm run bench [-- <suite|group>...] [--quick] [--json]`: checks the Debian tools, runs the selected
// suites (bench/suites/<name>.ts, each exporting `suite`) one after another, writes
// bench/results/<timestamp>.json and .md, prints the table, and exits 1 when any suite threw or
// reported an error during a load (so a fast but broken build never reports a win), 2 on usage errors.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeMachine } from './lib/machine.ts';
import { type BenchRun, renderMarkdown, type SuiteRecord, suiteFailed } from './lib/report.ts';
import { stopAllProcesses } from './lib/supervisor.ts';
import { ensureTools } from './lib/tools.ts';
import type { BenchSuite, SuiteResult } from './types.ts';

const suitesDir = fileURLToPath(new URL('./suites/', import.meta.url));
const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));

/** The order of a full run: cheap in-process suites first, the many-connection one last. */
export const SUITE_ORDER = [
  'pp',
  'acl-lookup',
  'acl-nginx',
  'gateway',
  'http2',
  'chain',
  'l4',
  'idle',
] as const;

/** Names that select several suites: the issue's "acl" is the lookup micro-benchmark plus nginx's list. */
export const SUITE_GROUPS: Record<string, readonly string[]> = {
  acl: ['acl-lookup', 'acl-nginx'],
  all: SUITE_ORDER,
};

/** Wall-clock bound of one suite; the whole quick run must stay under 2 minutes. */
const SUITE_TIMEOUT_MS = { quick: 100_000, full: 20 * 60_000 };

const HELP = `Usage: npm run bench -- [SUITE|GROUP ...] [--quick] [--json]

Runs keepip beside the systems users would pick instead (nginx, HAProxy, a naive Node proxy) on
127.0.0.0/8, interleaved rounds, medians, and reports ratios.

Suites: ${SUITE_ORDER.join(', ')}   Groups: acl = acl-lookup + acl-nginx, all
  --quick   fewer and shorter rounds (whole run < 2 minutes), for a smoke check
  --json    print the run as JSON on stdout instead of the markdown table
Writes bench/results/<timestamp>.json and .md. Exit 0 ok, 1 a suite failed or saw errors, 2 usage.
`;

export type Selection = { ok: true; names: string[]; missing: string[] } | { ok: false; error: string };

/** Expands groups, keeps the canonical order, and separates suites that exist from those that do not yet. */
export function selectSuites(requested: readonly string[], available: readonly string[]): Selection {
  const known = new Set<string>([...SUITE_ORDER, ...available]);
  const wanted = new Set<string>();
  for (const name of requested.length === 0 ? ['all'] : requested) {
    const group = SUITE_GROUPS[name];
    if (group) for (const member of group) wanted.add(member);
    else if (known.has(name)) wanted.add(name);
    else {
      return {
        ok: false,
        error: `unknown suite "${name}" (suites: ${[...known].join(', ')}; groups: ${Object.keys(SUITE_GROUPS).join(', ')})`,
      };
    }
  }
  if (requested.length === 0) for (const name of available) wanted.add(name);
  const rank = (name: string) => {
    const index = (SUITE_ORDER as readonly string[]).indexOf(name);
    return index === -1 ? SUITE_ORDER.length : index;
  };
  const ordered = [...wanted].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return {
    ok: true,
    names: ordered.filter((name) => available.includes(name)),
    missing: ordered.filter((name) => !available.includes(name)),
  };
}

function availableSuites(): string[] {
  try {
    return readdirSync(suitesDir)
      .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts') && !file.endsWith('.d.ts'))
      .map((file) => file.slice(0, -3));
  } catch {
    return [];
  }
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function runSuite(name: string, quick: boolean): Promise<SuiteRecord> {
  const started = performance.now();
  const tmpDir = mkdtempSync(join(tmpdir(), `keepip-bench-${name}-`));
  const record: SuiteRecord = { name, description: '', durationSeconds: 0 };
  let timer: NodeJS.Timeout | undefined;
  try {
    const module = (await import(join(suitesDir, `${name}.ts`))) as { suite?: BenchSuite };
    const suite = module.suite;
    if (!suite || typeof suite.run !== 'function')
      throw new Error(`bench/suites/${name}.ts exports no \`suite\``);
    record.description = suite.description;
    log(`== ${name}: ${suite.description}`);
    const limit = quick ? SUITE_TIMEOUT_MS.quick : SUITE_TIMEOUT_MS.full;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`BENCH_SUITE_TIMEOUT: ${name} did not finish within ${limit / 1000} s`)),
        limit,
      );
    });
    const result: SuiteResult = await Promise.race([
      suite.run({
        quick,
        tmpDir,
        log: (line) => log(`[${name} +${((performance.now() - started) / 1000).toFixed(1)}s] ${line}`),
      }),
      timeout,
    ]);
    record.result = result;
  } catch (error) {
    record.thrown = error instanceof Error ? error.message : String(error);
    log(`[${name}] FAILED: ${error instanceof Error ? error.stack : record.thrown}`);
  } finally {
    clearTimeout(timer);
    // A suite stops its own processes; whatever a failed one left behind is stopped here, by PID.
    await stopAllProcesses();
    rmSync(tmpDir, { recursive: true, force: true });
    record.durationSeconds = (performance.now() - started) / 1000;
  }
  return record;
}

async function main(argv: string[]): Promise<number> {
  let values: { quick?: boolean; json?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
    }));
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const selection = selectSuites(positionals, availableSuites());
  if (!selection.ok) {
    process.stderr.write(`bench: ${selection.error}\n`);
    return 2;
  }
  const tools = ensureTools(log);
  if (!tools.ok) {
    process.stderr.write(`bench: ${tools.error.code}: ${tools.error.message}\n`);
    return 1;
  }
  const quick = values.quick === true;
  const date = new Date();
  const machine = describeMachine();
  log(`bench: ${quick ? 'quick' : 'full'} run of ${selection.names.join(', ') || '(nothing)'}`);
  for (const name of selection.missing) log(`bench: suite "${name}" has no bench/suites/${name}.ts yet`);

  const onSignal = () => {
    void stopAllProcesses().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const suites: SuiteRecord[] = [];
  for (const name of selection.names) suites.push(await runSuite(name, quick));
  const run: BenchRun = {
    date: date.toISOString(),
    mode: quick ? 'quick' : 'full',
    machine,
    suites,
    missing: selection.missing,
    ok: !suites.some(suiteFailed),
  };
  const markdown = renderMarkdown(run);
  mkdirSync(resultsDir, { recursive: true });
  const stamp = date
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/:/g, '-');
  writeFileSync(join(resultsDir, `${stamp}.json`), `${JSON.stringify(run, null, 2)}\n`);
  writeFileSync(join(resultsDir, `${stamp}.md`), markdown);
  process.stdout.write(values.json ? `${JSON.stringify(run, null, 2)}\n` : markdown);
  log(`bench: wrote bench/results/${stamp}.json and .md`);
  for (const record of suites.filter(suiteFailed)) {
    log(
      `bench: ${record.name} FAILED${record.thrown ? ' (threw)' : `: ${record.result!.errors.length} error(s)`}`,
    );
  }
  return run.ok ? 0 : 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const code = await main(process.argv.slice(2));
  // A timed-out suite may still hold timers or sockets; the run is over either way.
  process.exit(code);
}
