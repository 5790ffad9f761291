// loadBalancerSourceRanges change on a running load balancer, as a changed security group applies to a
// running NLB: the engine's setAllowedSources (new connections meet the new list, open flows go on, an
// invalid list changes nothing), and `keepip lb -f` in one process applying them on SIGHUP, keeping
// the old ones when the new manifests have an invalid range. (--workers 2: test/security/workers-attack.)
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startKeepip } from '../helpers/process.ts';
import { echo, exchange, startTarget, startTestLb, type TestTarget } from './helpers.ts';
import { nlbManifest } from '../helpers/nlb-manifest.ts';

/** What a flow from `from` got back: the bytes, or 'reset' when the lb refused it. */
const flow = (port: number, from: string) =>
  exchange(port, 'hi', { localAddress: from }).then(
    (r) => (r.received.length === 0 ? 'reset' : r.received.toString()),
    () => 'reset',
  );

/** A connection from `from` kept open, echoing what it writes. */
async function openFlow(port: number, from: string) {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress: from });
  socket.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return {
    socket,
    roundTrip: (text: string) =>
      new Promise<string>((resolve, reject) => {
        socket.once('data', resolve);
        socket.once('error', reject);
        socket.write(text);
      }),
  };
}

test('setAllowedSources: new connections meet the new list, open flows go on, an invalid list changes nothing', async (t) => {
  const target = await startTarget({ behave: echo });
  const lb = await startTestLb({
    targets: [{ host: target.host, port: target.port }],
    allowedSources: ['127.0.21.1/32', '127.0.21.2/32'],
  });
  const kept = await openFlow(lb.address.port, '127.0.21.2');
  t.after(async () => {
    kept.socket.destroy();
    await lb.close();
    await target.close();
  });
  assert.equal(await kept.roundTrip('before'), 'before');
  assert.equal(await flow(lb.address.port, '127.0.21.3'), 'reset');

  assert.deepEqual(lb.setAllowedSources(['127.0.21.1/32', '127.0.21.3/32']), { ok: true });
  assert.equal(await flow(lb.address.port, '127.0.21.3'), 'hi', 'added: served');
  assert.equal(await flow(lb.address.port, '127.0.21.2'), 'reset', 'removed: reset');
  assert.equal(await kept.roundTrip('after'), 'after', 'a flow accepted before the change goes on');

  const refused = lb.setAllowedSources(['127.0.21.2/32', '127.0.21.0/33']);
  assert.equal(refused.ok, false);
  assert.equal(!refused.ok && refused.error.code, 'LB_BAD_SOURCE_RANGE');
  assert.equal(await flow(lb.address.port, '127.0.21.2'), 'reset', 'the invalid list was not applied');
  assert.equal(await flow(lb.address.port, '127.0.21.3'), 'hi', 'the old list holds');

  assert.deepEqual(lb.setAllowedSources([]), { ok: true });
  assert.equal(await flow(lb.address.port, '127.0.21.9'), 'hi', 'no ranges: every client');
  assert.equal(lb.stats().flowsRejected['source-range'], 3);
});

/** Matches once `line` has been written `n` times. */
const nth = (line: string, n: number) =>
  new RegExp(`(?:[\\s\\S]*?${line.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}){${n}}`);

