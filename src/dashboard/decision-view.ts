// What the API says about a kept request: a short summary for the live list, and the full decision
// trace (connection -> PROXY header -> client address -> route -> access rules -> answer) for one.
// Only fields picked here leave the process: no request header but the forwarded-for one the resolver
// reads, nothing from a Secret.
import type { SourceRangeModel } from '../config/model.ts';
import { formatHostPort } from '../net/host-port.ts';
import type { DecisionRecord, RecordLocation } from '../gateway/decision-log.ts';

export interface ListView {
  from: 'annotation' | 'configmap';
  raw: string;
  valid: boolean;
  cidrs: readonly string[];
  error: string | null;
}

export function listView(model: SourceRangeModel | null): ListView | null {
  if (model === null) return null;
  return model.valid
    ? { from: model.from, raw: model.raw, valid: true, cidrs: model.cidrs, error: null }
    : { from: model.from, raw: model.raw, valid: false, cidrs: [], error: model.error };
}

/** Where the client address came from, as a phrase: "TCP peer", "PROXY header", "X-Forwarded-For hop 2 of 3". */
export function provenanceLabel(record: DecisionRecord): { kind: string; label: string } {
  const from = record.clientIp?.provenance;
  if (from === undefined) return { kind: 'socket', label: 'TCP peer' };
  switch (from.kind) {
    case 'socket':
      return { kind: 'socket', label: 'TCP peer' };
    case 'proxy-protocol':
      return { kind: 'proxy-protocol', label: 'PROXY header' };
    case 'forwarded-header': {
      const total = (record.forwardedFor ?? '').split(',').filter((e) => e.trim() !== '').length;
      const of = total > 0 ? ` of ${total}` : '';
      return { kind: 'forwarded-header', label: `${from.header} hop ${from.index + 1}${of}` };
    }
    case 'forwarded-rfc7239':
      return { kind: 'forwarded-rfc7239', label: `Forwarded hop ${from.index + 1}` };
  }
}

function ingressOf(location: RecordLocation | null): string | null {
  return location === null ? null : `${location.ingress.namespace}/${location.ingress.name}`;
}

/** The lists that decided: those of the guard when a guard refused, else the routed location's. */
function listsOf(record: DecisionRecord) {
  const location = record.decidedBy ?? record.location;
  return {
    block: listView(record.blockCidrs),
    deny: listView(location?.deny ?? null),
    allow: listView(location?.allow ?? null),
  };
}

export interface DecisionSummary {
  id: number;
  time: string;
  client: string;
  from: { kind: string; label: string };
  peer: string;
  proxySource: string | null;
  method: string;
  host: string;
  target: string;
  route: { ingress: string; path: string; pathType: string } | null;
  upstream: string | null;
  rule: string;
  entry: string | null;
  detail: string;
  lists: ReturnType<typeof listsOf>;
  status: number;
  denied: boolean;
  durationMs: number;
  /** keepip up: the client the outermost L4 hop saw for this connection, when it is not `client`. */
  behind: { client: string; via: string } | null;
  /** With --workers: the slot (1-based) of the worker that served it; null: one process. */
  worker: number | null;
}

function outermost(record: DecisionRecord): { client: string; via: string } | null {
  const hop = record.behind?.[record.behind.length - 1];
  return hop === undefined || hop.client === record.client ? null : { client: hop.client, via: hop.via };
}

/** The rule column when no access stage spoke: what the router decided. */
function routerRule(record: DecisionRecord): { rule: string; detail: string } {
  if (record.status === 400) return { rule: 'bad-request', detail: 'the request target or Host was refused' };
  // Before the location check: a trailing-slash or www-twin redirect has no location of its own.
  if (record.status >= 300 && record.status < 400 && record.upstreamAddr === null)
    return {
      rule: 'redirect',
      detail: 'redirected before the access rules (ssl-redirect, app-root, a missing trailing slash)',
    };
  if (record.location === null)
    return record.upstream === null
      ? { rule: 'no-route', detail: 'no Ingress rule matches this host and path' }
      : { rule: 'default-backend', detail: 'no Ingress rule matches: the default backend answers' };
  return { rule: '-', detail: '' };
}

export function summarize(record: DecisionRecord): DecisionSummary {
  const verdict = record.verdict;
  const fallback = verdict === null ? routerRule(record) : null;
  const location = record.location;
  return {
    id: record.id,
    time: new Date(record.time).toISOString(),
    client: record.client === '' ? '-' : record.client,
    from: provenanceLabel(record),
    peer: record.peer,
    proxySource: record.proxySource,
    method: record.method,
    host: record.host,
    target: record.target,
    route:
      location === null
        ? null
        : { ingress: ingressOf(location) ?? '', path: location.path, pathType: location.pathType },
    upstream: record.upstream,
    rule: verdict?.rule ?? fallback?.rule ?? '-',
    entry: verdict?.entry ?? null,
    detail: verdict?.detail ?? fallback?.detail ?? '',
    lists: listsOf(record),
    status: record.status,
    denied: record.denied,
    durationMs: Math.round(record.durationMs * 1000) / 1000,
    behind: outermost(record),
    worker: record.worker,
  };
}

