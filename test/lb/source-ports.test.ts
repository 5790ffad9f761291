// Explicit source ports for the lb's connections from a chosen address (src/lb/source-ports.ts): the
// walk of the ephemeral range, and what a flow does when the port it was given clashes (a listener
// holds it: EADDRINUSE; its four-tuple towards the target is taken: EADDRNOTAVAIL): the next port,
// then the kernel's choice. Real sockets on 127.0.0.0/8; the lb gets its ports from a scripted list.
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import {
  createSourcePorts,
  MAX_PORT_TRIES,
  parsePortRange,
  portSlice,
  type SourcePorts,
} from '../../src/lb/source-ports.ts';
import { freePort } from '../helpers/net.ts';
import { echo, exchange, startTarget, startTestLb } from './helpers.ts';

const SOURCE = '127.0.0.5';

describe('the walk of the ephemeral range', () => {
  test('odd ports in order from a random start, wrapping at the end, the reserved ones skipped', () => {
    // Odd ones, as the kernel's bind(addr, 0): its connect() without a bind keeps the even half.
    const ports = createSourcePorts({ low: 40000, high: 40010, reserved: new Set([40005]) }, () => 0.5);
    const walked = Array.from({ length: 5 }, () => ports.next('10.0.0.1'));
    assert.deepEqual(walked, [40007, 40009, 40001, 40003, 40007]);
  });

  test('each address has its own cursor; the least recently used one goes first when there are too many', () => {
    const ports = createSourcePorts({ low: 50000, high: 50099, reserved: new Set() }, () => 0);
    const walked = [ports.next('a'), ports.next('a'), ports.next('b'), ports.next('a')];
    assert.deepEqual(walked, [50001, 50003, 50001, 50005]);
    // 4,096 cursors at most: a busy address (used between the others) keeps its place in the walk.
    for (let i = 0; i < 5000; i++) {
      ports.next(`10.1.${i >> 8}.${i & 255}`);
      if (i % 1000 === 0) ports.next('a');
    }
    assert.equal(ports.next('a'), 50001 + 2 * 8);
  });

  test('workers walk disjoint slices that cover the range', () => {
    const range = { low: 32768, high: 60999, reserved: new Set<number>() };
    const slices = [0, 1, 2].map((i) => portSlice(range, i, 3));
    assert.equal(slices[0]!.low, range.low);
    assert.equal(slices[2]!.high, range.high);
    for (let i = 1; i < 3; i++) assert.equal(slices[i]!.low, slices[i - 1]!.high + 1);
    assert.deepEqual(portSlice(range, 0, 1), range);
    const seen = new Map<number, number>();
    for (const [i, slice] of slices.entries()) {
      const ports = createSourcePorts(slice, () => 0);
      for (let n = 0; n < 100; n++) {
        const port = ports.next('10.0.0.1');
        assert.ok(port >= slice.low && port <= slice.high && port % 2 === 1, `${port} outside ${i}`);
        assert.equal(seen.get(port) ?? i, i, `${port} given to two workers`);
        seen.set(port, i);
      }
    }
  });

  test('a range with every port reserved still answers (the kernel then refuses, and the flow falls back)', () => {
    const ports = createSourcePorts({ low: 1000, high: 1001, reserved: new Set([1000, 1001]) }, () => 0);
    assert.ok([1000, 1001].includes(ports.next('a')));
  });

  test("the kernel's files: the range, and reserved ports inside it only", () => {
    const parsed = parsePortRange('32768\t60999\n', '8080,32770-32772,61000\n');
    assert.deepEqual(parsed && { ...parsed, reserved: [...parsed.reserved] }, {
      low: 32768,
      high: 60999,
      reserved: [32770, 32771, 32772],
    });
    assert.deepEqual(parsePortRange('1024 65535', '')?.reserved.size, 0);
    for (const bad of ['', 'x y', '60999 32768', '0 100', '1 70000'])
      assert.equal(parsePortRange(bad, ''), null, bad);
  });
});

