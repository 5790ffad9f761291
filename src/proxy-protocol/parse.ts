// The entry point: which version, and incremental use. Pure: no sockets, never throws.
import { ppError } from './errors.ts';
import type { ParseResult } from './types.ts';
import { parseV1 } from './v1.ts';
import { parseV2 } from './v2.ts';

const INCOMPLETE: ParseResult = Object.freeze({ kind: 'incomplete' });

/**
 * Parses the PROXY header at the start of `input`. 'incomplete' means more bytes could still
 * make a valid header: call again with the same bytes plus the new ones (cheap: a v2 header is
 * judged from its first 16 bytes until its declared length has arrived). Bytes from `consumed`
 * on belong to the application.
 */
export function parseProxyHeader(input: Uint8Array): ParseResult {
  if (input.length === 0) return INCOMPLETE;
  const first = input[0];
  if (first === 0x0d) return parseV2(input);
  if (first === 0x50) return parseV1(input);
  return { kind: 'error', error: ppError('PP_NOT_PROXY_PROTOCOL') };
}

/**
 * For input that will not grow (a file, a CLI argument): like parseProxyHeader, but input that
 * ends before the header is complete is the error PP_INCOMPLETE.
 */
export function parseCompleteProxyHeader(input: Uint8Array): ParseResult {
  const result = parseProxyHeader(input);
  if (result.kind !== 'incomplete') return result;
  const detail =
    result.need === undefined
      ? `${input.length} byte(s) given`
      : `need ${result.need} bytes, have ${input.length}`;
  return { kind: 'error', error: ppError('PP_INCOMPLETE', detail) };
}

/**
 * Accumulates chunks until a header is complete. After a 'header' result, `rest()` returns the
 * bytes that followed the header in the chunks pushed so far.
 */
export class ProxyHeaderParser {
  #buffer: Uint8Array = new Uint8Array(0);
  #consumed = -1;

  push(chunk: Uint8Array): ParseResult {
    if (this.#consumed >= 0) throw new Error('ProxyHeaderParser: the header is already complete');
    if (this.#buffer.length === 0) {
      this.#buffer = chunk;
    } else {
      const joined = new Uint8Array(this.#buffer.length + chunk.length);
      joined.set(this.#buffer, 0);
      joined.set(chunk, this.#buffer.length);
      this.#buffer = joined;
    }
    const result = parseProxyHeader(this.#buffer);
    if (result.kind === 'header') this.#consumed = result.consumed;
    return result;
  }

  /** Bytes buffered so far (before a header is complete). */
  get buffered(): number {
    return this.#buffer.length;
  }

  rest(): Uint8Array {
    if (this.#consumed < 0) throw new Error('ProxyHeaderParser: no complete header yet');
    return this.#buffer.subarray(this.#consumed);
  }
}
