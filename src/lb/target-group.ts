// The registered targets of one listener: their health, their active flows, and deregistration.
// Offers the selection policy its candidates: the healthy targets, or, when none is healthy, all of
// them (an NLB fails open, and so does keepip: a broken health check must not take the service down).
// No sockets here: health checks are started through `startChecks`, flows are opaque.
import { formatHostPort } from '../net/host-port.ts';
import {
  type CheckResult,
  type HealthState,
  initialHealth,
  recordCheck,
  type Thresholds,
} from './health-state.ts';
import type { SelectableTarget } from './selection.ts';

export interface TargetEntry extends SelectableTarget {
  readonly key: string;
  readonly host: string;
  readonly port: number;
  activeFlows: number;
  health: HealthState;
  /** Removed from the group: no new flows; existing ones run until they end or the delay expires. */
  draining: boolean;
  /** Flows on this target (for aborting them when the deregistration delay expires). */
  readonly flows: Set<{ abort(): void }>;
  drainTimer: NodeJS.Timeout | null;
  stopChecks: (() => void) | null;
}

export interface TargetGroupOptions {
  thresholds: Thresholds;
  deregistrationDelayMs: number;
  /** Reset the open flows of a target that turns unhealthy while others are healthy (an NLB's default). */
  terminateUnhealthy: boolean;
  /** Starts periodic checks of a target; returns the function that stops them. null: no checks. */
  startChecks: ((entry: TargetEntry) => () => void) | null;
  log: (line: string) => void;
  /** Told when a check result moves a target into or out of rotation. */
  onHealthChange?: (entry: TargetEntry) => void;
}

export interface TargetGroup {
  /** Targets offered to the selection policy. Empty only when no target is registered. */
  candidates(): readonly TargetEntry[];
  /** Registered and draining targets, in registration order. */
  entries(): readonly TargetEntry[];
  /** True while every registered target is unhealthy and traffic goes to all of them anyway. */
  failingOpen(): boolean;
  setTargets(targets: readonly { host: string; port: number }[]): void;
  recordHealth(entry: TargetEntry, result: CheckResult): void;
  /** Takes a registered target's health as judged elsewhere (the primary's checks); unknown keys are ignored. */
  setHealth(key: string, health: HealthState): void;
  flowStarted(entry: TargetEntry, flow: { abort(): void }): void;
  flowEnded(entry: TargetEntry, flow: { abort(): void }): void;
  /** The deregistration delay of the targets removed from now on. */
  setDeregistrationDelay(ms: number): void;
  /** Stops checks and timers (flows are the caller's to close). */
  close(): void;
}

/** A target's identity in the group, metrics and logs: its ADDR:PORT text. */
export function targetKey(target: { host: string; port: number }): string {
  return formatHostPort(target.host, target.port);
}

/** A group's registered targets and what it offers the selection policy. */
interface GroupState {
  options: TargetGroupOptions;
  readonly byKey: Map<string, TargetEntry>;
  /** The candidates: the healthy targets, or all registered ones while failing open. */
  offered: TargetEntry[];
  open: boolean;
}

export function createTargetGroup(options: TargetGroupOptions): TargetGroup {
  const state: GroupState = { options, byKey: new Map(), offered: [], open: false };
  const { byKey } = state;
  return {
    candidates: () => state.offered,
    entries: () => [...byKey.values()],
    failingOpen: () => state.open,
    setDeregistrationDelay(ms) {
      state.options = { ...state.options, deregistrationDelayMs: ms };
    },
    setTargets(targets) {
      const wanted = new Map(targets.map((t) => [targetKey(t), t]));
      for (const entry of byKey.values()) {
        if (!wanted.has(entry.key) && !entry.draining) deregister(state, entry);
      }
      for (const [key, target] of wanted) register(state, key, target);
      refresh(state);
    },
    recordHealth(entry, result) {
      if (entry.draining || byKey.get(entry.key) !== entry) return;
      const next = recordCheck(entry.health, result, options.thresholds);
      entry.health = next.state;
      if (!next.changed) return;
      const { thresholds } = options;
      options.log(
        next.state.status === 'healthy'
          ? `target ${entry.key} healthy after ${thresholds.healthyThreshold} passed check(s)`
          : `target ${entry.key} unhealthy after ${thresholds.unhealthyThreshold} failed check(s): ${next.state.lastError}`,
      );
      refresh(state);
      terminateIfUnhealthy(state, entry);
      options.onHealthChange?.(entry);
    },
    setHealth(key, health) {
      const entry = byKey.get(key);
      if (entry === undefined || entry.draining) return;
      entry.health = health;
      refresh(state);
      terminateIfUnhealthy(state, entry);
    },
    flowStarted(entry, flow) {
      entry.activeFlows++;
      entry.flows.add(flow);
    },
    flowEnded(entry, flow) {
      if (!entry.flows.delete(flow)) return;
      entry.activeFlows--;
      if (entry.draining && entry.activeFlows === 0 && byKey.get(entry.key) === entry) {
        removeNow(state, entry);
        options.log(`target ${entry.key} deregistered (its last flow ended)`);
      }
    },
    close() {
      for (const entry of byKey.values()) {
        stopChecking(entry);
        clearDrainTimer(entry);
      }
    },
  };
}

