// V8's young generation (two semi-spaces) grows under a burst of allocation, up to 64 MiB each on
// Node 24, and the RSS stays. A serving process bounds it unless the operator chose a size: with
// 10,000 idle keep-alive connections over two workers the default took 100 MB of extra RSS in all,
// 8 MiB semi-spaces 79 MB, at no CPU cost measurable in paired bench rounds (bench/README.md, issue 16).

/** The semi-space size, in MiB, of every serving process (workers and the single process alike). */
export const SEMI_SPACE_MB = 8;

/** The node flag that bounds the young generation. */
export const SEMI_SPACE_FLAG = `--max-semi-space-size=${SEMI_SPACE_MB}`;

/** Whether the node flags or NODE_OPTIONS already set a semi-space size. */
export function semiSpaceChosen(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((flag) =>
    /^--max[-_]semi[-_]space[-_]size\b/.test(flag),
  );
}

/** `execArgv` with the bounded semi-space size added, unless one is chosen. */
export function boundedExecArgv(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  return semiSpaceChosen(execArgv, nodeOptions) ? [...execArgv] : [...execArgv, SEMI_SPACE_FLAG];
}
