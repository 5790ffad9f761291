// Basic auth (auth-type basic, auth-secret, auth-secret-type, auth-realm) and `satisfy` from the
// outside, over real sockets on 127.x: malformed Authorization headers and every hash format nginx
// reads, compared with a real nginx 1.22 fed the same user file and the same bytes; Secrets that
// cannot be used (fail closed: 503, as ingress-nginx's "location denied"); a realm that tries to
// inject into WWW-Authenticate; satisfy any/all with an allowlist and a denylist; a canary Ingress
// without auth; other spellings of the protected path; and what reaches the backend and the logs.
// The happy paths (bcrypt/apr1/SHA1 logins, a missing Secret, "foo:") are in
// test/e2e/gateway-basic-auth.test.ts; checkBasicAuth's decisions in test/gateway/basic-auth.test.ts.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
  opaqueSecret as secret,
} from '../fixtures/gateway/manifests.ts';
import {
  connectRawH2,
  FLAG,
  FRAME,
  frame,
  headerBlock,
  requestFields,
  responseStatus,
} from '../helpers/h2-raw.ts';
import { rawExchange } from '../helpers/net.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';
import { startNamedBackends } from './helpers.ts';

const P = 'pass1234XYZ';
/** In the allowlist 127.0.0.60/30 of the satisfy hosts. */
const ALLOWED = '127.0.0.60';
/** In that allowlist too, but denylisted. */
const DENIED = '127.0.0.61';
const STRANGER = '127.0.0.70';

function startBackends(names: readonly string[]) {
  return startNamedBackends(names);
}

interface Answer {
  status: number;
  backend: string | null;
  head: string;
}

/** One raw HTTP/1.1 request from `from`: `lines` are extra header lines (latin1, without CRLF). */
async function send(port: number, from: string, host: string, path: string, lines: string[] = []) {
  const head = `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${lines.map((l) => `${l}\r\n`).join('')}`;
  const reply = await rawExchange({
    host: '127.0.0.1',
    port,
    localAddress: from,
    payload: Buffer.from(`${head}Connection: close\r\n\r\n`, 'latin1'),
    timeoutMs: 10_000,
  });
  const text = reply.received.toString('latin1');
  const answer: Answer = {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
    backend: /\r\nx-backend: (\S+)/i.exec(text)?.[1] ?? null,
    head: text.split('\r\n\r\n')[0] ?? '',
  };
  return answer;
}

/** `Authorization: Basic base64(user:password)`, the bytes taken as latin1 unless given as a Buffer. */
function basic(credentials: string | Buffer): string {
  const bytes = typeof credentials === 'string' ? Buffer.from(credentials, 'latin1') : credentials;
  return `Authorization: Basic ${bytes.toString('base64')}`;
}

async function tool(name: string, args: string[]): Promise<string> {
  const out = await runCommand(requireBinary(name), args);
  assert.equal(out.code, 0, `${name} ${args.join(' ')}: ${out.stderr}`);
  return out.stdout.trim();
}

