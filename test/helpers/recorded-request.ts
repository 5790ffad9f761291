// What a recording backend (a raw TCP server behind a proxy under test) makes of the requests it
// receives: the framing of a chunked body, and what is odd about a request's framing. The nginx
// differentials of request parsing (HTTP/1.1 and HTTP/2) each keep their own recorder around these.

/** Decodes a chunked body at `at`; null while incomplete, 'bad' when it is not chunked at all. */
export function dechunk(buf: Buffer, at: number): { body: Buffer; end: number } | null | 'bad' {
  const parts: Buffer[] = [];
  for (;;) {
    const eol = buf.indexOf('\r\n', at);
    if (eol < 0) return null;
    const size = Number.parseInt(buf.toString('latin1', at, eol).split(';')[0] ?? '', 16);
    if (!Number.isSafeInteger(size)) return 'bad';
    if (size === 0) {
      const end = buf.indexOf('\r\n\r\n', eol - 2);
      return end < 0 ? null : { body: Buffer.concat(parts), end: end + 4 };
    }
    if (buf.length < eol + 2 + size + 2) return null;
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/**
 * How a proxy framed a request, when that is odd (two lengths, a length and chunked, another
 * coding); '' when it is plain, from its Content-Length and Transfer-Encoding values.
 */
export function framingOddities(lengths: readonly string[], codings: readonly string[]): string {
  return [
    lengths.length > 1 ? 'two content-lengths' : '',
    lengths.length > 0 && codings.length > 0 ? 'content-length with transfer-encoding' : '',
    codings.some((c) => c.toLowerCase() !== 'chunked') ? `transfer-encoding ${codings.join(',')}` : '',
  ]
    .filter(Boolean)
    .join('; ');
}