export interface TraceStep {
  step: 'connection' | 'proxy-header' | 'client-address' | 'route' | 'access' | 'answer';
  sees: string | null;
  detail: string;
}

function proxyStep(record: DecisionRecord): TraceStep {
  if (!record.useProxyProtocol)
    return { step: 'proxy-header', sees: null, detail: 'use-proxy-protocol is off: no PROXY header is read' };
  if (record.proxySource === null)
    return {
      step: 'proxy-header',
      sees: null,
      detail: 'a LOCAL or UNKNOWN PROXY header: the socket addresses stand',
    };
  const port = record.proxyPort ?? 0;
  return {
    step: 'proxy-header',
    sees: record.proxySource,
    detail: `PROXY header from trusted peer ${record.peer}: client ${formatHostPort(record.proxySource, port)}`,
  };
}

function clientStep(record: DecisionRecord): TraceStep {
  const from = provenanceLabel(record);
  const trusted = `trusted peers ${record.trustedCidrs.join(', ') || 'nobody'} (${record.trustSource})`;
  const ip = record.clientIp;
  const parts = [`taken from the ${from.label}`];
  const header = record.forwardedForHeader;
  let walked = false;
  if (ip !== null) {
    parts.push(`the TCP peer is ${ip.peerTrusted ? '' : 'not '}trusted`);
    walked = record.readsForwardedFor && ip.headersTrusted;
    parts.push(
      !record.readsForwardedFor
        ? `${header} is not read (these settings take the client from the connection)`
        : `${header} is ${walked ? 'read' : 'not believed'} from this hop`,
    );
    const others = record.useForwardedHeaders && ip.headersTrusted;
    parts.push(`X-Forwarded-Host/-Proto/-Port are ${others ? '' : 'not '}believed`);
    if (ip.error) parts.push(`${ip.error.code}: ${ip.error.message}`);
  }
  if (record.forwardedFor !== null)
    parts.push(`${header}: ${record.forwardedFor}${walked ? '' : ' (as sent, not used)'}`);
  parts.push(trusted);
  return {
    step: 'client-address',
    sees: record.client === '' ? null : record.client,
    detail: parts.join('; '),
  };
}

function routeStep(record: DecisionRecord): TraceStep {
  const location = record.location;
  if (location === null)
    return {
      step: 'route',
      sees: record.client || null,
      detail: `host ${record.host || '-'}: ${routerRule(record).detail}`,
    };
  const backend = location.backend
    ? `Service ${location.backend.service.namespace}/${location.backend.service.name}:${location.backend.port} (upstream ${location.backend.upstreamName})`
    : 'no backend';
  return {
    step: 'route',
    sees: record.client || null,
    detail:
      `host ${record.host} -> server ${record.serverName}, location ${location.path} (${location.pathType}, ` +
      `matched ${record.matchedBy ?? '-'}) of Ingress ${ingressOf(location)} -> ${backend}`,
  };
}

function accessStep(record: DecisionRecord): TraceStep | null {
  const verdict = record.verdict;
  if (verdict === null) return null;
  const lists = listsOf(record);
  const shown = (name: string, list: ListView | null) =>
    list === null
      ? `${name}: none`
      : `${name} (${list.from}): ${list.raw}${list.valid ? '' : ` INVALID: ${list.error}`}`;
  const guard =
    record.decidedBy === null
      ? ''
      : ` (decided by location ${record.decidedBy.path} of Ingress ${ingressOf(record.decidedBy)}, which a backend could read this path as)`;
  return {
    step: 'access',
    sees: record.client || null,
    detail: `${verdict.outcome} by ${verdict.rule}${verdict.entry ? ` ${verdict.entry}` : ''}: ${verdict.detail}${guard}; ${shown('block-cidrs', lists.block)}; ${shown('denylist', lists.deny)}; ${shown('allowlist', lists.allow)}`,
  };
}

/** The full trace of one request, hop by hop inside the gateway. */
export function traceOf(record: DecisionRecord): { summary: DecisionSummary; trace: TraceStep[] } {
  const trace: TraceStep[] = [
    {
      step: 'connection',
      sees: record.peer,
      detail:
        `TCP peer ${formatHostPort(record.peer, record.peerPort)} on ${record.listener.scheme} listener ${formatHostPort(record.listener.address, record.listener.port)} (connection *${record.connection})` +
        (record.behind ?? [])
          .map((hop) => `; ${hop.via} carried it for client ${formatHostPort(hop.client, hop.port)}`)
          .join(''),
    },
    proxyStep(record),
    clientStep(record),
    routeStep(record),
  ];
  const access = accessStep(record);
  if (access !== null) trace.push(access);
  trace.push({
    step: 'answer',
    sees: null,
    detail: `${record.status}${record.upstreamAddr ? ` from ${record.upstreamAddr}` : ' from the gateway'} in ${record.durationMs.toFixed(1)} ms (config v${record.configVersion}, request id ${record.reqId}${record.worker === null ? '' : `, worker ${record.worker}`})`,
  });
  return { summary: summarize(record), trace };
}
