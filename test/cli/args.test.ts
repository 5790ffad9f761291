// The prelude every command shares (src/cli/args.ts): --help, parse errors and usage errors, with the
// exact bytes, stream and exit code each command used to write itself.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCommandArgs, usageError } from '../../src/cli/args.ts';

const USAGE = { command: 'demo', help: 'Usage: keepip demo [--json]\n' };

/** Runs `fn` with process.stdout/stderr writes captured (synchronously, so nothing else writes meanwhile). */
function captured<T>(fn: () => T): { result: T; stdout: string; stderr: string } {
  const out: string[] = [];
  const err: string[] = [];
  const stdoutWrite = process.stdout.write;
  const stderrWrite = process.stderr.write;
  process.stdout.write = (chunk: string | Uint8Array) => out.push(String(chunk)) > 0;
  process.stderr.write = (chunk: string | Uint8Array) => err.push(String(chunk)) > 0;
  try {
    return { result: fn(), stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = stdoutWrite;
    process.stderr.write = stderrWrite;
  }
}

const options = {
  json: { type: 'boolean' },
  file: { type: 'string', short: 'f', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const;

describe('usageError', () => {
  it('writes "keepip <command>: <message>", a blank line and the help to stderr, and returns 2', () => {
    const run = captured(() => usageError(USAGE, 'give manifests with -f'));
    assert.equal(run.result, 2);
    assert.equal(run.stdout, '');
    assert.equal(run.stderr, 'keepip demo: give manifests with -f\n\nUsage: keepip demo [--json]\n');
  });
});

describe('parseCommandArgs', () => {
  it('returns the parsed values and positionals, writing nothing', () => {
    const run = captured(() =>
      parseCommandArgs(USAGE, {
        args: ['--json', '-f', 'a', '--file=b', 'rest'],
        options,
        allowPositionals: true,
      }),
    );
    assert.equal(run.stdout + run.stderr, '');
    assert.notEqual(typeof run.result, 'number');
    if (typeof run.result === 'number') return;
    assert.equal(run.result.values.json, true);
    assert.deepEqual(run.result.values.file, ['a', 'b']);
    assert.deepEqual(run.result.positionals, ['rest']);
  });

  it('--help and -h: the help on stdout, exit code 0, even with other (bad) arguments', () => {
    for (const args of [['--help'], ['-h'], ['--json', '-h'], ['--help', 'stray']]) {
      const run = captured(() => parseCommandArgs(USAGE, { args, options, allowPositionals: true }));
      assert.equal(run.result, 0, args.join(' '));
      assert.equal(run.stdout, USAGE.help);
      assert.equal(run.stderr, '');
    }
  });

  it("a parse error is a usage error with node's message: stderr, then the help, exit code 2", () => {
    const unknown = captured(() => parseCommandArgs(USAGE, { args: ['--bogus'], options }));
    assert.equal(unknown.result, 2);
    assert.equal(unknown.stdout, '');
    assert.equal(unknown.stderr, "keepip demo: Unknown option '--bogus'\n\nUsage: keepip demo [--json]\n");

    const positional = captured(() => parseCommandArgs(USAGE, { args: ['stray'], options }));
    assert.equal(positional.result, 2);
    assert.match(positional.stderr, /^keepip demo: Unexpected argument 'stray'/);

    const missing = captured(() => parseCommandArgs(USAGE, { args: ['-f'], options }));
    assert.equal(missing.result, 2);
    assert.match(missing.stderr, /^keepip demo: Option '-f, --file <value>' argument missing\n\n/);
  });

  it('--help is only the help option: a command without one reports --help as unknown', () => {
    const run = captured(() =>
      parseCommandArgs(USAGE, { args: ['--help'], options: { json: { type: 'boolean' } } }),
    );
    assert.equal(run.result, 2);
    assert.match(run.stderr, /^keepip demo: Unknown option '--help'/);
  });

  it('--no-<flag> with allowNegative sets false, as parseArgs does', () => {
    const run = captured(() =>
      parseCommandArgs(USAGE, { args: ['--no-json'], options, allowNegative: true, strict: true }),
    );
    assert.notEqual(typeof run.result, 'number');
    if (typeof run.result !== 'number') assert.equal(run.result.values.json, false);
  });
});
