// The shared limiter's messages between a gateway worker and its primary, on their own channel (a
// Unix socketpair beside the IPC channel, limiter-host.ts / limiter-client.ts): one JSON array per
// line, so a zone name or key can hold any character and a line end only ends a message.
//   worker -> primary   check:   [id, key, [[zone, perSecond, burst], ...], connectionZone | null, limit]
//                       release: [id]  (frees the connection slot check `id` took, if it took one)
//   primary -> worker   verdict: [id, 0 admitted | 1 refused by a request limit | 2 by the connection limit]
//                       hold:    ["hold", ms]  (the primary is about to block, reloading: wait up to ms
//                                more before failing closed; 0 ends the hold)
// Pure: strings in, values out.
import type { ConnectionLimit, LimitVerdict, RequestLimit } from '../gateway/access/rate-limit.ts';

/** A line longer than this is a broken peer, not a check (a check names a key and at most two zones). */
export const MAX_LINE_CHARS = 64 * 1024;

export type ToPrimary =
  | {
      kind: 'check';
      id: number;
      key: string;
      limits: RequestLimit[];
      connection: ConnectionLimit | null;
    }
  | { kind: 'release'; id: number };

const VERDICTS: readonly LimitVerdict[] = ['admitted', 'requests', 'connections'];

export function encodeCheck(
  id: number,
  limits: readonly RequestLimit[],
  connection: ConnectionLimit | null,
  key: string,
): string {
  const zones = limits.map((l) => [l.zone, l.perSecond, l.burst]);
  return JSON.stringify([id, key, zones, connection?.zone ?? null, connection?.limit ?? 0]);
}

export function encodeRelease(id: number): string {
  return `[${id}]`;
}

export function encodeVerdict(id: number, verdict: LimitVerdict): string {
  return `[${id},${VERDICTS.indexOf(verdict)}]`;
}

const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isAmount = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

function parse(line: string): unknown[] | null {
  try {
    const value: unknown = JSON.parse(line);
    return Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

function decodeLimits(value: unknown): RequestLimit[] | null {
  if (!Array.isArray(value)) return null;
  const limits: RequestLimit[] = [];
  for (const entry of value) {
    if (!Array.isArray(entry) || entry.length !== 3) return null;
    const [zone, perSecond, burst] = entry as unknown[];
    if (typeof zone !== 'string' || !isAmount(perSecond) || !isAmount(burst)) return null;
    limits.push({ zone, perSecond, burst });
  }
  return limits;
}

/** A worker's message, or null when it is not one (the primary then closes that channel). */
export function decodeToPrimary(line: string): ToPrimary | null {
  const message = parse(line);
  if (message === null || !isId(message[0])) return null;
  const id = message[0];
  if (message.length === 1) return { kind: 'release', id };
  const [, key, zones, zone, limit] = message;
  const limits = decodeLimits(zones);
  if (message.length !== 5 || typeof key !== 'string' || limits === null) return null;
  if (zone === null) return { kind: 'check', id, key, limits, connection: null };
  if (typeof zone !== 'string' || !isId(limit) || limit < 1) return null;
  return { kind: 'check', id, key, limits, connection: { zone, limit } };
}

/** The longest hold a primary may ask for: a primary that stays away longer is treated as gone. */
export const MAX_HOLD_MS = 30_000;

export function encodeHold(ms: number): string {
  return `["hold",${Math.max(0, Math.min(MAX_HOLD_MS, Math.round(ms)))}]`;
}

export type FromPrimary =
  | { kind: 'verdict'; id: number; verdict: LimitVerdict }
  | { kind: 'hold'; ms: number };

/** A line from the primary (a verdict or a hold), or null when it is neither. */
export function decodeFromPrimary(line: string): FromPrimary | null {
  const message = parse(line);
  if (message !== null && message.length === 2 && message[0] === 'hold') {
    const ms = message[1];
    return isAmount(ms) && ms <= MAX_HOLD_MS ? { kind: 'hold', ms } : null;
  }
  const answer = decodeVerdict(line);
  return answer === null ? null : { kind: 'verdict', ...answer };
}

/** The primary's answer, or null when the line is not one. */
export function decodeVerdict(line: string): { id: number; verdict: LimitVerdict } | null {
  const message = parse(line);
  if (message === null || message.length !== 2 || !isId(message[0])) return null;
  const verdict = isId(message[1]) ? VERDICTS[message[1]] : undefined;
  return verdict === undefined ? null : { id: message[0], verdict };
}

/**
 * Cuts a stream of text into lines: `push` returns the complete lines of `chunk` with what came
 * before, keeping the unfinished rest; null when a line grows past MAX_LINE_CHARS.
 */
export function lineReader(): { push(chunk: string): string[] | null } {
  let rest = '';
  return {
    push(chunk) {
      const text = rest + chunk;
      const last = text.lastIndexOf('\n');
      if (last < 0) {
        rest = text;
        return text.length > MAX_LINE_CHARS ? null : [];
      }
      rest = text.slice(last + 1);
      if (rest.length > MAX_LINE_CHARS) return null;
      return text.slice(0, last).split('\n');
    },
  };
}
