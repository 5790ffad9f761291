// Which endpoint of an upstream a request tries first, beyond round robin (as ingress-nginx's balancers):
// - upstream-hash-by: a request value (nginx variables expanded) picks one endpoint, always the same
//   while it exists (rendezvous hashing: only the keys of an endpoint that goes away move); with
//   upstream-hash-by-subset, the value picks a group of `subset-size` endpoints (ingress-nginx's
//   chashsubset layout) and a random one in it answers;
// - load-balance: ewma: of two endpoints drawn at random, the one with the lower exponentially weighted
//   moving average of its response times (10 s decay, as ingress-nginx's ewma balancer).
import type { UpstreamHashByModel } from '../config/model.ts';
import type { BalancedUpstream, UpstreamMember } from './upstream.ts';

/** FNV-1a, 32 bits: cheap and well spread for rendezvous scores. */
function fnv1a(text: string, seed = 0x811c9dc5): number {
  let h = seed;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The index of the candidate with the highest score for `key` (rendezvous hashing). */
function rendezvous(key: string, candidates: readonly string[]): number {
  const seed = fnv1a(key);
  let best = 0;
  let bestScore = -1;
  for (let i = 0; i < candidates.length; i++) {
    const score = fnv1a(candidates[i]!, seed);
    if (score > bestScore) {
      best = i;
      bestScore = score;
    }
  }
  return best;
}

/**
 * The member index for a hash key; -1 for an upstream without members. With a subset size, as
 * ingress-nginx's chashsubset: endpoints laid out in groups of `size` (the last one padded from the
 * start, so a size above the count repeats members), the key picks a group by rendezvous and the
 * request a random slot of it. The slot's member is computed, not the groups built: their layout is
 * `(group × size + slot) mod count`, so a subset size of 999,999 costs no more than 3.
 */
export function hashChoice(
  upstream: BalancedUpstream,
  hashBy: UpstreamHashByModel,
  key: string,
  random: () => number = Math.random,
): number {
  const members = upstream.members;
  if (members.length === 0) return -1;
  const size = hashBy.subsetSize;
  if (size === null)
    return rendezvous(
      key,
      members.map((m) => m.hostPort),
    );
  const groups = Math.ceil(members.length / size);
  const group = rendezvous(
    key,
    Array.from({ length: groups }, (_, i) => `set${i + 1}`),
  );
  return (group * size + Math.floor(random() * size)) % members.length;
}

const DECAY_MS = 10_000;

interface EwmaState {
  ewma: number;
  touchedAt: number;
}

const EWMA = new WeakMap<UpstreamMember, EwmaState>();

function score(member: UpstreamMember, now: number): number {
  const state = EWMA.get(member);
  if (state === undefined) return 0;
  return state.ewma * Math.exp(-(now - state.touchedAt) / DECAY_MS);
}

/** ewma: the better of two members drawn at random (all of them when fewer). */
export function ewmaChoice(
  upstream: BalancedUpstream,
  now: number,
  random: () => number = Math.random,
): number {
  const count = upstream.members.length;
  if (count <= 1) return count - 1;
  const a = Math.floor(random() * count);
  let b = Math.floor(random() * (count - 1));
  if (b >= a) b += 1;
  return score(upstream.members[b]!, now) < score(upstream.members[a]!, now) ? b : a;
}

/** Records a response time (ms) of the member at `hostPort`, as the ewma balancer's after-response step. */
export function recordResponseTime(
  upstream: BalancedUpstream,
  hostPort: string,
  ms: number,
  now: number,
): void {
  const member = upstream.members.find((m) => m.hostPort === hostPort);
  if (member === undefined) return;
  const state = EWMA.get(member);
  if (state === undefined) {
    EWMA.set(member, { ewma: ms, touchedAt: now });
    return;
  }
  const weight = Math.exp(-(now - state.touchedAt) / DECAY_MS);
  state.ewma = state.ewma * weight + ms * (1 - weight);
  state.touchedAt = now;
}
