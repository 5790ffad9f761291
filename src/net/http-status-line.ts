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
// accepted, as nginx and llhttp accept it. Read character by character: it runs once per upstream
// response, and a regular expression's match array and captures cost more than the line itself.
const PREFIX = 'HTTP/1.';

/** Parses one status line, without its CRLF; null when it is not one. */
export function parseStatusLine(line: string): StatusLine | null {
  if (line.length < 12 || !line.startsWith(PREFIX)) return null;
  const digit = line.charCodeAt(7);
  if ((digit !== 0x30 && digit !== 0x31) || line.charCodeAt(8) !== 0x20) return null;
  const minor = digit === 0x31 ? 1 : 0;
  let status = 0;
  for (let i = 9; i < 12; i++) {
    const digit = line.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return null;
    status = status * 10 + digit;
  }
  if (status < 100) return null;
  if (line.length === 12) return { minor, status, reason: '' };
  if (line.charCodeAt(12) !== 0x20 || line.includes('\r', 13) || line.includes('\n', 13)) return null;
  return { minor, status, reason: line.slice(13) };
}
