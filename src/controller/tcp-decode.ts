// A tcp-services entry with `:PROXY` (decode): clients (the load balancer) open each connection with
// a PROXY header, as nginx's `listen … proxy_protocol` expects. The header is read by keepip's PROXY
// reader under the gateway's trust (proxy-real-ip-cidr; an untrusted peer or a missing header closes
// the connection), then the connection runs on the L4 engine's flow (src/lb/flow.ts), with a fresh
// PROXY v1 header naming the decoded client when the entry also says `::PROXY` (encode).
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { type Flow, startFlow } from '../lb/flow.ts';
import { createHeaderBuilder } from '../lb/proxy-header.ts';
import { CidrSet } from '../net/cidr-set.ts';
import { readProxyHeader } from '../proxy-protocol/reader.ts';

/** The ConfigMap settings a tcp-services listener follows across reloads. */
export interface DecodeSettings {
  trustedCidrs: readonly string[];
  headerTimeoutMs: number;
  /** proxy-stream-timeout: a connection with no byte either way for this long is closed. */
  idleTimeoutMs: number;
  /** worker-shutdown-timeout: how long connections to an endpoint that left may carry on. */
  drainMs: number;
}

export interface DecodingListener {
  address: net.AddressInfo;
  setTargets(targets: readonly { host: string; port: number }[]): void;
  setSettings(settings: DecodeSettings): void;
  close(): Promise<void>;
}

const CONNECT_TIMEOUT_MS = 10_000;

export async function startDecodingListener(options: {
  host: string;
  port: number;
  targets: readonly { host: string; port: number }[];
  encode: boolean;
  settings: DecodeSettings;
  log: (line: string) => void;
}): Promise<DecodingListener> {
  let targets = [...options.targets];
  let next = 0;
  let trusted = CidrSet.build([...options.settings.trustedCidrs]);
  let timeoutMs = options.settings.headerTimeoutMs;
  let idleTimeoutMs = options.settings.idleTimeoutMs;
  const flows = new Set<Flow>();
  const counters = { bytesToTarget: 0, bytesToClient: 0 };
  const header = options.encode ? createHeaderBuilder('v1', {}, () => randomBytes(16)) : null;

  const onConnection = async (socket: net.Socket) => {
    socket.on('error', () => {});
    const outcome = await readProxyHeader(socket, {
      // An invalid proxy-real-ip-cidr trusts nobody, as in the gateway.
      isTrusted: (peer) => trusted.ok && trusted.set.has(peer),
      timeoutMs,
      onReject: (e) =>
        options.log(
          `tcp-services ${options.port}: PROXY header refused from ${e.peer} (${e.reason}: ${e.detail})`,
        ),
    });
    if (!outcome.ok) return;
    const target = targets[next++ % Math.max(1, targets.length)];
    if (target === undefined) {
      socket.destroy();
      return;
    }
    const { info } = outcome;
    let bytes: Buffer | null = null;
    if (header !== null) {
      const encoded = header.forFlow({
        client: { address: info.clientAddress, port: info.clientPort },
        listener: { address: info.destinationAddress, port: info.destinationPort },
      });
      if (!encoded.ok) {
        socket.destroy();
        return;
      }
      bytes = encoded.value;
    }
    const flow = startFlow({
      client: socket,
      target,
      localAddress: undefined,
      header: bytes,
      idleTimeoutMs,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      counters,
      // The reader put back the bytes after the header: they come out of 'data' first.
      clientReads: 'node',
      onConnected() {},
      onConnectError(_flow, error) {
        options.log(
          `tcp-services ${options.port}: connect to ${target.host}:${target.port} failed (${error.code ?? error.message})`,
        );
      },
      onEnd(ended) {
        flows.delete(ended);
      },
    });
    flows.add(flow);
  };

  const server = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (socket) => {
    void onConnection(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    address: server.address() as net.AddressInfo,
    setTargets(list) {
      targets = [...list];
    },
    setSettings(settings) {
      trusted = CidrSet.build([...settings.trustedCidrs]);
      timeoutMs = settings.headerTimeoutMs;
      idleTimeoutMs = settings.idleTimeoutMs;
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const flow of flows) flow.abort();
      }),
  };
}
