// One doctor run: build the chain, simulate the client (or audit every access list), run every rule,
// and decide the verdict and exit code. Pure: the CLI does the reading and the printing.
import type { Topology } from '../config/model.ts';
import { auditAccess } from './audit.ts';
import { buildChain, type ChainOptions } from './chain.ts';
import { clientAnswer } from './client-answer.ts';
import { configMapRef } from './plans.ts';
import { RULES } from './rules/index.ts';
import { hasAccessLists } from './rules/common.ts';
import { type SimulateRequest, simulateOnChain } from './simulate.ts';
import type { DoctorReport, Finding, Severity } from './types.ts';

export interface DiagnoseOptions extends Omit<ChainOptions, 'via'>, Partial<Omit<SimulateRequest, 'client'>> {
  /** Simulate this client; without it, audit every allow/deny list. */
  client?: string;
  /**
   * The LB to diagnose when `loadBalancer` is not given (the one the controller was found behind);
   * unlike `loadBalancer`, the audit still looks at the controller's other LoadBalancer Services.
   */
  defaultLoadBalancer?: string;
}

export type DiagnoseResult =
  | { ok: true; report: DoctorReport }
  | { ok: false; error: { code: string; message: string } };

const RANK: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

type Chain = Extract<ReturnType<typeof buildChain>, { ok: true }>['chain'];
type Simulated = ReturnType<typeof simulateOnChain>;
/** What both modes report besides their verdict. */
interface Common {
  via: DoctorReport['via'];
  loadBalancer: string | null;
  audit: DoctorReport['audit'];
  findings: Finding[];
  configIssues: DoctorReport['configIssues'];
}

function simulate(chain: Chain, options: DiagnoseOptions): Simulated | null {
  if (options.client === undefined) return null;
  return simulateOnChain(chain, {
    client: options.client,
    ...(options.host !== undefined ? { host: options.host } : {}),
    ...(options.path !== undefined ? { path: options.path } : {}),
    ...(options.scheme !== undefined ? { scheme: options.scheme } : {}),
    ...(options.forwardedFor !== undefined ? { forwardedFor: options.forwardedFor } : {}),
    ...(options.proxyHeaderFor !== undefined ? { proxyHeaderFor: options.proxyHeaderFor } : {}),
  });
}

/** Every rule's findings, errors first. */
function findingsOf(topology: Topology, chain: Chain, simulation: Simulated | null): Finding[] {
  const context = {
    chain,
    simulation,
    lbAnnotations: chain.lb?.annotations ?? {},
    hasAccessLists: hasAccessLists(topology),
    configMap: configMapRef(topology),
  };
  const findings: Finding[] = RULES.flatMap((rule) => rule.check(topology, context));
  return findings.sort((a, b) => RANK[a.severity] - RANK[b.severity]);
}

/**
 * The audit of the controller's other LoadBalancer Services (the chart's internal one beside the
 * external): their findings that the chosen LB's do not already say, each naming its LB. A client
 * reaches the controller through any of them, so a broken one is an error of the whole audit.
 */
function otherLoadBalancerFindings(topology: Topology, primary: Chain, options: DiagnoseOptions): Finding[] {
  const seen = new Set(findingsOf(topology, primary, null).map(findingKey));
  const others = topology.loadBalancers.filter(
    (lb) =>
      lb.id !== primary.lb?.id &&
      topology.gateway.controllerServices.some(
        (ref) => ref.namespace === lb.service.namespace && ref.name === lb.service.name,
      ),
  );
  const findings: Finding[] = [];
  for (const lb of others) {
    const built = buildChain(topology, { ...options, loadBalancer: lb.id });
    if (!built.ok) continue;
    for (const finding of findingsOf(topology, built.chain, null)) {
      const key = findingKey(finding);
      if (seen.has(key)) continue;
      seen.add(key);
      findings.push({ ...finding, loadBalancer: lb.id, message: `Through ${lb.id}: ${finding.message}` });
    }
  }
  return findings.sort((a, b) => RANK[a.severity] - RANK[b.severity]);
}

function findingKey(finding: Finding): string {
  return JSON.stringify([finding.id, finding.message, finding.subject ?? null]);
}

