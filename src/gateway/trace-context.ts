// W3C Trace Context (traceparent, tracestate) and OpenTelemetry's samplers, for the gateway's spans.
// Pure: ids come from the caller. A malformed traceparent is no parent (a new trace), as the spec asks.
import type { TracingSettings } from '../config/model.ts';

/** A span's identity: 16-byte trace id, 8-byte span id, as lower-case hex; flags bit 0 = sampled. */
export interface SpanContext {
  traceId: string;
  spanId: string;
  sampled: boolean;
  /** The tracestate to pass on, as received ('' for none). */
  traceState: string;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);
/** The spec's limit for tracestate: 32 list members of at most 256 characters each, so ~8 KB; keepip keeps 512. */
const MAX_TRACESTATE = 512;

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? (value.length === 1 ? value[0] : undefined) : value;
}

/**
 * The parent a request names: `traceparent` version 00 exactly, or a later version with its extra
 * fields ignored (never ff); all-zero ids are invalid. Repeated headers are none.
 */
export function parseTraceparent(
  traceparent: string | string[] | undefined,
  tracestate: string | string[] | undefined,
): SpanContext | null {
  const text = single(traceparent)?.trim();
  const m = text === undefined ? null : TRACEPARENT.exec(text);
  if (m === null) return null;
  const [, version, traceId, spanId, flags, rest] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
    string?,
  ];
  if (version === 'ff' || (version === '00' && rest !== undefined)) return null;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return null;
  const state = Array.isArray(tracestate) ? tracestate.join(',') : (tracestate ?? '');
  return {
    traceId,
    spanId,
    sampled: (Number.parseInt(flags, 16) & 1) === 1,
    traceState: state.length <= MAX_TRACESTATE ? state.trim() : '',
  };
}

export function formatTraceparent(context: SpanContext): string {
  return `00-${context.traceId}-${context.spanId}-${context.sampled ? '01' : '00'}`;
}

/**
 * TraceIdRatioBased as Go's SDK decides it, bit for bit: the trace id's last 8 bytes shifted right by
 * one, below uint64(ratio * 2^63) (opentelemetry-cpp, ingress-nginx's, reads the first 8 bytes).
 */
function underRatio(traceId: string, ratio: number): boolean {
  if (ratio >= 1) return true;
  if (ratio <= 0) return false;
  return BigInt(`0x${traceId.slice(16)}`) >> 1n < BigInt(Math.trunc(ratio * 2 ** 63));
}

/** Whether a new span of trace `traceId` is sampled: ingress-nginx's otel-sampler, parent-based or not. */
export function sampled(settings: TracingSettings, traceId: string, parent: SpanContext | null): boolean {
  if (settings.samplerParentBased && parent !== null) return parent.sampled;
  if (settings.sampler === 'AlwaysOff') return false;
  if (settings.sampler === 'TraceIdRatioBased') return underRatio(traceId, settings.samplerRatio);
  return true;
}
