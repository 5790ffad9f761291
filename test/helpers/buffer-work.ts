// How much a piece of code searches and copies bytes: for tests that hold a parser or a server to
// linear work when a slow client splits its bytes as it likes (a byte per read). Counted by wrapping
// Buffer#indexOf (the span looked through, up to what it finds), Buffer#copy, Buffer.concat and
// Buffer.from(buffer) for the duration of one synchronous call. Deterministic: no clock involved.

/** Bytes searched or copied while `run` executes. */
export function bufferWork(run: () => void): number {
  let total = 0;
  const { indexOf, copy } = Buffer.prototype;
  const { concat, from } = Buffer;
  Buffer.prototype.indexOf = function (this: Buffer, ...args: Parameters<Buffer['indexOf']>) {
    const at = indexOf.apply(this, args);
    total += (at === -1 ? this.length : at + 1) - Math.max(0, Number(args[1] ?? 0));
    return at;
  } as Buffer['indexOf'];
  Buffer.prototype.copy = function (this: Buffer, ...args: Parameters<Buffer['copy']>) {
    total += (args[3] ?? this.length) - (args[2] ?? 0);
    return copy.apply(this, args);
  } as Buffer['copy'];
  Buffer.concat = ((list: readonly Uint8Array[], length?: number) => {
    const out = concat(list, length);
    total += out.length;
    return out;
  }) as typeof Buffer.concat;
  Buffer.from = ((value: unknown, ...rest: unknown[]) => {
    if (value instanceof Uint8Array) total += value.length;
    return (from as (...a: unknown[]) => Buffer)(value, ...rest);
  }) as typeof Buffer.from;
  try {
    run();
  } finally {
    Object.assign(Buffer.prototype, { indexOf, copy });
    Object.assign(Buffer, { concat, from });
  }
  return total;
}
