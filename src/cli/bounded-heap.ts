// A serving command runs with a bounded young generation (src/workers/young-generation.ts), as its
// workers do. V8 sizes the heap when the process starts, so the process replaces itself once with the
// flag added (process.execve: same pid, same stdio), before it has opened anything.
import { SEMI_SPACE_FLAG, semiSpaceChosen } from '../workers/young-generation.ts';

/** Commands that serve until stopped; a one-shot command is not worth a second start. */
const SERVING = new Set(['gateway', 'controller', 'lb', 'up', 'demo']);

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => void;

/**
 * Re-runs the process with the bounded young generation when `command` serves and no size was chosen.
 * Returns only when it does not (Node < 22.15 has no execve; a parent's IPC channel would not survive
 * the swap; execve failed): the command then runs as it is.
 */
export function reexecServingCommand(command: string, argv: readonly string[]): void {
  const execve = (process as unknown as { execve?: Execve }).execve;
  if (typeof execve !== 'function' || !SERVING.has(command)) return;
  if (process.env.NODE_CHANNEL_FD !== undefined) return;
  if (semiSpaceChosen(process.execArgv, process.env.NODE_OPTIONS)) return;
  const script = process.argv[1];
  if (script === undefined) return;
  const flags = [...process.execArgv, SEMI_SPACE_FLAG];
  try {
    execve.call(process, process.execPath, [process.execPath, ...flags, script, ...argv], process.env);
  } catch {
    // execve(2) failed and left this process as it was: serve with V8's default sizes.
  }
}
