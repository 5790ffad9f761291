// Bytes read from a client and held until they can be used (pipelined requests while a response is
// under way, a ClientHello that arrives in pieces): one buffer that grows by doubling, so each byte is
// copied once however the client splits them. Joining the held bytes anew on every read costs work
// quadratic in their size, which a client sending a byte per read would make the gateway do. Pure.

export class HeldBytes {
  #buffer: Buffer | null = null;
  #length = 0;

  /** How many bytes are held. */
  get length(): number {
    return this.#length;
  }

  /** Holds `bytes` alone, without copying them (the next append copies them once). */
  replace(bytes: Buffer): void {
    this.#buffer = bytes;
    this.#length = bytes.length;
  }

  /** Adds `chunk` after the held bytes. */
  append(chunk: Buffer): void {
    const buffer = this.#buffer;
    const length = this.#length + chunk.length;
    if (buffer === null || length > buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(length, 2 * (buffer?.length ?? 0), 1024));
      if (buffer !== null) buffer.copy(grown, 0, 0, this.#length);
      this.#buffer = grown;
    }
    chunk.copy(this.#buffer as Buffer, this.#length);
    this.#length = length;
  }

  /** The held bytes. The view stays valid: later appends write past it or elsewhere. */
  view(): Buffer {
    return this.#buffer === null ? Buffer.alloc(0) : this.#buffer.subarray(0, this.#length);
  }

  /** Lets go of the held bytes. */
  clear(): void {
    this.#buffer = null;
    this.#length = 0;
  }
}