/** Client mode: the simulated client's outcome decides the verdict and the exit code. */
function clientReport(chain: Chain, simulation: Simulated, common: Common): DoctorReport {
  const passes = simulation.outcome === 'allowed' || simulation.outcome === 'redirected';
  const answer = clientAnswer(chain, simulation);
  const grpc =
    answer.grpc?.code == null
      ? ''
      : `; a gRPC client sees grpc-status ${answer.grpc.code} ${answer.grpc.name}`;
  const { outcome, status, decidedBy, gatewayLogsAddress } = simulation;
  return {
    mode: 'client',
    verdict: outcome,
    summary:
      (simulation.passthrough === true
        ? summarisePassthrough(outcome, decidedBy, gatewayLogsAddress)
        : summarise(outcome, status, decidedBy, gatewayLogsAddress)) + grpc,
    status,
    decidedBy,
    hops: simulation.hops,
    simulation,
    clientAnswer: answer,
    exitCode: passes ? 0 : 1,
    ...common,
  };
}

/** Audit mode: every access list, and the findings' errors decide. */
function auditReport(common: Common): DoctorReport {
  const { findings, audit } = common;
  const errors = findings.filter((f) => f.severity === 'error').length;
  const warnings = findings.filter((f) => f.severity === 'warning').length;
  // A manifest error is a problem too: what keepip refuses, or a location that fails closed.
  const manifestErrors = common.configIssues.filter((i) => i.severity === 'error').length;
  const unrecognised = audit.filter((a) => !a.recognised).length;
  const parts = [
    `${errors} error${errors === 1 ? '' : 's'}`,
    `${warnings} warning${warnings === 1 ? '' : 's'}`,
    ...(manifestErrors > 0 ? [`${manifestErrors} manifest error${manifestErrors === 1 ? '' : 's'}`] : []),
    audit.length > 0
      ? `${audit.length - unrecognised} of ${audit.length} access lists recognise their clients`
      : 'no access lists',
  ];
  const problems = errors + manifestErrors > 0;
  return {
    mode: 'audit',
    verdict: problems ? 'problems' : 'ok',
    summary: parts.join(', '),
    status: null,
    decidedBy: null,
    hops: [],
    simulation: null,
    exitCode: problems ? 1 : 0,
    ...common,
  };
}

export function diagnose(topology: Topology, options: DiagnoseOptions = {}): DiagnoseResult {
  const chosen = options.loadBalancer ?? options.defaultLoadBalancer;
  const built = buildChain(topology, {
    ...options,
    ...(chosen !== undefined ? { loadBalancer: chosen } : {}),
  });
  if (!built.ok) return built;
  const chain = built.chain;
  const simulation = simulate(chain, options);
  const common: Common = {
    via: chain.via,
    loadBalancer: chain.lb?.id ?? null,
    audit: simulation === null ? auditAccess(chain) : [],
    findings:
      simulation === null && options.loadBalancer === undefined
        ? [...findingsOf(topology, chain, null), ...otherLoadBalancerFindings(topology, chain, options)]
        : findingsOf(topology, chain, simulation),
    configIssues: topology.issues
      .filter((i) => i.severity !== 'info')
      .map((i) => ({ severity: i.severity, code: i.code, message: i.message })),
  };
  return {
    ok: true,
    report: simulation === null ? auditReport(common) : clientReport(chain, simulation, common),
  };
}

/** TLS relayed unread (G10): no HTTP status of keepip's; the backend answers, or the connection is closed. */
function summarisePassthrough(outcome: string, decidedBy: string, logs: string | null): string {
  const seen = logs === null ? '' : `, the gateway sees ${logs}`;
  return outcome === 'allowed'
    ? `TLS passes through to the backend (${decidedBy})${seen}; the backend sees the gateway pod, not the client`
    : `connection closed before reaching the backend (${decidedBy})${seen}`;
}

function summarise(outcome: string, status: number | null, decidedBy: string, logs: string | null): string {
  const seen = logs === null ? '' : `, the gateway sees ${logs}`;
  switch (outcome) {
    case 'allowed':
      return `${status} OK: allowed (${decidedBy})${seen}`;
    case 'redirected':
      return `${status} redirect (${decidedBy})${seen}`;
    case 'denied-403':
      return `403 Forbidden: denied by ${decidedBy}${seen}`;
    case 'fail-closed-503':
      return `503: the access list is invalid and fails closed (${decidedBy})`;
    case 'rejected-400':
      return `400 Bad Request for every request (${decidedBy})${seen}`;
    case 'not-found-404':
      return `404: no Ingress rule matches (${decidedBy})`;
    case 'connection-closed':
      return `connection closed without a response (${decidedBy})`;
    default:
      return `unreachable (${decidedBy})`;
  }
}
