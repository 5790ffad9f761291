// HAProxy as a system under test: mode tcp, one thread, config in the suite's scratch directory,
// foreground (-db) so the PID we hold is the one to stop.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Endpoint } from './ports.ts';
import { type Managed, startProcess } from './supervisor.ts';
import { requireTool } from './tools.ts';

export interface TcpProxy {
  listen: Endpoint;
  target: Endpoint;
  /** Send a PROXY protocol header to the target. */
  sendProxy?: 'v1' | 'v2';
  /** The source address HAProxy dials the target from (the "SNAT" address of an NLB). */
  sourceAddress?: string;
  maxConnections?: number;
}

export function haproxyTcpConfig(proxy: TcpProxy): string {
  const send = proxy.sendProxy === 'v2' ? ' send-proxy-v2' : proxy.sendProxy === 'v1' ? ' send-proxy' : '';
  const source = proxy.sourceAddress ? ` source ${proxy.sourceAddress}` : '';
  const maxconn = proxy.maxConnections ?? 4096;
  return [
    'global',
    '  nbthread 1',
    `  maxconn ${maxconn}`,
    '',
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 75s',
    '  timeout server 75s',
    '',
    'frontend fe',
    `  bind ${proxy.listen.host}:${proxy.listen.port}`,
    `  maxconn ${maxconn}`,
    '  default_backend be',
    '',
    'backend be',
    `  server target ${proxy.target.host}:${proxy.target.port}${send}${source}`,
    '',
  ].join('\n');
}

export async function startHaproxy(name: string, dir: string, proxy: TcpProxy): Promise<Managed> {
  mkdirSync(dir, { recursive: true });
  const configPath = join(dir, 'haproxy.cfg');
  writeFileSync(configPath, haproxyTcpConfig(proxy));
  return startProcess({
    name,
    command: requireTool('haproxy'),
    args: ['-db', '-f', configPath],
    listening: [proxy.listen],
    openFiles: (proxy.maxConnections ?? 4096) * 2 + 64,
  });
}
