// Password checks for the htpasswd schemes nginx's ngx_crypt() and crypt(3) accept, from their specs:
// `$apr1$` (Apache's MD5, htpasswd -m), `$1$` (MD5-crypt, the same algorithm), `{SHA}` (base64 SHA-1),
// `{SSHA}` (salted SHA-1), `{PLAIN}`. bcrypt runs in a worker (password-verifier.ts). Comparisons are
// constant-time on equal-length buffers. Pure: node:crypto only.
import { createHash, timingSafeEqual } from 'node:crypto';

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function to64(value: number, length: number): string {
  let out = '';
  let v = value;
  for (let i = 0; i < length; i += 1) {
    out += ITOA64[v & 0x3f];
    v >>>= 6;
  }
  return out;
}

/** MD5-crypt (Poul-Henning Kamp's algorithm) with `magic` "$1$" or "$apr1$". */
export function md5Crypt(password: Buffer, salt: string, magic: string): string {
  const saltBytes = Buffer.from(salt.slice(0, 8), 'latin1');
  const alt = createHash('md5').update(password).update(saltBytes).update(password).digest();
  const ctx = createHash('md5').update(password).update(magic, 'latin1').update(saltBytes);
  for (let left = password.length; left > 0; left -= 16) ctx.update(alt.subarray(0, Math.min(16, left)));
  for (let i = password.length; i !== 0; i >>>= 1)
    ctx.update(i & 1 ? Buffer.alloc(1) : password.subarray(0, 1));
  let final = ctx.digest();
  for (let i = 0; i < 1000; i += 1) {
    const round = createHash('md5');
    round.update(i & 1 ? password : final);
    if (i % 3) round.update(saltBytes);
    if (i % 7) round.update(password);
    round.update(i & 1 ? final : password);
    final = round.digest();
  }
  const f = final;
  const encoded =
    to64((f[0]! << 16) | (f[6]! << 8) | f[12]!, 4) +
    to64((f[1]! << 16) | (f[7]! << 8) | f[13]!, 4) +
    to64((f[2]! << 16) | (f[8]! << 8) | f[14]!, 4) +
    to64((f[3]! << 16) | (f[9]! << 8) | f[15]!, 4) +
    to64((f[4]! << 16) | (f[10]! << 8) | f[5]!, 4) +
    to64(f[11]!, 2);
  return `${magic}${salt.slice(0, 8)}$${encoded}`;
}

/** Constant-time equality of two strings (false for different lengths, without early exit on content). */
export function safeEqual(a: string | Buffer, b: string | Buffer): boolean {
  const x = typeof a === 'string' ? Buffer.from(a, 'latin1') : a;
  const y = typeof b === 'string' ? Buffer.from(b, 'latin1') : b;
  if (x.length !== y.length) {
    timingSafeEqual(x, x);
    return false;
  }
  return timingSafeEqual(x, y);
}

/** Whether `hash` is cheap enough to check on the event loop (SHA-1, plain). */
export function isCheapHash(hash: string): boolean {
  return hash.startsWith('{SHA}') || hash.startsWith('{SSHA}') || hash.startsWith('{PLAIN}');
}

/**
 * Checks a password against every non-bcrypt scheme; null for a hash this module does not handle
 * (bcrypt and unsupported schemes).
 */
export function verifyPassword(password: Buffer, hash: string): boolean | null {
  if (hash.startsWith('{PLAIN}')) return safeEqual(password, Buffer.from(hash.slice(7), 'utf8'));
  if (hash.startsWith('{SHA}')) {
    const digest = createHash('sha1').update(password).digest('base64');
    return safeEqual(digest, hash.slice(5));
  }
  if (hash.startsWith('{SSHA}')) {
    const decoded = Buffer.from(hash.slice(6), 'base64');
    if (decoded.length <= 20) return false;
    const salt = decoded.subarray(20);
    const digest = createHash('sha1').update(password).update(salt).digest();
    return safeEqual(digest, decoded.subarray(0, 20));
  }
  for (const magic of ['$apr1$', '$1$']) {
    if (!hash.startsWith(magic)) continue;
    const rest = hash.slice(magic.length);
    const dollar = rest.indexOf('$');
    if (dollar < 0) return false;
    return safeEqual(md5Crypt(password, rest.slice(0, dollar), magic), hash);
  }
  return null;
}
