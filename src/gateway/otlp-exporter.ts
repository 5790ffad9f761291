// Spans to an OpenTelemetry collector over OTLP/gRPC (plain HTTP/2, the collector's 4317), batched as
// the SDK's BatchSpanProcessor: a bounded queue (beyond it spans are dropped and counted), an export
// every scheduleDelay or when a batch is full, one export in flight, each with a deadline. Requests
// never wait for it; a collector that cannot be reached costs the queued spans and an error line.
import http2 from 'node:http2';
import type { TracingSettings } from '../config/model.ts';
import { encodeExportRequest, type FinishedSpan } from './otlp-encode.ts';

const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const EXPORT_TIMEOUT_MS = 10_000;

export interface SpanExporter {
  add(span: FinishedSpan): void;
  /** Exports everything queued (within the export deadline), then closes the connection. */
  close(): Promise<void>;
  /** Spans dropped because the queue was full. */
  readonly dropped: number;
}

type Settings = Pick<
  TracingSettings,
  'serviceName' | 'maxQueueSize' | 'scheduleDelayMs' | 'maxExportBatchSize'
> & { collector: { host: string; port: number } };

/** One gRPC unary call; resolves with null on grpc-status 0, else the reason. */
function exportOnce(connect: () => http2.ClientHttp2Session, message: Buffer): Promise<string | null> {
  return new Promise((resolve) => {
    const frame = Buffer.alloc(5);
    frame.writeUInt32BE(message.length, 1);
    let stream: http2.ClientHttp2Stream;
    try {
      stream = connect().request({
        ':method': 'POST',
        ':path': EXPORT_PATH,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
    } catch (error) {
      resolve(`export failed: ${(error as Error).message}`);
      return;
    }
    let status: string | null = null;
    let detail = '';
    // destroy(), not close(): a stream whose session is still connecting (a collector that drops
    // SYNs) would wait for the connect before closing, and the deadline would never end the export.
    const timer = setTimeout(
      () => stream.destroy(new Error(`no answer within ${EXPORT_TIMEOUT_MS / 1000} s`)),
      EXPORT_TIMEOUT_MS,
    );
    stream.on('response', (headers) => {
      if (headers['grpc-status'] !== undefined) status = String(headers['grpc-status']);
    });
    stream.on('trailers', (trailers) => {
      status = String(trailers['grpc-status'] ?? status);
      detail = String(trailers['grpc-message'] ?? '');
    });
    stream.on('data', () => {});
    stream.on('error', (error) => {
      status = status ?? error.message;
    });
    stream.on('close', () => {
      clearTimeout(timer);
      resolve(
        status === '0' ? null : `export failed: ${status ?? 'no grpc-status'}${detail ? ` (${detail})` : ''}`,
      );
    });
    stream.end(Buffer.concat([frame, message]));
  });
}

export function createSpanExporter(settings: Settings, onError: (message: string) => void): SpanExporter {
  const { host, port } = settings.collector;
  const authority = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let session: http2.ClientHttp2Session | null = null;
  let queue: FinishedSpan[] = [];
  let exporting: Promise<void> | null = null;
  let dropped = 0;
  let closed = false;

  const connect = () => {
    if (session === null || session.closed || session.destroyed) {
      session = http2.connect(authority);
      session.on('error', () => {}); // each call reports its own failure
      session.unref();
    }
    return session;
  };
  // Batches while a full one waits (all of them when closing); a failure waits for the next round.
  const exportBatch = async () => {
    while (queue.length > 0) {
      const batch = queue.slice(0, settings.maxExportBatchSize);
      queue = queue.slice(batch.length);
      const failure = await exportOnce(connect, encodeExportRequest(settings.serviceName, batch));
      if (failure !== null) {
        onError(`${failure}; ${batch.length} spans to ${authority} lost`);
        session?.destroy();
        session = null;
        if (closed) queue = [];
        break;
      }
      if (!closed && queue.length < settings.maxExportBatchSize) break;
    }
  };
  const flush = (): Promise<void> => {
    exporting ??= exportBatch().finally(() => {
      exporting = null;
    });
    return exporting;
  };
  const timer = setInterval(() => void flush(), settings.scheduleDelayMs);
  timer.unref();

  return {
    add(span) {
      if (closed) return;
      if (queue.length >= settings.maxQueueSize) {
        dropped++;
        onError(
          `${dropped} spans dropped so far: the queue is full (otel-max-queuesize ${settings.maxQueueSize})`,
        );
        return;
      }
      queue.push(span);
      if (queue.length >= settings.maxExportBatchSize) void flush();
    },
    async close() {
      closed = true;
      clearInterval(timer);
      await exporting;
      await flush();
      // Everything is exported or lost by now: nothing to wait for (close() would wait for a connect).
      session?.destroy();
    },
    get dropped() {
      return dropped;
    },
  };
}
