// The stapler's policy on a clock of its own: one fetch per certificate at a time, the response stapled
// once checked and until its nextUpdate, fetched again from halfway there, the old one kept while a
// refetch fails, a failure retried after a minute, nothing when enable-ocsp is off. The response is a
// real one, signed by OpenSSL's responder for a real certificate.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createOcspStapler } from '../../src/gateway/ocsp-stapler.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';

const MINUTE = 60_000;
let dir: string;
let leaf: Buffer;
let issuer: Buffer;
let response: Buffer;
/** When the response was made: its thisUpdate (to the second); nextUpdate is an hour later. */
let madeAt: number;

async function openssl(args: string[]): Promise<void> {
  const out = await runCommand(requireBinary('openssl'), args, { input: '', cwd: dir, timeoutMs: 20_000 });
  if (out.code !== 0) throw new Error(`openssl ${args.join(' ')}: ${out.stderr}`);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keepip-stapler-'));
  writeFileSync(
    join(dir, 'x.cnf'),
    '[req]\ndistinguished_name=dn\n[dn]\n[ca]\nbasicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign\n[leaf]\nbasicConstraints=CA:false\nauthorityInfoAccess=OCSP;URI:http://127.0.0.1:9/\n',
  );
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await openssl([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-subj',
    '/CN=ca',
    '-days',
    '9',
    '-config',
    'x.cnf',
    '-extensions',
    'ca',
  ]);
  await openssl(['req', ...ec, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=app.test']);
  await openssl([
    'x509',
    '-req',
    '-in',
    'leaf.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-set_serial',
    '4660',
    '-out',
    'leaf.crt',
    '-days',
    '9',
    '-extfile',
    'x.cnf',
    '-extensions',
    'leaf',
  ]);
  writeFileSync(join(dir, 'index.txt'), 'V\t301231000000Z\t\t1234\tunknown\t/CN=app.test\n');
  await openssl(['ocsp', '-issuer', 'ca.crt', '-cert', 'leaf.crt', '-reqout', 'req.der', '-no_nonce']);
  madeAt = Math.floor(Date.now() / 1000) * 1000;
  await openssl([
    'ocsp',
    '-index',
    'index.txt',
    '-rsigner',
    'ca.crt',
    '-rkey',
    'ca.key',
    '-CA',
    'ca.crt',
    '-reqin',
    'req.der',
    '-respout',
    'resp.der',
    '-nmin',
    '60',
  ]);
  leaf = new X509Certificate(readFileSync(join(dir, 'leaf.crt'))).raw;
  issuer = new X509Certificate(readFileSync(join(dir, 'ca.crt'))).raw;
  response = readFileSync(join(dir, 'resp.der'));
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A stapler on a clock `at` (ms after the response was made), with a responder the test scripts. */
function setup(options: { enabled?: () => boolean } = {}) {
  const clock = { at: 0 };
  const posts: string[] = [];
  const lines: string[] = [];
  let fail = false;
  const stapler = createOcspStapler({
    enabled: options.enabled ?? (() => true),
    log: (level, message) => lines.push(`${level} ${message}`),
    now: () => madeAt + clock.at,
    post: async (url) => {
      posts.push(url);
      if (fail) throw new Error('connect ECONNREFUSED');
      return response;
    },
  });
  const staple = () =>
    new Promise<Buffer | undefined>((resolve, reject) =>
      stapler.onOcspRequest(leaf, issuer, (error, der) => (error ? reject(error) : resolve(der))),
    );
  return { stapler, clock, posts, lines, staple, failing: (on: boolean) => (fail = on) };
}

test('the first handshake goes without (never waits); one fetch for concurrent ones; then the response', async () => {
  const s = setup();
  assert.equal(await s.staple(), undefined);
  assert.equal(await s.staple(), undefined, 'still fetching: nothing yet, and no second fetch');
  await s.stapler.idle();
  assert.deepEqual(s.posts, ['http://127.0.0.1:9/']);
  assert.deepEqual(await s.staple(), response);
  assert.match(s.lines.join('\n'), /^info OCSP response for CN=app\.test stapled until /m);
  assert.equal(s.posts.length, 1, 'served from the cache');
});

test('fetched again from halfway to nextUpdate; a failed refetch keeps the old one until nextUpdate, retried a minute later', async () => {
  const s = setup();
  await s.staple();
  await s.stapler.idle();
  s.clock.at = 29 * MINUTE;
  assert.deepEqual(await s.staple(), response);
  assert.equal(s.posts.length, 1, 'not yet halfway');
  s.failing(true);
  s.clock.at = 31 * MINUTE;
  assert.deepEqual(await s.staple(), response, 'the current one while it is fetched again');
  await s.stapler.idle();
  assert.equal(s.posts.length, 2);
  assert.match(s.lines.at(-1)!, /^error OCSP_FETCH_FAILED: http:\/\/127\.0\.0\.1:9\/: connect ECONNREFUSED/);
  s.clock.at = 31 * MINUTE + 30_000;
  assert.deepEqual(await s.staple(), response, 'still current after the failure');
  assert.equal(s.posts.length, 2, 'no retry within the minute');
  s.clock.at = 32 * MINUTE + 1_000;
  await s.staple();
  await s.stapler.idle();
  assert.equal(s.posts.length, 3, 'retried after it');
  s.clock.at = 61 * MINUTE;
  assert.equal(await s.staple(), undefined, 'past nextUpdate: never stapled');
});

test('a response that is not current (the clock a day on) is refused with its code, and nothing is stapled', async () => {
  const s = setup();
  s.clock.at = 24 * 60 * MINUTE;
  await s.staple();
  await s.stapler.idle();
  assert.equal(await s.staple(), undefined);
  assert.match(s.lines.join('\n'), /^error OCSP_NOT_CURRENT: /m);
});

test('enable-ocsp off (read at each handshake): nothing stapled, nothing fetched', async () => {
  let enabled = false;
  const s = setup({ enabled: () => enabled });
  assert.equal(await s.staple(), undefined);
  await s.stapler.idle();
  assert.deepEqual(s.posts, []);
  enabled = true;
  await s.staple();
  await s.stapler.idle();
  assert.equal(s.posts.length, 1);
});
