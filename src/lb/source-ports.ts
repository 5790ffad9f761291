// Source ports for connections to targets from a chosen local address (the lb's own address, or a
// preserved client's). Binding to (address, 0) makes the kernel pick a port as bind() does: one that no
// socket on that address holds, TIME_WAIT ones included, found by a scan of the ephemeral range. At a
// few hundred new connections per second from one address, TIME_WAIT fills the range within its 60 s
// and every bind scans it (measured: from 10,000 to under 500 connections/s, 2 ms CPU each, and
// EADDRINUSE failures). HAProxy asks for IP_BIND_ADDRESS_NO_PORT and lets connect() pick by the whole
// four-tuple; Node offers no setsockopt, so the lb walks the range's odd ports itself and binds explicit
// ports (with SO_REUSEADDR, which libuv sets: a TIME_WAIT on the port is no conflict, a listener is). A
// port whose four-tuple is taken (EADDRNOTAVAIL) or that a listener holds (EADDRINUSE) is skipped for
// the next one; after MAX_PORT_TRIES the kernel chooses (port 0), as before. Pure: the range is read by
// the caller (balancer.ts), and lb workers each get their own slice of it (portSlice).

/** The ephemeral range and the ports reserved out of it (Linux ip_local_port_range / _reserved_ports). */
export interface PortRange {
  low: number;
  high: number;
  reserved: ReadonlySet<number>;
}

/** Linux's default ip_local_port_range, for where /proc cannot be read. */
export const DEFAULT_PORT_RANGE: PortRange = { low: 32768, high: 60999, reserved: new Set() };

/** Explicit ports tried for one connection before the kernel's choice (port 0). */
export const MAX_PORT_TRIES = 8;

export interface SourcePorts {
  /** The next port to bind on `address` (never a reserved one). */
  next(address: string): number;
}

/** Addresses with a cursor at most (preserved clients are many): beyond, the least recent is dropped. */
const MAX_CURSORS = 4096;

/**
 * Per address, a cursor that walks the odd ports of the range from a random start (so restarts do not
 * collide). Odd ones only, as the kernel's own bind(addr, 0) prefers them: its connect() without a bind
 * takes even ports first, so the other processes of the host (kubelet, DNS, the gateway's upstream
 * connections) keep the even half, where a port bound here would hold them off for its TIME_WAIT.
 */
export function createSourcePorts(range: PortRange, random: () => number = Math.random): SourcePorts {
  const first = range.low | 1;
  const size = Math.max(1, Math.floor((range.high - first) / 2) + 1);
  const cursors = new Map<string, number>();
  return {
    next(address) {
      let at = cursors.get(address);
      if (at === undefined) {
        if (cursors.size >= MAX_CURSORS) cursors.delete(cursors.keys().next().value!);
        at = Math.floor(random() * size);
      } else cursors.delete(address); // set again below: the Map's order is the least recent first
      let port = first + 2 * at;
      // At most `size` steps: a range with every port reserved gives its last one back.
      for (let step = 0; step < size && range.reserved.has(port); step++) {
        at = (at + 1) % size;
        port = first + 2 * at;
      }
      cursors.set(address, (at + 1) % size);
      return port;
    },
  };
}

/**
 * Worker `index` of `count`'s own part of the range (lb workers share the source addresses: each walking
 * the whole range from its own start, one would run into the other's ports).
 */
export function portSlice(range: PortRange, index: number, count: number): PortRange {
  if (count <= 1) return range;
  const size = range.high - range.low + 1;
  const low = range.low + Math.floor((size * index) / count);
  const high = range.low + Math.floor((size * (index + 1)) / count) - 1;
  return { low, high: Math.max(low, high), reserved: range.reserved };
}

/** Parses ip_local_port_range ("32768\t60999") and ip_local_reserved_ports ("8080,9000-9010"). */
export function parsePortRange(rangeText: string, reservedText: string): PortRange | null {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(rangeText);
  if (m === null) return null;
  const low = Number(m[1]);
  const high = Number(m[2]);
  if (low < 1 || high > 65535 || low > high) return null;
  const reserved = new Set<number>();
  for (const part of reservedText.split(',')) {
    const r = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
    if (r === null) continue;
    const from = Math.max(Number(r[1]), low);
    const to = Math.min(Number(r[2] ?? r[1]), high);
    for (let p = from; p <= to; p++) reserved.add(p);
  }
  return { low, high, reserved };
}
