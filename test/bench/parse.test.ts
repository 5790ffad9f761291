import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allowList, fillerCidr } from '../../bench/lib/acl-list.ts';
import { parseListening } from '../../bench/lib/ports.ts';
import { parseRssBytes, parseStat } from '../../bench/lib/procfs.ts';
import { median } from '../../bench/lib/stats.ts';
import { parseWrkOutput, parseWrkTime, wrkErrors } from '../../bench/lib/wrk-parse.ts';

const WRK_OK = `Running 2s test @ http://127.0.0.1:8080/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   394.34us  145.70us   3.54ms   80.32%
    Req/Sec    80.82k     5.32k   88.42k    75.00%
  Latency Distribution
     50%  363.00us
     75%  447.00us
     90%  557.00us
     99%    1.20ms
  321580 requests in 2.00s, 47.84MB read
Requests/sec: 160789.14
Transfer/sec:     23.92MB
`;

const WRK_BROKEN = `Running 1s test @ http://127.0.0.1:8080/
  1 threads and 2 connections
  Latency Distribution
     50%    1.00ms
     75%    2.00ms
     90%    3.00ms
     99%    1.50s
  1200 requests in 1.00s, 200.00KB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 1200
Requests/sec:   1199.50
Transfer/sec:    200.00KB
`;

test('wrk --latency output: throughput, percentiles in ms, no errors', () => {
  const parsed = parseWrkOutput(WRK_OK);
  assert.equal(parsed.ok, true);
  if (!parsed.ok) return;
  assert.equal(parsed.report.requests, 321580);
  assert.equal(parsed.report.durationSeconds, 2);
  assert.equal(parsed.report.requestsPerSecond, 160789.14);
  assert.deepEqual(parsed.report.latencyMs, { p50: 0.363, p75: 0.447, p90: 0.557, p99: 1.2 });
  assert.deepEqual(wrkErrors(parsed.report), []);
});

test('non-2xx responses, socket errors and timeouts make the load count as failed', () => {
  // wrk pads short values ("99%    1.50s "): the trailing blank must not hide the percentile.
  const parsed = parseWrkOutput(WRK_BROKEN.replace('1.50s\n', '1.50s \n'));
  assert.equal(parsed.ok, true);
  if (!parsed.ok) return;
  assert.equal(parsed.report.non2xx3xx, 1200);
  assert.deepEqual(parsed.report.socketErrors, { connect: 0, read: 3, write: 0, timeout: 2 });
  assert.equal(parsed.report.latencyMs.p99, 1500);
  const errors = wrkErrors(parsed.report);
  assert.equal(errors.length, 2);
  assert.match(errors[0]!, /1200 responses with a non-2xx\/3xx status/);
  assert.match(errors[1]!, /read 3.*timeout 2/);
});

test('wrk output without a latency distribution or totals is an error with a code', () => {
  const noLatency = parseWrkOutput(WRK_OK.replace(/ {2}Latency Distribution[\s\S]*?1\.20ms\n/, ''));
  assert.equal(noLatency.ok, false);
  if (!noLatency.ok) assert.match(noLatency.error.message, /--latency/);
  const garbage = parseWrkOutput('unable to connect to 127.0.0.1:1 Connection refused');
  assert.equal(garbage.ok, false);
  if (!garbage.ok) assert.equal(garbage.error.code, 'BENCH_WRK_OUTPUT');
  assert.equal(parseWrkTime('2.5m'), 150_000);
  assert.equal(parseWrkTime('12'), null);
});

test('/proc/<pid>/stat: a command name with spaces and parentheses does not shift the fields', () => {
  const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
  fields[1] = '4242'; // ppid (field 4)
  fields[11] = '150'; // utime (field 14)
  fields[12] = '50'; // stime (field 15)
  fields[19] = '9999'; // starttime (field 22)
  const stat = parseStat(`1234 (node (worker) x) ${fields.join(' ')}`);
  assert.deepEqual(stat, { pid: 1234, comm: 'node (worker) x', ppid: 4242, cpuTicks: 200, startTicks: 9999 });
  assert.equal(parseStat('garbage'), null);
  assert.equal(parseRssBytes('Name:\tnode\nVmRSS:\t   2028 kB\nRssAnon:\t148 kB\n'), 2028 * 1024);
  assert.equal(parseRssBytes('Name:\tzombie\n'), null);
});

test('/proc/net/tcp: only LISTEN sockets, IPv4 and IPv6 decoded', () => {
  const v4 = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1',
    '   1: 2A00007F:0050 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2 1',
  ].join('\n');
  assert.deepEqual(parseListening(v4), ['127.0.0.1:8080']);
  const v6 = [
    '  sl  local_address                         remote_address                        st',
    '   0: 00000000000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A',
  ].join('\n');
  assert.deepEqual(parseListening(v6), ['::1:443']);
});

test('allowlists: distinct fillers that never match loopback, the client rule last', () => {
  const list = allowList(100_000, '127.0.0.1/32');
  assert.equal(list.length, 100_000);
  assert.equal(new Set(list).size, 100_000);
  assert.equal(list.at(-1), '127.0.0.1/32');
  assert.ok(list.slice(0, -1).every((cidr) => /^1[01]\./.test(cidr)));
  assert.equal(fillerCidr(0), '10.0.0.0/32');
  assert.equal(fillerCidr(1), '11.0.0.0/24');
  assert.deepEqual(allowList(1, '127.0.0.1/32'), ['127.0.0.1/32']);
  assert.throws(() => allowList(0, '127.0.0.1/32'), RangeError);
});

test('median of odd and even counts', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});
