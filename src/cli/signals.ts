// The signals a serving command answers, caught from the moment it asks: SIGINT and SIGTERM stop it
// (once: a second one ends the process by the default action, or `onSecondStop`), SIGHUP reloads.
// One that arrives while the command starts is kept, not lost to a default action: a SIGTERM then
// stops it as soon as it waits on `stopped`, a SIGHUP reloads once the reload exists.

export type StopSignal = 'SIGINT' | 'SIGTERM';

export interface SignalOptions {
  /** Catch SIGHUP (kept until `onHangup` gives the reload); without it a SIGHUP keeps its default action. */
  hangups?: boolean;
  /** A second SIGINT/SIGTERM calls this; without it, the second one takes the default action (exits). */
  onSecondStop?: (signal: StopSignal) => void;
}

export interface CaughtSignals {
  /** The first SIGINT or SIGTERM. */
  readonly stopped: Promise<StopSignal>;
  /** Each SIGHUP from now on runs `reload` (one kept since the start runs it now); none once stopped. */
  onHangup(reload: () => void): void;
  /** Stops catching: the default actions apply again. */
  release(): void;
}

export function catchSignals(options: SignalOptions = {}): CaughtSignals {
  let reload: (() => void) | null = null;
  let hangupKept = false;
  let stoppedBy: StopSignal | null = null;
  let resolveStopped: (signal: StopSignal) => void = () => {};
  const stopped = new Promise<StopSignal>((resolve) => {
    resolveStopped = resolve;
  });
  const onHup = () => {
    if (stoppedBy !== null) return;
    if (reload === null) hangupKept = true;
    else reload();
  };
  const stop = (signal: StopSignal) => {
    if (stoppedBy !== null) {
      options.onSecondStop?.(signal);
      return;
    }
    stoppedBy = signal;
    // No handler for a second one: it ends the process, as an operator who insists expects.
    if (options.onSecondStop === undefined) releaseStops();
    resolveStopped(signal);
  };
  const onInt = () => stop('SIGINT');
  const onTerm = () => stop('SIGTERM');
  const releaseStops = () => {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  };
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  if (options.hangups === true) process.on('SIGHUP', onHup);
  return {
    stopped,
    onHangup(next) {
      reload = next;
      if (hangupKept && stoppedBy === null) {
        hangupKept = false;
        next();
      }
    },
    release() {
      releaseStops();
      process.off('SIGHUP', onHup);
    },
  };
}
