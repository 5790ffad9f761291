// WebSocket (and any HTTP/1.1 Upgrade) through the gateway: connect to an endpoint (the next one when a
// connection cannot be made), send the request head, then read the backend's answer (upgrade-answer.ts).
// 101: raw bytes flow both ways untouched, and proxy-read-timeout bounds an idle tunnel, as nginx's
// proxy_read_timeout does. Anything else is a refusal: that answer reaches the client as the backend
// framed it, then both connections close (the client side within the lingering deadlines of
// h1-server.ts), so a refused upgrade never leaves a socket half-open.
import type { NextUpstreamModel } from '../config/model.ts';
import http from '../node-http.ts';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { formatHostPort } from '../net/host-port.ts';
import { markUpgradeSwitched } from './h1-server.ts';
import { offersH2c } from './h1-request.ts';
import { newUpstreamAttempt } from './exchange.ts';
import { classifyUpstreamError, type ProxyFailure, type UpstreamAttempt } from './proxy.ts';
import { DEFAULT_NEXT_UPSTREAM, EndpointRotation, retryOnFailure } from './next-upstream.ts';
import { UpgradeAnswer } from './upgrade-answer.ts';
import { type BalancedUpstream, type UpstreamMember, upstreamTlsOptions } from './upstream.ts';

export interface UpgradeRequest {
  upstream: BalancedUpstream;
  method: string;
  path: string;
  /** Upstream headers, including Connection: upgrade and the client's Upgrade value. */
  headers: Record<string, string | string[]>;
  readTimeoutMs: number;
  /** proxy-next-upstream(-tries) of the location; absent: ingress-nginx's defaults. */
  nextUpstream?: NextUpstreamModel | undefined;
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

/**
 * The Upgrade value a backend is offered for the client's: the same, or null when it names h2c
 * (h2c smuggling: a backend that switched to HTTP/2 would take, inside the tunnel, requests no
 * location has checked, so the request goes upstream as a plain one instead).
 */
export function upstreamUpgrade(value: string | string[]): string | string[] | null {
  // The HTTP/1.1 parser already reads such a request as an ordinary one; this is the second lock.
  return offersH2c(value) ? null : value;
}

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

export function proxyUpgrade(
  client: Duplex,
  head: Buffer,
  request: UpgradeRequest,
  done: (outcome: UpgradeOutcome) => void,
): void {
  new UpgradeExchange(client, head, request, done).start();
}

/** One endpoint tried for an upgrade. */
interface Attempt {
  member: UpstreamMember;
  socket: net.Socket;
  record: UpstreamAttempt;
  started: number;
  connected: boolean;
  connectTimer: NodeJS.Timeout;
  /** The backend's answer as read so far (null before the connect). */
  answer: UpgradeAnswer | null;
}

/** One upgrade request on its way through one or more endpoints. */
class UpgradeExchange {
  readonly #client: Duplex;
  readonly #head: Buffer;
  readonly #request: UpgradeRequest;
  readonly #done: (outcome: UpgradeOutcome) => void;
  readonly #headText: string;
  readonly #outcome: UpgradeOutcome = {
    status: 0,
    attempts: [],
    failures: [],
    answeredByGateway: false,
    bytesToClient: 0,
  };
  readonly #rotation: EndpointRotation;
  #finished = false;
  #upstream: net.Socket | null = null;

  constructor(
    client: Duplex,
    head: Buffer,
    request: UpgradeRequest,
    done: (outcome: UpgradeOutcome) => void,
  ) {
    this.#client = client;
    this.#head = head;
    this.#request = request;
    this.#done = done;
    this.#headText = requestHead(request);
    this.#rotation = new EndpointRotation(request.upstream, this.#policy);
  }

