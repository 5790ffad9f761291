// Interop: git's smart HTTP through keepip gateway, the seed's Gitea use case, with the REAL git client.
// A tiny git smart-HTTP backend (node:http running /usr/lib/git-core/git-http-backend as CGI over a
// temp dir of bare repos) sits behind the gateway; one Ingress per location on host git.test, each
// with `whitelist-source-range` (the loopback address git connects from), basic auth (an htpasswd
// Secret), and `proxy-body-size` 2m or 0 × `proxy-request-buffering` on or off. git clones, fetches and
// pushes (a small commit, and packs > 1 MiB of seeded random data, chunked with a small
// http.postBuffer), and git itself (for-each-ref on the bare repos, and their object files) says what
// was written. A TCP relay whose outbound side is bound to 127.0.0.66 plays a source the allowlist
// refuses (git has no --local-address). Every git run is bounded (a hang is a failure, never a wait).
// git 2.39 sends `Expect: 100-continue` only where the server offers GSS-Negotiate, so the pushes that
// check it ask for it with http.extraHeader. Seed for the random data: KEEPIP_GIT_SEED; to look:
// KEEPIP_GIT_KEEP_DIR=1 keeps the temp dir (repos, curl traces), KEEPIP_GIT_SHOW=1 prints git's 413 output.
// Found by this file and fixed: `$remote_user` in proxy-set-headers expanded to "" (so Gitea's
// `X-WEBAUTH-USER: $remote_user` never reached the backend); it is now the Basic user, as nginx's.
//
// The claims checked (docs/gateway.md unless named):
// - "Request handling: … access rules (block-cidrs, deny, allow; …) combined by `satisfy` with basic
//   auth and external auth → upstream." / "Basic auth: 401 with `WWW-Authenticate`".
// - docs/ingress-nginx-compat.md, auth-type: "the Authorization header is not passed to the backend;
//   `$remote_user` is logged"; proxy-set-headers: "nginx variables in values (…) are expanded as nginx
//   expands them, an empty result sends none" (Gitea's reverse-proxy auth: `X-WEBAUTH-USER: $remote_user`).
// - "403 for a denied client, with nginx's error log line `access forbidden by rule, client: <resolved
//   client>, …`".
// - "413 when Content-Length exceeds `proxy-body-size` …, or when a chunked body grows past it …; the
//   connection then closes." and "`100 Continue` is sent only when the body is read".
// - "Request body buffering: … Nothing of the request until the body is complete; then the head and
//   the body together, with `Content-Length` (a chunked HTTP/1.1 body … sent de-chunked with their
//   length), no `Transfer-Encoding`. … `Expect: 100-continue` (HTTP/1.1) is answered when the gateway
//   starts reading the body, before any backend is involved" / "past it [client-body-buffer-size], the
//   whole body goes to a temporary file … The error log has nginx's warning `a client request body is
//   buffered to a temporary file`" / "A flood of uploads therefore costs disk (each bounded by
//   `proxy-body-size`; `0` means unbounded, as in nginx)".
// - "`off` streams the body as it arrives, chunked staying chunked (HTTP/1.1 to the backend)".
// - "With `proxy-request-buffering: off`, a chunked body over `proxy-body-size` is cut at the limit and
//   answered 413 after the backend has seen its start …; with the default `on` it is refused before
//   any backend is contacted, as in nginx." (the one difference git's backend may see: ALLOWED below)
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import http from '../../src/node-http.ts';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  basicAuthSecret,
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { childEnv, requireBinary } from '../helpers/process.ts';
import { seededRandom } from '../helpers/seeded-random.ts';

const SEED = Number(process.env.KEEPIP_GIT_SEED ?? 20_260_419);
const HTTP_BACKEND = '/usr/lib/git-core/git-http-backend';
const USER = 'alice';
const PASSWORD = 'gitea-secret';
const ALLOWED_SOURCE = '127.0.0.1'; // what git connects from: the kernel's source for 127.0.0.1
const DENIED_SOURCE = '127.0.0.66'; // the relay's outbound address
const LIMIT = 2 * 1024 * 1024; // proxy-body-size: 2m
const WITHIN = 1_200_000; // random bytes: a pack > 1 MiB, under 2m
const OVER = 2.5 * 1024 * 1024; // random bytes: a pack over 2m
const GIT_TIMEOUT_MS = 30_000; // a bound against a hang (a hang is a failure), never a timing expectation

