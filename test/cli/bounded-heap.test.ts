// A serving command's single process bounds V8's young generation as its workers do
// (src/cli/bounded-heap.ts): the process re-runs itself with --max-semi-space-size, keeping its pid,
// unless the operator chose a size. Read from /proc/<pid>/cmdline, as `ps` shows it.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SEMI_SPACE_MB } from '../../src/workers/young-generation.ts';
import { keepipBin, start } from '../helpers/process.ts';

const MANIFEST = `apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  ports: [{ port: 80, targetPort: 8080 }]
`;

function cmdline(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'latin1')
    .split('\0')
    .filter((arg) => arg !== '');
}

async function gatewayArgs(file: string, env?: NodeJS.ProcessEnv): Promise<string[]> {
  // Not startKeepip: it passes the flag itself.
  const gateway = start(process.execPath, [keepipBin, 'gateway', '-f', file, '--http', '127.0.0.1:0'], {
    env,
  });
  try {
    await gateway.waitFor(/keepip gateway: listening http 127\.0\.0\.1:\d+/);
    return cmdline(gateway.child.pid as number);
  } finally {
    assert.equal(await gateway.stop(), 0);
  }
}

describe('keepip gateway in one process: bounded young generation', () => {
  let dir = '';
  let file = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'keepip-heap-'));
    file = join(dir, 'web.yaml');
    writeFileSync(file, MANIFEST);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('the serving process (same pid) runs with --max-semi-space-size, its arguments kept', async () => {
    const args = await gatewayArgs(file);
    assert.ok(args.includes(`--max-semi-space-size=${SEMI_SPACE_MB}`), args.join(' '));
    assert.deepEqual(args.slice(-5), ['gateway', '-f', file, '--http', '127.0.0.1:0']);
  });

  test("an operator's own size in NODE_OPTIONS wins: no flag added", async () => {
    const args = await gatewayArgs(file, { NODE_OPTIONS: '--max-semi-space-size=16' });
    assert.ok(!args.some((arg) => arg.startsWith('--max-semi-space-size')), args.join(' '));
  });
});
