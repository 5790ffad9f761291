// The prelude every command shares: parse its options, answer --help, and word a usage error the
// same way everywhere (`keepip <command>: <message>`, a blank line, the help, on stderr; exit 2).
import { type ParseArgsConfig, parseArgs } from 'node:util';

/** A command's name as the user types it after `keepip`, and its --help text. */
export interface CommandUsage {
  readonly command: string;
  readonly help: string;
}

/** What `parseArgs` returns for this config. */
export type ParsedArgs<T extends ParseArgsConfig> = ReturnType<typeof parseArgs<T>>;

/** Prints the usage error and its help to stderr; the exit code of a usage error, 2. */
export function usageError(usage: CommandUsage, message: string): number {
  process.stderr.write(`keepip ${usage.command}: ${message}\n\n${usage.help}`);
  return 2;
}

/**
 * The parsed arguments, or the exit code when there is nothing left to do: 0 after --help (the
 * help on stdout), 2 after a usage error (on stderr). A `help` option, if the config has one, is the
 * --help flag.
 */
export function parseCommandArgs<const T extends ParseArgsConfig>(
  usage: CommandUsage,
  config: T,
): ParsedArgs<T> | number {
  let parsed: ParsedArgs<T>;
  try {
    parsed = parseArgs(config);
  } catch (error) {
    return usageError(usage, (error as Error).message);
  }
  const values: Readonly<Record<string, unknown>> = parsed.values;
  if (values.help === true) {
    process.stdout.write(usage.help);
    return 0;
  }
  return parsed;
}
