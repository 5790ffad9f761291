import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runKeepip, startKeepip } from '../helpers/process.ts';

test('keepip up runs the seed chain, prefixes each component, and stops cleanly on SIGTERM', async () => {
  const up = startKeepip(['up', '-f', 'examples/seed/after', '--ephemeral-ports']);
  try {
    await up.waitFor(/the chain is running/, 15_000);
    const output = up.output();
    assert.match(output, /^whoami\/gitea-http\s+\| listening on http:\/\/127\.0\.40\.11:\d+$/m);
    assert.match(output, /^gateway\s+\| listening http 127\.0\.30\.1:\d+$/m);
    assert.match(
      output,
      /^lb\/ingress-nginx-controller:80 \| listening on 127\.0\.10\.1:\d+ -> 127\.0\.30\.1:\d+ \(connects from 127\.0\.10\.1, sends PROXY v2\)$/m,
    );
  } finally {
    assert.equal(await up.stop(), 0, up.output());
  }
  assert.match(up.output(), /up\s+\| stopped/);
});

test('keepip up without -f is a usage error; an unrunnable directory is exit 1', async () => {
  assert.equal((await runKeepip(['up'])).code, 2);
  const missing = await runKeepip(['up', '-f', 'test/fixtures/does-not-exist', '--ephemeral-ports']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /keepip up: /);
});
