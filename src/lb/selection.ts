// Target selection policies, small and swappable: each picks one of the candidates the target group
// offers (healthy targets, or all of them when none is healthy). Pure: no sockets, no clocks.
import type { LbAlgorithm } from './config.ts';

/** The TCP 5-tuple of a client connection (the protocol is always TCP here). */
export interface FlowKey {
  sourceAddress: string;
  sourcePort: number;
  destinationAddress: string;
  destinationPort: number;
}

export interface SelectableTarget {
  /** Stable identity, e.g. "127.0.0.1:8080". */
  readonly key: string;
  readonly activeFlows: number;
}

export interface SelectionPolicy {
  readonly algorithm: LbAlgorithm;
  /** undefined only when `candidates` is empty. */
  pick<T extends SelectableTarget>(candidates: readonly T[], flow: FlowKey): T | undefined;
}

export function createSelectionPolicy(algorithm: LbAlgorithm): SelectionPolicy {
  switch (algorithm) {
    case 'flow-hash':
      return flowHash();
    case 'round-robin':
      return roundRobin();
    case 'least-conn':
      return leastConn();
  }
}

/**
 * NLB's default: the same 5-tuple always lands on the same target. Rendezvous (highest random weight)
 * hashing rather than `hash % n`, so that a target leaving or joining moves only its own share of
 * flows instead of reshuffling everyone.
 */
function flowHash(): SelectionPolicy {
  const keyHashes = new Map<string, number>();
  const keyHash = (key: string) => {
    let h = keyHashes.get(key);
    if (h === undefined) {
      h = fnv1a(key);
      if (keyHashes.size > 4096) keyHashes.clear(); // targets come and go; keep the cache bounded
      keyHashes.set(key, h);
    }
    return h;
  };
  return {
    algorithm: 'flow-hash',
    pick(candidates, flow) {
      if (candidates.length <= 1) return candidates[0];
      const h = hashFlow(flow);
      let best = candidates[0];
      let bestScore = -1;
      for (const candidate of candidates) {
        const score = mix32(h ^ keyHash(candidate.key));
        // Ties (astronomically rare) go to the lexically smaller key, so the choice stays deterministic.
        if (score > bestScore || (score === bestScore && best !== undefined && candidate.key < best.key)) {
          best = candidate;
          bestScore = score;
        }
      }
      return best;
    },
  };
}

function roundRobin(): SelectionPolicy {
  let next = 0;
  return {
    algorithm: 'round-robin',
    pick(candidates) {
      if (candidates.length === 0) return undefined;
      const chosen = candidates[next % candidates.length];
      next = (next + 1) % 0x40000000;
      return chosen;
    },
  };
}

/** Fewest active flows; equals take turns, so an idle group still spreads like round-robin. */
function leastConn(): SelectionPolicy {
  let turn = 0;
  return {
    algorithm: 'least-conn',
    pick(candidates) {
      const n = candidates.length;
      if (n === 0) return undefined;
      const start = turn % n;
      turn = (turn + 1) % 0x40000000;
      let best = candidates[start]!;
      for (let i = 1; i < n; i++) {
        const candidate = candidates[(start + i) % n]!;
        if (candidate.activeFlows < best.activeFlows) best = candidate;
      }
      return best;
    },
  };
}

export function hashFlow(flow: FlowKey): number {
  let h = fnv1a(flow.sourceAddress);
  h = mix32(h ^ flow.sourcePort);
  h = mix32(h ^ fnv1a(flow.destinationAddress));
  h = mix32(h ^ flow.destinationPort);
  return mix32(h ^ 6); // IP protocol number of TCP: the fifth element of the tuple
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** MurmurHash3's finaliser: every input bit affects every output bit. Unsigned result. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
