// The backend's answer to an upgrade request, read as it streams in: the status of its head, and for a
// refusal (anything but 101) where that answer's body ends, by its framing (h1-response.ts). The
// gateway then ends the client's connection at once instead of waiting for the backend to close a
// kept-alive connection: a refused upgrade is one answer, then the close. Pure: bytes in, steps out.
import { type BodyFraming, ChunkedDecoder, parseResponseHead } from './h1-response.ts';

export type AnswerStep =
  /** Everything given was used; more is needed. */
  | { kind: 'more' }
  /** 101: the head and the tunnel bytes after it were forwarded; from now on bytes flow untouched. */
  | { kind: 'switched' }
  /** The refusal is complete; bytes after it are not part of it and were not forwarded. */
  | { kind: 'done' }
  /** No usable answer (nothing of this head was forwarded): the gateway answers 502. */
  | { kind: 'error'; message: string };

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const MORE: AnswerStep = { kind: 'more' };
const DONE: AnswerStep = { kind: 'done' };

export class UpgradeAnswer {
  /** The final status once its head is read (0 before). */
  status = 0;
  readonly #method: string;
  readonly #maxHeadBytes: number;
  /** Whether the request offered an upgrade: without one, a 101 is an error, never a tunnel. */
  readonly #offered: boolean;
  #pending: Buffer | null = null;
  #framing: BodyFraming | null = null;
  #remaining = 0;
  #chunked: ChunkedDecoder | null = null;

  constructor(method: string, maxHeadBytes: number, offered = true) {
    this.#method = method;
    this.#maxHeadBytes = maxHeadBytes;
    this.#offered = offered;
  }

  /** Feeds bytes from the backend; what belongs to the client goes to `forward`, in order. */
  feed(chunk: Buffer, forward: (bytes: Buffer) => void): AnswerStep {
    if (this.#framing !== null) return this.#body(chunk, 0, forward);
    let buf = this.#pending === null ? chunk : Buffer.concat([this.#pending, chunk]);
    this.#pending = null;
    for (;;) {
      const end = buf.indexOf(HEAD_END);
      if (end < 0) {
        if (buf.length > this.#maxHeadBytes)
          return { kind: 'error', message: 'upstream sent too big header' };
        this.#pending = buf;
        return MORE;
      }
      if (end > this.#maxHeadBytes) return { kind: 'error', message: 'upstream sent too big header' };
      // One strict reading of the head (status line included, net/http-status-line.ts), 101 too: a
      // malformed switch is an error like any malformed answer, never a tunnel.
      const parsed = parseResponseHead(buf.toString('latin1', 0, end), this.#method, true);
      if (!parsed.ok) return { kind: 'error', message: parsed.error.message };
      if (parsed.head.status === 101) {
        // RFC 9110 15.2.2: a server switches only to a protocol the request offered (an h2c request
        // goes upstream without Upgrade: websocket.ts).
        if (!this.#offered)
          return { kind: 'error', message: 'upstream switched protocols without being offered an upgrade' };
        this.status = 101;
        forward(buf);
        return { kind: 'switched' };
      }
      forward(buf.subarray(0, end + 4));
      buf = buf.subarray(end + 4);
      if (parsed.head.interim) continue; // 1xx other than 101: the final answer follows
      this.status = parsed.head.status;
      this.#framing = parsed.head.framing;
      if (parsed.head.framing.kind === 'length') this.#remaining = parsed.head.framing.length;
      else if (parsed.head.framing.kind === 'chunked') this.#chunked = new ChunkedDecoder();
      return this.#body(buf, 0, forward);
    }
  }

  #body(buf: Buffer, start: number, forward: (bytes: Buffer) => void): AnswerStep {
    const framing = this.#framing as BodyFraming;
    switch (framing.kind) {
      case 'none':
        return DONE;
      case 'close':
        // Ends when the backend closes its connection (bounded by proxy-read-timeout).
        if (buf.length > start) forward(buf.subarray(start));
        return MORE;
      case 'length': {
        const take = Math.min(this.#remaining, buf.length - start);
        if (take > 0) forward(buf.subarray(start, start + take));
        this.#remaining -= take;
        return this.#remaining === 0 ? DONE : MORE;
      }
      case 'chunked': {
        const decoder = this.#chunked as ChunkedDecoder;
        const from = start;
        const result = decoder.feed(buf, start, () => {});
        if (!result.ok) return { kind: 'error', message: result.error.message };
        // The client gets the chunked body as the backend framed it.
        const to = result.done ? result.rest : buf.length;
        if (to > from) forward(buf.subarray(from, to));
        return result.done ? DONE : MORE;
      }
    }
  }
}
