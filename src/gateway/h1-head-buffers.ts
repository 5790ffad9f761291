// How nginx packs a request head into its buffers (ngx_http_alloc_large_header_buffer), so that keepip
// holds exactly the heads nginx holds: the head is read into one buffer of client-header-buffer-size;
// a line that does not fit there moves, with the lines after it, into a buffer of
// large-client-header-buffers, and so on, at most `count` of them; a line that moves must fit in one.
// A line longer than a large buffer is taken only where it lies whole in the first buffer (a request
// line of 800 bytes under "4 512"), never elsewhere. Pure.

/** client-header-buffer-size and large-client-header-buffers, in bytes. */
export interface HeadBuffers {
  firstBytes: number;
  count: number;
  sizeBytes: number;
}

/** Why nginx cannot hold a head: its request line (414), a header line, or all its lines (400 there). */
export type HeadOverflow = 'request-line' | 'header-line' | 'buffers';

const LF = 0x0a;

/**
 * The head in `buf` from `start` to `end` (CRLF lines; the last may be cut, in a head still arriving)
 * as nginx packs it, line by line in order: null when it fits so far, else where it overflows
 * first. A head no longer than the first buffer always fits.
 */
export function headOverflow(
  buf: Buffer,
  start: number,
  end: number,
  buffers: HeadBuffers,
): HeadOverflow | null {
  if (end - start <= buffers.firstBytes) return null;
  let [room, used, taken] = [buffers.firstBytes, 0, 0];
  for (let lineStart = start; lineStart < end; ) {
    const lf = buf.indexOf(LF, lineStart);
    // A line cut at `end` (no LF before it) counts as far as it goes.
    const lineEnd = lf === -1 || lf >= end ? end : lf + 1;
    const length = lineEnd - lineStart;
    const requestLine = lineStart === start;
    if (used + length <= room) used += length;
    else {
      // The buffer is full in this line (or just before it): the line moves to the next large buffer.
      taken += 1;
      if (length > buffers.sizeBytes) return requestLine ? 'request-line' : 'header-line';
      if (taken > buffers.count) return requestLine ? 'request-line' : 'buffers';
      [room, used] = [buffers.sizeBytes, length];
    }
    lineStart = lineEnd;
  }
  return null;
}
