// W3C traceparent/tracestate as the gateway reads and writes them, and OpenTelemetry's samplers
// (src/gateway/trace-context.ts): the spec's invalid forms are no parent, never an error.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { formatTraceparent, parseTraceparent, sampled } from '../../src/gateway/trace-context.ts';
import { TRACING_DEFAULTS } from '../../src/k8s/tracing-settings.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

test('a valid traceparent: ids, the sampled flag, tracestate passed on as received', () => {
  assert.deepEqual(parseTraceparent(`00-${TRACE}-${SPAN}-01`, 'congo=t61rcWkgMzE, rojo=00f067aa0ba902b7'), {
    traceId: TRACE,
    spanId: SPAN,
    sampled: true,
    traceState: 'congo=t61rcWkgMzE, rojo=00f067aa0ba902b7',
  });
  assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-00`, undefined)?.sampled, false);
  assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-03`, undefined)?.sampled, true);
  // A later version: its extra fields are ignored (the spec's forward compatibility).
  assert.equal(parseTraceparent(`01-${TRACE}-${SPAN}-01-extra`, undefined)?.traceId, TRACE);
  // Two tracestate headers are one list.
  assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-01`, ['a=1', 'b=2'])?.traceState, 'a=1,b=2');
  assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-01`, 'x'.repeat(600))?.traceState, '');
});

test('invalid traceparents are no parent', () => {
  for (const value of [
    undefined,
    '',
    `ff-${TRACE}-${SPAN}-01`,
    `00-${'0'.repeat(32)}-${SPAN}-01`,
    `00-${TRACE}-${'0'.repeat(16)}-01`,
    `00-${TRACE.toUpperCase()}-${SPAN}-01`,
    `00-${TRACE}-${SPAN}-01-extra`,
    `00-${TRACE.slice(1)}-${SPAN}-01`,
    `00_${TRACE}_${SPAN}_01`,
    [`00-${TRACE}-${SPAN}-01`, `00-${TRACE}-${SPAN}-01`],
  ])
    assert.equal(parseTraceparent(value, undefined), null, JSON.stringify(value));
  fc.assert(
    fc.property(fc.string(), fc.string(), (a, b) => {
      const parsed = parseTraceparent(a, b);
      return parsed === null || W3C.test(formatTraceparent(parsed));
    }),
  );
});

const W3C = /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/;

test('samplers: AlwaysOn, AlwaysOff, TraceIdRatioBased by the trace id; parent-based follows the parent', () => {
  const ids = Array.from({ length: 4000 }, () => randomBytes(16).toString('hex'));
  const share = (ratio: number) =>
    ids.filter((id) =>
      sampled({ ...TRACING_DEFAULTS, sampler: 'TraceIdRatioBased', samplerRatio: ratio }, id, null),
    ).length / ids.length;
  assert.equal(share(0), 0);
  assert.equal(share(1), 1);
  const quarter = share(0.25);
  assert.ok(quarter > 0.2 && quarter < 0.3, String(quarter));
  // The same trace id gets the same answer (every hop of a trace agrees).
  const id = ids[0]!;
  const at = { ...TRACING_DEFAULTS, sampler: 'TraceIdRatioBased' as const, samplerRatio: 0.5 };
  assert.equal(sampled(at, id, null), sampled(at, id, null));
  const parent = { traceId: id, spanId: SPAN, sampled: false, traceState: '' };
  assert.equal(sampled(TRACING_DEFAULTS, id, parent), false, 'parent-based by default: an unsampled parent');
  assert.equal(sampled(TRACING_DEFAULTS, id, { ...parent, sampled: true }), true);
  const off = { ...TRACING_DEFAULTS, sampler: 'AlwaysOff' as const };
  assert.equal(sampled(off, id, { ...parent, sampled: true }), true, 'a sampled parent wins over AlwaysOff');
  assert.equal(sampled({ ...off, samplerParentBased: false }, id, { ...parent, sampled: true }), false);
  assert.equal(sampled(off, id, null), false);
  assert.equal(sampled(TRACING_DEFAULTS, id, null), true);
});