/**
 * An NLB resets the client connections of a target that turns unhealthy (connection termination, on
 * by default), unless it is failing open: then every target serves, this one too.
 */
function terminateIfUnhealthy(state: GroupState, entry: TargetEntry): void {
  if (!state.options.terminateUnhealthy || state.open || entry.health.status !== 'unhealthy') return;
  if (entry.flows.size === 0) return;
  state.options.log(`target ${entry.key} unhealthy: resetting its ${entry.flows.size} open flow(s)`);
  for (const flow of [...entry.flows]) flow.abort();
}

/** Offers the healthy targets; when none is healthy, all of them (fail open), saying when that starts and ends. */
function refresh(state: GroupState): void {
  const registered = [...state.byKey.values()].filter((e) => !e.draining);
  const healthy = registered.filter((e) => e.health.status === 'healthy');
  const nowOpen = registered.length > 0 && healthy.length === 0;
  const ends = !nowOpen && state.open;
  if (nowOpen && !state.open) {
    state.options.log(
      `all ${registered.length} target(s) unhealthy: failing open, traffic goes to all of them`,
    );
  } else if (ends) {
    state.options.log('a target is healthy again: fail-open ends');
  }
  state.open = nowOpen;
  state.offered = nowOpen ? registered : healthy;
  // The flows the unhealthy targets were given while failing open go as if they had just turned unhealthy.
  if (ends) for (const entry of registered) terminateIfUnhealthy(state, entry);
}

/** Adds a target, or takes a draining one back into service (its flows untouched, its health anew). */
function register(state: GroupState, key: string, target: { host: string; port: number }): void {
  const existing = state.byKey.get(key);
  if (existing !== undefined) {
    if (!existing.draining) return;
    // Registered again before its delay ran out: back in service, flows untouched.
    existing.draining = false;
    clearDrainTimer(existing);
    existing.health = initialHealth();
    startChecking(state, existing);
    state.options.log(`target ${key} registered again`);
    return;
  }
  const entry: TargetEntry = {
    key,
    host: target.host,
    port: target.port,
    activeFlows: 0,
    health: initialHealth(),
    draining: false,
    flows: new Set(),
    drainTimer: null,
    stopChecks: null,
  };
  state.byKey.set(key, entry);
  startChecking(state, entry);
}

/** No new flows; the open ones may finish within the deregistration delay, then they are aborted. */
function deregister(state: GroupState, entry: TargetEntry): void {
  const { options } = state;
  entry.draining = true;
  stopChecking(entry);
  if (entry.activeFlows === 0) {
    removeNow(state, entry);
    options.log(`target ${entry.key} deregistered`);
    return;
  }
  options.log(
    `target ${entry.key} deregistering: ${entry.activeFlows} flow(s) may finish within ${options.deregistrationDelayMs} ms`,
  );
  entry.drainTimer = setTimeout(() => {
    entry.drainTimer = null;
    options.log(`target ${entry.key}: deregistration delay over, closing ${entry.activeFlows} flow(s)`);
    for (const flow of [...entry.flows]) flow.abort();
    if (state.byKey.get(entry.key) === entry && entry.draining) removeNow(state, entry);
  }, options.deregistrationDelayMs);
  entry.drainTimer.unref();
}

function removeNow(state: GroupState, entry: TargetEntry): void {
  clearDrainTimer(entry);
  state.byKey.delete(entry.key);
}

function clearDrainTimer(entry: TargetEntry): void {
  if (entry.drainTimer !== null) clearTimeout(entry.drainTimer);
  entry.drainTimer = null;
}

function startChecking(state: GroupState, entry: TargetEntry): void {
  if (state.options.startChecks !== null) entry.stopChecks = state.options.startChecks(entry);
}

function stopChecking(entry: TargetEntry): void {
  entry.stopChecks?.();
  entry.stopChecks = null;
}
