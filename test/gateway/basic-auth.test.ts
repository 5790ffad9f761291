// checkBasicAuth's decisions, with a verifier that records the hash work asked of it: an unknown user
// costs the same hash work as a known one with a wrong password, so response times do not reveal
// which user names exist.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BasicAuthModel } from '../../src/config/model.ts';
import { type BasicAuthOutcome, checkBasicAuth, type Verifier } from '../../src/gateway/access/basic-auth.ts';
import { parseBasicCredentials } from '../../src/gateway/access/basic-credentials.ts';

const model: BasicAuthModel = {
  realm: 'r',
  secret: 'default/htpasswd',
  secretType: 'auth-file',
  users: [
    { user: 'alice', hash: '$2y$05$alicehash' },
    { user: 'bob', hash: '$apr1$bobhash' },
  ],
};

function recordingVerifier(answer: true | false | 'busy'): Verifier & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    verify(_user, _password, hash, done) {
      calls.push(hash);
      done(answer);
    },
  };
}

function check(m: BasicAuthModel, user: string, password: string, verifier: Verifier): BasicAuthOutcome {
  let outcome: BasicAuthOutcome | null = null;
  const header = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  checkBasicAuth(m, header, verifier, (o) => {
    outcome = o;
  });
  assert.ok(outcome !== null, 'the fake verifier answers synchronously');
  return outcome;
}

test('a known user: the hash is checked; true admits, false is 401, busy is 503', () => {
  const yes = recordingVerifier(true);
  assert.deepEqual(check(model, 'bob', 'pw', yes), { ok: true, user: 'bob' });
  assert.deepEqual(yes.calls, ['$apr1$bobhash']);
  assert.equal(check(model, 'bob', 'pw', recordingVerifier(false)).ok, false);
  const busy = check(model, 'bob', 'pw', recordingVerifier('busy'));
  assert.equal(busy.ok === false && busy.status, 503);
});

test('an unknown user costs one hash check too, and is 401 even if that check matched', () => {
  const verifier = recordingVerifier(true);
  const outcome = check(model, 'mallory', 'pw', verifier);
  assert.equal(verifier.calls.length, 1);
  assert.equal(outcome.ok, false);
  assert.equal(outcome.ok === false && outcome.status, 401);
  assert.match(outcome.ok === false ? outcome.reason : '', /not found/);
  const busy = check(model, 'mallory', 'pw', recordingVerifier('busy'));
  assert.equal(busy.ok === false && busy.status, 503);
});

test('no credentials, or a Secret without hashes: 401 without hash work', () => {
  const verifier = recordingVerifier(true);
  let outcome: BasicAuthOutcome | null = null;
  checkBasicAuth(model, undefined, verifier, (o) => {
    outcome = o;
  });
  assert.equal((outcome as BasicAuthOutcome | null)?.ok, false);
  assert.equal(check({ ...model, users: [] }, 'alice', 'pw', verifier).ok, false);
  assert.deepEqual(verifier.calls, []);
});

test("parseBasicCredentials reads the header as nginx's ngx_http_auth_basic_user (the same $remote_user)", () => {
  const user = (header: string) => parseBasicCredentials(header)?.user ?? null;
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  assert.equal(user(`Basic ${b64('alice:pw')}`), 'alice');
  assert.equal(user(`bAsIc    ${b64('alice:pw')}`), 'alice', 'any case, several spaces');
  assert.equal(user(`Basic ${b64('alice:x')}`), 'alice', 'padded');
  assert.equal(user('Basic YWxpY2U6eA'), 'alice', 'unpadded');
  assert.equal(user('Basic YWxpY2U6eA==junk'), 'alice', 'what follows the first = is ignored');
  assert.equal(user('Basic YWxpY2U6eA= ='), 'alice');
  assert.equal(parseBasicCredentials('Basic YWxpY2U6cHc=junk')?.password.toString(), 'pw');
  for (const header of [
    'Basic YWxpY2U6eHh4Q', // 4n+1 characters: nginx's decoder refuses it
    'Basic YWxp-2U6eA', // not the standard alphabet
    'Basic YWxp Y2U6eA',
    `Basic ${b64(':pw')}`, // an empty user
    `Basic ${b64('alice')}`, // no colon
    'Basic',
    'Basic ',
    'Basic\tYWxpY2U6eA',
    `Bearer ${b64('alice:pw')}`,
  ])
    assert.equal(parseBasicCredentials(header), null, header);
});
