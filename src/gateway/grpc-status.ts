// gRPC's view of the gateway's own answers. A gRPC client reads the call's outcome from grpc-status and
// grpc-message, not from the HTTP status, so a denial, a missing backend or a timeout is answered as
// a gRPC status in a "trailers-only" response (HTTP 200, content-type application/grpc, the status in
// the one HEADERS frame), as Envoy and grpc-gateway do: a 403 from the allowlist is PERMISSION_DENIED
// (7), an unreachable backend UNAVAILABLE (14). The mapping of other statuses follows gRPC's
// "HTTP to gRPC Status Code Mapping" (https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md) where it has one.

export const GRPC_STATUS = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** A gRPC request: content-type application/grpc, application/grpc+proto, application/grpc;… (not grpc-web). */
export function isGrpcRequest(headers: Readonly<Record<string, string | string[] | undefined>>): boolean {
  const type = headers['content-type'];
  if (typeof type !== 'string' || !type.startsWith('application/grpc')) return false;
  const next = type.charCodeAt(16);
  return Number.isNaN(next) || next === 0x2b /* + */ || next === 0x3b /* ; */;
}

/** The gRPC status for one of the gateway's HTTP answers. */
export function grpcStatusForHttp(status: number): number {
  switch (status) {
    case 400:
      return GRPC_STATUS.INTERNAL;
    case 401:
      return GRPC_STATUS.UNAUTHENTICATED;
    case 403:
    case 421:
      return GRPC_STATUS.PERMISSION_DENIED;
    case 404:
      return GRPC_STATUS.UNIMPLEMENTED;
    case 408:
      return GRPC_STATUS.DEADLINE_EXCEEDED;
    case 413:
    case 431:
      return GRPC_STATUS.RESOURCE_EXHAUSTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GRPC_STATUS.UNAVAILABLE;
    default:
      return GRPC_STATUS.UNKNOWN;
  }
}

/** grpc-message is percent-encoded UTF-8 (gRPC over HTTP/2: Percent-Encoded). */
export function encodeGrpcMessage(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The head of a trailers-only response carrying `code` and `message`, plus any extra headers. */
export function grpcAnswerHeaders(
  code: number,
  message: string,
  extra: Readonly<Record<string, string | string[]>> | null = null,
): Record<string, string | string[]> {
  return {
    ...extra,
    'content-type': 'application/grpc',
    'grpc-status': String(code),
    'grpc-message': encodeGrpcMessage(message),
  };
}

/**
 * grpc-timeout (gRPC over HTTP/2): up to 8 digits and a unit, H M S m u n. The deadline in ms, or
 * null when absent or malformed (a malformed one is ignored, as gRPC servers treat it).
 */
export function parseGrpcTimeout(value: string | string[] | undefined): number | null {
  if (typeof value !== 'string') return null;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (m === null) return null;
  const n = Number(m[1]);
  const scale: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };
  return n * (scale[m[2] as string] as number);
}
