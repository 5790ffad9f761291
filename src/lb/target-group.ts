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
  /** Starts periodic checks of a target; returns the function that stops them. null: no checks. */
  startChecks: ((entry: TargetEntry) => () => void) | null;
  log: (line: string) => void;
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
  flowStarted(entry: TargetEntry, flow: { abort(): void }): void;
  flowEnded(entry: TargetEntry, flow: { abort(): void }): void;
  /** Stops checks and timers (flows are the caller's to close). */
  close(): void;
}

/** A target's identity in the group, metrics and logs: its ADDR:PORT text. */
export function targetKey(target: { host: string; port: number }): string {
  return formatHostPort(target.host, target.port);
}

export function createTargetGroup(options: TargetGroupOptions): TargetGroup {
  const byKey = new Map<string, TargetEntry>();
  let offered: TargetEntry[] = [];
  let open = false;

  const refresh = () => {
    const registered = [...byKey.values()].filter((e) => !e.draining);
    const healthy = registered.filter((e) => e.health.status === 'healthy');
    const nowOpen = registered.length > 0 && healthy.length === 0;
    if (nowOpen && !open) {
      options.log(`all ${registered.length} target(s) unhealthy: failing open, traffic goes to all of them`);
    } else if (!nowOpen && open) {
      options.log('a target is healthy again: fail-open ends');
    }
    open = nowOpen;
    offered = nowOpen ? registered : healthy;
  };

  const removeNow = (entry: TargetEntry) => {
    if (entry.drainTimer !== null) clearTimeout(entry.drainTimer);
    entry.drainTimer = null;
    byKey.delete(entry.key);
  };

  const startChecking = (entry: TargetEntry) => {
    if (options.startChecks !== null) entry.stopChecks = options.startChecks(entry);
  };
  const stopChecking = (entry: TargetEntry) => {
    entry.stopChecks?.();
    entry.stopChecks = null;
  };

  const group: TargetGroup = {
    candidates: () => offered,
    entries: () => [...byKey.values()],
    failingOpen: () => open,
    setTargets(targets) {
      const wanted = new Map(targets.map((t) => [targetKey(t), t]));
      for (const entry of byKey.values()) {
        if (wanted.has(entry.key) || entry.draining) continue;
        entry.draining = true;
        stopChecking(entry);
        if (entry.activeFlows === 0) {
          removeNow(entry);
          options.log(`target ${entry.key} deregistered`);
          continue;
        }
        options.log(
          `target ${entry.key} deregistering: ${entry.activeFlows} flow(s) may finish within ${options.deregistrationDelayMs} ms`,
        );
        entry.drainTimer = setTimeout(() => {
          entry.drainTimer = null;
          options.log(`target ${entry.key}: deregistration delay over, closing ${entry.activeFlows} flow(s)`);
          for (const flow of [...entry.flows]) flow.abort();
          if (byKey.get(entry.key) === entry && entry.draining) removeNow(entry);
        }, options.deregistrationDelayMs);
        entry.drainTimer.unref();
      }
      for (const [key, target] of wanted) {
        const existing = byKey.get(key);
        if (existing !== undefined) {
          if (existing.draining) {
            // Registered again before its delay ran out: back in service, flows untouched.
            existing.draining = false;
            if (existing.drainTimer !== null) clearTimeout(existing.drainTimer);
            existing.drainTimer = null;
            existing.health = initialHealth();
            startChecking(existing);
            options.log(`target ${key} registered again`);
          }
          continue;
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
        byKey.set(key, entry);
        startChecking(entry);
      }
      refresh();
    },
    recordHealth(entry, result) {
      if (entry.draining || byKey.get(entry.key) !== entry) return;
      const next = recordCheck(entry.health, result, options.thresholds);
      entry.health = next.state;
      if (next.changed) {
        options.log(
          next.state.status === 'healthy'
            ? `target ${entry.key} healthy after ${options.thresholds.healthyThreshold} passed check(s)`
            : `target ${entry.key} unhealthy after ${options.thresholds.unhealthyThreshold} failed check(s): ${next.state.lastError}`,
        );
        refresh();
      }
    },
    flowStarted(entry, flow) {
      entry.activeFlows++;
      entry.flows.add(flow);
    },
    flowEnded(entry, flow) {
      if (!entry.flows.delete(flow)) return;
      entry.activeFlows--;
      if (entry.draining && entry.activeFlows === 0 && byKey.get(entry.key) === entry) {
        removeNow(entry);
        options.log(`target ${entry.key} deregistered (its last flow ended)`);
      }
    },
    close() {
      for (const entry of byKey.values()) {
        stopChecking(entry);
        if (entry.drainTimer !== null) clearTimeout(entry.drainTimer);
        entry.drainTimer = null;
      }
    },
  };
  return group;
}
