import assert from 'node:assert/strict';
import http from '../../src/node-http.ts';
import { test } from 'node:test';
import type { WhoamiEcho } from '../../src/whoami/echo.ts';
import { runKeepip, startKeepip } from '../helpers/process.ts';

test('keepip whoami --listen 127.0.0.1:0 prints its address, answers, and exits 0 on SIGTERM', async (t) => {
  const whoami = startKeepip(['whoami', '--listen', '127.0.0.1:0', '--name', 'cli']);
  t.after(() => whoami.stop());
  const match = await whoami.waitFor(/^keepip whoami: listening on http:\/\/127\.0\.0\.1:(\d+)$/m);
  const port = Number(match[1]);
  assert.ok(port > 0);
  const echo = await new Promise<WhoamiEcho>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/?format=json', localAddress: '127.0.0.46' }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(JSON.parse(text) as WhoamiEcho));
      })
      .on('error', reject);
  });
  assert.equal(echo.name, 'cli');
  assert.equal(echo.remoteAddress, '127.0.0.46');
  assert.equal(await whoami.stop(), 0);
});

test('keepip whoami --help exits 0; a bad --listen or flag is a usage error (2)', async () => {
  const help = await runKeepip(['whoami', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--listen ADDR:PORT/);
  const bad = await runKeepip(['whoami', '--listen', 'nowhere']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--listen/);
  const unknown = await runKeepip(['whoami', '--frobnicate']);
  assert.equal(unknown.code, 2);
});
