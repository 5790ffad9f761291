// The Debian tools the benchmarks drive: nginx (with the realip module), HAProxy and wrk. Checked
// before any suite runs; installed with apt-get when missing and we are root, else a clear error.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const REQUIRED_TOOLS = ['nginx', 'haproxy', 'wrk'] as const;
export type Tool = (typeof REQUIRED_TOOLS)[number];

const DISPLAY_NAMES: Record<Tool, string> = { nginx: 'nginx', haproxy: 'HAProxy', wrk: 'wrk' };

const SEARCH_PATH = ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin', '/sbin', '/bin'];

export function findTool(name: string): string | null {
  for (const dir of SEARCH_PATH) {
    const candidate = `${dir}/${name}`;
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

/** The tool's path; throws for a missing tool (ensureTools runs first, so this is a programmer error). */
export function requireTool(name: Tool): string {
  const path = findTool(name);
  if (path === null)
    throw new Error(`BENCH_TOOL_MISSING: ${name} is not installed (apt-get install ${name})`);
  return path;
}

function nginxHasRealip(path: string): boolean {
  const result = spawnSync(path, ['-V'], { encoding: 'utf8' });
  return `${result.stdout}${result.stderr}`.includes('--with-http_realip_module');
}

export type EnsureResult =
  | { ok: true; installed: string[] }
  | { ok: false; error: { code: string; message: string } };

/** Checks the tools; installs the missing ones with apt-get when running as root. */
export function ensureTools(log: (line: string) => void): EnsureResult {
  const missing = REQUIRED_TOOLS.filter((tool) => findTool(tool) === null);
  if (missing.length > 0) {
    if (process.getuid?.() !== 0) {
      return {
        ok: false,
        error: {
          code: 'BENCH_TOOLS_MISSING',
          message: `missing ${missing.join(', ')}; install them with: sudo apt-get install -y nginx haproxy wrk`,
        },
      };
    }
    log(`installing ${missing.join(', ')} with apt-get`);
    try {
      execFileSync('apt-get', ['update'], { stdio: 'ignore', timeout: 300_000 });
      execFileSync('apt-get', ['install', '-y', 'nginx', 'haproxy', 'wrk'], {
        stdio: 'ignore',
        timeout: 600_000,
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    } catch (error) {
      return {
        ok: false,
        error: {
          code: 'BENCH_TOOLS_INSTALL_FAILED',
          message: `apt-get install failed: ${(error as Error).message}`,
        },
      };
    }
    const still = REQUIRED_TOOLS.filter((tool) => findTool(tool) === null);
    if (still.length > 0) {
      return {
        ok: false,
        error: { code: 'BENCH_TOOLS_MISSING', message: `still missing after apt-get: ${still.join(', ')}` },
      };
    }
  }
  const nginx = findTool('nginx')!;
  if (!nginxHasRealip(nginx)) {
    return {
      ok: false,
      error: {
        code: 'BENCH_NGINX_NO_REALIP',
        message: `${nginx} was built without the realip module (needed for the chain suite)`,
      },
    };
  }
  return { ok: true, installed: missing };
}

function firstLine(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 10_000 });
  return `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n')[0] ?? '';
}

/** "nginx 1.22.1", "HAProxy 2.6.12-1+deb12u4", "wrk 4.1.0-3+b2" (or "<tool> not installed"). */
export function toolVersions(): Record<Tool, string> {
  const versions = {} as Record<Tool, string>;
  for (const tool of REQUIRED_TOOLS) {
    const path = findTool(tool);
    if (path === null) {
      versions[tool] = `${DISPLAY_NAMES[tool]} not installed`;
      continue;
    }
    const line = firstLine(path, ['-v']);
    const version =
      /nginx\/(\S+)/.exec(line)?.[1] ??
      /HAProxy version (\S+)/.exec(line)?.[1] ??
      /wrk (?:debian\/)?(\S+)/.exec(line)?.[1];
    versions[tool] = `${DISPLAY_NAMES[tool]} ${version ?? line}`;
  }
  return versions;
}
