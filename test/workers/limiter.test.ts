// The shared limiter's parts: the wire format (a bad line is refused, never guessed), the primary's
// host answering several workers from one store over real sockets (one count for all, slots freed by
// release and by a closed channel), and the worker's client failing closed when the primary does not
// answer in time (with the release that frees a slot granted too late) or its channel is gone.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import type { LimiterFailure, LimitVerdict, RequestLimit } from '../../src/gateway/access/rate-limit.ts';
import { createLimiterClient, type LimiterClient } from '../../src/workers/limiter-client.ts';
import { createLimiterHost, type LimiterHost } from '../../src/workers/limiter-host.ts';
import {
  decodeFromPrimary,
  decodeToPrimary,
  decodeVerdict,
  encodeHold,
  encodeCheck,
  encodeRelease,
  encodeVerdict,
  lineReader,
  MAX_LINE_CHARS,
} from '../../src/workers/limiter-wire.ts';

const servers: net.Server[] = [];
after(() => {
  for (const server of servers) server.close();
});

/** A connected pair of real sockets on loopback: [the worker's end, the primary's end]. */
async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const client = net.connect(port, '127.0.0.1');
  await new Promise((resolve) => client.once('connect', resolve));
  return [client, await accepted];
}

type Outcome = { verdict: LimitVerdict | LimiterFailure; release: (() => void) | null };

function ask(
  client: LimiterClient,
  limits: RequestLimit[],
  connection: { zone: string; limit: number } | null,
  key = '10.0.0.1',
): Promise<Outcome> {
  return new Promise((resolve) =>
    client.check(limits, connection, key, (verdict, release) => resolve({ verdict, release })),
  );
}

async function workers(host: LimiterHost, n: number, deadlineMs = 30_000): Promise<LimiterClient[]> {
  const clients: LimiterClient[] = [];
  for (let i = 0; i < n; i++) {
    const [worker, primary] = await socketPair();
    host.attach(primary);
    clients.push(createLimiterClient(worker, { deadlineMs }));
  }
  return clients;
}

const RPM: RequestLimit = { zone: 'default/web rpm', perSecond: 1000 / 60, burst: 2 };

test('wire: checks, releases and verdicts round-trip; anything else is refused', () => {
  const check = encodeCheck(7, [RPM], { zone: 'default/web', limit: 3 }, 'a\nb"c');
  assert.deepEqual(decodeToPrimary(check), {
    kind: 'check',
    id: 7,
    key: 'a\nb"c',
    limits: [RPM],
    connection: { zone: 'default/web', limit: 3 },
  });
  assert.ok(!check.includes('\n'), 'one line, whatever the key holds');
  assert.deepEqual(decodeToPrimary(encodeCheck(8, [], null, 'k')), {
    kind: 'check',
    id: 8,
    key: 'k',
    limits: [],
    connection: null,
  });
  assert.deepEqual(decodeToPrimary(encodeRelease(9)), { kind: 'release', id: 9 });
  assert.deepEqual(decodeVerdict(encodeVerdict(3, 'connections')), { id: 3, verdict: 'connections' });
  for (const bad of [
    '',
    'nope',
    '{}',
    '[-1]',
    '[1.5]',
    '[1,"k",[],null]',
    '[1,2,[],null,0]',
    '[1,"k",[["z",-1,2]],null,0]',
    '[1,"k",[["z",1]],null,0]',
    '[1,"k",[],"z",0]',
    '[1,"k",[],5,1]',
  ])
    assert.equal(decodeToPrimary(bad), null, bad);
  for (const bad of ['[1]', '[1,3]', '[1,"0"]', '["1",0]']) assert.equal(decodeVerdict(bad), null, bad);
});

test('wire: lines are cut at line ends across reads; an endless line is refused', () => {
  const reader = lineReader();
  assert.deepEqual(reader.push('[1]\n[2'), ['[1]']);
  assert.deepEqual(reader.push(']\n[3]\n'), ['[2]', '[3]']);
  assert.deepEqual(reader.push('[4'), []);
  assert.equal(lineReader().push('x'.repeat(MAX_LINE_CHARS + 1)), null);
});

test('host: two workers share one bucket and one connection count', async () => {
  const host = createLimiterHost();
  const [a, b] = (await workers(host, 2)) as [LimiterClient, LimiterClient];
  // Burst 2: three requests pass in all, whichever worker asks.
  const verdicts = [];
  for (const client of [a, b, a, b, a]) verdicts.push((await ask(client, [RPM], null)).verdict);
  assert.deepEqual(verdicts, ['admitted', 'admitted', 'admitted', 'requests', 'requests']);
  // Another key has its own bucket.
  assert.equal((await ask(b, [RPM], null, '10.0.0.2')).verdict, 'admitted');

  const conn = { zone: 'default/web', limit: 2 };
  const first = await ask(a, [], conn);
  const second = await ask(b, [], conn);
  assert.equal(first.verdict, 'admitted');
  assert.equal(second.verdict, 'admitted');
  assert.equal((await ask(a, [], conn)).verdict, 'connections');
  assert.equal(host.heldSlots(), 2);
  second.release?.();
  // Released through b's channel; a's next check comes after it in the host's order only once b's
  // release arrived, so wait for the count.
  while (host.heldSlots() !== 1) await new Promise((resolve) => setImmediate(resolve));
  assert.equal((await ask(a, [], conn)).verdict, 'admitted');
  a.close();
  b.close();
});