/** The locations: one bare repo each, `/<name>.git` on git.test. */
const LOCATIONS = {
  on2m: { bodySize: '2m', buffering: 'on' },
  off2m: { bodySize: '2m', buffering: 'off' },
  on0: { bodySize: '0', buffering: 'on' },
  off0: { bodySize: '0', buffering: 'off' },
} as const;
type Location = keyof typeof LOCATIONS;

/**
 * ALLOWED: differences between buffering on and off that git's backend sees and git does not; each is
 * checked to be what is seen, so the table cannot rot.
 */
const ALLOWED = {
  framing: {
    reason:
      'buffering on sends a chunked upload de-chunked with its Content-Length (docs: Request body buffering); off keeps it chunked. git-http-backend reads both.',
    on: 'content-length',
    off: 'chunked',
  },
  overLimitStart: {
    reason:
      'buffering off: an over-limit chunked upload reaches the backend up to the limit, then is cut (docs/gateway.md differences: nginx reads a chunked body before deciding too); receive-pack must write nothing from the cut pack.',
    on: 'never reaches the backend',
    off: 'cut at or below proxy-body-size',
  },
} as const;

// ---------------------------------------------------------------- the git smart-HTTP backend (CGI)

interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  remoteUser: string | null;
  bytes: number;
  /** The request body arrived whole. */
  complete: boolean;
  /** The proxy's connection went away before the body was whole. */
  aborted: boolean;
  status: number;
  /** The CGI's exit (null: killed); resolves when it has finished writing to the repo. */
  exited: Promise<number | null>;
  /** SIGKILLs the CGI (and so its git children lose their input) if it is still running. */
  kill(): void;
  running: boolean;
  cgiStderr: string;
}

interface GitBackend {
  port: number;
  seen: SeenRequest[];
  /** Until every CGI started so far has exited (nothing is still writing to a repo). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The user the gateway vouches for. The gateway does not pass Authorization on (as ingress-nginx's
 * `proxy_set_header Authorization ""`), so the user comes as Gitea's reverse-proxy header, which the
 * controller ConfigMap's proxy-set-headers sets to `$remote_user`.
 */
const USER_HEADER = 'x-webauth-user';

/** The CGI's head ends at the first empty line (CRLF or LF). */
function cgiHeadEnd(buffer: Buffer): { head: number; body: number } | null {
  const crlf = buffer.indexOf('\r\n\r\n');
  const lf = buffer.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { head: crlf, body: crlf + 4 };
  if (lf >= 0) return { head: lf, body: lf + 2 };
  return null;
}

function serveCgi(
  root: string,
  home: string,
  req: IncomingMessage,
  res: ServerResponse,
  seen: SeenRequest[],
) {
  const url = new URL(req.url ?? '/', 'http://backend');
  const user = req.headers[USER_HEADER];
  const remoteUser = typeof user === 'string' && user !== '' ? user : null;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: '1',
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
    REQUEST_METHOD: req.method ?? 'GET',
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.slice(1),
    REMOTE_ADDR: req.socket.remoteAddress ?? '',
    CONTENT_TYPE: req.headers['content-type'] ?? '',
  };
  if (req.headers['content-length'] !== undefined) env.CONTENT_LENGTH = req.headers['content-length'];
  if (remoteUser !== null) env.REMOTE_USER = remoteUser;
  for (const [name, value] of Object.entries(req.headers)) {
    if (name === 'content-length' || name === 'content-type' || value === undefined) continue;
    env[`HTTP_${name.toUpperCase().replaceAll('-', '_')}`] = Array.isArray(value) ? value.join(', ') : value;
  }
  const cgi: ChildProcess = spawn(HTTP_BACKEND, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const record: SeenRequest = {
    method: req.method ?? '',
    url: req.url ?? '',
    headers: req.headers,
    remoteUser,
    bytes: 0,
    complete: false,
    aborted: false,
    status: 0,
    exited: new Promise((resolve) => cgi.once('close', (code) => resolve(code))),
    kill: () => {
      if (cgi.exitCode === null && cgi.signalCode === null) cgi.kill('SIGKILL');
    },
    running: true,
    cgiStderr: '',
  };
  cgi.once('close', () => {
    record.running = false;
  });
  seen.push(record);
  cgi.stderr?.on('data', (chunk: Buffer) => {
    record.cgiStderr += chunk.toString('utf8');
  });
  cgi.stdin?.on('error', () => {}); // the CGI may exit before reading everything (a refusal)
  req.on('data', (chunk: Buffer) => {
    record.bytes += chunk.length;
  });
  req.on('end', () => {
    record.complete = true;
  });
  req.on('close', () => {
    // The proxy cut the request: the CGI gets end-of-input where its body stopped (as a CGI server
    // whose client went away), the hostile case for a half-sent pack.
    if (record.complete) return;
    record.aborted = true;
    cgi.stdin?.end();
  });
  if (cgi.stdin) req.pipe(cgi.stdin);
  let head: Buffer | null = Buffer.alloc(0);
  cgi.stdout?.on('data', (chunk: Buffer) => {
    if (head === null) {
      if (!res.destroyed) res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = cgiHeadEnd(head);
    if (end === null) return;
    let status = 200;
    const fields: [string, string][] = [];
    for (const line of head.subarray(0, end.head).toString('latin1').split(/\r?\n/)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
      else fields.push([name, value]);
    }
    const rest = head.subarray(end.body);
    head = null;
    record.status = status;
    if (res.destroyed) return;
    res.statusCode = status;
    for (const [name, value] of fields) res.appendHeader(name, value);
    if (rest.length > 0) res.write(rest);
  });
  cgi.on('close', (code) => {
    if (res.destroyed) return;
    if (head !== null) {
      record.status = 502;
      res.statusCode = 502;
      res.end(`cgi exited ${code} without a head\n`);
    } else res.end();
  });
  res.on('error', () => {});
}

async function startGitBackend(root: string, home: string): Promise<GitBackend> {
  const seen: SeenRequest[] = [];
  const server: Server = http.createServer((req, res) => serveCgi(root, home, req, res, seen));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as net.AddressInfo;
  return {
    port: address.port,
    seen,
    async settled() {
      // Bounded: a CGI that never exits is a failure with what it was doing, never a hang.
      const all = Promise.all(seen.map((record) => record.exited));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), GIT_TIMEOUT_MS);
      });
      const outcome = await Promise.race([all, deadline]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        const open = seen
          .filter((r) => r.running)
          .map((r) => `${r.method} ${r.url} ${r.bytes} bytes complete=${r.complete} stderr=${r.cgiStderr}`);
        throw new Error(`git-http-backend still running after ${GIT_TIMEOUT_MS} ms: ${open.join('; ')}`);
      }
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const record of seen) record.kill(); // none should be left; never leave one behind
      await Promise.all(seen.map((record) => record.exited));
    },
  };
}

