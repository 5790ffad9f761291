// The worker thread that checks slow password hashes (bcrypt, apr1/MD5-crypt) off the event loop.
// Messages in: { id, password: Uint8Array, hash }; out: { id, ok }.
import { parentPort } from 'node:worker_threads';
import bcrypt from 'bcryptjs';
import { verifyPassword } from './password-hash.ts';

interface Job {
  id: number;
  password: Uint8Array;
  hash: string;
}

function check(job: Job): boolean {
  const password = Buffer.from(job.password);
  const other = verifyPassword(password, job.hash);
  if (other !== null) return other;
  // bcrypt: bcryptjs reads $2a$/$2b$/$2y$ alike and compares in constant time. It hashes the UTF-8
  // bytes of its string, so a UTF-8 password decodes back to the very bytes the client sent.
  if (/^\$2[aby]\$/.test(job.hash)) return bcrypt.compareSync(password.toString('utf8'), job.hash);
  return false;
}

parentPort?.on('message', (job: Job) => {
  let ok = false;
  try {
    ok = check(job);
  } catch {
    ok = false;
  }
  parentPort?.postMessage({ id: job.id, ok });
});
