// The load process of the idle suite: opens N keep-alive connections from several 127.x source
// addresses (so no source runs out of ports), completes one request on each, and then holds them idle.
// Line protocol: prints {"event":"ready",...} once all are open; answers "check" on stdin with
// {"event":"check","open":M}; exits when stdin closes.
//   node bench/lib/idle-client.ts --target 127.0.0.1:8080 --host bench.keepip.test --count 10000 \
//        --sources 127.0.1.1,127.0.1.2 [--concurrency 256]
import net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseHostPort } from '../../src/net/host-port.ts';

export interface IdleOptions {
  target: { host: string; port: number };
  hostHeader: string;
  count: number;
  sources: readonly string[];
  concurrency: number;
  timeoutMs: number;
}

/** Reads one HTTP/1.1 response with a Content-Length off the socket; resolves to its status (or an error text). */
function oneRequest(socket: net.Socket, hostHeader: string, timeoutMs: number): Promise<number | string> {
  return new Promise((resolve) => {
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => finish('timed out'), timeoutMs);
    const finish = (result: number | string) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve(result);
    };
    const onClose = () => finish('closed before a complete response');
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buffered.subarray(0, end).toString('latin1');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (!status) return finish(`not HTTP: ${head.slice(0, 80)}`);
      if (!length) return finish('no content-length');
      if (buffered.length >= end + 4 + Number(length[1])) finish(Number(status[1]));
    };
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.write(`GET / HTTP/1.1\r\nHost: ${hostHeader}\r\nUser-Agent: keepip-bench-idle\r\n\r\n`);
  });
}

export async function openIdle(options: IdleOptions): Promise<{
  sockets: Set<net.Socket>;
  ok: number;
  failed: number;
  errors: string[];
}> {
  const sockets = new Set<net.Socket>();
  const errors: string[] = [];
  let ok = 0;
  let failed = 0;
  let next = 0;
  const worker = async () => {
    while (next < options.count) {
      const index = next++;
      const localAddress = options.sources[index % options.sources.length]!;
      const result = await new Promise<number | string>((resolve) => {
        const socket = net.connect({ ...options.target, localAddress });
        socket.setNoDelay(true);
        socket.once('error', (error) => resolve(error.message));
        socket.once('connect', () => {
          sockets.add(socket);
          socket.once('close', () => sockets.delete(socket));
          void oneRequest(socket, options.hostHeader, options.timeoutMs).then(resolve);
        });
      });
      if (result === 200) ok++;
      else {
        failed++;
        if (errors.length < 5) errors.push(typeof result === 'number' ? `status ${result}` : result);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return { sockets, ok, failed, errors };
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      target: { type: 'string' },
      host: { type: 'string' },
      count: { type: 'string' },
      sources: { type: 'string' },
      concurrency: { type: 'string' },
    },
  });
  const target = parseHostPort(values.target ?? '');
  const count = Number(values.count);
  if (!target.ok || !values.host || !Number.isInteger(count) || count < 1 || !values.sources) {
    process.stderr.write('usage: idle-client --target ADDR:PORT --host HOST --count N --sources IP,IP\n');
    return 2;
  }
  const started = Date.now();
  const { sockets, ok, failed, errors } = await openIdle({
    target: target.value,
    hostHeader: values.host,
    count,
    sources: values.sources.split(','),
    concurrency: Number(values.concurrency ?? 256),
    timeoutMs: 10_000,
  });
  const report = { event: 'ready', opened: sockets.size, ok, failed, errors, ms: Date.now() - started };
  process.stdout.write(`${JSON.stringify(report)}\n`);
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line.trim() === 'check')
      process.stdout.write(`${JSON.stringify({ event: 'check', open: sockets.size })}\n`);
  }
  for (const socket of sockets) socket.destroy();
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
