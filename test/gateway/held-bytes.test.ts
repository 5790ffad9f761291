// HeldBytes (src/gateway/held-bytes.ts): the bytes a connection holds until it can use them, whatever
// pieces the client cut them into.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HeldBytes } from '../../src/gateway/held-bytes.ts';
import { bufferWork } from '../helpers/buffer-work.ts';

test('held bytes read back in order, whole, after replace, appends and clear', () => {
  const held = new HeldBytes();
  assert.equal(held.length, 0);
  assert.equal(held.view().length, 0);
  held.replace(Buffer.from('GET /a'));
  held.append(Buffer.from(' HTTP/1.1\r\n'));
  const early = held.view();
  held.append(Buffer.from('x'.repeat(5000)));
  assert.equal(early.toString(), 'GET /a HTTP/1.1\r\n', 'a view stays valid after appends');
  assert.equal(held.view().toString(), `GET /a HTTP/1.1\r\n${'x'.repeat(5000)}`);
  assert.equal(held.length, 17 + 5000);
  held.clear();
  assert.equal(held.length, 0);
  held.append(Buffer.from('next'));
  assert.equal(held.view().toString(), 'next');
});

test('a byte per append costs work linear in the bytes held (a ClientHello or pipelined requests)', () => {
  const held = new HeldBytes();
  const bytes = Buffer.alloc(64 * 1024, 0x61);
  const spent = bufferWork(() => {
    for (let i = 0; i < bytes.length; i++) held.append(bytes.subarray(i, i + 1));
  });
  assert.ok(spent <= 4 * bytes.length, `${spent} bytes copied to hold ${bytes.length}`);
  assert.ok(held.view().equals(bytes));
});
