// The controller's decisions stay pure: no module among them reaches a socket, a file or a process,
// directly or through what it imports (the I/O lives in kube-client, election, status-writer,
// event-recorder, servers, serving, tcp-runner, tcp-proxy and controller).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { scanImports } from '../helpers/import-scan.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const PURE = [
  'admission.ts',
  'backoff.ts',
  'debounce.ts',
  'events.ts',
  'flags.ts',
  'latest-only.ts',
  'leader.ts',
  'metrics-flags.ts',
  'reflector.ts',
  'resources.ts',
  'snapshot.ts',
  'status.ts',
  'stream-log.ts',
  'tcp-services.ts',
].map((f) => `src/controller/${f}`);
const IO =
  /^(node:)?(net|http|https|http2|tls|dgram|dns|fs|os|child_process|cluster|worker_threads)(\/|$)|^(undici|ws|@kubernetes\/client-node)$/;

/** Every module reachable from `start`, and the I/O modules among the imports, with the path to them. */
function reach(start: string): string[] {
  const seen = new Set([start]);
  const queue = [start];
  const found: string[] = [];
  while (queue.length > 0) {
    const file = queue.shift()!;
    for (const ref of scanImports(readFileSync(join(ROOT, file), 'utf8'))) {
      if (IO.test(ref.specifier)) found.push(`${file} -> ${ref.specifier}`);
      if (!ref.specifier.startsWith('.')) continue;
      const next = relative(ROOT, resolve(ROOT, dirname(file), ref.specifier));
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return found;
}

describe('controller decisions are pure', () => {
  for (const file of PURE) {
    it(`${file} reaches no I/O module`, () => {
      assert.deepEqual(reach(file), []);
    });
  }
});
