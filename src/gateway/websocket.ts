// WebSocket (and any HTTP/1.1 Upgrade) through the gateway: connect to an endpoint (the next one when a
// connection cannot be made), send the request head, then pipe raw bytes both ways. The backend's
// answer (101 or anything else) reaches the client untouched; proxy-read-timeout bounds idle tunnels,
// as nginx's proxy_read_timeout does.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { classifyUpstreamError, type ProxyFailure, type UpstreamAttempt } from './proxy.ts';
import { type BalancedUpstream, firstMember, type UpstreamMember } from './upstream.ts';

export interface UpgradeRequest {
  upstream: BalancedUpstream;
  method: string;
  path: string;
  /** Upstream headers, including Connection: upgrade and the client's Upgrade value. */
  headers: Record<string, string | string[]>;
  readTimeoutMs: number;
}

export interface UpgradeOutcome {
  /** The backend's status (101 on success), the gateway's (502/504) or 499 when the client left first. */
  status: number;
  attempts: UpstreamAttempt[];
  failures: ProxyFailure[];
  /** True when no upstream byte reached the client: the caller answers with its own error page. */
  answeredByGateway: boolean;
  /** Bytes from the backend to the client, including the response head. */
  bytesToClient: number;
}

const CRLF = '\r\n';

function requestHead(request: UpgradeRequest): string {
  let head = `${request.method} ${request.path} HTTP/1.1${CRLF}`;
  for (const name in request.headers) {
    const value = request.headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) head += `${name}: ${item}${CRLF}`;
    else head += `${name}: ${value}${CRLF}`;
  }
  return `${head}${CRLF}`;
}

/** Reads the status code from the first bytes of an HTTP/1.x response ("HTTP/1.1 101 …"), or null. */
export function parseStatusLine(chunk: Buffer): number | null {
  if (chunk.length < 12 || chunk.toString('latin1', 0, 5) !== 'HTTP/') return null;
  const status = Number(chunk.toString('latin1', 9, 12));
  return Number.isInteger(status) && status >= 100 && status <= 999 ? status : null;
}

export function proxyUpgrade(
  client: Duplex,
  head: Buffer,
  request: UpgradeRequest,
  done: (outcome: UpgradeOutcome) => void,
): void {
  const outcome: UpgradeOutcome = {
    status: 0,
    attempts: [],
    failures: [],
    answeredByGateway: false,
    bytesToClient: 0,
  };
  const members = request.upstream.members;
  let next = firstMember(request.upstream);
  let tried = 0;
  let finished = false;
  let upstream: net.Socket | null = null;
  const headText = requestHead(request);

  const finish = (status: number) => {
    if (finished) return;
    finished = true;
    outcome.status = status;
    done(outcome);
  };
  const onClientGone = () => {
    if (upstream !== null) upstream.destroy();
    if (outcome.status === 0 && !finished && outcome.bytesToClient === 0) finish(499);
  };
  client.on('error', () => client.destroy());
  client.once('close', onClientGone);

  const attempt = () => {
    const member = members[next] as UpstreamMember;
    next = (next + 1) % members.length;
    tried += 1;
    const started = performance.now();
    const record: UpstreamAttempt = { hostPort: member.hostPort, status: null, seconds: 0 };
    outcome.attempts.push(record);
    const socket =
      member.protocol === 'HTTPS'
        ? tls.connect({ host: member.address, port: member.port, rejectUnauthorized: false })
        : net.connect({ host: member.address, port: member.port });
    upstream = socket;
    let connected = false;
    const connectTimer = setTimeout(() => {
      socket.destroy(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' }));
    }, member.connectTimeoutMs);

    socket.once(member.protocol === 'HTTPS' ? 'secureConnect' : 'connect', () => {
      connected = true;
      clearTimeout(connectTimer);
      if (finished || client.destroyed) {
        socket.destroy();
        return;
      }
      socket.setNoDelay(true);
      socket.setTimeout(request.readTimeoutMs);
      // Bytes the client sent after its request head are held until the backend switches protocols:
      // if it refuses (anything but 101), they would be a request the gateway never routed or checked.
      socket.write(headText);
      socket.once('data', (first: Buffer) => {
        const status = parseStatusLine(first) ?? 502;
        record.status = status;
        record.seconds = (performance.now() - started) / 1000;
        outcome.status = status;
        outcome.bytesToClient += first.length;
        client.write(first);
        socket.on('data', (chunk: Buffer) => {
          outcome.bytesToClient += chunk.length;
        });
        socket.pipe(client);
        if (status === 101) {
          if (head.length > 0) socket.write(head);
          client.pipe(socket);
          return;
        }
        // Not switched: the backend's answer reaches the client, but nothing more goes upstream on this
        // connection; a client that sends more bytes is closed (one answer, then close, as for errors).
        const refuse = () => {
          socket.unpipe(client);
          socket.destroy();
          client.end();
        };
        if (head.length > 0) refuse();
        else {
          client.once('data', refuse);
          client.resume();
        }
      });
    });
    socket.on('timeout', () => {
      socket.destroy(Object.assign(new Error('read timeout'), { code: 'UND_ERR_HEADERS_TIMEOUT' }));
    });
    socket.once('error', (error: Error & { code?: string }) => {
      clearTimeout(connectTimer);
      if (finished) return;
      const responded = outcome.bytesToClient > 0;
      const verdict = classifyUpstreamError(error, responded);
      outcome.failures.push({
        code: verdict.code,
        message: verdict.message,
        upstreamUrl: `${member.url}${request.path}`,
      });
      if (!responded) record.status = verdict.status;
      record.seconds = (performance.now() - started) / 1000;
      if (!connected && verdict.retryable && tried < members.length && !client.destroyed) {
        attempt();
        return;
      }
      if (!responded) {
        outcome.answeredByGateway = true;
        client.off('close', onClientGone);
        finish(verdict.status);
      }
    });
    socket.once('close', () => {
      clearTimeout(connectTimer);
      if (upstream !== socket) return;
      if (outcome.bytesToClient > 0) {
        client.end();
        finish(outcome.status);
      } else if (!finished && connected && outcome.failures.length === 0) {
        // Closed without a byte of response: nginx's "upstream prematurely closed connection".
        outcome.failures.push({
          code: 'UPSTREAM_CLOSED',
          message: 'upstream prematurely closed connection while reading response header from upstream',
          upstreamUrl: `${member.url}${request.path}`,
        });
        record.status = 502;
        outcome.answeredByGateway = true;
        client.off('close', onClientGone);
        finish(502);
      }
    });
  };
  attempt();
}
