// nginx's log levels (error_log's `level`, the ConfigMap's error-log-level) and their syslog severities.
import type { NginxLogLevel } from './model.ts';

/** Most severe first, as syslog severities (0 emerg … 7 debug): a line passes a level at or above it. */
export const NGINX_LOG_LEVELS: Readonly<Record<NginxLogLevel, number>> = {
  emerg: 0,
  alert: 1,
  crit: 2,
  error: 3,
  warn: 4,
  notice: 5,
  info: 6,
  debug: 7,
};

/** ingress-nginx's error-log-level default. */
export const DEFAULT_ERROR_LOG_LEVEL: NginxLogLevel = 'notice';

export function isNginxLogLevel(text: string): text is NginxLogLevel {
  return Object.hasOwn(NGINX_LOG_LEVELS, text);
}