test('keepip lb -f (one process): SIGHUP applies changed loadBalancerSourceRanges; an invalid range keeps the old ones', async (t) => {
  const target: TestTarget = await startTarget({ behave: echo });
  const dir = mkdtempSync(join(tmpdir(), 'keepip-lb-ranges-'));
  const file = join(dir, 'edge.yaml');
  writeFileSync(file, nlbManifest(target.port, { ranges: ['127.0.22.2/32', '127.0.22.3/32'] }));
  const lb = startKeepip(['lb', '-f', file, '--listen', '127.0.0.1:0']);
  t.after(async () => {
    await lb.stop();
    await target.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const port = Number((await lb.waitFor(/listening on 127\.0\.0\.1:(\d+) \(web\/edge\)/))[1]);
  await lb.waitFor(/ {2}source ranges: 127\.0\.22\.2\/32, 127\.0\.22\.3\/32\n/);
  await lb.waitFor(/algorithm: flow-hash/);
  assert.equal(await flow(port, '127.0.22.3'), 'hi');
  assert.equal(await flow(port, '127.0.22.4'), 'reset');

  // Tightened and moved: .3 out, .4 in.
  writeFileSync(file, nlbManifest(target.port, { ranges: ['127.0.22.2/32', '127.0.22.4/32'] }));
  lb.child.kill('SIGHUP');
  await lb.waitFor(/reload: web\/edge source ranges 127\.0\.22\.2\/32, 127\.0\.22\.4\/32\n/);
  await lb.waitFor(nth('reload: web/edge targets', 1));
  let reached = target.accepted.length;
  assert.equal(await flow(port, '127.0.22.3'), 'reset', 'removed by the reload');
  assert.equal(target.accepted.length, reached, 'the removed address never reached the target');
  assert.equal(await flow(port, '127.0.22.4'), 'hi', 'added by the reload');

  // An entry that is not a CIDR: the reload is refused, with its code; the running list stays.
  writeFileSync(file, nlbManifest(target.port, { ranges: ['127.0.22.3/32', '127.0.22.0/33'] }));
  lb.child.kill('SIGHUP');
  await lb.waitFor(/reload: the manifests have errors; keeping the running targets and source ranges/);
  assert.match(lb.output(), /\[INVALID_LB_SOURCE_RANGE\]/);
  reached = target.accepted.length;
  assert.equal(await flow(port, '127.0.22.3'), 'reset', 'the invalid reload opened nothing');
  assert.equal(target.accepted.length, reached);
  assert.equal(await flow(port, '127.0.22.4'), 'hi', 'the old list holds');

  // The ranges removed altogether: every client, as a Service without loadBalancerSourceRanges.
  writeFileSync(file, nlbManifest(target.port, { ranges: [] }));
  lb.child.kill('SIGHUP');
  await lb.waitFor(/reload: web\/edge source ranges none \(every client\)\n/);
  assert.equal(await flow(port, '127.0.22.9'), 'hi');
  assert.doesNotMatch(lb.output(), /reload: web\/edge source ranges 127\.0\.22\.3/);
});

test('keepip lb --source-ranges: flags mode admits only those clients; with -f it pins the list over SIGHUP', async (t) => {
  const target: TestTarget = await startTarget({ behave: echo });
  const dir = mkdtempSync(join(tmpdir(), 'keepip-lb-ranges-'));
  const file = join(dir, 'edge.yaml');
  writeFileSync(file, nlbManifest(target.port, { ranges: ['127.0.24.2/32'] }));
  const flags = startKeepip([
    'lb',
    '--listen',
    '127.0.0.1:0',
    '--target',
    `${target.host}:${target.port}`,
    '--source-ranges',
    '127.0.23.0/30, 127.0.23.9',
    '--source-ranges',
    '127.0.23.16/28',
  ]);
  const pinned = startKeepip(['lb', '-f', file, '--listen', '127.0.0.1:0', '--source-ranges', '127.0.24.5']);
  t.after(async () => {
    await Promise.all([flags.stop(), pinned.stop()]);
    await target.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const flagsPort = Number((await flags.waitFor(/listening on 127\.0\.0\.1:(\d+)/))[1]);
  await flags.waitFor(/ {2}source ranges: 127\.0\.23\.0\/30, 127\.0\.23\.9, 127\.0\.23\.16\/28\n/);
  await flags.waitFor(/algorithm: flow-hash/);
  const reached = target.accepted.length;
  for (const inside of ['127.0.23.1', '127.0.23.3', '127.0.23.9', '127.0.23.31'])
    assert.equal(await flow(flagsPort, inside), 'hi', inside);
  for (const outside of ['127.0.23.4', '127.0.23.8', '127.0.23.32', '127.0.24.2'])
    assert.equal(await flow(flagsPort, outside), 'reset', outside);
  assert.equal(target.accepted.length, reached + 4, 'refused clients never reached the target');

  const pinnedPort = Number((await pinned.waitFor(/listening on 127\.0\.0\.1:(\d+) \(web\/edge\)/))[1]);
  await pinned.waitFor(/ {2}source ranges: 127\.0\.24\.5\n/);
  await pinned.waitFor(/algorithm: flow-hash/);
  assert.equal(await flow(pinnedPort, '127.0.24.5'), 'hi', 'the flag wins over the manifest');
  assert.equal(await flow(pinnedPort, '127.0.24.2'), 'reset', "the manifest's range is replaced");
  // The manifest opens to everyone: the pinned list stays, and no source-range change is logged.
  writeFileSync(file, nlbManifest(target.port, { ranges: [] }));
  pinned.child.kill('SIGHUP');
  await pinned.waitFor(nth('reload: web/edge targets', 1));
  assert.equal(await flow(pinnedPort, '127.0.24.2'), 'reset', 'SIGHUP kept the pinned list');
  assert.equal(await flow(pinnedPort, '127.0.24.5'), 'hi');
  assert.doesNotMatch(pinned.output(), /reload: web\/edge source ranges/);
});
