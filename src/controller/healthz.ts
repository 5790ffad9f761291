// The answers of the health path, as ingress-nginx's (Kubernetes' healthz handler with two checks:
// `ping`, always ok, and `nginx-ingress-controller`, the controller's own state): the path itself,
// `?verbose` listing the checks, `?exclude=<check>` skipping one, and `<path>/<check>` for one check.
// Unlike Kubernetes', a failed check says why (the sync state or the shutdown: nothing secret).

/** The check ingress-nginx names after its controller; `ping` always passes. */
export const CONTROLLER_CHECK = 'nginx-ingress-controller';
const CHECKS = ['ping', CONTROLLER_CHECK] as const;

export interface HealthState {
  /** null: healthy; else why the controller check fails. */
  unhealthy: string | null;
  /** A note on a healthy answer (e.g. serving the last good snapshot during an API outage). */
  note: string | null;
}

export interface HealthAnswer {
  status: number;
  body: string;
}

/** The answer for `path` and `query` under the health path `root`; null: not a health path. */
export function healthAnswer(
  root: string,
  path: string,
  query: URLSearchParams,
  state: HealthState,
): HealthAnswer | null {
  const failure = (check: string) => (check === CONTROLLER_CHECK ? state.unhealthy : null);
  if (path === root) return rootAnswer(root, query, state, failure);
  const check = CHECKS.find((name) => path === `${root}/${name}`);
  if (check === undefined) return null;
  const reason = failure(check);
  return reason === null
    ? { status: 200, body: 'ok\n' }
    : { status: 500, body: `internal server error: ${reason}\n` };
}

function rootAnswer(
  root: string,
  query: URLSearchParams,
  state: HealthState,
  failure: (check: string) => string | null,
): HealthAnswer {
  const excluded = new Set(query.getAll('exclude'));
  const lines: string[] = [];
  let failed = false;
  for (const check of CHECKS) {
    if (excluded.delete(check)) {
      lines.push(`[+]${check} excluded: ok`);
      continue;
    }
    const reason = failure(check);
    failed ||= reason !== null;
    lines.push(reason === null ? `[+]${check} ok` : `[-]${check} failed: ${reason}`);
  }
  if (excluded.size > 0) {
    const names = [...excluded].map((name) => JSON.stringify(name)).join(',');
    lines.push(`warn: some health checks cannot be excluded: no matches for ${names}`);
  }
  const name = root.replace(/^\//, '').split('/')[0];
  if (failed) return { status: 500, body: `${lines.join('\n')}\n${name} check failed\n` };
  if (!query.has('verbose')) return { status: 200, body: `ok${state.note ? ` (${state.note})` : ''}\n` };
  return { status: 200, body: `${lines.join('\n')}\n${name} check passed\n` };
}
