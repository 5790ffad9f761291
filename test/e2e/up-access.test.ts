// `keepip up` runs limits and auth like any other annotation, through the whole chain (NLB, gateway,
// backend). The seed's Gitea gets `satisfy: any` with basic auth beside its allowlist, and a rate limit:
// with PROXY protocol (after the fix) each client has its own bucket; without it (the seed's incident)
// every client is the NLB's 127.0.10.1 and shares one — what ACCESS_KEYED_ON_SHARED_ADDRESS warns about.
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from '../../src/node-http.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type RunningChain, startChain } from '../../src/up/run.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';

const seed = (variant: string) => fileURLToPath(new URL(`../../examples/seed/${variant}`, import.meta.url));
const LAPTOP = '127.0.20.10'; // on the allowlist
const OTHER = '127.0.20.66';
const HOST = 'gitea.example.com';

async function chainWithAccess(variant: string): Promise<{ chain: RunningChain; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'keepip-up-access-'));
  await cp(seed(variant), dir, { recursive: true });
  const file = join(dir, 'gitea.yaml');
  const text = await readFile(file, 'utf8');
  const annotations = [
    '    nginx.ingress.kubernetes.io/satisfy: any',
    '    nginx.ingress.kubernetes.io/auth-type: basic',
    '    nginx.ingress.kubernetes.io/auth-secret: gitea-users',
    '    nginx.ingress.kubernetes.io/limit-rpm: "1"',
    '    nginx.ingress.kubernetes.io/limit-burst-multiplier: "1"',
  ].join('\n');
  const patched = text.replace(
    /(\n {4}nginx\.ingress\.kubernetes\.io\/whitelist-source-range: [^\n]+)/,
    `$1\n${annotations}`,
  );
  assert.notEqual(patched, text, 'the seed Ingress has its allowlist annotation');
  const namespace = /\n {2}namespace: ([a-z0-9-]+)/.exec(text)?.[1] ?? 'default';
  const line = (
    await runCommand(requireBinary('htpasswd'), ['-nbB', '-C', '4', 'dev', 'secret'])
  ).stdout.trim();
  const secret = `---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: gitea-users\n  namespace: ${namespace}\nstringData:\n  auth: "${line}"\n`;
  await writeFile(file, `${patched}\n${secret}`);
  const chain = await startChain({ paths: [dir], ports: 'ephemeral', watch: false, log: () => {} });
  return { chain, dir };
}

function get(chain: RunningChain, from: string, credentials: string | null): Promise<number> {
  const at = chain.actual({ host: '127.0.10.1', port: 80 });
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: at.host,
        port: at.port,
        localAddress: from,
        path: '/',
        agent: false,
        headers: {
          host: HOST,
          ...(credentials ? { authorization: `Basic ${Buffer.from(credentials).toString('base64')}` } : {}),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('no answer in 30 s')));
    req.on('error', reject);
    req.end();
  });
}

describe('keepip up runs limits and auth', () => {
  test('after the fix: satisfy any (allowlist or password) and a rate limit per client', async () => {
    const { chain, dir } = await chainWithAccess('after');
    try {
      assert.equal(await get(chain, LAPTOP, null), 200, 'the allowlisted laptop needs no password');
      assert.equal(await get(chain, OTHER, null), 401, 'another machine must log in');
      assert.equal(await get(chain, OTHER, 'dev:secret'), 200);
      // limit-rpm 1 × 1: two requests per client (the 401 counted too), then 503; each client counts alone.
      assert.equal(await get(chain, OTHER, 'dev:secret'), 503);
      assert.equal(await get(chain, LAPTOP, null), 200);
      assert.equal(await get(chain, LAPTOP, null), 503);
    } finally {
      await chain.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("before the fix: every client is the NLB's address, so one bucket and no allowlist match", async () => {
    const { chain, dir } = await chainWithAccess('before');
    try {
      assert.equal(
        await get(chain, LAPTOP, null),
        401,
        'the laptop is seen as 127.0.10.1: not on the allowlist',
      );
      assert.equal(await get(chain, OTHER, 'dev:secret'), 200);
      // The shared bucket is now empty for everyone, credentials or not.
      assert.equal(await get(chain, LAPTOP, 'dev:secret'), 503);
    } finally {
      await chain.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
