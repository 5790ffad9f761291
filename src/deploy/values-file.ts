// Reading a values file: YAML (a map at the top, or empty), from a path or '-' for stdin.
import { closeSync, openSync, readSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { firstDuplicateKey } from '../config/yaml-keys.ts';
import type { Values } from './chart-defaults.ts';
import type { DeployProblem } from './errors.ts';
import { isMap } from './values.ts';

export type ValuesRead = { ok: true; values: Values } | { ok: false; problem: DeployProblem };

const fail = (code: DeployProblem['code'], message: string): ValuesRead => ({
  ok: false,
  problem: { severity: 'error', code, key: '', message },
});

export function parseValues(text: string, source: string): ValuesRead {
  // Duplicate keys are checked by firstDuplicateKey, in one pass (the library's check is quadratic).
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: true, lineCounter });
  const error = doc.errors[0];
  if (error !== undefined) {
    const at = error.linePos?.[0];
    const where = at === undefined ? '' : ` (line ${at.line}, column ${at.col})`;
    return fail('DEPLOY_VALUES_YAML_ERROR', `${source}${where}: ${error.message.split('\n')[0]}`);
  }
  const duplicate = firstDuplicateKey(doc, lineCounter);
  if (duplicate !== null)
    return fail(
      'DEPLOY_VALUES_YAML_ERROR',
      `${source} (line ${duplicate.line}, column ${duplicate.col}): Map keys must be unique (${JSON.stringify(duplicate.key.slice(0, 100))} twice)`,
    );
  let values: unknown;
  try {
    values = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // An alias bomb ("billion laughs") is refused by the alias cap, as an error to report.
    return fail('DEPLOY_VALUES_YAML_ERROR', `${source}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (values === null || values === undefined) return { ok: true, values: {} };
  if (!isMap(values))
    return fail('DEPLOY_VALUES_YAML_ERROR', `${source}: the values must be a map at the top`);
  return { ok: true, values };
}

/** A values file is a few kilobytes; past this it is a wrong path (`/dev/zero`) or an attack. */
const MAX_VALUES_BYTES = 8 * 1024 * 1024;

export function readValuesFile(path: string): ValuesRead {
  let text: string;
  try {
    const bytes = readCapped(path === '-' ? 0 : path, MAX_VALUES_BYTES);
    if (bytes === null)
      return fail(
        'DEPLOY_VALUES_READ_ERROR',
        `${path}: more than ${MAX_VALUES_BYTES} bytes, not read further`,
      );
    text = bytes.toString('utf8');
  } catch (err) {
    return fail('DEPLOY_VALUES_READ_ERROR', `${path}: ${(err as Error).message}`);
  }
  return parseValues(text, path === '-' ? 'stdin' : path);
}

const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/** The whole of a file or descriptor, or null once it passes `max` bytes (read no further). */
function readCapped(source: string | number, max: number): Buffer | null {
  const fd = typeof source === 'number' ? source : openSync(source, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(64 * 1024);
      let n: number;
      try {
        n = readSync(fd, chunk, 0, chunk.length, null);
      } catch (err) {
        // stdin without data yet (a pipe in non-blocking mode): wait a little, then read again.
        if ((err as { code?: string }).code !== 'EAGAIN') throw err;
        Atomics.wait(PAUSE, 0, 0, 10);
        continue;
      }
      if (n === 0) return Buffer.concat(chunks, total);
      total += n;
      if (total > max) return null;
      chunks.push(chunk.subarray(0, n));
    }
  } finally {
    if (typeof source !== 'number') closeSync(fd);
  }
}
