// Reading a values file: YAML (a map at the top, or empty), from a path or '-' for stdin.
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { Values } from './chart-defaults.ts';
import type { DeployProblem } from './errors.ts';
import { isMap } from './values.ts';

export type ValuesRead = { ok: true; values: Values } | { ok: false; problem: DeployProblem };

const fail = (code: DeployProblem['code'], message: string): ValuesRead => ({
  ok: false,
  problem: { severity: 'error', code, key: '', message },
});

export function parseValues(text: string, source: string): ValuesRead {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  const error = doc.errors[0];
  if (error !== undefined) {
    const at = error.linePos?.[0];
    const where = at === undefined ? '' : ` (line ${at.line}, column ${at.col})`;
    return fail('DEPLOY_VALUES_YAML_ERROR', `${source}${where}: ${error.message.split('\n')[0]}`);
  }
  const values: unknown = doc.toJS({ maxAliasCount: 100 });
  if (values === null || values === undefined) return { ok: true, values: {} };
  if (!isMap(values))
    return fail('DEPLOY_VALUES_YAML_ERROR', `${source}: the values must be a map at the top`);
  return { ok: true, values };
}

export function readValuesFile(path: string): ValuesRead {
  let text: string;
  try {
    text = readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (err) {
    return fail('DEPLOY_VALUES_READ_ERROR', `${path}: ${(err as Error).message}`);
  }
  return parseValues(text, path === '-' ? 'stdin' : path);
}
