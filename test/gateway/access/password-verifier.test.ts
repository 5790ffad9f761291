// Password checks: htpasswd-made vectors for each scheme, the result cache, and the bound on hash work
// (a flood of distinct wrong passwords runs in the worker pool, queues at most maxQueued, answers
// 'busy' beyond, and the event loop keeps turning meanwhile).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, test } from 'node:test';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { md5Crypt, verifyPassword } from '../../../src/gateway/access/password-hash.ts';
import { PasswordVerifier, type VerifyResult } from '../../../src/gateway/access/password-verifier.ts';
import { requireBinary, runCommand } from '../../helpers/process.ts';

async function htpasswd(flags: string[], password: string): Promise<string> {
  const out = await runCommand(requireBinary('htpasswd'), ['-nb', ...flags, 'user', password]);
  return out.stdout.trim().split(':')[1]!;
}

const verifiers: PasswordVerifier[] = [];
after(async () => {
  for (const v of verifiers) await v.close();
});

function check(v: PasswordVerifier, password: string, hash: string): Promise<VerifyResult> {
  return new Promise((resolve) => v.verify('user', Buffer.from(password), hash, resolve));
}

test('htpasswd vectors: bcrypt, apr1, SHA1 match their password and nothing else', async () => {
  const v = new PasswordVerifier({ workers: 1 });
  verifiers.push(v);
  for (const flags of [['-B', '-C', '4'], ['-m'], ['-s']]) {
    const hash = await htpasswd(flags, 'pässwörd');
    assert.equal(await check(v, 'pässwörd', hash), true, flags.join(' '));
    assert.equal(await check(v, 'passwort', hash), false, flags.join(' '));
    assert.equal(await check(v, '', hash), false, flags.join(' '));
  }
});

test('MD5-crypt ($1$) and {PLAIN}, {SSHA} from their definitions', () => {
  // openssl passwd -1 -salt abcdefgh s3cret
  assert.equal(md5Crypt(Buffer.from('s3cret'), 'abcdefgh', '$1$'), '$1$abcdefgh$7.vq19w/w3Vm.hk1FOA7Q/');
  assert.equal(verifyPassword(Buffer.from('x'), '{PLAIN}x'), true);
  assert.equal(verifyPassword(Buffer.from('y'), '{PLAIN}x'), false);
  const salt = Buffer.from('salt');
  const digest = sha1(Buffer.concat([Buffer.from('pw'), salt]));
  const ssha = `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
  assert.equal(verifyPassword(Buffer.from('pw'), ssha), true);
  assert.equal(verifyPassword(Buffer.from('px'), ssha), false);
  assert.equal(verifyPassword(Buffer.from('pw'), 'abcdefghijklm'), null, 'DES crypt is not verified');
});

function sha1(data: Buffer): Buffer {
  return createHash('sha1').update(data).digest();
}

test('results are cached per (user, hash, password): a repeated password costs one hash', async () => {
  const v = new PasswordVerifier({ workers: 1 });
  verifiers.push(v);
  const hash = await htpasswd(['-B', '-C', '4'], 'right');
  for (let i = 0; i < 5; i += 1) assert.equal(await check(v, 'wrong', hash), false);
  for (let i = 0; i < 5; i += 1) assert.equal(await check(v, 'right', hash), true);
  assert.equal(v.stats.computed, 2);
  assert.equal(v.stats.cacheHits, 8);
});

test('a flood of distinct wrong passwords: bounded queue, "busy" beyond it, the event loop keeps turning', async () => {
  const v = new PasswordVerifier({ workers: 1, maxQueued: 16 });
  verifiers.push(v);
  const hash = await htpasswd(['-B', '-C', '8'], 'right');
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  let ticks = 0;
  let flooding = true;
  const spin = () => {
    ticks += 1;
    if (flooding) setImmediate(spin);
  };
  setImmediate(spin);
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => check(v, `guess-${i}`, hash)));
  flooding = false;
  histogram.disable();
  const busy = results.filter((r) => r === 'busy').length;
  assert.equal(results.filter((r) => r === true).length, 0);
  // One in the worker and 16 queued are checked; the other 183 are refused at once.
  assert.equal(busy, 200 - 17);
  assert.equal(v.stats.computed, 17);
  assert.ok(ticks > 17, `the event loop turned ${ticks} times while 17 bcrypt checks ran`);
  console.log(
    `# 200 wrong passwords, bcrypt cost 8, 1 worker: ${busy} busy, event loop delay p99 ${(histogram.percentile(99) / 1e6).toFixed(1)} ms, max ${(histogram.max / 1e6).toFixed(1)} ms, ${ticks} loop turns`,
  );
});