// ---------------------------------------------------------------- a relay from another source address

interface Relay {
  port: number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 and connects on to the gateway from `source`: git seen from another address. */
async function startRelay(targetPort: number, source: string): Promise<Relay> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({
      host: '127.0.0.1',
      port: targetPort,
      localAddress: source,
      allowHalfOpen: true,
    });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------- the git client

interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

const PROXY_VARIABLES = [
  'http_proxy',
  'https_proxy',
  'all_proxy',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'ALL_PROXY',
  'no_proxy',
  'NO_PROXY',
];

function gitEnv(home: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = childEnv({
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    LC_ALL: 'C',
    LANG: 'C',
    GIT_AUTHOR_NAME: 'Keepip Test',
    GIT_AUTHOR_EMAIL: 'test@git.test',
    GIT_COMMITTER_NAME: 'Keepip Test',
    GIT_COMMITTER_EMAIL: 'test@git.test',
    GIT_AUTHOR_DATE: '2026-04-19T12:00:00Z',
    GIT_COMMITTER_DATE: '2026-04-19T12:00:00Z',
    ...extra,
  });
  for (const name of [...PROXY_VARIABLES, 'GIT_ASKPASS', 'SSH_ASKPASS', 'GIT_DIR', 'GIT_WORK_TREE'])
    delete env[name];
  return env;
}

function runGit(
  git: string,
  home: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; input?: string } = {},
): Promise<GitResult> {
  return new Promise((resolve) => {
    const child = execFile(
      git,
      args,
      {
        cwd: options.cwd ?? home,
        env: gitEnv(home, options.env ?? {}),
        timeout: GIT_TIMEOUT_MS,
        killSignal: 'SIGKILL',
        maxBuffer: 16 * 1024 * 1024,
        encoding: 'utf8',
      },
      (error, stdout, stderr) => {
        if (error?.killed)
          resolve({
            code: 124,
            stdout,
            stderr: `${stderr}\n[git killed after ${GIT_TIMEOUT_MS} ms: a hang]`,
          });
        else resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      },
    );
    child.stdin?.on('error', () => {});
    child.stdin?.end(options.input ?? '');
  });
}

