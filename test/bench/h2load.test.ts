// h2load's report (bench/lib/h2load.ts): parsed from the text nghttp2-client 1.52 prints, and what
// counts as an error in a load.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { h2loadErrors, parseH2load } from '../../bench/lib/h2load.ts';

const OK = `starting benchmark...
spawning thread #0: 2 total client(s). 20 total requests
TLS Protocol: TLSv1.3
Cipher: TLS_AES_256_GCM_SHA384
Server Temp Key: X25519 253 bits
Application protocol: h2
progress: 100% done

finished in 168.06ms, 119.01 req/s, 20.09KB/s
requests: 20 total, 20 started, 20 done, 20 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 20 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 3.38KB (3458) total, 1000B (1000) headers (space savings 50.00%), 1.95KB (2000) data
                     min         max         mean         sd        +/- sd
time for request:      180us     10.70ms      1.98ms      3.44ms    85.00%
time for connect:     9.75ms     17.28ms     13.52ms      5.33ms   100.00%
`;

test('a clean report: rate, counts, mean latency, protocol; no errors', () => {
  const report = parseH2load(OK);
  assert.ok(report !== null);
  assert.ok(Math.abs(report.seconds - 0.16806) < 1e-9);
  assert.equal(report.requestsPerSecond, 119.01);
  assert.equal(report.succeeded, 20);
  assert.equal(report.meanMs, 1.98);
  assert.equal(report.protocol, 'h2');
  assert.deepEqual(h2loadErrors(report), []);
});

test('failures, non-2xx answers and a protocol other than h2 are errors', () => {
  const bad = OK.replace('Application protocol: h2', 'Application protocol: http/1.1')
    .replace('20 done, 20 succeeded, 0 failed, 0 errored', '20 done, 16 succeeded, 4 failed, 4 errored')
    .replace('status codes: 20 2xx, 0 3xx, 0 4xx', 'status codes: 14 2xx, 0 3xx, 2 4xx');
  const report = parseH2load(bad);
  assert.ok(report !== null);
  assert.deepEqual(h2loadErrors(report), [
    'h2load negotiated http/1.1, not h2',
    'h2load: 4 failed, 4 errored, 0 timed out',
    'h2load: 2 responses were not 2xx',
    'h2load: 16 of 20 succeeded',
  ]);
  assert.equal(parseH2load('connect: Connection refused'), null);
});
