// The dashboard's JSON API (docs/dashboard.md): read-only views over the decision log and the
// sources. Each handler returns a status and a JSON value; the server does the HTTP.
import { isClientPath } from '../config/client-path.ts';
import { canonicalIp } from '../net/ip.ts';
import type { DecisionLog, DecisionRecord } from '../gateway/decision-log.ts';
import { summarize, traceOf } from './decision-view.ts';
import type { DashboardCode } from './errors.ts';
import { redactAround, redactDeep, secretValues } from './redact.ts';
import { routesView } from './routes-view.ts';
import { chainReport, type DashboardSources } from './sources.ts';

export interface ApiAnswer {
  status: number;
  body: unknown;
}

export function apiError(status: number, code: DashboardCode, message: string): ApiAnswer {
  return { status, body: { error: { code, message } } };
}

/** The filters of /api/decisions and its stream: host (substring), status (404 or 4xx), address (prefix), denied. */
export interface DecisionFilter {
  host: string | null;
  status: string | null;
  address: string | null;
  denied: boolean;
}

export function parseFilter(query: URLSearchParams): DecisionFilter | ApiAnswer {
  const status = query.get('status');
  if (status !== null && status !== '' && !/^[1-5](\d\d|xx)$/.test(status))
    return apiError(400, 'DASHBOARD_BAD_QUERY', 'status is a status code (403) or a class (4xx)');
  const text = (name: string) => {
    const value = query.get(name);
    return value === null || value === '' ? null : value.slice(0, 256);
  };
  return {
    host: text('host')?.toLowerCase() ?? null,
    status: status === '' ? null : status,
    address: text('address'),
    denied: query.get('denied') === '1' || query.get('denied') === 'true',
  };
}

export function matches(record: DecisionRecord, filter: DecisionFilter): boolean {
  if (filter.denied && !record.denied) return false;
  if (filter.host !== null && !record.host.toLowerCase().includes(filter.host)) return false;
  if (filter.address !== null && !record.client.startsWith(filter.address)) return false;
  if (filter.status !== null) {
    const code = String(record.status);
    if (filter.status.endsWith('xx') ? code[0] !== filter.status[0] : code !== filter.status) return false;
  }
  return true;
}

function decisions(log: DecisionLog, query: URLSearchParams): ApiAnswer {
  const filter = parseFilter(query);
  if ('status' in filter && 'body' in filter) return filter;
  const limitText = query.get('limit') ?? '200';
  const limit = Number(limitText);
  if (!/^\d+$/.test(limitText) || limit < 1)
    return apiError(400, 'DASHBOARD_BAD_QUERY', 'limit is a positive integer');
  const kept = log.records().filter((r) => matches(r, filter as DecisionFilter));
  return {
    status: 200,
    body: {
      decisions: kept.slice(-limit).map(summarize),
      capacity: log.capacity,
      counters: { ...log.counters },
    },
  };
}

function stats(log: DecisionLog): ApiAnswer {
  const seconds = log.seconds().map((b) => ({
    second: b.second,
    routes: Object.fromEntries([...b.routes.entries()].map(([k, v]) => [k, { ...v }])),
  }));
  return {
    status: 200,
    body: {
      now: Math.floor(Date.now() / 1000),
      seconds,
      topDenied: log.topDenied(10),
      counters: { ...log.counters },
    },
  };
}

function chain(sources: DashboardSources, query: URLSearchParams): ApiAnswer {
  const topology = sources.topology?.() ?? null;
  if (sources.topology === undefined || topology === null)
    return apiError(
      404,
      'DASHBOARD_UNAVAILABLE',
      `the Chain page needs the model of the chain; keepip ${sources.mode} has none`,
    );
  const client = canonicalIp(query.get('client') ?? '');
  if (client === null) return apiError(400, 'DASHBOARD_BAD_QUERY', 'client is an IP address');
  const via = query.get('via') ?? '';
  if (via !== '' && !isClientPath(via))
    return apiError(
      400,
      'DASHBOARD_BAD_QUERY',
      'via is direct, vpn, transit-gateway, privatelink or in-cluster',
    );
  const host = (query.get('host') ?? '').slice(0, 253);
  const path = (query.get('path') ?? '').slice(0, 2048);
  if (path !== '' && !path.startsWith('/')) return apiError(400, 'DASHBOARD_BAD_QUERY', 'path starts with /');
  const result = chainReport(
    topology,
    {
      client,
      ...(host ? { host } : {}),
      ...(path ? { path } : {}),
      ...(via !== '' && isClientPath(via) ? { via } : {}),
    },
    sources.manifests?.() ?? null,
  );
  if (!result.ok) return apiError(422, 'DASHBOARD_CHAIN_FAILED', `${result.code}: ${result.message}`);
  return { status: 200, body: redactDeep(result.report, secretValues(topology)) };
}

/** What the client wrote, kept in a record as sent (cut to size): never scrubbed, or the scrub is an oracle. */
const CLIENT_WRITTEN: readonly (keyof DecisionRecord)[] = ['target', 'host', 'forwardedFor', 'method'];

/** Answers GET /api/<path> (the stream is the server's). */
export function answerApi(
  path: string,
  query: URLSearchParams,
  log: DecisionLog,
  sources: DashboardSources,
  version: string,
): ApiAnswer {
  if (path === '/api/info') {
    const snap = sources.snapshot();
    return {
      status: 200,
      body: {
        product: 'keepip',
        version,
        mode: sources.mode,
        configVersion: snap?.version ?? null,
        pages: {
          decisions: true,
          routes: true,
          chain: sources.topology !== undefined,
          lb: sources.loadBalancers !== undefined,
        },
      },
    };
  }
  if (path === '/api/decisions') return decisions(log, query);
  const one = /^\/api\/decisions\/(\d{1,15})$/.exec(path);
  if (one) {
    const record = log.find(Number(one[1]));
    if (record === undefined)
      return apiError(404, 'DASHBOARD_NOT_FOUND', 'no such decision (it may have left the ring buffer)');
    const snap = sources.snapshot();
    return {
      status: 200,
      body: redactAround(record, CLIENT_WRITTEN, traceOf, snap === null ? [] : secretValues(snap.topology)),
    };
  }
  if (path === '/api/stats') return stats(log);
  if (path === '/api/routes') {
    const snap = sources.snapshot();
    if (snap === null) return apiError(503, 'DASHBOARD_UNAVAILABLE', 'no configuration is being served yet');
    return { status: 200, body: redactDeep(routesView(snap), secretValues(snap.topology)) };
  }
  if (path === '/api/chain') return chain(sources, query);
  if (path === '/api/lb') {
    if (sources.loadBalancers === undefined)
      return apiError(404, 'DASHBOARD_UNAVAILABLE', `keepip ${sources.mode} runs no load balancer`);
    return { status: 200, body: { loadBalancers: sources.loadBalancers() } };
  }
  return apiError(404, 'DASHBOARD_NOT_FOUND', `no API at ${path.slice(0, 200)}`);
}
