// This process's file descriptors, from /proc (Linux): how many are open, and which of its TCP sockets
// are accepted connections of a local listener (a gateway's client sockets, as opposed to the test's
// own client sockets connected to it). Tests wait on these counts with a bounded deadline.
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';

/** Entries of /proc/self/fd. */
export function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

function socketInodes(): Set<string> {
  const inodes = new Set<string>();
  for (const name of readdirSync('/proc/self/fd')) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${name}`));
      if (match !== null) inodes.add(match[1] as string);
    } catch {
      // closed between the listing and the read
    }
  }
  return inodes;
}

const LISTEN = '0A';

/** An IPv4 address as /proc/net/tcp prints it (the bytes in host order, x86: reversed). */
function procIpv4(address: string): string {
  return address
    .split('.')
    .reverse()
    .map((octet) => Number(octet).toString(16).padStart(2, '0').toUpperCase())
    .join('');
}

/**
 * TCP sockets this process holds whose local end is `address`:`port`, listeners excluded: for a
 * listener of this process, its accepted connections (a client socket bound to another 127.x address
 * may get the same port number, so the address counts too). A socket the process closed that is still
 * in FIN-WAIT or TIME-WAIT in the kernel has no descriptor and is not counted.
 */
export function acceptedOn(port: number, address = '127.0.0.1'): number {
  const local = `${procIpv4(address)}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = socketInodes();
  // /proc/net/tcp is not read atomically: an entry can show twice while sockets come and go.
  const seen = new Set<string>();
  let text: string;
  try {
    text = readFileSync('/proc/net/tcp', 'latin1');
  } catch {
    return 0;
  }
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const inode = fields[9] as string;
    if (fields[1] === local && fields[3] !== LISTEN && inodes.has(inode)) seen.add(inode);
  }
  return seen.size;
}

/** Polls `read` until `accept(value)` holds; rejects with `what` and the last value after `timeoutMs`. */
export async function waitForCount(
  read: () => number,
  accept: (value: number) => boolean,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (accept(value)) return value;
    if (performance.now() > deadline) throw new Error(`${what}: still ${value} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** This process's descriptors on files in `dir` (unlinked ones too), with each file's mode bits. */
export function openFilesIn(dir: string): { target: string; mode: number }[] {
  const found: { target: string; mode: number }[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      // stat through /proc follows the descriptor to the (unlinked) file itself.
      if (target.startsWith(`${dir}/`))
        found.push({ target, mode: statSync(`/proc/self/fd/${fd}`).mode & 0o777 });
    } catch {
      // closed between the listing and the read
    }
  }
  return found;
}

/** Polls a condition that a signal makes true soon (a counter, a descriptor closing); fails after 20 s. */
export async function pollUntil(what: string, ready: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = performance.now() + 20_000;
  while (!(await ready())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
