// OTLP's ExportTraceServiceRequest (opentelemetry-proto v1, collector/trace/v1) in protobuf's wire
// format, for the spans the gateway makes: one resource (service.name), one scope (`nginx`), SERVER
// spans with string and integer attributes. Pure; the fields are the specification's numbers.

export type AttributeValue = string | number;

export interface FinishedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  traceState: string;
  name: string;
  startNanos: bigint;
  endNanos: bigint;
  attributes: readonly SpanAttribute[];
  /** Span.status: ERROR when true, else OK (as the nginx module sets it). */
  error: boolean;
}

export type SpanAttribute = readonly [string, AttributeValue];

const SPAN_KIND_SERVER = 2;
/** Status.code: STATUS_CODE_OK, STATUS_CODE_ERROR. */
const STATUS_OK = 1;
const STATUS_ERROR = 2;
/** Span.flags: the W3C trace flags in its low byte; only sampled spans are exported. */
const SAMPLED = 1;

type Field = Buffer;

function varint(value: number | bigint): Buffer {
  let v = BigInt(value);
  if (v < 0n) v += 1n << 64n; // int64 negatives are ten bytes, two's complement
  const bytes: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    bytes.push(byte);
  } while (v > 0n);
  return Buffer.from(bytes);
}

const tag = (field: number, wireType: number) => varint((field << 3) | wireType);

function bytesField(field: number, value: Buffer): Field {
  return Buffer.concat([tag(field, 2), varint(value.length), value]);
}

const stringField = (field: number, value: string): Field => bytesField(field, Buffer.from(value, 'utf8'));
const messageField = (field: number, parts: readonly Field[]): Field =>
  bytesField(field, Buffer.concat(parts));

function fixed64Field(field: number, value: bigint): Field {
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(value);
  return Buffer.concat([tag(field, 1), out]);
}

function fixed32Field(field: number, value: number): Field {
  const out = Buffer.alloc(4);
  out.writeUInt32LE(value);
  return Buffer.concat([tag(field, 5), out]);
}

/** KeyValue { key = 1; AnyValue value = 2 { string_value = 1 | int_value = 3 } }, in field `field`. */
function keyValue(field: number, key: string, value: AttributeValue): Field {
  const any =
    typeof value === 'number' ? Buffer.concat([tag(3, 0), varint(Math.trunc(value))]) : stringField(1, value);
  return messageField(field, [stringField(1, key), bytesField(2, any)]);
}

const attributes = (field: number, list: readonly SpanAttribute[]): Field[] =>
  list.map(([key, value]) => keyValue(field, key, value));

function span(s: FinishedSpan): Field {
  const parts: Field[] = [
    bytesField(1, Buffer.from(s.traceId, 'hex')),
    bytesField(2, Buffer.from(s.spanId, 'hex')),
  ];
  if (s.traceState !== '') parts.push(stringField(3, s.traceState));
  if (s.parentSpanId !== '') parts.push(bytesField(4, Buffer.from(s.parentSpanId, 'hex')));
  parts.push(
    stringField(5, s.name),
    Buffer.concat([tag(6, 0), varint(SPAN_KIND_SERVER)]),
    fixed64Field(7, s.startNanos),
    fixed64Field(8, s.endNanos),
    ...attributes(9, s.attributes),
    // Status { code = 3 }
    messageField(15, [Buffer.concat([tag(3, 0), varint(s.error ? STATUS_ERROR : STATUS_OK)])]),
    fixed32Field(16, SAMPLED),
  );
  return messageField(2, parts);
}

/** ExportTraceServiceRequest { ResourceSpans { Resource, ScopeSpans { scope, spans } } }. */
export function encodeExportRequest(serviceName: string, spans: readonly FinishedSpan[]): Buffer {
  const resource = messageField(1, attributes(1, [['service.name', serviceName]]));
  const scope = messageField(1, [stringField(1, 'nginx')]);
  const scopeSpans = messageField(2, [scope, ...spans.map(span)]);
  return messageField(1, [resource, scopeSpans]);
}