test("host: a worker's closed channel frees the slots it held", async () => {
  const host = createLimiterHost();
  const [a, b] = (await workers(host, 2)) as [LimiterClient, LimiterClient];
  const conn = { zone: 'default/web', limit: 2 };
  assert.equal((await ask(a, [], conn)).verdict, 'admitted');
  assert.equal((await ask(a, [], conn)).verdict, 'admitted');
  assert.equal((await ask(b, [], conn)).verdict, 'connections');
  a.close(); // as a worker's end closes when it dies
  while (host.heldSlots() !== 0) await new Promise((resolve) => setImmediate(resolve));
  assert.equal((await ask(b, [], conn)).verdict, 'admitted');
  assert.equal(host.store.connectionKeys, 1);
  b.close();
});

test('host: a line that is not a message closes that channel, and only that one', async () => {
  const host = createLimiterHost();
  const [worker, primary] = await socketPair();
  host.attach(primary);
  const closed = new Promise((resolve) => worker.once('close', resolve));
  worker.on('error', () => {});
  worker.write('{"not":"a check"}\n');
  await closed;
  const [ok] = (await workers(host, 1)) as [LimiterClient];
  assert.equal((await ask(ok, [RPM], null)).verdict, 'admitted');
  ok.close();
});

test('client: no answer within the deadline fails closed, and a late grant is released', async () => {
  const [worker, primary] = await socketPair();
  const client = createLimiterClient(worker, { deadlineMs: 50 });
  const lines = lineReader();
  const seen: string[] = [];
  let arrived: (() => void) | null = null;
  primary.setEncoding('utf8');
  primary.on('data', (chunk: string) => {
    seen.push(...(lines.push(chunk) ?? []));
    arrived?.();
  });
  const until = (n: number) =>
    new Promise<void>((resolve) => {
      arrived = () => seen.length >= n && resolve();
      arrived();
    });
  const outcome = await ask(client, [], { zone: 'default/web', limit: 1 });
  assert.deepEqual(outcome.verdict, {
    code: 'WORKER_LIMITER_UNAVAILABLE',
    message: 'the primary did not answer within 50 ms',
  });
  assert.equal(outcome.release, null);
  // The check, then its release: a primary that grants it late frees the slot at once.
  await until(2);
  const check = decodeToPrimary(seen[0]!);
  assert.equal(check?.kind, 'check');
  assert.deepEqual(decodeToPrimary(seen[1]!), { kind: 'release', id: check!.id });
  // The late verdict is dropped: the request was already answered.
  primary.write(`${encodeVerdict(check!.id, 'admitted')}\n`);
  const next = ask(client, [RPM], null);
  await until(3);
  primary.write(`${encodeVerdict(decodeToPrimary(seen[2]!)!.id, 'requests')}\n`);
  assert.equal((await next).verdict, 'requests');
  assert.equal(client.pending(), 0);
  client.close();
});

test('client: a closed channel refuses what waits and what comes later', async () => {
  const [worker, primary] = await socketPair();
  const client = createLimiterClient(worker, { deadlineMs: 30_000 });
  const waiting = ask(client, [RPM], null);
  primary.on('data', () => primary.destroy());
  const failure = { code: 'WORKER_LIMITER_UNAVAILABLE', message: 'the channel to the primary is closed' };
  assert.deepEqual((await waiting).verdict, failure);
  assert.deepEqual((await ask(client, [RPM], null)).verdict, failure);
});

test('wire: a hold is bounded; anything else that is not a verdict is refused', () => {
  assert.deepEqual(decodeFromPrimary(encodeHold(1500)), { kind: 'hold', ms: 1500 });
  assert.deepEqual(decodeFromPrimary(encodeHold(0)), { kind: 'hold', ms: 0 });
  assert.deepEqual(decodeFromPrimary(encodeHold(10 ** 9)), { kind: 'hold', ms: 30_000 });
  assert.deepEqual(decodeFromPrimary(encodeVerdict(4, 'admitted')), {
    kind: 'verdict',
    id: 4,
    verdict: 'admitted',
  });
  for (const bad of ['["hold"]', '["hold",-1]', '["hold",30001]', '["hold","5"]', '["wait",5]'])
    assert.equal(decodeFromPrimary(bad), null, bad);
});

test('client: while the primary holds (a reload blocks it), checks wait past the deadline instead of failing', async () => {
  const [heldEnd, heldPrimary] = await socketPair();
  const [plainEnd] = await socketPair();
  const held = createLimiterClient(heldEnd, { deadlineMs: 50 });
  const plain = createLimiterClient(plainEnd, { deadlineMs: 50 });
  const host = createLimiterHost();
  host.attach(heldPrimary);
  host.hold(30_000);
  await until(() => held.holding(), 'the hold has arrived');
  // The primary does not read (it is "blocked"): the same check on a client without a hold fails at
  // its deadline, which is the signal that the held one is past its own.
  heldPrimary.pause();
  const waiting = ask(held, [RPM], null);
  const failed = await ask(plain, [RPM], null);
  assert.equal((failed.verdict as LimiterFailure).code, 'WORKER_LIMITER_UNAVAILABLE');
  assert.equal(held.pending(), 1, 'still waiting: the hold moved its deadline');
  heldPrimary.resume(); // the reload is over: the host answers
  host.hold(0);
  assert.equal((await waiting).verdict, 'admitted');
  await until(() => !held.holding(), 'the hold has ended');
  // Without a hold the deadline applies again.
  heldPrimary.pause();
  const late = await ask(held, [RPM], null);
  assert.equal((late.verdict as LimiterFailure).code, 'WORKER_LIMITER_UNAVAILABLE');
  held.close();
  plain.close();
});

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000 && !condition(); i++) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(condition(), what);
}
