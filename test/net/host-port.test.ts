// ADDR:PORT parsing and formatting (src/net/host-port.ts). The address checks moved from node:net's
// isIP to the strict parser of src/net/ip.ts; a differential test holds the two to the same answers.
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { describe, it } from 'node:test';
import { formatHostPort, isIpv4Host, isIpv6Host, parseHostPort } from '../../src/net/host-port.ts';

describe('parseHostPort', () => {
  it('reads host:port, [v6]:port and :port', () => {
    assert.deepEqual(parseHostPort('127.0.0.2:8080'), { ok: true, value: { host: '127.0.0.2', port: 8080 } });
    assert.deepEqual(parseHostPort(' [::1]:443 '), { ok: true, value: { host: '::1', port: 443 } });
    assert.deepEqual(parseHostPort('[fe80::1%eth0]:80'), {
      ok: true,
      value: { host: 'fe80::1%eth0', port: 80 },
    });
    assert.deepEqual(parseHostPort(':0', '0.0.0.0'), { ok: true, value: { host: '0.0.0.0', port: 0 } });
    assert.deepEqual(parseHostPort('localhost:9'), { ok: true, value: { host: 'localhost', port: 9 } });
  });

  it('names what is wrong', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:70000'), {
      ok: false,
      error: 'port 70000 in "127.0.0.1:70000" is out of range (0-65535)',
    });
    assert.deepEqual(parseHostPort('[10.0.0.1]:80'), {
      ok: false,
      error: '"10.0.0.1" is not an IPv6 address',
    });
    assert.deepEqual(parseHostPort('010.0.0.1:80'), {
      ok: false,
      error: '"010.0.0.1" is not an IPv4 address (write IPv6 as [ADDR]:PORT)',
    });
    assert.equal(parseHostPort('::1:80').ok, false);
    assert.equal(parseHostPort('example.com:80').ok, false);
    assert.equal(parseHostPort('[fe80::1%]:80').ok, false);
  });
});

describe('formatHostPort', () => {
  it('brackets IPv6 only', () => {
    assert.equal(formatHostPort('127.0.0.1', 80), '127.0.0.1:80');
    assert.equal(formatHostPort('::1', 80), '[::1]:80');
    assert.equal(formatHostPort('::ffff:127.0.0.1', 80), '[::ffff:127.0.0.1]:80');
    assert.equal(formatHostPort('fe80::1%eth0', 80), '[fe80::1%eth0]:80');
    assert.equal(formatHostPort('localhost', 80), 'localhost:80');
  });
});

describe('address checks', () => {
  it("agree with node:net's isIP on edge cases and 20,000 random strings", () => {
    const cases = [
      '::',
      '::1',
      '1::',
      '1:2:3:4:5:6:7::',
      '::1:2:3:4:5:6:7',
      '1:2:3:4:5:6:7:8:9',
      'fe80::1%eth0',
    ];
    cases.push(
      'fe80::1%',
      '::ffff:1.2.3.4',
      '::1.2.3.4',
      '01.2.3.4',
      '1.2.3',
      '255.255.255.255',
      '256.0.0.1',
    );
    cases.push('1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:7:1.2.3.4', '12345::', 'localhost', '', ' ::1');
    const parts = [
      '0',
      '1',
      'f',
      'F',
      'a',
      ':',
      '::',
      '.',
      '255',
      '256',
      '01',
      '%',
      'eth0',
      'g',
      ' ',
      'ffff',
    ];
    let seed = 13;
    const next = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let i = 0; i < 20_000; i++) {
      let text = '';
      for (let k = 1 + (next() % 9); k > 0; k--) text += parts[next() % parts.length];
      cases.push(text);
    }
    const differ = cases.filter((text) => isIP(text) !== (isIpv4Host(text) ? 4 : isIpv6Host(text) ? 6 : 0));
    assert.deepEqual(differ, []);
  });
});
