// The user files of basic auth, read as nginx's auth_basic_user_file reads them: one `user:hash` per
// line (anything after a second `:` is a comment), `#` lines and empty lines skipped. An auth-map
// Secret is the same file written key by key, as ingress-nginx writes it ("user:value\n" per key).
import type { HtpasswdEntry } from '../config/model.ts';

/** The hash schemes keepip verifies, by the prefix nginx's ngx_crypt() and crypt(3) recognise. */
export type HashScheme =
  | 'bcrypt'
  | 'apr1'
  | 'md5-crypt'
  | 'sha1'
  | 'ssha'
  | 'plain'
  | 'sha-crypt'
  | 'des-crypt';

export function hashScheme(hash: string): HashScheme | null {
  if (/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) return 'bcrypt';
  if (hash.startsWith('$apr1$')) return 'apr1';
  if (hash.startsWith('$1$')) return 'md5-crypt';
  if (hash.startsWith('{SHA}')) return 'sha1';
  if (hash.startsWith('{SSHA}')) return 'ssha';
  if (hash.startsWith('{PLAIN}')) return 'plain';
  if (/^\$[56]\$/.test(hash)) return 'sha-crypt';
  if (/^[./A-Za-z0-9]{13}$/.test(hash)) return 'des-crypt';
  return null;
}

/** The entries of an htpasswd file. Later duplicates are kept but never reached (nginx takes the first). */
export function parseHtpasswd(text: string): HtpasswdEntry[] {
  const entries: HtpasswdEntry[] = [];
  for (const rawLine of text.split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const rest = line.slice(colon + 1);
    const end = rest.indexOf(':');
    entries.push({ user: line.slice(0, colon), hash: end < 0 ? rest : rest.slice(0, end) });
  }
  return entries;
}

/** An auth-map Secret: each key a user, each value a hash (written out as "key:value" lines). */
export function parseAuthMap(data: Readonly<Record<string, string>>): HtpasswdEntry[] {
  return parseHtpasswd(
    Object.keys(data)
      .sort()
      .map((user) => `${user}:${data[user]}`)
      .join('\n'),
  );
}
