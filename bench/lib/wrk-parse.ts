// Parses the report of `wrk --latency`: throughput, latency percentiles and everything wrk counts as
// an error (non-2xx/3xx responses, connect/read/write errors, timeouts). Pure, so it is unit-tested.

export interface WrkReport {
  requests: number;
  durationSeconds: number;
  requestsPerSecond: number;
  /** Latency percentiles in milliseconds, from the "Latency Distribution" block. */
  latencyMs: { p50: number; p75: number; p90: number; p99: number };
  non2xx3xx: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
}

export type WrkParseResult =
  | { ok: true; report: WrkReport }
  | { ok: false; error: { code: string; message: string } };

const TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "363.00us" -> 0.363 (ms); null for anything else. */
export function parseWrkTime(text: string): number | null {
  const match = /^(\d+(?:\.\d+)?)(us|ms|s|m|h)$/.exec(text.trim());
  if (!match) return null;
  return Number(match[1]) * TIME_UNITS[match[2]!]!;
}

export function parseWrkOutput(text: string): WrkParseResult {
  const fail = (message: string): WrkParseResult => ({
    ok: false,
    error: { code: 'BENCH_WRK_OUTPUT', message: `${message}; wrk said:\n${text.trim()}` },
  });
  const total = /^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),/m.exec(text);
  if (!total) return fail('no "N requests in T" line');
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(text);
  if (!rps) return fail('no "Requests/sec" line');
  const percentile = (p: string): number | null => {
    const match = new RegExp(`^\\s*${p}%\\s+(\\S+)\\s*$`, 'm').exec(text);
    return match ? parseWrkTime(match[1]!) : null;
  };
  const p50 = percentile('50');
  const p75 = percentile('75');
  const p90 = percentile('90');
  const p99 = percentile('99');
  if (p50 === null || p75 === null || p90 === null || p99 === null) {
    return fail('no latency distribution (was wrk run with --latency?)');
  }
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  return {
    ok: true,
    report: {
      requests: Number(total[1]),
      durationSeconds: (Number(total[2]) * TIME_UNITS[total[3]!]!) / 1000,
      requestsPerSecond: Number(rps[1]),
      latencyMs: { p50, p75, p90, p99 },
      non2xx3xx: non2xx ? Number(non2xx[1]) : 0,
      socketErrors: socket
        ? {
            connect: Number(socket[1]),
            read: Number(socket[2]),
            write: Number(socket[3]),
            timeout: Number(socket[4]),
          }
        : { connect: 0, read: 0, write: 0, timeout: 0 },
    },
  };
}

/** Every reason this load does not count: a fast but broken system never wins. */
export function wrkErrors(report: WrkReport): string[] {
  const errors: string[] = [];
  if (report.requests === 0) errors.push('no request completed');
  if (report.non2xx3xx > 0) errors.push(`${report.non2xx3xx} responses with a non-2xx/3xx status`);
  const { connect, read, write, timeout } = report.socketErrors;
  if (connect + read + write + timeout > 0) {
    errors.push(`socket errors: connect ${connect}, read ${read}, write ${write}, timeout ${timeout}`);
  }
  return errors;
}
