// The access and error logs to a syslog server (ConfigMap enable-syslog), as nginx's
// `access_log syslog:server=host:port` / `error_log syslog:server=…` that ingress-nginx writes: one UDP
// datagram per line, `<PRI>Mmm dd hh:mm:ss hostname nginx: <line>` (RFC 3164, nginx's facility local7,
// severity info for access lines and the line's own level for error lines, tag "nginx" so that
// existing syslog filters keep matching). While it is on, neither log goes to stdout or stderr.
//
// The target is read from the snapshot being served at each line, so a reload turns it on, off or
// elsewhere. A host name is resolved once per target; until then lines wait (bounded), and a name that
// does not resolve sends the lines back to stdout/stderr with one error line saying why.
import dgram from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { hostname } from 'node:os';
import { isNginxLogLevel, NGINX_LOG_LEVELS } from '../config/log-levels.ts';
import type { SyslogTarget } from '../config/model.ts';
import type { LineSink } from './line-sink.ts';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** nginx's default facility, local7. */
const FACILITY = 23;
const INFO = 6;
/** The largest UDP payload over IPv4; a longer line is cut there. */
const MAX_DATAGRAM = 65_507;
/** Lines held while a target's name is resolved, and datagrams queued in the socket, at most. */
const MAX_WAITING = 4096;

/** nginx's syslog time: local time, `Dec  5 02:40:11` (the day padded with a space). */
export function syslogTime(ms: number): string {
  const d = new Date(ms);
  const day = String(d.getDate()).padStart(2, ' ');
  const two = (n: number) => String(n).padStart(2, '0');
  return `${MONTHS[d.getMonth()]} ${day} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** The severity of an error log line from its `[level]` (nginx's line shape), info otherwise. */
export function errorLineSeverity(line: string): number {
  const open = line.indexOf(' [');
  const close = open < 0 ? -1 : line.indexOf(']', open);
  const level = line.slice(open + 2, close);
  return close >= 0 && isNginxLogLevel(level) ? NGINX_LOG_LEVELS[level] : INFO;
}

/** One datagram: the RFC 3164 header nginx writes, then the line. */
export function syslogMessage(line: string, severity: number, ms: number, host: string): Buffer {
  const message = Buffer.from(`<${FACILITY * 8 + severity}>${syslogTime(ms)} ${host} nginx: ${line}`);
  return message.length > MAX_DATAGRAM ? message.subarray(0, MAX_DATAGRAM) : message;
}

const sameTarget = (a: SyslogTarget, b: SyslogTarget) => a.host === b.host && a.port === b.port;

/** A line held until the target's name is resolved, with where it goes if the name does not resolve. */
interface WaitingLine {
  message: Buffer;
  line: string;
  sink: LineSink;
}

/** One target's UDP socket, connected once its name is resolved. */
class SyslogSender {
  readonly target: SyslogTarget;
  #socket: dgram.Socket | null = null;
  #connected = false;
  #waiting: WaitingLine[] = [];
  #failed = false;
  #closed = false;
  dropped = 0;

  constructor(target: SyslogTarget, resolve: LookupFunction, failed: (why: string) => void) {
    this.target = target;
    resolve(target.host, {}, (error, address, family) => {
      if (this.#closed) return;
      if (error || typeof address !== 'string') {
        this.#failed = true;
        failed(`${target.host} could not be resolved (${error?.code ?? error?.message ?? 'no address'})`);
        for (const { line, sink } of this.#waiting) sink.write(line);
        this.#waiting = [];
        return;
      }
      const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
      this.#socket = socket;
      // An unreachable port comes back as an error on a connected socket: the line is lost, as with nginx.
      socket.on('error', () => (this.dropped += 1));
      socket.connect(target.port, address, () => {
        if (this.#closed) return;
        this.#connected = true;
        for (const { message } of this.#waiting) this.#send(socket, message);
        this.#waiting = [];
      });
    });
  }

  /** False when the name did not resolve: the caller writes the line to `sink` itself. */
  send(message: Buffer, line: string, sink: LineSink): boolean {
    if (this.#failed) return false;
    if (this.#connected) this.#send(this.#socket!, message);
    else if (this.#waiting.length < MAX_WAITING) this.#waiting.push({ message, line, sink });
    else this.dropped += 1;
    return true;
  }

  #send(socket: dgram.Socket, message: Buffer): void {
    if (socket.getSendQueueCount() >= MAX_WAITING) {
      this.dropped += 1;
      return;
    }
    socket.send(message, (error) => {
      if (error) this.dropped += 1;
    });
  }

  close(): void {
    this.#closed = true;
    this.#socket?.close();
    this.#socket = null;
  }
}

export interface SyslogRouting {
  /** The access log: to syslog while the served snapshot says so, else to the given sink. */
  access: LineSink;
  /** The error log, likewise (severity from each line's level). */
  error: LineSink;
  close(): void;
}

/**
 * Routes both logs by `target()`, read at each line. `fallback` are the sinks used when syslog is off
 * (and for a name that does not resolve, after one error line there).
 */
export function createSyslogRouting(
  fallback: { access: LineSink; error: LineSink },
  target: () => SyslogTarget | undefined,
  errorLine: (message: string) => string,
  resolve: LookupFunction = dnsLookup,
): SyslogRouting {
  const host = hostname().toLowerCase();
  let sender: SyslogSender | null = null;
  const senderFor = (wanted: SyslogTarget | undefined): SyslogSender | null => {
    if (wanted === undefined) {
      sender?.close();
      sender = null;
    } else if (sender === null || !sameTarget(sender.target, wanted)) {
      sender?.close();
      sender = new SyslogSender(wanted, resolve, (why) =>
        fallback.error.write(errorLine(`syslog-host: ${why}; the logs are written here instead`)),
      );
    }
    return sender;
  };
  const routed = (sink: LineSink, severity: (line: string) => number): LineSink => ({
    write(line) {
      const to = senderFor(target());
      if (to === null || !to.send(syslogMessage(line, severity(line), Date.now(), host), line, sink))
        sink.write(line);
    },
    flush: () => sink.flush(),
    close: () => sink.close(),
    get dropped() {
      return sink.dropped + (sender?.dropped ?? 0);
    },
  });
  return {
    access: routed(fallback.access, () => INFO),
    error: routed(fallback.error, errorLineSeverity),
    close: () => senderFor(undefined),
  };
}
