// Fills Node's compile cache (NODE_COMPILE_CACHE) with every source and test-helper module before the
// test files start. Node writes the cache when a process exits, so on a fresh checkout the first test
// processes, started together, and the keepip processes they keep running all strip and compile the same
// modules again; one process that compiles each module once and exits first saves that CPU.
// Importing only evaluates modules: src is side-effect free on import, and so are the helpers.
import { readdirSync } from 'node:fs';
import module from 'node:module';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = join(import.meta.dirname, '..');
const FOLDERS = ['src', 'test/helpers', 'test/fixtures'];

function modulesUnder(folder: string): string[] {
  return readdirSync(join(root, folder), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts'))
    .map((name) => join(root, folder, name));
}

const started = performance.now();
const cache = module.enableCompileCache?.();
const files = FOLDERS.flatMap(modulesUnder);
const failed: string[] = [];
for (const file of files) {
  try {
    await import(pathToFileURL(file).href);
  } catch (error) {
    failed.push(`${relative(root, file)}: ${(error as Error).message.split('\n')[0]}`);
  }
}
module.flushCompileCache?.();
const ms = Math.round(performance.now() - started);
process.stdout.write(
  `compile cache: ${files.length} modules in ${ms} ms (${cache?.directory ?? 'no cache'})\n`,
);
for (const line of failed) process.stdout.write(`  not imported: ${line}\n`);
