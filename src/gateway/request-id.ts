// Request ids ($request_id / $req_id): 32 lower-case hex digits from the CSPRNG. Random bytes are
// drawn 4 KiB at a time so that a request costs one hex conversion, not a system call.

import { randomFillSync } from 'node:crypto';

const ID_BYTES = 16;
const pool = Buffer.allocUnsafe(ID_BYTES * 256);
let offset = pool.length;

/** A fresh 32-hex-digit request id. */
export function newRequestId(): string {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const id = pool.toString('hex', offset, offset + ID_BYTES);
  offset += ID_BYTES;
  return id;
}

/**
 * ingress-nginx's $req_id: the incoming X-Request-ID when the client (or a proxy in front) sent a
 * non-empty one, else a fresh id; with generate-request-id off, else '' (and no X-Request-ID is sent).
 */
export function requestIdFor(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  generate = true,
): string {
  return clientRequestId(headers) ?? (generate ? newRequestId() : '');
}

/** The non-empty X-Request-ID the client (or a proxy in front) sent; null: none. */
export function clientRequestId(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): string | null {
  const incoming = headers['x-request-id'];
  const first = Array.isArray(incoming) ? incoming[0] : incoming;
  return first === undefined || first === '' ? null : first;
}
