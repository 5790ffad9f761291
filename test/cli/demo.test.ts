import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runKeepip } from '../helpers/process.ts';

test('keepip demo (npm start) runs to the end without input when stdin is not a terminal', async () => {
  const { code, stdout, stderr } = await runKeepip(['demo', '--json'], { timeoutMs: 60_000 });
  assert.equal(code, 0, `demo failed:\n${stdout}\n${stderr}`);
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    ok: boolean;
    steps: { title: string; ok: boolean }[];
  };
  assert.equal(result.ok, true);
  assert.deepEqual(
    result.steps.map((s) => [s.title, s.ok]),
    [
      ['before: the allowlisted client', true],
      ['doctor on the seed', true],
      ['the fix reloads', true],
      ['after: the allowlisted client', true],
      ['after: a client not on the allowlist', true],
      ['a forged PROXY header from an untrusted peer', true],
    ],
  );
  // The user can repeat every step by hand.
  assert.match(
    stdout,
    /\$ curl -sS .*--interface 127\.0\.20\.10 -H 'Host: gitea\.example\.com' http:\/\/127\.0\.10\.1/,
  );
  assert.match(stdout, /access forbidden by rule, client: 127\.0\.10\.1, server: gitea\.example\.com/);
  assert.doesNotMatch(stdout, /press Enter/);
});

test('keepip demo --help describes it and exits 0; unknown flags are usage errors', async () => {
  const help = await runKeepip(['demo', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: keepip demo/);
  const bad = await runKeepip(['demo', '--frobnicate']);
  assert.equal(bad.code, 2);
});
