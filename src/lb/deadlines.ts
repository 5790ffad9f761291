// Coarse deadlines for flows, shared: one interval per timeout length checks every flow registered
// with it, instead of a timer per socket (each with its own object, list insertion and a refresh on
// every read and write). A flow marks itself active on each read (a field write, no clock read); a
// check that finds it inactive for the whole timeout expires it. A deadline never fires early, and at
// most two check periods (an eighth of the timeout each, at most 1 s) late.

/** One thing waiting on a peer: `active` is set by its I/O, `expire` runs once when it waited too long. */
export interface Deadline {
  active: boolean;
  /** When it was last seen active (Date.now()); the wheel's own bookkeeping. */
  since: number;
  expire(): void;
}

export interface DeadlineWheel {
  readonly timeoutMs: number;
  /** Starts the wait now. */
  add(deadline: Deadline): void;
  /** Ends the wait (idempotent). */
  delete(deadline: Deadline): void;
}

const MAX_PERIOD_MS = 1000;
const wheels = new Map<number, DeadlineWheel>();

/** The shared wheel for this timeout length. */
export function deadlineWheel(timeoutMs: number): DeadlineWheel {
  let wheel = wheels.get(timeoutMs);
  if (wheel === undefined) {
    wheel = createWheel(timeoutMs);
    wheels.set(timeoutMs, wheel);
  }
  return wheel;
}

function createWheel(timeoutMs: number): DeadlineWheel {
  const waiting = new Set<Deadline>();
  const period = Math.max(1, Math.min(MAX_PERIOD_MS, Math.ceil(timeoutMs / 8)));
  let timer: NodeJS.Timeout | null = null;
  const check = () => {
    const now = Date.now();
    for (const deadline of waiting) {
      if (deadline.active) {
        deadline.active = false;
        deadline.since = now;
      } else if (now - deadline.since >= timeoutMs) {
        waiting.delete(deadline);
        deadline.expire();
      }
    }
    if (waiting.size === 0 && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  };
  return {
    timeoutMs,
    add(deadline) {
      deadline.active = false;
      deadline.since = Date.now();
      waiting.add(deadline);
      if (timer === null) {
        timer = setInterval(check, period);
        timer.unref(); // the sockets keep the process alive, not their deadlines
      }
    },
    delete(deadline) {
      waiting.delete(deadline);
    },
  };
}
