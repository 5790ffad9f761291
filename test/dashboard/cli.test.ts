// --dashboard on the commands: usage errors, the start-up line, the token from a file, and the demo
// saying where its dashboard is.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runKeepip, startKeepip } from '../helpers/process.ts';
import { seed } from './helpers.ts';

describe('--dashboard on the commands', () => {
  test('usage errors exit 2', async () => {
    const bad = await runKeepip(['up', '-f', seed('before'), '--dashboard', 'nowhere']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--dashboard: "nowhere" is not ADDR:PORT/);
    const lonely = await runKeepip([
      'gateway',
      '-f',
      seed('before'),
      '--dashboard-token-file',
      '/nonexistent',
    ]);
    assert.equal(lonely.code, 2);
    assert.match(lonely.stderr, /--dashboard-token-file needs --dashboard/);
  });

  test('keepip gateway --dashboard with a token file: the line says so and the API wants the token', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keepip-dashboard-token-'));
    const token = 'token-from-a-file-0123456789';
    await writeFile(join(dir, 'token'), `${token}\n`);
    const gateway = startKeepip([
      'gateway',
      '-f',
      seed('before'),
      '--http',
      '127.0.0.1:0',
      '--dashboard',
      '127.0.0.1:0',
      '--dashboard-token-file',
      join(dir, 'token'),
    ]);
    try {
      const url = (
        await gateway.waitFor(/dashboard (http:\/\/127\.0\.0\.1:\d+\/) \(read-only, bearer token required\)/)
      )[1]!;
      assert.equal((await fetch(new URL('/api/info', url))).status, 401);
      const info = await fetch(new URL('/api/info', url), { headers: { authorization: `Bearer ${token}` } });
      assert.equal(info.status, 200);
      assert.equal(((await info.json()) as { mode: string }).mode, 'gateway');
    } finally {
      await gateway.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('keepip demo --dashboard says where to watch, and still passes every step', async () => {
    const demo = await runKeepip(['demo', '--no-pause', '--dashboard', '127.0.0.1:0'], {
      timeoutMs: 120_000,
    });
    assert.equal(demo.code, 0, demo.stdout + demo.stderr);
    assert.match(demo.stdout, /Open http:\/\/127\.0\.0\.1:\d+\/ to watch each step's requests/);
  });
});