/** Hands out `script` in order, then the kernel's choice would follow (tries beyond it count as clashes). */
function scripted(script: number[]): SourcePorts & { given: number[] } {
  const given: number[] = [];
  return {
    given,
    next() {
      const port = script[given.length] ?? script[script.length - 1]!;
      given.push(port);
      return port;
    },
  };
}

describe('a flow whose source port clashes tries the next one', () => {
  const cleanup: (() => Promise<unknown> | undefined)[] = [];
  after(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  async function lbFrom(ports: SourcePorts) {
    const target = await startTarget({ behave: echo });
    cleanup.push(() => target.close());
    const lb = await startTestLb({
      targets: [{ host: target.host, port: target.port }],
      sourceAddress: SOURCE,
      sourcePorts: ports,
    });
    cleanup.push(() => lb.close());
    return { target, lb };
  }

  test('a port a listener holds on the source address (EADDRINUSE): the next port', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, SOURCE, resolve));
    cleanup.push(() => new Promise((resolve) => holder.close(resolve)));
    const held = (holder.address() as AddressInfo).port;
    const free = await freePort(SOURCE);
    const ports = scripted([held, free]);
    const { target, lb } = await lbFrom(ports);
    const { received } = await exchange(lb.address.port, 'hello');
    assert.equal(received.toString(), 'hello');
    assert.deepEqual(ports.given, [held, free]);
    assert.deepEqual(
      target.accepted.map((a) => [a.remoteAddress, a.remotePort]),
      [[SOURCE, free]],
    );
  });

  test('a port whose four-tuple towards the target is taken (EADDRNOTAVAIL): the next port', async () => {
    const target = await startTarget({ behave: echo });
    cleanup.push(() => target.close());
    // A connection of someone else's, from SOURCE:taken to the target.
    const taken = await freePort(SOURCE);
    const other = net.connect({
      host: target.host,
      port: target.port,
      localAddress: SOURCE,
      localPort: taken,
    });
    other.on('error', () => {});
    await new Promise((resolve) => other.once('connect', resolve));
    cleanup.push(() => void other.destroy());
    const free = await freePort(SOURCE);
    const ports = scripted([taken, free]);
    const lb = await startTestLb({
      targets: [{ host: target.host, port: target.port }],
      sourceAddress: SOURCE,
      sourcePorts: ports,
    });
    cleanup.push(() => lb.close());
    const { received } = await exchange(lb.address.port, 'four-tuple');
    assert.equal(received.toString(), 'four-tuple');
    assert.deepEqual(ports.given, [taken, free]);
    assert.deepEqual(
      target.accepted.slice(1).map((a) => a.remotePort),
      [free],
    );
  });

  test(`after ${MAX_PORT_TRIES} clashes the kernel chooses the port: the connection is still made`, async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, SOURCE, resolve));
    cleanup.push(() => new Promise((resolve) => holder.close(resolve)));
    const held = (holder.address() as AddressInfo).port;
    const ports = scripted([held]);
    const { target, lb } = await lbFrom(ports);
    const { received } = await exchange(lb.address.port, 'fallback');
    assert.equal(received.toString(), 'fallback');
    assert.equal(ports.given.length, MAX_PORT_TRIES);
    assert.equal(target.accepted.length, 1);
    assert.equal(target.accepted[0]!.remoteAddress, SOURCE);
    assert.notEqual(target.accepted[0]!.remotePort, held);
  });

  test('without a source address no port is chosen: the kernel picks, as before', async () => {
    const target = await startTarget({ behave: echo });
    cleanup.push(() => target.close());
    const ports = scripted([1]);
    const lb = await startTestLb({ targets: [{ host: target.host, port: target.port }], sourcePorts: ports });
    cleanup.push(() => lb.close());
    assert.equal((await exchange(lb.address.port, 'kernel')).received.toString(), 'kernel');
    assert.deepEqual(ports.given, []);
  });
});