/** `size` seeded random bytes (incompressible: the pack is about as large). */
function randomBytes(seed: number, size: number): Buffer {
  const next = seededRandom(seed);
  const out = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) out.writeUInt32LE(Math.floor(next() * 4_294_967_296), i);
  for (let i = size - (size % 4); i < size; i++) out[i] = Math.floor(next() * 256);
  return out;
}

/** Every file under a bare repo's objects/ (loose objects, packs, quarantine and temp files). */
function objectFiles(bare: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, prefix: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const name = `${prefix}${entry.name}`;
      if (entry.isDirectory()) walk(join(dir, entry.name), `${name}/`);
      else out.push(name);
    }
  };
  walk(join(bare, 'objects'), '');
  return out.sort();
}

// ---------------------------------------------------------------- the tests

describe('git smart HTTP (the real git client) through keepip gateway: allowlist, basic auth, body size, request buffering', () => {
  const git = requireBinary('git');
  let dir: string;
  let home: string;
  let root: string;
  let work: string; // the one work repo: every pushed commit is on a branch of its own off `initial`
  let backend: GitBackend;
  let gw: TestGateway;
  let relay: Relay;
  let initial: string;
  /** The commits pushed, each on top of `initial`: new branches, so every push is a fast-forward. */
  const commits = { small: '', anonymous: '', denied: '', within: '', over: '' };

  /** git with the client options every run uses: no proxy, git.test resolved to our listeners. */
  const client = (args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) =>
    runGit(
      git,
      home,
      [
        '-c',
        'http.proxy=',
        '-c',
        `http.curloptResolve=git.test:${gw.httpPort}:127.0.0.1`,
        '-c',
        `http.curloptResolve=git.test:${relay.port}:127.0.0.1`,
        '-c',
        'http.postBuffer=65536',
        '-c',
        'credential.helper=',
        ...args,
      ],
      { cwd: work, ...options },
    );
  const local = (args: string[], cwd?: string) => runGit(git, home, args, cwd === undefined ? {} : { cwd });
  const url = (location: Location, how: { credentials?: boolean; port?: number } = {}) =>
    `http://${how.credentials ? `${USER}:${PASSWORD}@` : ''}git.test:${how.port ?? gw.httpPort}/${location}.git`;
  const bare = (location: Location) => join(root, `${location}.git`);
  /** The bare repo's branches and object files: what a push wrote. */
  const state = async (location: Location) => ({
    refs: (await local(['--git-dir', bare(location), 'for-each-ref', '--format=%(refname) %(objectname)']))
      .stdout,
    files: objectFiles(bare(location)),
  });
  const branch = async (location: Location, name: string) =>
    (
      await local(['--git-dir', bare(location), 'rev-parse', '--verify', '-q', `refs/heads/${name}`])
    ).stdout.trim();
  const ok = (result: GitResult, what: string) =>
    assert.equal(result.code, 0, `${what} failed (${result.code}):\n${result.stderr}\n${result.stdout}`);
  const push = (
    location: Location,
    commit: string,
    name: string,
    options: { credentials?: boolean; port?: number; config?: string[]; env?: Record<string, string> } = {},
  ) =>
    client(
      [...(options.config ?? []), 'push', url(location, options), `${commit}:refs/heads/${name}`],
      options.env ? { env: options.env } : {},
    );

  /** A commit of `bytes` as `name` on top of `initial` (plumbing: the work tree stays as it is). */
  async function commitOf(name: string, bytes: Buffer | string): Promise<string> {
    const file = join(dir, `blob-${name}`);
    writeFileSync(file, bytes);
    const blob = await local(['hash-object', '-w', file], work);
    ok(blob, 'git hash-object');
    const tree = await runGit(git, home, ['mktree'], {
      cwd: work,
      input: `100644 blob ${blob.stdout.trim()}\t${name}\n`,
    });
    ok(tree, 'git mktree');
    const commit = await local(['commit-tree', tree.stdout.trim(), '-p', initial, '-m', `add ${name}`], work);
    ok(commit, 'git commit-tree');
    return commit.stdout.trim();
  }

  /** The receive-pack POSTs the backend got since `from` that carried a pack (not git's 4-byte probe). */
  const packPosts = (location: Location, from: number) =>
    backend.seen.slice(from).filter(
      (r) =>
        r.method === 'POST' &&
        r.url.startsWith(`/${location}.git/git-receive-pack`) &&
        r.headers['content-length'] !== '4', // git's probe: a flush packet, "0000"
    );

  before(async () => {
    if (!existsSync(HTTP_BACKEND)) throw new Error(`${HTTP_BACKEND} is missing; apt-get install git`);
    dir = mkdtempSync(join(tmpdir(), 'keepip-git-'));
    home = join(dir, 'home');
    root = join(dir, 'repos');
    work = join(dir, 'work');
    mkdirSync(home);
    mkdirSync(root);
    // One work repo and its first commit, cloned bare to every location: the same start everywhere.
    ok(await local(['init', '-q', '-b', 'main', work]), 'git init');
    appendFileSync(join(work, '.git', 'config'), '[core]\n\tcompression = 0\n');
    writeFileSync(join(work, 'README.md'), '# gitea\n');
    ok(await local(['add', 'README.md'], work), 'git add');
    ok(await local(['commit', '-q', '-m', 'initial'], work), 'git commit');
    initial = (await local(['rev-parse', 'HEAD'], work)).stdout.trim();
    ok(await local(['clone', '-q', '--bare', work, join(root, 'template.git')]), 'git clone --bare');
    // The gateway authenticates (basic auth); the backend lets whoever it passes push, whether or not
    // the user header comes (git-http-backend otherwise enables receive-pack only with REMOTE_USER).
    // Level-0 zlib on both sides: the random blobs do not compress anyway, and the CPU stays low.
    appendFileSync(
      join(root, 'template.git', 'config'),
      '[http]\n\treceivepack = true\n[core]\n\tcompression = 0\n',
    );
    for (const location of Object.keys(LOCATIONS))
      cpSync(join(root, 'template.git'), bare(location as Location), { recursive: true });
    rmSync(join(root, 'template.git'), { recursive: true, force: true });
    commits.small = await commitOf('small.txt', 'a small change\n');
    commits.anonymous = await commitOf('anonymous.txt', 'no credentials\n');
    commits.denied = await commitOf('denied.txt', 'from outside the allowlist\n');
    commits.within = await commitOf('within.bin', randomBytes(SEED, WITHIN));
    commits.over = await commitOf('over.bin', randomBytes(SEED + 1, OVER));

    backend = await startGitBackend(root, home);
    const objects: K8sObject[] = [
      ...serviceWithEndpoints({ name: 'gitea-http', ports: [backend.port], servicePort: 3000 }),
      basicAuthSecret('gitea-users', { [USER]: PASSWORD }),
      controllerConfigMap({ 'proxy-set-headers': 'ingress-nginx/gitea-proxy-headers' }),
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'gitea-proxy-headers', namespace: 'ingress-nginx' },
        data: { 'X-WEBAUTH-USER': '$remote_user' },
      },
      ...Object.entries(LOCATIONS).map(([location, settings]) =>
        ingress({
          name: `gitea-${location}`,
          host: 'git.test',
          paths: [{ path: `/${location}.git`, service: 'gitea-http', port: 3000 }],
          annotations: {
            'whitelist-source-range': `${ALLOWED_SOURCE}/32`,
            'auth-type': 'basic',
            'auth-secret': 'gitea-users',
            'auth-realm': 'Gitea',
            'proxy-body-size': settings.bodySize,
            'proxy-request-buffering': settings.buffering,
          },
        }),
      ),
    ];
    const topology = topologyOf(objects);
    assert.deepEqual(
      topology.issues.map((i) => i.message),
      [],
      'the manifests load without issues',
    );
    gw = await startTestGateway(topology);
    relay = await startRelay(gw.httpPort, DENIED_SOURCE);
  });

  after(async () => {
    await relay?.close();
    await gw?.close();
    await backend?.close();
    if (dir && !process.env.KEEPIP_GIT_KEEP_DIR) rmSync(dir, { recursive: true, force: true });
  });

  /** A clone of on2m (credentials in the URL) that later tests fetch into. */
  let reader: string | null = null;
  async function readerClone(): Promise<string> {
    if (reader === null) {
      const target = join(dir, 'reader');
      ok(await client(['clone', url('on2m', { credentials: true }), target]), 'clone of on2m');
      reader = target;
    }
    return reader;
  }

  test('clone and fetch from the allowlisted source: 401 first, git retries with the URL credentials; Authorization is not passed on, a forged X-WEBAUTH-USER never reaches the backend', async () => {
    const from = backend.seen.length;
    const clone = await readerClone();
    assert.equal(readFileSync(join(clone, 'README.md'), 'utf8'), '# gitea\n');
    assert.equal((await local(['rev-parse', 'HEAD'], clone)).stdout.trim(), initial);
    // git sends its first request without credentials (curl's CURLAUTH_ANY): the gateway's 401 taught it Basic.
    await gw.access.waitFor(
      /^127\.0\.0\.1 - - \[.*"GET \/on2m\.git\/info\/refs\?service=git-upload-pack HTTP\/1\.1" 401 /,
    );
    await gw.access.waitFor(
      /^127\.0\.0\.1 - alice \[.*"GET \/on2m\.git\/info\/refs\?service=git-upload-pack HTTP\/1\.1" 200 /,
    );
    // fetch with a forged reverse-proxy user header: proxy-set-headers replaces it.
    const forge = ['-c', 'http.extraHeader=X-WEBAUTH-USER: admin'];
    ok(await client([...forge, 'fetch', url('on2m', { credentials: true })], { cwd: clone }), 'fetch');
    // and without credentials the forged header gets nobody in.
    const anonymous = await client([...forge, 'fetch', url('on2m')], { cwd: clone });
    assert.notEqual(anonymous.code, 0, anonymous.stderr);
    assert.match(
      anonymous.stderr,
      /could not read Username for 'http:\/\/git\.test:\d+': terminal prompts disabled/,
    );
    await backend.settled();
    const got = backend.seen.slice(from);
    assert.ok(
      got.filter((r) => r.url.includes('/info/refs')).length >= 2,
      'clone and fetch reached the backend',
    );
    for (const r of got) {
      assert.notEqual(
        r.remoteUser,
        'admin',
        `${r.method} ${r.url}: the client's own X-WEBAUTH-USER reached the backend`,
      );
      assert.equal(r.headers.authorization, undefined, 'Authorization is not passed on (as ingress-nginx)');
      assert.equal(r.headers['x-real-ip'], ALLOWED_SOURCE);
    }
  });

  test('proxy-set-headers `X-WEBAUTH-USER: $remote_user` (Gitea reverse-proxy auth) gives the backend the user the gateway checked (found here, fixed)', async () => {
    // docs/ingress-nginx-compat.md, proxy-set-headers: "nginx variables in values … are expanded as
    // nginx expands them"; nginx's $remote_user is the Basic user (here verified by auth_basic).
    const from = backend.seen.length;
    ok(await client(['ls-remote', url('on2m', { credentials: true })]), 'ls-remote');
    await backend.settled();
    const users = backend.seen
      .slice(from)
      .map((r) => `${r.method} ${r.url} user=${r.remoteUser ?? '(none)'}`);
    assert.ok(users.length >= 1, 'ls-remote reached the backend');
    assert.deepEqual(
      users.filter((line) => !line.endsWith(`user=${USER}`)),
      [],
      'requests that reached the backend without the user the gateway checked',
    );
  });

  test('a small push: 401, git asks its credential helper and retries; the commit lands and another clone fetches it', async () => {
    const helper = `!f() { test "$1" = get && echo username=${USER} && echo password=${PASSWORD}; }; f`;
    ok(
      await push('on2m', commits.small, 'small', { config: ['-c', `credential.helper=${helper}`] }),
      'push with a credential helper',
    );
    assert.equal(await branch('on2m', 'small'), commits.small);
    await gw.access.waitFor(/"GET \/on2m\.git\/info\/refs\?service=git-receive-pack HTTP\/1\.1" 401 /);
    await gw.access.waitFor(/ - alice \[.*"POST \/on2m\.git\/git-receive-pack HTTP\/1\.1" 200 /);
    const clone = await readerClone();
    ok(await client(['fetch', url('on2m', { credentials: true }), 'small'], { cwd: clone }), 'fetch');
    assert.equal((await local(['rev-parse', 'FETCH_HEAD'], clone)).stdout.trim(), commits.small);
  });

  test('a push without credentials, and with a wrong password: git reads the 401 and says so; nothing reaches the backend', async () => {
    await backend.settled();
    const before = await state('on0');
    const from = backend.seen.length;

    const anonymous = await push('on0', commits.anonymous, 'anonymous');
    assert.notEqual(anonymous.code, 0, anonymous.stderr);
    assert.match(
      anonymous.stderr,
      /could not read Username for 'http:\/\/git\.test:\d+': terminal prompts disabled/,
    );

    const wrong = await client([
      'push',
      `http://${USER}:wrong@git.test:${gw.httpPort}/on0.git`,
      `${commits.anonymous}:refs/heads/anonymous`,
    ]);
    assert.notEqual(wrong.code, 0, wrong.stderr);
    assert.match(wrong.stderr, /Authentication failed for 'http:\/\/git\.test:\d+\/on0\.git\/'/);

    await backend.settled();
    assert.deepEqual(
      backend.seen.slice(from).map((r) => `${r.method} ${r.url}`),
      [],
      'unauthenticated requests reached the backend',
    );
    assert.deepEqual(await state('on0'), before);
  });

  for (const location of ['on2m', 'off2m'] as const) {
    const buffering = LOCATIONS[location].buffering;
    test(`a push of a ${WITHIN}-byte pack under proxy-body-size 2m, buffering ${buffering}: chunked with Expect: 100-continue, it lands whole`, async () => {
      const trace = join(dir, `trace-within-${location}`);
      const from = backend.seen.length;
      // git 2.39 sends Expect: 100-continue only where GSS-Negotiate is offered; the header asks for it.
      const pushed = await push(location, commits.within, 'within', {
        credentials: true,
        config: ['-c', 'http.extraHeader=Expect: 100-continue'],
        env: { GIT_TRACE_CURL: trace, GIT_TRACE_CURL_NO_DATA: '1' },
      });
      ok(pushed, `push to ${location}`);
      assert.equal(await branch(location, 'within'), commits.within);
      // git streamed it chunked and waited for 100 Continue, which the gateway sent.
      const sent = readFileSync(trace, 'utf8');
      assert.match(
        sent,
        /=> Send header: Transfer-Encoding: chunked\n.*=> Send header: Expect: 100-continue\n/,
      );
      assert.match(
        sent,
        /=> Send header: Expect: 100-continue\n(.*\n)*?.*<= Recv header: HTTP\/1\.1 100 Continue/,
      );
      await backend.settled();
      const posts = packPosts(location, from);
      assert.equal(posts.length, 1, 'one pack upload reached the backend');
      const post = posts[0] as SeenRequest;
      assert.ok(
        post.complete && post.bytes > WITHIN,
        `the whole pack (${post.bytes} bytes) reached the backend`,
      );
      // ALLOWED.framing
      const framing =
        post.headers['transfer-encoding'] === 'chunked'
          ? 'chunked'
          : post.headers['content-length'] !== undefined
            ? 'content-length'
            : 'none';
      assert.equal(framing, ALLOWED.framing[buffering], ALLOWED.framing.reason);
      if (framing === 'content-length') assert.equal(post.headers['content-length'], String(post.bytes));
      assert.equal(post.headers.expect, undefined, 'Expect is not forwarded');
      if (buffering === 'on')
        await gw.errors.waitFor(
          /a client request body is buffered to a temporary file \/tmp\/keepip-body-.*POST \/on2m\.git\/git-receive-pack/,
        );
    });
  }

  // Over the limit, two ways: streamed chunked (http.postBuffer 64k), and in one piece with its
  // Content-Length declared (http.postBuffer 8m: git sends the body right after the head, no Expect, so
  // the 413 comes while git is still sending: the gateway must read the rest for git to see it).
  const overLimit = new Map<string, GitResult>();
  for (const framing of ['chunked', 'content-length'] as const) {
    for (const location of ['on2m', 'off2m'] as const) {
      const buffering = LOCATIONS[location].buffering;
      test(`a push of a ${OVER}-byte pack over proxy-body-size 2m (${framing}), buffering ${buffering}: git reads 413, nothing is written`, async () => {
        await backend.settled();
        const before = await state(location);
        const from = backend.seen.length;
        const trace = join(dir, `trace-over-${framing}-${location}`);
        const pushed = await push(location, commits.over, 'over', {
          credentials: true,
          config: framing === 'chunked' ? [] : ['-c', 'http.postBuffer=8388608'],
          env: { GIT_TRACE_CURL: trace, GIT_TRACE_CURL_NO_DATA: '1' },
        });
        overLimit.set(`${framing} ${buffering}`, pushed);
        assert.notEqual(pushed.code, 0, `the push over the limit succeeded:\n${pushed.stderr}`);
        assert.match(pushed.stderr, /HTTP 413/, `git could not read the 413:\n${pushed.stderr}`);
        const sent = readFileSync(trace, 'utf8');
        assert.match(
          sent,
          framing === 'chunked'
            ? /=> Send header: Transfer-Encoding: chunked\n/
            : /=> Send header: Content-Length: (\d{7})\n/,
        );
        await gw.access.waitFor(new RegExp(`"POST /${location}\\.git/git-receive-pack HTTP/1\\.1" 413 `));
        await backend.settled();
        assert.deepEqual(await state(location), before, 'the push wrote to the repo');
        const posts = packPosts(location, from);
        if (buffering === 'on' || framing === 'content-length') {
          // A declared length over the limit is 413 before anything is read, whatever the buffering.
          assert.deepEqual(
            posts.map((r) => `${r.bytes} bytes`),
            [],
            `the over-limit body reached the backend (ALLOWED.overLimitStart: ${ALLOWED.overLimitStart.on} with buffering on)`,
          );
        } else {
          // ALLOWED.overLimitStart: the start reached receive-pack, cut at the limit; it wrote nothing (above).
          assert.equal(posts.length, 1, ALLOWED.overLimitStart.reason);
          const post = posts[0] as SeenRequest;
          assert.ok(
            post.aborted && !post.complete && post.bytes <= LIMIT,
            `${post.bytes} bytes, complete=${post.complete}, aborted=${post.aborted}: ${ALLOWED.overLimitStart.reason}`,
          );
        }
      });
    }
  }

  test('buffering on and off, chunked or not: git sees the same failure for a push over the limit', () => {
    const shape = (r: GitResult) => ({
      code: r.code,
      lines: r.stderr
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => line.replaceAll(/:\d+\/(on|off)2m\.git/g, ':PORT/LOCATION.git')),
    });
    const seen = [...overLimit].map(([name, result]) => ({ name, ...shape(result) }));
    assert.equal(seen.length, 4, 'every over-limit push ran');
    if (process.env.KEEPIP_GIT_SHOW) console.log(JSON.stringify(seen, null, 1));
    const first = seen[0] as (typeof seen)[number];
    for (const other of seen.slice(1))
      assert.deepEqual({ ...other, name: first.name }, first, `${other.name} vs ${first.name}`);
  });

  for (const location of ['on0', 'off0'] as const) {
    const buffering = LOCATIONS[location].buffering;
    test(`proxy-body-size 0 (unlimited), buffering ${buffering}: the ${OVER}-byte pack lands`, async () => {
      ok(await push(location, commits.over, 'over', { credentials: true }), `push to ${location}`);
      assert.equal(await branch(location, 'over'), commits.over);
      if (location === 'off0') {
        // and comes back whole through the gateway (git checks every object's hash)
        const clone = await readerClone();
        ok(await client(['fetch', url(location, { credentials: true }), 'over'], { cwd: clone }), 'fetch');
        assert.equal((await local(['rev-parse', 'FETCH_HEAD'], clone)).stdout.trim(), commits.over);
      }
    });
  }

  test('from a source the allowlist refuses: clone and push get a 403 git reads, nothing reaches the backend, the repo is unchanged', async () => {
    await backend.settled();
    const before = await state('on2m');
    const from = backend.seen.length;

    const clone = await client([
      'clone',
      url('on2m', { credentials: true, port: relay.port }),
      join(dir, 'denied-clone'),
    ]);
    assert.notEqual(clone.code, 0, clone.stderr);
    assert.match(clone.stderr, /The requested URL returned error: 403/);

    const denied = await push('on2m', commits.denied, 'denied', { credentials: true, port: relay.port });
    assert.notEqual(denied.code, 0, denied.stderr);
    assert.match(denied.stderr, /The requested URL returned error: 403/);

    const anonymous = await push('on2m', commits.denied, 'denied', { port: relay.port });
    assert.notEqual(anonymous.code, 0, anonymous.stderr);
    assert.match(
      anonymous.stderr,
      /The requested URL returned error: 403/,
      'the allowlist answers before basic auth',
    );

    await gw.errors.waitFor(
      /access forbidden by rule, client: 127\.0\.0\.66, server: git\.test, request: "GET \/on2m\.git\/info\/refs\?service=git-receive-pack HTTP\/1\.1"/,
    );
    await backend.settled();
    assert.deepEqual(
      backend.seen.slice(from).map((r) => `${r.method} ${r.url}`),
      [],
      'requests from the refused source reached the backend',
    );
    assert.deepEqual(await state('on2m'), before);
  });
});
