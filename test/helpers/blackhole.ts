// A TCP endpoint that never answers a connect: for tests of what happens while a dial is under way.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { requireBinary } from './process.ts';

export interface Blackhole {
  port: number;
  /** Kills the listener: the next SYN retransmit is refused, which ends a dial to it. */
  close(): void;
}

/** Rejects with `what` when `promise` has not settled within `ms` (a bound for a broken peer). */
function within<T>(promise: Promise<T>, what: string, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * A listener on `host` that never accepts: python3 listens with backlog 0 and reads stdin (Node's
 * servers always accept); one connection fills the accept queue, after which the kernel drops further
 * SYNs, so a dial to it stays in SYN_SENT.
 */
export async function startBlackhole(host = '127.0.0.1'): Promise<Blackhole> {
  const code = [
    'import socket, sys',
    's = socket.socket()',
    `s.bind((${JSON.stringify(host)}, 0))`,
    's.listen(0)',
    'print(s.getsockname()[1], flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  // The system's python3 (/usr/bin first): a version manager's shim costs a second per start.
  const child: ChildProcess = spawn(requireBinary('python3'), ['-c', code], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const fillers: net.Socket[] = [];
  const close = () => {
    for (const filler of fillers) filler.destroy();
    child.kill('SIGKILL');
  };
  try {
    const port = await within(
      new Promise<number>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(Number(out.trim()));
        });
        child.once('exit', () => reject(new Error('the blackhole listener exited')));
      }),
      'the blackhole listener',
    );
    const filler = net.connect({ host, port });
    fillers.push(filler);
    filler.on('error', () => {});
    await within(new Promise((resolve) => filler.once('connect', resolve)), 'the filler connection');
    return { port, close };
  } catch (error) {
    close();
    throw error;
  }
}

/** Whether a TCP socket to 127.0.0.1:`port` is in SYN_SENT (/proc/net/tcp state 02): a dial under way. */
export function dialling(port: number): boolean {
  const remote = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .some((line) => {
      const fields = line.trim().split(/\s+/);
      return fields[2] === remote && fields[3] === '02';
    });
}
