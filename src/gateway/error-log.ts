// The gateway's error log: nginx's error log line shape (`2025/03/19 10:01:03 [error] 31#31: *1393 …`)
// so that existing log searches keep working, written through a buffered sink (stderr by default).
import { escapeControlBytes, formatErrorLogPrefix } from './access-log.ts';
import { DEFAULT_ERROR_LOG_LEVEL, NGINX_LOG_LEVELS } from '../config/log-levels.ts';
import type { NginxLogLevel } from '../config/model.ts';
import type { LineSink } from './line-sink.ts';

/** The levels keepip writes lines at. */
export type ErrorLevel = 'alert' | 'error' | 'warn' | 'notice' | 'info';

export interface ErrorLog {
  /** One line: the nginx prefix for `connectionId`, then `message` (control bytes as \xHH); dropped below the log level. */
  write(level: ErrorLevel, connectionId: number | null, message: string): void;
}

/** `threshold` is read per line (the served snapshot's error-log-level): as nginx's `error_log … level`. */
export function createErrorLog(
  sink: LineSink,
  threshold: () => NginxLogLevel = () => DEFAULT_ERROR_LOG_LEVEL,
  pid = process.pid,
): ErrorLog {
  return {
    write(level, connectionId, message) {
      if (NGINX_LOG_LEVELS[level] > NGINX_LOG_LEVELS[threshold()]) return;
      // Every message, whatever quotes a client's bytes in it (a Basic user name…): one line each.
      sink.write(formatErrorLogPrefix(Date.now(), pid, connectionId, level) + escapeControlBytes(message));
    },
  };
}

/** Control bytes as \xHH so a request cannot write extra log lines. */
export const logSafe = escapeControlBytes;

/** nginx's request context suffix: `, client: …, server: …, request: "…", upstream: "…", host: "…"`. */
export function requestContext(input: {
  client: string;
  server: string;
  request: string;
  upstream?: string | null;
  host: string;
  referrer?: string | null;
}): string {
  let text = `, client: ${logSafe(input.client)}, server: ${logSafe(input.server)}, request: "${logSafe(input.request)}"`;
  if (input.upstream) text += `, upstream: "${logSafe(input.upstream)}"`;
  if (input.host !== '') text += `, host: "${logSafe(input.host)}"`;
  if (input.referrer) text += `, referrer: "${logSafe(input.referrer)}"`;
  return text;
}

/** First bytes of a rejected PROXY header as nginx shows them: printable ASCII kept, the rest \xHH. */
export function brokenHeaderText(bytes: Uint8Array, max = 64): string {
  let out = '';
  const end = Math.min(bytes.length, max);
  for (let i = 0; i < end; i++) {
    const b = bytes[i] as number;
    out +=
      b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c
        ? String.fromCharCode(b)
        : `\\x${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
