// A set of IPv4/IPv6 prefixes answering "which entry contains this address" in time bounded by the
// address width, whatever the number of entries.
//
// Storage: per family, a path-compressed binary trie whose nodes are interleaved in one Int32Array (no
// object per node, one cache line per step). A child's prefix always extends its parent's, so a lookup
// walks down while the node's prefix matches and remembers the last node carrying an entry: the result
// is the LONGEST matching prefix; when several entries normalise to the same prefix ("10.0.0.1" and
// "10.0.0.1/32") the first one given is reported. Large sets (more than TABLE_THRESHOLD prefixes of a
// family) add a direct table over the first 16 bits: prefixes up to /16 are painted into it and longer
// ones live in one small trie per /16 slice, which cuts the walk from ~log2(n) steps to a few.
import { type Cidr, formatCidr, parseCidr, wordMask } from './cidr.ts';
import { type IpAddress, parseIp } from './ip.ts';

export interface CidrMatch {
  /** The entry as it was given to build() (or formatted, for fromCidrs() without labels). */
  entry: string;
  /** Its position in the list given to build(). */
  index: number;
}

export type CidrSetBuildResult =
  | { ok: true; set: CidrSet }
  | { ok: false; error: { code: 'CIDR_SET_BAD_ENTRY'; message: string; entry: string; index: number } };

const NONE = -1;
const TABLE_BITS = 16;
const TABLE_SIZE = 1 << TABLE_BITS;
/** Below this many prefixes a family's trie is shallow and cache-resident; the table would only cost memory. */
const TABLE_THRESHOLD = 2048;

/**
 * A path-compressed binary trie over keys of `words` 32-bit words (1 for IPv4, 4 for IPv6). Nodes are
 * interleaved in one Int32Array (key words, length, child 0, child 1, value), so a step of a lookup
 * touches one cache line. Several tries (one per /16 slice, see FamilyIndex) share one node pool.
 */
class NodePool {
  readonly words: number;
  readonly stride: number;
  nodes: Int32Array;
  count = 0;

  constructor(words: number, capacity: number) {
    this.words = words;
    this.stride = words + 4;
    this.nodes = new Int32Array(Math.max(16, capacity) * this.stride);
  }

  /** Appends a node whose key is `key` masked to `length` bits; returns its offset in `nodes`. */
  private node(key: Int32Array, length: number, value: number): number {
    if ((this.count + 1) * this.stride > this.nodes.length) {
      const next = new Int32Array(this.nodes.length * 2);
      next.set(this.nodes);
      this.nodes = next;
    }
    const at = this.count++ * this.stride;
    const n = this.nodes;
    const w = this.words;
    for (let i = 0; i < w; i++) n[at + i] = key[i]! & wordMask(length, i);
    n[at + w] = length;
    n[at + w + 1] = NONE;
    n[at + w + 2] = NONE;
    n[at + w + 3] = value;
    return at;
  }

  /** Number of leading bits `key` shares with the node at `at`. */
  private common(key: Int32Array, at: number): number {
    const n = this.nodes;
    for (let i = 0; i < this.words; i++) {
      const x = key[i]! ^ n[at + i]!;
      if (x !== 0) return i * 32 + Math.clz32(x);
    }
    return this.words * 32;
  }

  /** Inserts a prefix below `root` (NONE for an empty trie); returns the possibly new root. */
  insert(root: number, key: Int32Array, length: number, value: number): number {
    if (root === NONE) return this.node(key, length, value);
    const w = this.words;
    let parentSlot = NONE; // offset of the child field in the parent that points at `current`
    let current = root;
    for (;;) {
      const n = this.nodes;
      const nodeLength = n[current + w]!;
      const shared = Math.min(this.common(key, current), length, nodeLength);
      if (shared === nodeLength) {
        if (length === nodeLength) {
          // The same prefix again: the first entry keeps it.
          if (n[current + w + 3] === NONE) n[current + w + 3] = value;
          return root;
        }
        const slot = current + w + 1 + bitAt(key, 0, nodeLength);
        const next = n[slot]!;
        if (next === NONE) {
          const leaf = this.node(key, length, value);
          this.nodes[slot] = leaf;
          return root;
        }
        parentSlot = slot;
        current = next;
        continue;
      }
      const currentSide = bitAt(n, current, shared);
      let top: number;
      if (shared === length) {
        // The new prefix is a prefix of this node's: it becomes the node's parent.
        top = this.node(key, length, value);
        this.nodes[top + w + 1 + currentSide] = current;
      } else {
        // They diverge at bit `shared`: a branch node without a value holds both.
        top = this.node(key, shared, NONE);
        const leaf = this.node(key, length, value);
        this.nodes[top + w + 1 + currentSide] = current;
        this.nodes[top + w + 2 - currentSide] = leaf;
      }
      if (parentSlot === NONE) return top;
      this.nodes[parentSlot] = top;
      return root;
    }
  }
}

