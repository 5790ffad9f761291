// The one HTTP/1.x status-line reader (src/net/http-status-line.ts) the LB's health checks use and
// the gateway's upstream reader shares.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseStatusLine } from '../../src/net/http-status-line.ts';

test('reads version, status and reason', () => {
  assert.deepEqual(parseStatusLine('HTTP/1.1 200 OK'), { minor: 1, status: 200, reason: 'OK' });
  assert.deepEqual(parseStatusLine('HTTP/1.0 404 Not Found'), { minor: 0, status: 404, reason: 'Not Found' });
  assert.deepEqual(parseStatusLine('HTTP/1.1 101 Switching Protocols'), {
    minor: 1,
    status: 101,
    reason: 'Switching Protocols',
  });
});

test('the reason may be empty, with or without its space', () => {
  assert.deepEqual(parseStatusLine('HTTP/1.1 204 '), { minor: 1, status: 204, reason: '' });
  assert.deepEqual(parseStatusLine('HTTP/1.1 204'), { minor: 1, status: 204, reason: '' });
  assert.deepEqual(parseStatusLine('HTTP/1.1 599 x y'), { minor: 1, status: 599, reason: 'x y' });
});

test('refuses anything else', () => {
  for (const line of [
    '',
    'HTTP/1.1',
    'HTTP/1.1 ',
    'HTTP/1.1 20',
    'HTTP/1.1 2000',
    'HTTP/1.1 20x OK',
    'HTTP/1.1 099 Low',
    'HTTP/1.1 000',
    'HTTP/2 200',
    'HTTP/1.2 200 OK',
    'HTTP/1.1  200 OK',
    'http/1.1 200 OK',
    ' HTTP/1.1 200 OK',
    'HTTP/1.1\t200 OK',
    'HTTP/1.1 200 O\nK',
    'HTTP/1.1 200 OK\r',
    'SSH-2.0-OpenSSH_9.6',
  ]) {
    assert.equal(parseStatusLine(line), null, JSON.stringify(line));
  }
});