function ssha(password: string): string {
  const salt = Buffer.from('s@lt');
  const digest = createHash('sha1').update(password).update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

const LONG_BCRYPT_PASSWORD = `${'A'.repeat(72)}tail`;

/** The user file: every format nginx's ngx_crypt() and crypt(3) read, made by htpasswd, openssl and perl. */
async function userFile(): Promise<Buffer> {
  const [apr, bc, bc72, sha, pc] = await Promise.all([
    tool('htpasswd', ['-nbm', 'apr', P]),
    tool('htpasswd', ['-nbB', '-C', '4', 'bc', P]),
    tool('htpasswd', ['-nbB', '-C', '4', 'bc72', LONG_BCRYPT_PASSWORD]),
    tool('htpasswd', ['-nbs', 'sha', P]),
    tool('htpasswd', ['-nbs', 'pc', 'x:y']),
  ]);
  const [md5, s5, s6, des] = await Promise.all([
    tool('openssl', ['passwd', '-1', P]),
    tool('openssl', ['passwd', '-5', P]),
    tool('openssl', ['passwd', '-6', P]),
    tool('perl', ['-e', `print crypt("${P}", "ab")`]),
  ]);
  const lines = [
    '#hidden:{PLAIN}secret',
    `plain:{PLAIN}${P}`,
    apr,
    `md5:${md5}`,
    sha,
    `ssha:${ssha(P)}`,
    bc,
    bc72,
    `des:${des}`,
    `s5:${s5}`,
    `s6:${s6}`,
    `raw:${P}`,
    'dup:{PLAIN}first',
    'dup:{PLAIN}second',
    'empty:',
    'emptypw:{PLAIN}',
    'colon:{PLAIN}a:b',
    pc,
    'slash:{PLAIN}???>>>',
    `crlf:{PLAIN}${P}\r`,
    `j\u00fcrgen:{PLAIN}${P}`,
  ];
  return Buffer.from(`${lines.join('\n')}\n`, 'utf8');
}

/** The hash of `user` in the user file (its first line). */
function hashIn(file: Buffer, user: string): string {
  const line = file
    .toString('utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  return (line ?? '').slice(user.length + 1);
}

function topology(file: Buffer, port: (name: string) => number, extra: K8sObject[] = []) {
  const auth = (extra: Record<string, string> = {}) => ({
    'auth-type': 'basic',
    'auth-secret': 'users',
    'auth-realm': 'keepip realm',
    ...extra,
  });
  const route = (name: string, host: string, annotations: Record<string, string>, service = 'guarded') =>
    ingress({ name, host, paths: [{ path: '/', service, port: 80 }], annotations });
  const range = { 'whitelist-source-range': '127.0.0.60/30' };
  return topologyOf([
    ...extra,
    ...['guarded', 'stable', 'canary', 'admin', 'public'].flatMap((name) =>
      serviceWithEndpoints({ name, ports: [port(name)] }),
    ),
    secret('users', { auth: file }),
    secret('users', { auth: file }, 'other'),
    secret('nokey', { htpasswd: file }),
    secret('map', {
      mapplain: 'hunter2',
      maplook: 'abcdefghijklm',
      mapbad: '$2y$04$short',
      mapok: '{PLAIN}ok',
    }),
    secret('emptymap', {}),
    route('file', 'file.test', auth()),
    route('map', 'map.test', auth({ 'auth-secret': 'map', 'auth-secret-type': 'auth-map' })),
    route('emptymap', 'emptymap.test', auth({ 'auth-secret': 'emptymap', 'auth-secret-type': 'auth-map' })),
    route('nokey', 'nokey.test', auth({ 'auth-secret': 'nokey' })),
    route('xns', 'xns.test', auth({ 'auth-secret': 'other/users' })),
    route('digest', 'digest.test', auth({ 'auth-type': 'digest' })),
    route('badtype', 'badtype.test', auth({ 'auth-secret-type': 'auth-files' })),
    route('traversal', 'traversal.test', auth({ 'auth-secret': '../users' })),
    route('realm', 'realm.test', auth({ 'auth-realm': 'evil"\r\nSet-Cookie: pwn=1' })),
    route('any', 'any.test', auth({ ...range, 'denylist-source-range': `${DENIED}/32`, satisfy: 'any' })),
    route('all', 'all.test', auth(range)),
    route('anycase', 'anycase.test', auth({ ...range, satisfy: 'Any' })),
    route('main', 'canary.test', auth(), 'stable'),
    route('main-canary', 'canary.test', { canary: 'true', 'canary-by-header': 'X-Canary' }, 'canary'),
    route('wmain', 'weight.test', auth(), 'stable'),
    route('wmain-canary', 'weight.test', { canary: 'true', 'canary-weight': '100' }, 'canary'),
    ingress({
      name: 'split-admin',
      host: 'split.test',
      paths: [{ path: '/admin', service: 'admin', port: 80 }],
      annotations: auth(),
    }),
    ingress({
      name: 'split-public',
      host: 'split.test',
      paths: [{ path: '/', service: 'public', port: 80 }],
    }),
  ]);
}

interface Row {
  label: string;
  lines: string[];
  keepip: number;
  nginx: number;
}

/** Credentials against the user file: what keepip and nginx 1.22 (Debian, libxcrypt) answer. */
function credentialRows(file: Buffer): Row[] {
  const row = (label: string, credentials: string, keepip: number, nginx = keepip): Row => ({
    label,
    lines: [basic(credentials)],
    keepip,
    nginx,
  });
  const rows: Row[] = [];
  for (const user of ['plain', 'apr', 'md5', 'sha', 'ssha', 'bc']) {
    rows.push(row(`${user}: the right password`, `${user}:${P}`, 200));
    rows.push(row(`${user}: a wrong password`, `${user}:nope`, 401));
    rows.push(row(`${user}: the right password with a byte more`, `${user}:${P}x`, 401));
  }
  rows.push(
    // crypt(3) schemes keepip does not verify: those users cannot log in (warned at load), never admitted.
    row('des: the right password (keepip: unsupported, refused)', `des:${P}`, 401, 200),
    row("des: nginx's 8-character truncation", 'des:pass1234-anything', 401, 200),
    row('s5 ($5$): the right password (keepip: unsupported)', `s5:${P}`, 401, 200),
    row('s6 ($6$): the right password (keepip: unsupported)', `s6:${P}`, 401, 200),
    // A value without a scheme is a hash, never a clear-text password; a hash is not a password.
    row('raw (no scheme): the value itself', `raw:${P}`, 401),
    row('md5: its own hash as the password', `md5:${hashIn(file, 'md5')}`, 401),
    row('sha: its own {SHA} value as the password', `sha:${hashIn(file, 'sha')}`, 401),
    row('plain: "{PLAIN}…" as the password', `plain:{PLAIN}${P}`, 401),
    row('dup: the first line wins', 'dup:first', 200),
    row("dup: the second line's password", 'dup:second', 401),
    row('empty (no hash): an empty password', 'empty:', 401),
    row('empty (no hash): any password', 'empty:x', 401),
    row('emptypw ({PLAIN} and nothing): an empty password', 'emptypw:', 200),
    row('colon: the hash ends at the second colon', 'colon:a', 200),
    row('colon: "a:b" is not its password', 'colon:a:b', 401),
    row('pc: a password with a colon (split at the first)', 'pc:x:y', 200),
    row("bc72: bcrypt's 72-byte truncation, as nginx", `bc72:${'A'.repeat(72)}other`, 200),
    row('crlf: a CRLF line', `crlf:${P}`, 200),
    row('#hidden: a comment line is no user', '#hidden:secret', 401),
    row('an unknown user', `nobody:${P}`, 401),
    row('an empty user name', `:${P}`, 401),
    row('no colon at all', `plain${P}`, 401),
  );
  return rows;
}

/** Authorization forms for user plain's right credentials. */
function headerRows(): Row[] {
  const g = Buffer.from(`plain:${P}`).toString('base64');
  assert.ok(g.endsWith('=') && !g.endsWith('=='));
  const slash = Buffer.from('slash:???>>>').toString('base64');
  assert.match(slash, /\/.*\+/);
  const row = (label: string, lines: string[], keepip: number, nginx = keepip): Row => ({
    label,
    lines,
    keepip,
    nginx,
  });
  return [
    row('lower-case field name and scheme', [`authorization: basic ${g}`], 200),
    row('upper-case scheme', [`AUTHORIZATION: BASIC ${g}`], 200),
    row('several spaces after the scheme', [`Authorization: Basic    ${g}`], 200),
    row('a tab after the scheme', [`Authorization: Basic\t${g}`], 401),
    row('no space after the scheme', [`Authorization: Basic${g}`], 401),
    row('no padding', [`Authorization: Basic ${g.slice(0, -1)}`], 200),
    row('one padding character too many', [`Authorization: Basic ${g}=`], 200),
    // nginx's decoder stops at the first "=": the same user for $remote_user and the auth cache's key.
    row('bytes after the padding (nginx stops at "=")', [`Authorization: Basic ${g}x`], 200),
    row('a second challenge after a comma', [`Authorization: Basic ${g}, Basic eHg=`], 200),
    row('another scheme (Bearer)', [`Authorization: Bearer ${g}`], 401),
    row('another scheme (Digest)', [`Authorization: Digest ${g}`], 401),
    row('"+" and "/" in the base64', [`Authorization: Basic ${slash}`], 200),
    row(
      'the base64url alphabet',
      [`Authorization: Basic ${slash.replace(/\+/g, '-').replace(/\//g, '_')}`],
      401,
    ),
    row('not base64', ['Authorization: Basic !!!!'], 401),
    row('6000 base64 characters of nothing', [`Authorization: Basic ${'A'.repeat(6000)}`], 401),
    // nginx 1.22 refuses a second Authorization line (400), and so does keepip (H1_DUPLICATE_HEADER).
    row('two fields, the right one first', [`Authorization: Basic ${g}`, basic('plain:nope')], 400),
    row('two fields, the right one second', [basic('plain:nope'), `Authorization: Basic ${g}`], 400),
  ];
}

describe('basic auth and satisfy under attack', () => {
  let backends: Awaited<ReturnType<typeof startBackends>>;
  let gw: TestGateway;
  let file: Buffer;
  let dir: string;
  let topo: ReturnType<typeof topology>;
  /** nginx 1.22 with auth_basic on the same user file: the reference for every status compared. */
  let ngx: RunningNginx;

  before(async () => {
    backends = await startBackends(['guarded', 'stable', 'canary', 'admin', 'public']);
    file = await userFile();
    dir = mkdtempSync(join(tmpdir(), 'keepip-basic-auth-'));
    writeFileSync(join(dir, 'htpasswd'), file);
    writeFileSync(join(dir, 'index.html'), 'nginx\n');
    topo = topology(file, backends.port);
    gw = await startTestGateway(topo);
    ngx = await startNginx({
      freePorts: 1,
      http: (_dir, [port]) => `server { listen 127.0.0.1:${port};
        location / { auth_basic "keepip realm"; auth_basic_user_file ${dir}/htpasswd; root ${dir}; } }`,
      waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
    });
  });

  after(async () => {
    await gw?.close();
    await ngx?.stop();
    await backends?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  const get = (host: string, lines: string[] = [], from = '127.0.0.1', path = '/') =>
    send(gw.httpPort, from, host, path, lines);
  const nginxGet = (lines: string[], path = '/') =>
    send(ngx.ports[0]!, '127.0.0.1', 'file.test', path, lines);

  test('differential with nginx 1.22: every hash format and Authorization form, keepip never admits what nginx refuses', async () => {
    const wrong: string[] = [];
    for (const row of [...credentialRows(file), ...headerRows()]) {
      const theirs = (await nginxGet(row.lines)).status;
      const ours = await get('file.test', row.lines);
      if (theirs !== row.nginx) wrong.push(`${row.label}: nginx ${theirs}, expected ${row.nginx}`);
      if (ours.status !== row.keepip)
        wrong.push(`${row.label}: keepip ${ours.status}, expected ${row.keepip}`);
      // 400 is nginx refusing the request's form (a second Authorization line), not the credentials.
      if (ours.status === 200 && theirs !== 200 && theirs !== 400)
        wrong.push(`${row.label}: keepip admits, nginx ${theirs}`);
      if (ours.status === 401)
        assert.match(ours.head, /\r\nwww-authenticate: Basic realm="keepip realm"/i, row.label);
    }
    assert.deepEqual(wrong, []);
  });

  test('an auth-map never compares a value as clear text: a plain password, a DES-looking word and a broken bcrypt admit nothing', async () => {
    for (const credentials of [
      'mapplain:hunter2',
      'maplook:abcdefghijklm',
      'mapbad:$2y$04$short',
      'mapbad:',
    ]) {
      const reply = await get('map.test', [basic(credentials)]);
      assert.equal(reply.status, 401, credentials);
    }
    assert.equal((await get('map.test', [basic('mapok:ok')])).status, 200, 'the control: {PLAIN}');
    const said = topo.issues.filter((i) => i.code === 'AUTH_HASH_UNSUPPORTED');
    for (const user of ['mapplain', 'maplook', 'mapbad', 'des', 's5', 's6', 'raw'])
      assert.ok(
        said.some((i) => i.message.includes(`"${user}"`)),
        `no AUTH_HASH_UNSUPPORTED for ${user}: ${said.map((i) => i.message).join('\n')}`,
      );
  });

  test('an auth-map Secret without keys admits nobody (401 with the challenge), it is not "no auth"', async () => {
    for (const lines of [[], [basic(`plain:${P}`)], [basic(':')]]) {
      const reply = await get('emptymap.test', lines);
      assert.equal(reply.status, 401);
      assert.match(reply.head, /\r\nwww-authenticate: Basic realm="keepip realm"/i);
    }
  });

  test('a Secret that cannot be used fails closed with 503, right credentials or not (no auth key, other namespace, digest, bad secret type, a path in the name)', async () => {
    const before = backends.seen.length;
    for (const host of ['nokey.test', 'xns.test', 'digest.test', 'badtype.test', 'traversal.test']) {
      for (const lines of [[], [basic(`plain:${P}`)]]) {
        const reply = await get(host, lines);
        assert.equal(reply.status, 503, `${host} ${lines.length}`);
        assert.doesNotMatch(reply.head, /www-authenticate/i, host);
      }
    }
    assert.equal(backends.seen.length, before, 'a backend was reached');
    for (const reason of [
      /auth-secret: Secret default\/nokey has no key "auth"/,
      /auth-secret: "other\/users" is in another namespace/,
      /auth-type: digest authentication is not supported/,
      /auth-secret-type: "auth-files" is not/,
      /auth-secret: "\.\.\/users" is in another namespace/,
    ])
      await gw.errors.waitFor(reason);
  });

  test('auth-realm with a quote and CR/LF: the challenge is Basic realm="", nothing injected, auth still enforced', async () => {
    const reply = await get('realm.test');
    assert.equal(reply.status, 401);
    const challenges = reply.head
      .split('\r\n')
      .filter((l) => /^www-authenticate:/i.test(l))
      .map((l) => l.toLowerCase());
    assert.deepEqual(challenges, ['www-authenticate: basic realm=""']);
    assert.doesNotMatch(reply.head, /set-cookie|pwn|evil/i);
    assert.equal((await get('realm.test', [basic(`plain:${P}`)])).status, 200);
  });

  test('satisfy any with an allowlist: an allowlisted client passes without or with wrong credentials; a stranger needs them', async () => {
    for (const lines of [[], [basic('plain:nope')], ['Authorization: Bearer x']]) {
      const reply = await get('any.test', lines, ALLOWED);
      assert.equal(reply.status, 200, lines.join());
      assert.equal(reply.backend, 'guarded');
    }
    const bare = await get('any.test', [], STRANGER);
    assert.equal(bare.status, 401);
    assert.match(bare.head, /\r\nwww-authenticate: Basic realm="keepip realm"/i);
    assert.equal((await get('any.test', [basic('plain:nope')], STRANGER)).status, 401);
    assert.equal((await get('any.test', [basic(`des:${P}`)], STRANGER)).status, 401);
    assert.equal((await get('any.test', [basic(`bc:${P}`)], STRANGER)).status, 200);
  });

  test('satisfy any: a denylisted client never passes, not even with valid credentials (nginx would admit it)', async () => {
    // The template writes `deny <denylist>; allow <allowlist>; deny all;` beside auth_basic and
    // `satisfy any`: in nginx the deny is one refused vote and a valid password admits. keepip is
    // stricter on purpose (src/gateway/access/stage.ts: "deny beats satisfy any, too").
    const before = backends.seen.length;
    for (const lines of [[], [basic(`plain:${P}`)], [basic(`bc:${P}`)]]) {
      const reply = await get('any.test', lines, DENIED);
      assert.equal(reply.status, 403, lines.join());
    }
    assert.equal(backends.seen.length, before);
  });

  test('satisfy all (the default, and "Any" which is not "any"): the allowlist and the password are both needed', async () => {
    for (const host of ['all.test', 'anycase.test']) {
      const inside = await get(host, [], ALLOWED);
      assert.equal(inside.status, 401, host);
      assert.match(inside.head, /\r\nwww-authenticate: Basic realm="keepip realm"/i);
      assert.equal((await get(host, [basic('plain:nope')], ALLOWED)).status, 401, host);
      assert.equal((await get(host, [basic(`plain:${P}`)], STRANGER)).status, 403, host);
      assert.equal((await get(host, [basic(`plain:${P}`)], ALLOWED)).status, 200, host);
    }
  });

  test('the Authorization header never reaches the backend of a basic-auth location, however it was admitted', async () => {
    const cases: Array<[string, string[], string]> = [
      ['file.test', [basic(`plain:${P}`)], '127.0.0.1'],
      ['file.test', [`authorization: basic ${Buffer.from(`apr:${P}`).toString('base64')}`], '127.0.0.1'],
      ['any.test', [basic('plain:allowlisted-and-wrong')], ALLOWED],
      ['any.test', [basic(`sha:${P}`)], STRANGER],
    ];
    for (const [host, lines, from] of cases) {
      const start = backends.seen.length;
      const reply = await get(host, lines, from);
      assert.equal(reply.status, 200, `${host} ${lines.join()}`);
      const seen = backends.seen.slice(start);
      assert.equal(seen.length, 1);
      const names = seen[0]!.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
      assert.ok(!names.includes('authorization'), `${host}: ${seen[0]!.rawHeaders.join(' | ')}`);
    }
  });

  test('a canary Ingress without auth does not open the main basic-auth location (canary-by-header, canary-weight 100)', async () => {
    const before = backends.seen.length;
    for (const [host, lines] of [
      ['canary.test', ['X-Canary: always']],
      ['canary.test', ['X-Canary: always', basic('plain:nope')]],
      ['weight.test', []],
    ] as const) {
      const reply = await get(host, [...lines]);
      assert.equal(reply.status, 401, `${host} ${lines.join()}`);
    }
    assert.equal(backends.seen.length, before, 'a backend was reached without credentials');
    // The control: with the password the canary is reached (the canary's own annotations never apply).
    const ok = await get('canary.test', ['X-Canary: always', basic(`plain:${P}`)]);
    assert.equal(ok.backend, 'canary');
    assert.equal((await get('weight.test', [basic(`plain:${P}`)])).backend, 'canary');
  });

  test('basic auth on /admin: encoded, doubled-slash and dot-segment spellings need the password; the sibling stays open', async () => {
    const before = backends.seen.filter((s) => s.backend === 'admin').length;
    for (const path of [
      '/%61dmin',
      '/%61%64%6D%69%6E/x',
      '//admin',
      '/./admin',
      '/x/../admin',
      '/admin/',
      '/admin?x=/',
    ]) {
      const reply = await get('split.test', [], '127.0.0.1', path);
      assert.notEqual(reply.status, 200, path);
      assert.notEqual(reply.backend, 'admin', path);
    }
    assert.equal(backends.seen.filter((s) => s.backend === 'admin').length, before);
    assert.equal((await get('split.test', [], '127.0.0.1', '/adminx')).backend, 'public');
    assert.equal((await get('split.test', [], '127.0.0.1', '/')).backend, 'public');
    assert.equal((await get('split.test', [basic(`plain:${P}`)], '127.0.0.1', '/%61dmin')).backend, 'admin');
  });

  test('a wrong password and an unknown user are error-level lines, as nginx auth_basic writes them (seen at the default error-log-level)', async () => {
    // nginx 1.22: ngx_log_error(NGX_LOG_ERR, …, "user \"%V\": password mismatch") and
    // "user \"%V\" was not found in \"%s\""; ingress-nginx's error-log-level default is notice.
    for (const credentials of ['plain:wrong-password', 'nobody:x']) {
      const reply = await get('file.test', [basic(credentials)], '127.0.0.1', '/failed-login');
      assert.equal(reply.status, 401, credentials);
      assert.equal((await nginxGet([basic(credentials)], '/failed-login')).status, 401);
    }
    await ngx.waitForFile('error.log', /\[error\] .*user "plain": password mismatch, client: 127\.0\.0\.1/);
    await ngx.waitForFile('error.log', /\[error\] .*user "nobody" was not found in /);
    // keepip writes its line before the 401 is sent (src/gateway/access/stage.ts refuse()).
    const ours = gw.errors.lines.filter((l) => /password mismatch|was not found/.test(l));
    const shown = JSON.stringify(ours);
    assert.ok(
      // keepip names the annotation before nginx's context.
      ours.some((l) => /\[error\] .*user "plain": password mismatch .*, client: 127\.0\.0\.1/.test(l)),
      shown,
    );
    assert.ok(
      ours.some((l) => /\[error\] .*user "nobody" was not found in /.test(l)),
      shown,
    );
  });

  test('a failed login writes neither the password nor the raw Authorization value to any log (error-log-level info)', async () => {
    const verbose = await startTestGateway(
      topology(file, backends.port, [controllerConfigMap({ 'error-log-level': 'info' })]),
    );
    try {
      const secretPassword = 'Sup3r-S3cret-Guess';
      const encoded = Buffer.from(`plain:${secretPassword}`).toString('base64');
      for (const user of ['plain', 'apr', 'nobody']) {
        const value = Buffer.from(`${user}:${secretPassword}`).toString('base64');
        const reply = await send(verbose.httpPort, '127.0.0.1', 'file.test', `/probe-${user}`, [
          `Authorization: Basic ${value}`,
        ]);
        assert.equal(reply.status, 401);
        await verbose.access.waitFor(new RegExp(`/probe-${user} `));
      }
      await verbose.errors.waitFor(/user "plain": password mismatch/);
      await verbose.errors.waitFor(/user "nobody" was not found/);
      const all = [...verbose.access.lines, ...verbose.errors.lines].join('\n');
      assert.ok(!all.includes(secretPassword), 'the password is in a log');
      assert.ok(!all.includes(encoded), 'the Authorization value is in a log');
    } finally {
      await verbose.close();
    }
  });

  test('a user name is matched byte for byte, as nginx: the UTF-8 name in the Secret logs in with its UTF-8 bytes, not with a latin1 look-alike', async () => {
    // nginx compares the decoded Basic user with the file's bytes. keepip decodes the client's user as
    // latin1 and the Secret as UTF-8, so the real user cannot log in and the one-byte 0xFC spelling can.
    const utf8 = [basic(Buffer.from(`j\u00fcrgen:${P}`, 'utf8'))];
    const latin1 = [basic(Buffer.from(`j\u00fcrgen:${P}`, 'latin1'))];
    const expected = { utf8: 200, latin1: 401 };
    assert.deepEqual(
      { utf8: (await nginxGet(utf8)).status, latin1: (await nginxGet(latin1)).status },
      expected,
    );
    assert.deepEqual(
      { utf8: (await get('file.test', utf8)).status, latin1: (await get('file.test', latin1)).status },
      expected,
    );
  });

  test('HTTP/2: two authorization fields are a 400 (as nginx), whichever is right, and neither reaches the backend', async () => {
    const good = `Basic ${Buffer.from(`plain:${P}`).toString('base64')}`;
    const bad = `Basic ${Buffer.from('plain:nope').toString('base64')}`;
    const h2 = await connectRawH2({ port: gw.httpPort, plain: true });
    try {
      const orders = [
        ['/h2-bad-first', bad, good],
        ['/h2-good-first', good, bad],
      ] as const;
      for (const [i, [path, first, second]] of orders.entries()) {
        const fields = requestFields('file.test', path, 'GET', [
          ['authorization', first],
          ['authorization', second],
        ]);
        const id = 2 * i + 1;
        h2.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, headerBlock(fields)));
        const answer = await h2.waitFrame((f) => f.streamId === id && f.type === FRAME.HEADERS);
        assert.equal(responseStatus(answer.payload), 400, path);
      }
    } finally {
      h2.close();
    }
    assert.deepEqual(
      backends.seen.filter((s) => s.url.startsWith('/h2-')),
      [],
    );
  });
});