function bitAt(key: ArrayLike<number>, offset: number, position: number): number {
  return (key[offset + (position >>> 5)]! >>> (31 - (position & 31))) & 1;
}

/** One family's prefixes: a single trie, or for large sets a /16 table over per-slice tries. */
class FamilyIndex {
  readonly pool: NodePool;
  root = NONE;
  /** Table mode: the entry of the longest prefix of length <= 16 covering each /16 slice. */
  readonly shortBest: Int32Array | null;
  /** Table mode: the root of the trie holding the slice's longer prefixes. */
  readonly roots: Int32Array | null;

  constructor(words: number, cidrs: readonly Cidr[], members: readonly number[]) {
    this.pool = new NodePool(words, members.length * 2);
    const key = new Int32Array(4);
    const load = (index: number): number => {
      const { address, prefix } = cidrs[index]!;
      key[0] = address.w0;
      key[1] = address.w1;
      key[2] = address.w2;
      key[3] = address.w3;
      return prefix;
    };
    if (members.length <= TABLE_THRESHOLD) {
      this.shortBest = null;
      this.roots = null;
      for (const index of members) {
        const prefix = load(index);
        this.root = this.pool.insert(this.root, key, prefix, index);
      }
      return;
    }
    const shortBest = new Int32Array(TABLE_SIZE).fill(NONE);
    const roots = new Int32Array(TABLE_SIZE).fill(NONE);
    const paintedLength = new Int8Array(TABLE_SIZE).fill(-1);
    const byLength: number[][] = Array.from({ length: TABLE_BITS + 1 }, () => []);
    for (const index of members) {
      const prefix = load(index);
      if (prefix <= TABLE_BITS) {
        byLength[prefix]!.push(index);
        continue;
      }
      const slice = key[0]! >>> TABLE_BITS;
      roots[slice] = this.pool.insert(roots[slice]!, key, prefix, index);
    }
    // Shorter prefixes first so longer ones overwrite them; prefixes of one length are disjoint, so a
    // first slot already painted at this length means the same prefix came earlier: the first one wins.
    for (let length = 0; length <= TABLE_BITS; length++) {
      for (const index of byLength[length]!) {
        const start = cidrs[index]!.address.w0 >>> TABLE_BITS;
        if (paintedLength[start] === length) continue;
        const end = start + (1 << (TABLE_BITS - length));
        shortBest.fill(index, start, end);
        paintedLength.fill(length, start, end);
      }
    }
    this.shortBest = shortBest;
    this.roots = roots;
  }

  lookupV4(a: number): number {
    const n = this.pool.nodes;
    let best = NONE;
    let id = this.root;
    if (this.roots !== null) {
      const slice = a >>> TABLE_BITS;
      best = this.shortBest![slice]!;
      id = this.roots[slice]!;
    }
    // Node layout: key, length, child 0, child 1, value.
    while (id !== NONE) {
      const length = n[id + 1]!;
      if (length !== 0 && (a ^ n[id]!) >>> (32 - length) !== 0) break;
      const value = n[id + 4]!;
      if (value !== NONE) best = value;
      if (length === 32) break;
      id = n[id + 2 + ((a >>> (31 - length)) & 1)]!;
    }
    return best;
  }

