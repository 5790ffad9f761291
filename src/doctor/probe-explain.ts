// Joins a live probe with the doctor's prediction for the same source address: does the chain behave
// as the manifests say, and which finding explains a difference between source and backend view?
import type { Finding, ProbeResult, Simulation } from './types.ts';

export interface ProbeExplanation {
  predicted: {
    status: number | null;
    outcome: string;
    gatewayLogsAddress: string | null;
    decidedBy: string;
  } | null;
  /** True when status and address agree with the prediction (null without manifests). */
  agrees: boolean | null;
  /** The finding that explains why the backend did not get the source address (or got no request). */
  explainedBy: string | null;
  text: string;
}

/** Which finding a decision names, for outcomes that end before the backend. */
const BY_DECISION: readonly [RegExp, string][] = [
  [/^G2/, 'PROXY_PROTOCOL_SENT_NOT_EXPECTED'],
  [/^G3/, 'PROXY_PROTOCOL_EXPECTED_NOT_SENT'],
  [/^K3/, 'IN_CLUSTER_BYPASS'],
  [/^G5/, 'PEER_NOT_TRUSTED'],
  [/^A8/, 'HAIRPIN_TIMEOUT'],
  [/^invalid-rules/, 'INVALID_SOURCE_RANGE'],
];

/** Findings that explain a changed address, most specific first. */
const ADDRESS_FINDINGS = [
  'CLIENT_IP_LOST_AT_LB',
  'CLIENT_VIA_TRANSIT_GATEWAY',
  'CLIENT_IP_LOST_AT_KUBE_PROXY',
  'PEER_NOT_TRUSTED',
  'FORWARDED_HEADERS_SPOOFABLE',
  'PROXY_PROTOCOL_TRUSTS_EVERYONE',
];

export function explainProbe(
  result: ProbeResult,
  simulation: Simulation | null,
  findings: readonly Finding[],
): ProbeExplanation {
  const ids = new Set(findings.map((f) => f.id));
  const predicted = simulation
    ? {
        status: simulation.status,
        outcome: simulation.outcome,
        gatewayLogsAddress: simulation.gatewayLogsAddress,
        decidedBy: simulation.decidedBy,
      }
    : null;
  let explainedBy: string | null = null;
  if (simulation !== null) {
    const byDecision = BY_DECISION.find(([pattern]) => pattern.test(simulation.decidedBy))?.[1];
    if (byDecision && ids.has(byDecision)) explainedBy = byDecision;
    else if (simulation.gatewayLogsAddress !== null && simulation.gatewayLogsAddress !== simulation.client) {
      explainedBy = ADDRESS_FINDINGS.find((id) => ids.has(id)) ?? null;
    }
  }
  const observedAddress = result.backendSaw;
  const agrees =
    simulation === null
      ? null
      : result.status === simulation.status &&
        (observedAddress === null ||
          simulation.status !== 200 ||
          observedAddress === simulation.gatewayLogsAddress);
  const parts: string[] = [];
  if (result.error !== null) parts.push(`no response (${result.error})`);
  else parts.push(`status ${result.status}`);
  if (observedAddress !== null) {
    parts.push(
      result.matches
        ? `the backend saw the source address`
        : `the backend saw ${observedAddress} (from ${result.source}), not ${result.from}`,
    );
  }
  if (simulation !== null) {
    parts.push(
      agrees
        ? 'as the manifests predict'
        : `the manifests predict ${simulation.status ?? 'no response'}${simulation.gatewayLogsAddress ? ` with the gateway seeing ${simulation.gatewayLogsAddress}` : ''}: the live chain differs from them`,
    );
    if (explainedBy !== null) parts.push(`explained by ${explainedBy}`);
  }
  return { predicted, agrees, explainedBy, text: parts.join('; ') };
}
