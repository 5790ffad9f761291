// The controller ConfigMap keys enable-syslog, syslog-host and syslog-port. ingress-nginx then writes
// `access_log syslog:server=<host>:<port>` and `error_log syslog:server=…` in place of its files: both
// logs go to the syslog server over UDP (src/gateway/syslog.ts), none to stdout or stderr. A host that
// is neither an IP address nor a DNS name keeps the logs where they were, with a warning (nginx would
// refuse the configuration).
import type { GatewaySettings } from '../config/model.ts';
import { configMapSource, readBool, readWhole } from './scalar-readers.ts';
import { serverHost } from './values.ts';

export const SYSLOG_CONFIGMAP_KEYS: readonly string[] = ['enable-syslog', 'syslog-host', 'syslog-port'];

export interface SyslogSettingsSink {
  invalid(key: string, value: string, expected: string, kept: string): void;
}

/** Reads the syslog keys into `settings.syslog` when enable-syslog is on and the host is usable. */
export function applySyslogSettings(
  data: Readonly<Record<string, string>>,
  settings: GatewaySettings,
  sink: SyslogSettingsSink,
): void {
  const source = configMapSource(data, (...report) => sink.invalid(...report), { blankIsAbsent: true });
  if (!readBool(source, 'enable-syslog', false)) return;
  const port = readWhole(source, 'syslog-port', 514, {
    min: 1,
    max: 65535,
    expected: 'a port from 1 to 65535',
    kept: '514',
  });
  const raw = source.get('syslog-host')?.trim() ?? '';
  const host = serverHost(raw);
  if (host === null) {
    const kept = 'none, so the logs stay on stdout and stderr';
    sink.invalid('syslog-host', raw, 'an IP address or a DNS name (enable-syslog is on)', kept);
    return;
  }
  settings.syslog = { host, port };
}
