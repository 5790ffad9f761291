// auth-type: basic, as nginx's auth_basic checks it: the Authorization header's Basic credentials,
// the first entry of the user file with that name, its hash checked (password-verifier.ts). Missing
// or wrong credentials are 401 with `WWW-Authenticate: Basic realm="<auth-realm>"`.
import type { BasicAuthModel } from '../../config/model.ts';
import { parseBasicCredentials } from './basic-credentials.ts';
import type { VerifyResult } from './password-verifier.ts';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A user name read byte per character (latin1) as the UTF-8 text it encodes; null when it is not UTF-8. */
function utf8Name(latin1: string): string | null {
  try {
    return strictUtf8.decode(Buffer.from(latin1, 'latin1'));
  } catch {
    return null;
  }
}

/** nginx's challenge: the realm quoted as written (auth-realm admits no quote). */
export function basicChallenge(realm: string): string {
  return `Basic realm="${realm}"`;
}

export type BasicAuthOutcome =
  | { ok: true; user: string }
  | { ok: false; status: 401 | 503; user: string | null; reason: string };

export interface Verifier {
  verify(user: string, password: Buffer, hash: string, done: (result: VerifyResult) => void): void;
}

/** Checks the request's credentials; `done` may be called synchronously (cache hit, cheap hash). */
export function checkBasicAuth(
  model: BasicAuthModel,
  authorization: string | string[] | undefined,
  verifier: Verifier,
  done: (outcome: BasicAuthOutcome) => void,
): void {
  const credentials = parseBasicCredentials(authorization);
  if (credentials === null) {
    done({
      ok: false,
      status: 401,
      user: null,
      reason: 'no user/password was provided for basic authentication',
    });
    return;
  }
  const { user, password } = credentials;
  // The Secret's names are UTF-8 text, the header's bytes: matched byte for byte, as nginx.
  const name = utf8Name(user);
  const entry = name === null ? undefined : model.users.find((e) => e.user === name);
  if (entry === undefined) {
    const refused: BasicAuthOutcome = {
      ok: false,
      status: 401,
      user,
      reason: `user "${user}" was not found in Secret ${model.secret}`,
    };
    // The same hash work as a known user with a wrong password, so response times do not tell which
    // user names exist: the password is checked against another user's hash and the answer ignored.
    const decoy = model.users.find((e) => e.hash !== '');
    if (decoy === undefined) done(refused);
    else
      verifier.verify(user, password, decoy.hash, (result) =>
        done(
          result === 'busy'
            ? { ...refused, status: 503, reason: 'too many password checks in progress (basic auth)' }
            : refused,
        ),
      );
    return;
  }
  if (entry.hash === '') {
    done({
      ok: false,
      status: 401,
      user,
      reason: `user "${user}" has an empty password hash in Secret ${model.secret}`,
    });
    return;
  }
  verifier.verify(user, password, entry.hash, (result) => {
    if (result === true) done({ ok: true, user });
    else if (result === 'busy')
      done({ ok: false, status: 503, user, reason: 'too many password checks in progress (basic auth)' });
    else done({ ok: false, status: 401, user, reason: `user "${user}": password mismatch` });
  });
}
