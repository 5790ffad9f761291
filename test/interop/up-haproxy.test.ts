// Issue 5: the seed's chain with a real HAProxy in the NLB's role gives the same results as with
// keepip lb. `keepip up` runs examples/seed/before and after; HAProxy (mode tcp) listens on 127.0.10.2,
// connects to the gateway pod from the NLB's address 127.0.10.1 (`source`), with send-proxy-v2 for
// "after" and without PROXY for "before". Every request is also sent through keepip's own LB listener,
// and both paths must give the same status and the same address in the gateway's log.
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type DemoResponse, send } from '../../src/demo/client.ts';
import { type RunningChain, startChain } from '../../src/up/run.ts';
import { type RunningHaproxy, startHaproxy } from '../helpers/haproxy.ts';

const seed = (variant: string) => fileURLToPath(new URL(`../../examples/seed/${variant}`, import.meta.url));

const ALLOWED = '127.0.20.10';
const OTHER = '127.0.20.66';
const NLB_ADDRESS = '127.0.10.1'; // the only peer the "after" ConfigMap trusts (proxy-real-ip-cidr)
const HAPROXY_ADDRESS = '127.0.10.2';
const LB = { host: '127.0.10.1', port: 80 };
const POD = { host: '127.0.30.1', port: 80 };
const HOST = 'gitea.example.com';

const literal = (address: string) => address.replaceAll('.', '\\.');

interface Harness {
  chain: RunningChain;
  haproxy: RunningHaproxy;
  listener: { host: string; port: number };
  lines: string[];
  dir: string;
}

async function up(variant: 'before' | 'after'): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'keepip-up-haproxy-'));
  await cp(seed(variant), dir, { recursive: true });
  const lines: string[] = [];
  const chain = await startChain({
    paths: [dir],
    ports: 'ephemeral',
    watch: false,
    log: (component, line) => {
      if (component === 'gateway') lines.push(line);
    },
  });
  try {
    const pod = chain.actual(POD);
    const proxy = variant === 'after' ? ' send-proxy-v2' : '';
    const haproxy = await startHaproxy({
      mode: 'tcp',
      freePorts: 1,
      portHost: HAPROXY_ADDRESS,
      config: (_dir, [port]) => `listen nlb
  bind ${HAPROXY_ADDRESS}:${port}
  server gw ${pod.host}:${pod.port}${proxy} source ${NLB_ADDRESS}`,
      waitFor: ([port]) => [{ host: HAPROXY_ADDRESS, port: port! }],
    });
    return { chain, haproxy, listener: { host: HAPROXY_ADDRESS, port: haproxy.ports[0]! }, lines, dir };
  } catch (error) {
    await chain.close();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

async function down(h: Harness | undefined): Promise<void> {
  if (h === undefined) return;
  await h.haproxy.stop();
  await h.chain.close();
  await rm(h.dir, { recursive: true, force: true });
}

interface Result {
  response: DemoResponse;
  /** Every gateway line logged for the request (marked by its query string). */
  lines: string[];
}

let sequence = 0;

/** One request from `from` through `target`; waits for the gateway's lines about it. */
async function request(h: Harness, target: { host: string; port: number }, from: string): Promise<Result> {
  const marker = `interop=${++sequence}`;
  const mark = h.lines.length;
  const response = await send(
    {
      host: target.host,
      port: target.port,
      from,
      hostHeader: HOST,
      path: `/?${marker}`,
    },
    30_000,
  );
  const ours = () => h.lines.slice(mark).filter((l) => l.includes(marker));
  // The access line comes last (after the forbidden line for a 403): wait for it, bounded generously.
  const deadline = Date.now() + 15_000;
  while (!ours().some((l) => /" \d{3} /.test(l)) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { response, lines: ours() };
}

const viaHaproxy = (h: Harness, from: string) => request(h, h.listener, from);
const viaKeepipLb = (h: Harness, from: string) => request(h, h.chain.actual(LB), from);

function accessLine(result: Result): string {
  const line = result.lines.find((l) => /^\S+ - \S+ \[[^\]]+\] "GET /.test(l));
  assert.ok(line, `an access line for the request; got:\n${result.lines.join('\n')}`);
  return line;
}

/** The outcome a user compares: the status and the address the gateway logs. */
function outcome(result: Result): { status: number | null; logged: string } {
  return { status: result.response.status, logged: accessLine(result).split(' ')[0]! };
}

function backendHeaders(body: string): Record<string, string> {
  return (JSON.parse(body) as { headers: Record<string, string> }).headers;
}

describe('the seed before the fix, HAProxy in the NLB role (no PROXY protocol)', () => {
  let h: Harness | undefined;
  before(async () => {
    h = await up('before');
  });
  after(() => down(h));

  test("the allowlisted client gets 403 and the forbidden line names the NLB's address", async () => {
    const result = await viaHaproxy(h!, ALLOWED);
    assert.equal(result.response.status, 403);
    const forbidden = result.lines.find((l) => l.includes('access forbidden by rule'));
    assert.ok(forbidden, `a forbidden line; got:\n${result.lines.join('\n')}`);
    assert.match(
      forbidden,
      new RegExp(`access forbidden by rule, client: ${literal(NLB_ADDRESS)}, server: ${HOST}`),
    );
    assert.deepEqual(
      outcome(result),
      outcome(await viaKeepipLb(h!, ALLOWED)),
      'the same as through keepip lb',
    );
  });
});

describe('the seed after the fix, HAProxy in the NLB role (send-proxy-v2 from 127.0.10.1)', () => {
  let h: Harness | undefined;
  before(async () => {
    h = await up('after');
  });
  after(() => down(h));

  test('the allowlisted client passes with its own address in the access log and at the backend', async () => {
    const result = await viaHaproxy(h!, ALLOWED);
    assert.equal(result.response.status, 200, result.response.error ?? result.response.body);
    const headers = backendHeaders(result.response.body);
    assert.equal(headers['x-real-ip'], ALLOWED);
    assert.equal(headers['x-forwarded-for'], ALLOWED);
    assert.ok(accessLine(result).startsWith(`${ALLOWED} - `), accessLine(result));
    assert.deepEqual(
      outcome(result),
      outcome(await viaKeepipLb(h!, ALLOWED)),
      'the same as through keepip lb',
    );
  });

  test('a client that is not allowlisted still gets 403, named in the forbidden line', async () => {
    const result = await viaHaproxy(h!, OTHER);
    assert.equal(result.response.status, 403);
    assert.ok(
      result.lines.some((l) => new RegExp(`access forbidden by rule, client: ${literal(OTHER)},`).test(l)),
      `a forbidden line naming ${OTHER}; got:\n${result.lines.join('\n')}`,
    );
    assert.deepEqual(outcome(result), outcome(await viaKeepipLb(h!, OTHER)), 'the same as through keepip lb');
  });
});
