// The status line of an HTTP/1.x response ("HTTP/1.1 200 OK"): one strict reading for every place
// keepip reads an answer (the gateway's upstream responses and WebSocket handshakes, the LB's HTTP
// health checks). Pure text; framing (where the line ends) is the caller's.

export interface StatusLine {
  /** The minor version: HTTP/1.0 or HTTP/1.1. */
  minor: 0 | 1;
  /** 100-999: three digits, and no 0xx (RFC 9110 15: the first digit is the class, 1 to 5 today). */
  status: number;
  /** The reason phrase, '' when absent. Its characters are the caller's to check with the rest of the head. */
  reason: string;
}

// RFC 9112 4: HTTP-version SP 3DIGIT SP [reason-phrase]. A missing SP before an empty reason is
// accepted, as nginx and llhttp accept it.
const STATUS_LINE = /^HTTP\/1\.([01]) ([0-9]{3})(?: ([^\r\n]*))?$/;

/** Parses one status line, without its CRLF; null when it is not one. */
export function parseStatusLine(line: string): StatusLine | null {
  const match = STATUS_LINE.exec(line);
  if (match === null) return null;
  const status = Number(match[2]);
  if (status < 100) return null;
  return { minor: match[1] === '1' ? 1 : 0, status, reason: match[3] ?? '' };
}
