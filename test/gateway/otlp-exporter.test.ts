// The span exporter (src/gateway/otlp-exporter.ts) against a test collector: batches of
// otel-max-export-batch-size, one export in flight, a bounded queue that drops (and counts) beyond
// otel-max-queuesize while the collector stalls, and close() sending what is left.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FinishedSpan } from '../../src/gateway/otlp-encode.ts';
import { createSpanExporter } from '../../src/gateway/otlp-exporter.ts';
import { startOtlpReceiver } from '../fixtures/otlp/receiver.ts';

function span(i: number): FinishedSpan {
  return {
    traceId: i.toString(16).padStart(32, '0'),
    spanId: (i + 1).toString(16).padStart(16, 'a'),
    parentSpanId: '',
    traceState: '',
    name: `span-${i}`,
    startNanos: 1_700_000_000_000_000_000n + BigInt(i),
    endNanos: 1_700_000_000_000_000_500n + BigInt(i),
    attributes: [
      ['http.method', 'GET'],
      ['http.status_code', 200 + i],
    ],
    error: false,
  };
}

test('full batches go at once, one in flight; a stalled collector fills the queue, the rest is dropped; close sends what is left', async () => {
  const collector = await startOtlpReceiver();
  const errors: string[] = [];
  const exporter = createSpanExporter(
    {
      collector: { host: '127.0.0.1', port: collector.port },
      serviceName: 'edge',
      maxQueueSize: 4,
      maxExportBatchSize: 2,
      scheduleDelayMs: 3_600_000,
    },
    (message) => errors.push(message),
  );
  try {
    collector.hold();
    exporter.add(span(0));
    exporter.add(span(1)); // a full batch: exported now, and left unanswered
    await collector.waitForSpans(2);
    for (let i = 2; i < 8; i++) exporter.add(span(i)); // 4 fit in the queue, 2 do not
    assert.equal(exporter.dropped, 2);
    assert.equal(collector.calls, 1, 'one export in flight');
    collector.release();
    await exporter.close();
    const spans = await collector.waitForSpans(6);
    assert.deepEqual(
      spans.map((s) => s.name),
      ['span-0', 'span-1', 'span-2', 'span-3', 'span-4', 'span-5'],
    );
    assert.equal(collector.calls, 3);
    assert.deepEqual(spans[1]!.attributes, { 'http.method': 'GET', 'http.status_code': 201 });
    assert.equal(spans[1]!.traceId, '1'.padStart(32, '0'));
    assert.equal(spans[1]!.resource['service.name'], 'edge');
    // The caller's onError rate-limits (tracing.ts: one line a minute); each drop is reported to it.
    assert.deepEqual(errors, [
      '1 spans dropped so far: the queue is full (otel-max-queuesize 4)',
      '2 spans dropped so far: the queue is full (otel-max-queuesize 4)',
    ]);
  } finally {
    await collector.close();
  }
});