  lookupV6(a0: number, a1: number, a2: number, a3: number): number {
    const n = this.pool.nodes;
    let best = NONE;
    let id = this.root;
    if (this.roots !== null) {
      const slice = a0 >>> TABLE_BITS;
      best = this.shortBest![slice]!;
      id = this.roots[slice]!;
    }
    // Node layout: key words 0-3, length, child 0, child 1, value.
    while (id !== NONE) {
      const length = n[id + 4]!;
      if (
        ((a0 ^ n[id]!) & wordMask(length, 0)) !== 0 ||
        ((a1 ^ n[id + 1]!) & wordMask(length, 1)) !== 0 ||
        ((a2 ^ n[id + 2]!) & wordMask(length, 2)) !== 0 ||
        ((a3 ^ n[id + 3]!) & wordMask(length, 3)) !== 0
      ) {
        break;
      }
      const value = n[id + 7]!;
      if (value !== NONE) best = value;
      if (length === 128) break;
      const word = length < 32 ? a0 : length < 64 ? a1 : length < 96 ? a2 : a3;
      id = n[id + 5 + ((word >>> (31 - (length & 31))) & 1)]!;
    }
    return best;
  }
}

export class CidrSet {
  readonly #v4: FamilyIndex;
  readonly #v6: FamilyIndex;
  readonly #cidrs: readonly Cidr[];
  readonly #labels: readonly string[] | null;

  private constructor(cidrs: readonly Cidr[], labels: readonly string[] | null) {
    this.#cidrs = cidrs;
    this.#labels = labels;
    const v4: number[] = [];
    const v6: number[] = [];
    for (let i = 0; i < cidrs.length; i++) (cidrs[i]!.address.family === 4 ? v4 : v6).push(i);
    this.#v4 = new FamilyIndex(1, cidrs, v4);
    this.#v6 = new FamilyIndex(4, cidrs, v6);
  }

  /** Parses every entry strictly (see parseCidr); the first bad entry fails the whole build. */
  static build(entries: readonly string[]): CidrSetBuildResult {
    const cidrs: Cidr[] = new Array(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      const parsed = parseCidr(entry);
      if (!parsed.ok) {
        return {
          ok: false,
          error: {
            code: 'CIDR_SET_BAD_ENTRY',
            message: `entry ${i}: ${parsed.error.message}`,
            entry,
            index: i,
          },
        };
      }
      cidrs[i] = parsed.cidr;
    }
    return { ok: true, set: new CidrSet(cidrs, entries.slice()) };
  }

  /** Builds from already parsed CIDRs; `labels[i]`, when given, is reported for a match of `cidrs[i]`. */
  static fromCidrs(cidrs: readonly Cidr[], labels?: readonly string[]): CidrSet {
    if (labels !== undefined && labels.length !== cidrs.length) {
      throw new RangeError('CidrSet.fromCidrs: labels and cidrs differ in length');
    }
    return new CidrSet(cidrs.slice(), labels === undefined ? null : labels.slice());
  }

  static empty(): CidrSet {
    return new CidrSet([], []);
  }

  /** Number of entries given (duplicates included). */
  get size(): number {
    return this.#cidrs.length;
  }

  /** The index of the longest matching entry, or -1. Allocation-free for an IpAddress. */
  matchIndex(address: IpAddress | string): number {
    const ip = typeof address === 'string' ? parseIp(address) : address;
    if (ip === null) return NONE;
    if (ip.family === 4) return this.#v4.lookupV4(ip.w0);
    return this.#v6.lookupV6(ip.w0, ip.w1, ip.w2, ip.w3);
  }

  /** The longest matching entry; strings are parsed strictly and an unparsable one matches nothing. */
  match(address: IpAddress | string): CidrMatch | null {
    const index = this.matchIndex(address);
    return index === NONE ? null : { entry: this.entry(index), index };
  }

  has(address: IpAddress | string): boolean {
    return this.matchIndex(address) !== NONE;
  }

  /** The entry at `index` as given to build(). */
  entry(index: number): string {
    const label = this.#labels?.[index];
    if (label !== undefined) return label;
    const cidr = this.#cidrs[index];
    if (cidr === undefined) throw new RangeError(`CidrSet.entry: no entry ${index}`);
    return formatCidr(cidr);
  }

  /** The normalised CIDR of the entry at `index`. */
  cidr(index: number): Cidr {
    const cidr = this.#cidrs[index];
    if (cidr === undefined) throw new RangeError(`CidrSet.cidr: no entry ${index}`);
    return cidr;
  }
}
