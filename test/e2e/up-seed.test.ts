// The seed's chain on loopback, run by `keepip up` (in-process, free ports): the incident, the fix,
// and the ways the two ends of PROXY protocol can disagree.
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { send } from '../../src/demo/client.ts';
import { encodeProxyHeader } from '../../src/proxy-protocol/index.ts';
import { type RunningChain, startChain } from '../../src/up/run.ts';
import { rawExchange } from '../helpers/net.ts';

const seed = (variant: string) => fileURLToPath(new URL(`../../examples/seed/${variant}`, import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/up/${name}`, import.meta.url));

const ALLOWED = '127.0.20.10';
const OTHER = '127.0.20.66';
const LB = { host: '127.0.10.1', port: 80 };
const POD = { host: '127.0.30.1', port: 80 };
const HOST = 'gitea.example.com';

interface Harness {
  chain: RunningChain;
  lines: string[];
  dir: string;
}

/** Copies `sources` into a fresh directory (so a test may edit them) and runs the chain on it. */
async function up(...sources: string[]): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'keepip-up-'));
  for (const source of sources) await cp(source, dir, { recursive: true });
  const lines: string[] = [];
  const chain = await startChain({
    paths: [dir],
    ports: 'ephemeral',
    watch: false,
    log: (component, line) => lines.push(`${component} | ${line}`),
  });
  return { chain, lines, dir };
}

async function down(h: Harness): Promise<void> {
  await h.chain.close();
  await rm(h.dir, { recursive: true, force: true });
}

function request(h: Harness, from: string, target = LB) {
  const at = h.chain.actual(target);
  // A generous bound: a slow answer on a busy machine must not read as "no response".
  return send({ host: at.host, port: at.port, from, hostHeader: HOST, path: '/' }, 30_000);
}

function backendHeaders(body: string): Record<string, string> {
  return (JSON.parse(body) as { headers: Record<string, string> }).headers;
}

/** Waits for a log line matching `pattern` among the lines logged after `from` (bounded generously). */
async function logLine(h: Harness, from: number, pattern: RegExp): Promise<string | undefined> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const line = h.lines.slice(from).find((l) => pattern.test(l));
    if (line || Date.now() > deadline) return line;
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('the seed before the fix', () => {
  let h: Harness;
  before(async () => {
    h = await up(seed('before'));
  });
  after(() => down(h));

  test('the allowlisted client gets 403 and the log names the LB address', async () => {
    const mark = h.lines.length;
    const response = await request(h, ALLOWED);
    assert.equal(response.status, 403);
    const line = await logLine(h, mark, /access forbidden by rule/);
    assert.ok(line, 'an error log line for the denial');
    assert.match(
      line,
      new RegExp(`access forbidden by rule, client: ${LB.host.replaceAll('.', '\\.')}, server: ${HOST}`),
    );
  });
});

describe('the seed after the fix', () => {
  let h: Harness;
  before(async () => {
    h = await up(seed('after'));
  });
  after(() => down(h));

  test('the allowlisted client passes with its own address in the access log and at the backend', async () => {
    const mark = h.lines.length;
    const response = await request(h, ALLOWED);
    assert.equal(response.status, 200);
    const headers = backendHeaders(response.body);
    assert.equal(headers['x-real-ip'], ALLOWED);
    assert.equal(headers['x-forwarded-for'], ALLOWED);
    const access = await logLine(h, mark, /"GET \/ HTTP\/1\.1" 200/);
    assert.ok(
      access?.startsWith(`gateway | ${ALLOWED} - `),
      `access log line starts with the client: ${access}`,
    );
  });

  test('a client that is not allowlisted still gets 403', async () => {
    const mark = h.lines.length;
    const response = await request(h, OTHER);
    assert.equal(response.status, 403);
    assert.ok(
      await logLine(
        h,
        mark,
        new RegExp(`access forbidden by rule, client: ${OTHER.replaceAll('.', '\\.')},`),
      ),
    );
  });

  test('a PROXY header forged by a client that connects to the gateway directly is rejected', async () => {
    const pod = h.chain.actual(POD);
    const mark = h.lines.length;
    const header = encodeProxyHeader({
      version: 2,
      command: 'PROXY',
      protocol: 'TCP4',
      source: { address: ALLOWED, port: 50000 },
      destination: { address: pod.host, port: pod.port },
    });
    const { received, closedByServer } = await rawExchange({
      host: pod.host,
      port: pod.port,
      localAddress: OTHER,
      payload: Buffer.concat([header, Buffer.from(`GET / HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)]),
    });
    const reply = received.toString('latin1');
    assert.ok(closedByServer, 'the gateway closed the connection');
    assert.equal(reply, '', 'closed without a response');
    assert.ok(
      await logLine(h, mark, new RegExp(`peer ${OTHER.replaceAll('.', '\\.')} is not a trusted proxy`)),
    );
  });
});

describe('PROXY protocol on one end only', () => {
  test('sent but not expected: 400 on every request', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keepip-up-half-'));
    try {
      await cp(seed('after'), dir, { recursive: true });
      // The LB sends PROXY v2; the ConfigMap does not expect it.
      const file = join(dir, 'ingress-nginx.yaml');
      const text = await readFile(file, 'utf8');
      await writeFile(file, text.replace('  use-proxy-protocol: "true"\n', ''));
      const h = await up(dir);
      try {
        for (const from of [ALLOWED, OTHER]) {
          const response = await request(h, from);
          assert.equal(response.status, 400, `from ${from}`);
        }
      } finally {
        await down(h);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('expected but not sent: the connection closes without a response, and the log says why', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keepip-up-half-'));
    try {
      await cp(seed('after'), dir, { recursive: true });
      const file = join(dir, 'ingress-nginx.yaml');
      const text = await readFile(file, 'utf8');
      await writeFile(
        file,
        text.replace('    service.beta.kubernetes.io/aws-load-balancer-proxy-protocol: "*"\n', ''),
      );
      const h = await up(dir);
      try {
        const mark = h.lines.length;
        const response = await request(h, ALLOWED);
        assert.equal(response.status, null);
        assert.match(response.error ?? '', /closed without a response/);
        const line = await logLine(h, mark, /PROXY/);
        assert.ok(line, 'a log line about the missing PROXY header');
        assert.match(line, /broken header|PROXY/);
      } finally {
        await down(h);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('externalTrafficPolicy without PROXY protocol (instance targets)', () => {
  test('Cluster: the gateway sees the node address', async () => {
    const h = await up(fixture('instance-cluster'));
    try {
      const mark = h.lines.length;
      const response = await request(h, ALLOWED);
      assert.equal(response.status, 403);
      assert.ok(await logLine(h, mark, /access forbidden by rule, client: 127\.0\.1\.1,/));
    } finally {
      await down(h);
    }
  });

  test("Local: the gateway sees the client's address", async () => {
    const h = await up(fixture('instance-local'));
    try {
      const response = await request(h, ALLOWED);
      assert.equal(response.status, 200);
      assert.equal(backendHeaders(response.body)['x-real-ip'], ALLOWED);
    } finally {
      await down(h);
    }
  });
});