  get #policy(): NextUpstreamModel {
    return this.#request.nextUpstream ?? DEFAULT_NEXT_UPSTREAM;
  }

  start(): void {
    this.#client.on('error', () => this.#client.destroy());
    this.#client.once('close', this.#onClientGone);
    this.#attempt();
  }

  #finish(status: number): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#outcome.status = status;
    this.#done(this.#outcome);
  }

  #onClientGone = (): void => {
    this.#upstream?.destroy();
    if (this.#outcome.status === 0 && !this.#finished && this.#outcome.bytesToClient === 0) this.#finish(499);
  };

  #attempt(): void {
    const { member } = this.#rotation.take();
    const record = newUpstreamAttempt(member.hostPort);
    this.#outcome.attempts.push(record);
    const socket =
      member.protocol === 'HTTPS'
        ? // The location's proxy-ssl-* as for its other requests: verification, client certificate, SNI.
          tls.connect({
            ...upstreamTlsOptions(member.tls),
            host: member.address,
            port: member.port,
            lookup: member.lookup,
          })
        : net.connect({ host: member.address, port: member.port, lookup: member.lookup });
    this.#upstream = socket;
    const attempt: Attempt = {
      member,
      socket,
      record,
      started: performance.now(),
      connected: false,
      answer: null,
      connectTimer: setTimeout(() => {
        socket.destroy(Object.assign(new Error('connect timeout'), { code: 'UPSTREAM_CONNECT_TIMEOUT' }));
      }, member.connectTimeoutMs),
    };
    socket.once(member.protocol === 'HTTPS' ? 'secureConnect' : 'connect', () => this.#onConnect(attempt));
    socket.on('timeout', () => {
      socket.destroy(Object.assign(new Error('read timeout'), { code: 'UPSTREAM_READ_TIMEOUT' }));
    });
    socket.once('error', (error: Error & { code?: string }) => this.#onError(attempt, error));
    socket.once('close', () => this.#onClose(attempt));
  }

  #onConnect(attempt: Attempt): void {
    const { socket } = attempt;
    attempt.connected = true;
    attempt.record.connectSeconds = (performance.now() - attempt.started) / 1000;
    clearTimeout(attempt.connectTimer);
    if (socket.remoteAddress !== undefined)
      attempt.record.addr = formatHostPort(socket.remoteAddress, socket.remotePort ?? attempt.member.port);
    if (this.#finished || this.#client.destroyed) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    socket.setTimeout(this.#request.readTimeoutMs);
    // Bytes the client sent after its request head are held until the backend switches protocols:
    // if it refuses (anything but 101), they would be a request the gateway never routed or checked.
    socket.write(this.#headText);
    const offered = this.#request.headers.upgrade !== undefined;
    const answer = new UpgradeAnswer(this.#request.method, http.maxHeaderSize, offered);
    attempt.answer = answer;
    const onData = (chunk: Buffer) => {
      const step = answer.feed(chunk, this.#toClient);
      if (step.kind === 'more') return;
      socket.off('data', onData);
      if (step.kind === 'switched') this.#tunnel(attempt);
      else if (step.kind === 'done') this.#refused(attempt, answer.status);
      else this.#badAnswer(attempt, step.message);
    };
    socket.on('data', onData);
  }

  /** Writes backend bytes to the client, with backpressure on the backend. */
  #toClient = (bytes: Buffer): void => {
    const upstream = this.#upstream;
    this.#outcome.bytesToClient += bytes.length;
    if (!this.#client.write(bytes) && upstream !== null) {
      upstream.pause();
      this.#client.once('drain', () => upstream.resume());
    }
  };

  /** `answered`: the backend's answer head came (101 or a refusal): its time is $upstream_header_time. */
  #recordStatus(attempt: Attempt, status: number, answered: boolean): void {
    attempt.record.status = status;
    attempt.record.seconds = (performance.now() - attempt.started) / 1000;
    if (answered) attempt.record.headerSeconds = attempt.record.seconds;
    this.#outcome.status = status;
  }

  /** 101: the client's held bytes go up, then bytes flow both ways untouched. */
  #tunnel(attempt: Attempt): void {
    const { socket } = attempt;
    const client = this.#client;
    this.#recordStatus(attempt, 101, true);
    markUpgradeSwitched(client);
    socket.on('data', (chunk: Buffer) => {
      this.#outcome.bytesToClient += chunk.length;
    });
    socket.pipe(client);
    if (this.#head.length > 0) socket.write(this.#head);
    client.pipe(socket);
    socket.resume();
  }

  /**
   * Not switched, and the backend's answer is complete: it reached the client, nothing more goes
   * upstream on this connection, and both ends close (the client gets the lingering deadlines).
   */
  #refused(attempt: Attempt, status: number): void {
    this.#recordStatus(attempt, status, true);
    attempt.socket.destroy(); // #onClose ends the client and finishes
  }

  /** An answer the gateway cannot frame: 502 when none of it reached the client, else a cut. */
  #badAnswer(attempt: Attempt, message: string): void {
    const { member } = attempt;
    this.#outcome.failures.push({
      code: 'UPSTREAM_ERROR',
      message: `${message} while reading response header from upstream`,
      upstreamUrl: `${member.url}${this.#request.path}`,
    });
    this.#recordStatus(attempt, 502, false);
    if (this.#outcome.bytesToClient === 0) {
      this.#outcome.answeredByGateway = true;
      this.#client.off('close', this.#onClientGone);
      this.#finish(502);
      attempt.socket.destroy();
      return;
    }
    attempt.socket.destroy();
    this.#client.destroy();
  }

  #onError(attempt: Attempt, error: Error & { code?: string }): void {
    const { member, record } = attempt;
    clearTimeout(attempt.connectTimer);
    if (this.#finished) return;
    const responded = this.#outcome.bytesToClient > 0;
    const verdict = classifyUpstreamError(error, responded);
    this.#outcome.failures.push({
      code: verdict.code,
      message: verdict.message,
      upstreamUrl: `${member.url}${this.#request.path}`,
    });
    if (!responded) record.status = verdict.status;
    record.seconds = (performance.now() - attempt.started) / 1000;
    // proxy_next_upstream applies to upgrades too: which failures go on, how many endpoints, how long.
    const goOn = verdict.retryable && retryOnFailure(this.#policy, verdict.code, this.#request.method);
    if (!attempt.connected && goOn && this.#rotation.mayTakeNext() && !this.#client.destroyed) {
      this.#attempt();
      return;
    }
    if (!responded) {
      this.#outcome.answeredByGateway = true;
      this.#client.off('close', this.#onClientGone);
      this.#finish(verdict.status);
    }
  }

  #onClose(attempt: Attempt): void {
    clearTimeout(attempt.connectTimer);
    if (this.#upstream !== attempt.socket) return;
    if (this.#outcome.bytesToClient > 0) {
      // A refusal the backend ended by closing (no length): its status is the head's.
      const status = attempt.answer?.status ?? 0;
      if (this.#outcome.status === 0 && status > 0) this.#recordStatus(attempt, status, true);
      this.#client.end();
      this.#finish(this.#outcome.status);
    } else if (!this.#finished && attempt.connected && this.#outcome.failures.length === 0) {
      // Closed without a byte of response: nginx's "upstream prematurely closed connection".
      this.#outcome.failures.push({
        code: 'UPSTREAM_CLOSED',
        message: 'upstream prematurely closed connection while reading response header from upstream',
        upstreamUrl: `${attempt.member.url}${this.#request.path}`,
      });
      attempt.record.status = 502;
      this.#outcome.answeredByGateway = true;
      this.#client.off('close', this.#onClientGone);
      this.#finish(502);
    }
  }
}
