// Running the build's tools: output on the terminal, a failure stops the build naming the command.
import { spawnSync } from 'node:child_process';

export function run(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): void {
  const result = spawnSync(command, args, { stdio: ['ignore', 'inherit', 'inherit'], ...options });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  if (result.status !== 0)
    throw new Error(`${command} ${args.join(' ')} exited with ${result.status ?? result.signal}`);
}

/** A command's stdout; null when it fails (for probes such as "does this image exist"). */
export function capture(
  command: string,
  args: readonly string[],
  options: { cwd?: string } = {},
): string | null {
  const result = spawnSync(command, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 << 20,
    ...options,
  });
  return result.status === 0 ? result.stdout : null;
}

export function requireTools(tools: readonly string[]): void {
  const missing = tools.filter((tool) => capture('sh', ['-c', `command -v ${tool}`]) === null);
  if (missing.length > 0) {
    throw new Error(`missing ${missing.join(', ')}: apt-get install buildah mmdebstrap binutils libcap2-bin`);
  }
}
