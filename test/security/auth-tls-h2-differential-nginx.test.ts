// Client certificates (auth-tls-*) over HTTP/2: keepip's HTTPS listener (ALPN h2) against nginx 1.22 with
// `listen … ssl http2`, both set up as ingress-nginx renders the same Ingresses (rootfs/etc/nginx/template/
// nginx.tmpl: ssl_client_certificate, ssl_verify_client, ssl_verify_depth, error_page 495 496 = <page>,
// `if ( $ssl_client_s_dn !~ "<match-cn>" ) { return 403 "client certificate unauthorized"; }`, and the
// location's proxy_set_header ssl-client-cert / -verify / -subject-dn / -issuer-dn; a `*.x` host as
// buildServerName's single-label regex). test/security/auth-tls-differential-nginx.test.ts did HTTP/1.1
// in depth (chains, CRLs, match-cn, DNs: 339 probes) and noted HTTP/2 was not probed; its HTTP/1.1 cases
// are not redone here. It exports nothing: the judging (compare, the two ALLOWED rules it shares) is a
// copy of the minimum of that file's; the PKI is made by one sh script as there (test/helpers/pki.ts's
// makePki spawns one openssl at a time: 2 s of this file's budget).
//
// The claims checked:
//   docs/gateway.md, HTTP/2: "Every stream is adapted to the same request and response the HTTP/1.1
//     engine produces … and runs through the same pipeline, stage by stage … the route is chosen by
//     `:authority` (which also replaces a `host` field equal to it …: one host routes, logs and is
//     forwarded; a `host` that differs from `:authority` is a 400, `H2_HOST_CONFLICT`, as nginx answers it)"
//   docs/gateway.md, Client certificates: "asked for in the handshake only by hosts that verify them
//     (chosen by SNI among the same names as by Host: host names, wildcards, `server-alias`); 400 without
//     a required or with an unverified one, 403 on `auth-tls-match-cn`, 421 when the Host is not the SNI
//     name (port, case and a trailing dot aside) and the Host's host verifies client certificates (any
//     `auth-tls-verify-client` but `off`), whichever host the SNI chose, as nginx."
//   docs/ingress-nginx-compat.md: auth-tls-verify-client "`on`: no certificate 400, one that does not
//     verify 400; `optional`: none passes (ssl-client-verify NONE); `optional_no_ca`: one whose issuer is
//     unknown or untrusted passes (FAILED:…), an expired, revoked or badly signed one is 400 as nginx's;
//     `off`: none is asked for"; auth-tls-verify-depth "how many intermediate CAs may stand between the
//     client certificate and the CA, as OpenSSL's verify depth"; auth-tls-error-page "a 302 to it instead
//     of the 400"; auth-tls-pass-certificate-to-upstream "`ssl-client-cert`: the PEM URL-escaped, as
//     `$ssl_client_escaped_cert`"; auth-tls-match-cn "no match is 403. The backend and auth service
//     always get `ssl-client-verify`, `ssl-client-subject-dn`, `ssl-client-issuer-dn` on such a host (the
//     client's own are removed)"; difference 13 "A request whose Host is not the SNI name, to a host that
//     verifies client certificates, is 421, as nginx answers (the same host by another name included)."
//
// Hosts (one backend each, so the backend that got a request names the host that served it): on (pass
// the certificate), optional, optional_no_ca (pass), match-cn CN=admin, an error page, another CA, verify
// off, verify-depth 2, and a wildcard `*.h2tls.test` without auth-tls sharing the address and the
// (wildcard) certificate. Clients: no certificate, a valid one, CN=admin, an expired one, one from another
// CA, one two intermediates below the CA (longer than depth 1), and one with a single intermediate.
// Every request carries forged ssl-client-* fields (and an ssl_client_verify one).
//
// Groups:
//   single  one stream per connection (node:http2), every host × every client, against nginx; and the
//           same probe to keepip over HTTP/1.1, which keepip over h2 must answer exactly alike.
//   coalesce one connection per (SNI host, client), then streams to every host by :authority, first one
//           at a time (a refused stream must not end the connection), then all at once; plus :authority
//           spellings (port, case, trailing dot), `host` without `:authority`, `host` ≠ `:authority`.
//   curl    curl --http2 (libcurl's nghttp2, a non-Node client), a custom Host being its :authority.
// Compared per stream: the status (and Location), the backend reached, every ssl-client-* /
// ssl_client_* field it got. keepip reaching a backend nginx does not (or another), or handing it
// client-certificate fields nginx's would not get, is a FINDING (the test asserts nginx's answer); keepip
// stricter must be in ALLOWED (with the doc line), each rule checked to still be seen; anything else
// fails. Nothing is drawn at random: the probes are fixed lists. AUTHTLS_H2_DUMP=1 prints every pair.
//
// Found by this file and fixed (the coalescing test and the backend invariant assert nginx's answer):
//   depth: a certificate's ssl-client-verify on a stream (or HTTP/1.1 request) whose :authority is not
//     the SNI name was the handshake's verdict (OpenSSL, against the SNI host's CA) combined with the
//     verify-depth of the :authority's host (client-cert.ts clientCertificateView: exceedsVerifyDepth(chain,
//     model.verifyDepth) with the request host's model). Only a host with auth-tls-verify-client off can
//     be reached so (any other is 421), and there the backend gets a verdict no handshake gave: SNI
//     on.h2tls.test (depth 1) with a chain of two intermediates, then `:authority off2.h2tls.test`
//     (verify off, depth 2): ssl-client-verify SUCCESS where nginx sends FAILED:unable to get local issuer
//     certificate; SNI deep.h2tls.test (depth 2, chain verified) then `:authority off.h2tls.test` (depth
//     1): FAILED:certificate chain too long where nginx sends SUCCESS.
// Seen and equal on both (not a difference): a host without auth-tls (the wildcard) passes a client's own
// ssl-client-* fields to its backend, in nginx as in keepip.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2, { type ClientHttp2Session } from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import type { Topology } from '../../src/config/model.ts';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  ingress,
  type K8sObject,
  opaqueSecret,
  serviceWithEndpoints,
  tlsSecret,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import { requireBinary } from '../helpers/process.ts';
import { type NamedBackends, startNamedBackends } from './helpers.ts';

// ---------- the PKI ----------

const DOMAIN = 'h2tls.test';
const CLIENTS = ['valid', 'admin', 'expired', 'foreign', 'deep', 'mid'] as const;
type ClientName = (typeof CLIENTS)[number];
type Client = ClientName | 'none';
type CertName = 'server' | 'ca' | 'other' | 'i1' | 'i2' | ClientName;

/** Certificates by name: key, certificate, and the certificate followed by its issuers below the root. */
interface Material {
  key: Record<CertName, string>;
  cert: Record<CertName, string>;
  chain: Record<CertName, string>;
}

const EXT = {
  server: `basicConstraints=CA:false\nsubjectAltName=DNS:*.${DOMAIN},DNS:${DOMAIN}`,
  ca: 'basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash',
  leaf: 'basicConstraints=CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth',
} as const;

/** name, subject, issuer (none: self-signed), extensions; in the order of their levels. */
const CERTS: readonly (readonly [CertName, string, CertName | null, keyof typeof EXT])[] = [
  ['server', `/CN=*.${DOMAIN}`, null, 'server'],
  ['ca', '/CN=H2 Root CA/O=Keepip Test', null, 'ca'],
  ['other', '/CN=H2 Other CA', null, 'ca'],
  ['i1', '/CN=H2 Int 1', 'ca', 'ca'],
  ['valid', '/CN=client/O=Tenant', 'ca', 'leaf'],
  ['admin', '/CN=admin/O=Tenant', 'ca', 'leaf'],
  ['expired', '/CN=client/O=Tenant', 'ca', 'leaf'],
  ['foreign', '/CN=client/O=Tenant', 'other', 'leaf'],
  ['i2', '/CN=H2 Int 2', 'i1', 'ca'],
  ['mid', '/CN=mid/O=Tenant', 'i1', 'leaf'],
  ['deep', '/CN=deep/O=Tenant', 'i2', 'leaf'],
];

const quote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;

/**
 * The PKI in `dir` by one sh script, each level (a certificate after its issuer) in parallel: keys are
 * node:crypto's (P-256), certificates `openssl req -x509 [-CA]`, the expired one by `openssl ca` (the only
 * way OpenSSL 3.0 backdates). test/helpers/pki.ts's makePki does this one spawn at a time (2 s here).
 */
async function material(dir: string): Promise<Material> {
  const openssl = quote(requireBinary('openssl'));
  const key = {} as Record<CertName, string>;
  for (const [name] of CERTS) {
    key[name] = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    writeFileSync(join(dir, `${name}.key`), key[name]);
  }
  writeFileSync(
    join(dir, 'x.cnf'),
    `[req]\ndistinguished_name=dn\n[dn]\n${Object.entries(EXT)
      .map(([n, e]) => `[${n}]\n${e}\n`)
      .join('')}`,
  );
  writeFileSync(join(dir, 'ca.index'), '');
  writeFileSync(join(dir, 'ca.serial'), '7000\n');
  writeFileSync(
    join(dir, 'ca-db.cnf'),
    `[ca]\ndefault_ca=d\n[d]\ndatabase=${dir}/ca.index\nserial=${dir}/ca.serial\nnew_certs_dir=${dir}\ndefault_md=sha256\npolicy=p\n` +
      `unique_subject=no\n[p]\ncommonName=supplied\n[leaf]\n${EXT.leaf}\n`,
  );
  const job = ([name, subject, issuer, ext]: (typeof CERTS)[number], serial: number) => {
    const req = [openssl, 'req', '-new', '-key', `${name}.key`, '-subj', quote(subject), '-config', 'x.cnf'];
    const steps =
      name === 'expired'
        ? [
            [...req, '-out', 'expired.csr'].join(' '),
            [
              openssl,
              'ca',
              '-batch',
              '-config',
              'ca-db.cnf',
              '-cert',
              'ca.crt',
              '-keyfile',
              'ca.key',
              '-notext',
              '-extensions',
              'leaf',
              '-startdate',
              '20200101000000Z',
              '-enddate',
              '20200102000000Z',
              '-in',
              'expired.csr',
              '-out',
              'expired.crt',
            ].join(' '),
          ].join(' && ')
        : [
            ...req,
            '-x509',
            '-days',
            '2',
            '-extensions',
            ext,
            '-set_serial',
            String(serial),
            ...(issuer === null ? [] : ['-CA', `${issuer}.crt`, '-CAkey', `${issuer}.key`]),
            '-out',
            `${name}.crt`,
          ].join(' ');
    return `( ${steps} ) >${name}.log 2>&1 || echo ${name} >>failed &`;
  };
  const lines: string[] = [];
  const made = new Set<string>();
  while (made.size < CERTS.length) {
    const ready = CERTS.filter(([n, , issuer]) => !made.has(n) && (issuer === null || made.has(issuer)));
    lines.push(...ready.map((c) => job(c, 0x1000 + CERTS.indexOf(c))), 'wait');
    for (const [n] of ready) made.add(n);
  }
  lines.push('if [ -s failed ]; then for f in $(cat failed); do cat "$f.log"; done; exit 1; fi');
  await new Promise<void>((resolve, reject) => {
    execFile('/bin/sh', ['-c', lines.join('\n')], { cwd: dir, timeout: 30_000 }, (error, stdout) => {
      if (error) reject(new Error(`making the PKI failed: ${stdout}`));
      else resolve();
    });
  });
  const cert = {} as Record<CertName, string>;
  const chain = {} as Record<CertName, string>;
  for (const [name] of CERTS) cert[name] = readFileSync(join(dir, `${name}.crt`), 'utf8');
  for (const [name, , issuer] of CERTS) {
    let text = cert[name];
    for (let up = issuer; up !== null; up = CERTS.find(([n]) => n === up)![2])
      if (CERTS.find(([n]) => n === up)![2] !== null) text += cert[up];
    chain[name] = text;
  }
  return { key, cert, chain };
}

// ---------- the hosts ----------

type Verify = 'on' | 'off' | 'optional' | 'optional_no_ca';

interface Host {
  name: string;
  /** null: a host without auth-tls-*. */
  auth: {
    ca: 'ca' | 'other';
    verify: Verify;
    depth: number;
    pass?: boolean;
    errorPage?: boolean;
    matchCn?: string;
  } | null;
}

const ERROR_PAGE = `https://err.${DOMAIN}/denied`;

const HOSTS: readonly Host[] = [
  { name: 'on', auth: { ca: 'ca', verify: 'on', depth: 1, pass: true } },
  { name: 'opt', auth: { ca: 'ca', verify: 'optional', depth: 1 } },
  { name: 'nca', auth: { ca: 'ca', verify: 'optional_no_ca', depth: 1, pass: true } },
  { name: 'cn', auth: { ca: 'ca', verify: 'on', depth: 1, matchCn: 'CN=admin' } },
  { name: 'err', auth: { ca: 'ca', verify: 'on', depth: 1, errorPage: true } },
  { name: 'other', auth: { ca: 'other', verify: 'on', depth: 1 } },
  { name: 'off', auth: { ca: 'ca', verify: 'off', depth: 1 } },
  { name: 'off2', auth: { ca: 'ca', verify: 'off', depth: 2 } },
  { name: 'deep', auth: { ca: 'ca', verify: 'on', depth: 2 } },
  // The wildcard: no auth-tls, the same address and certificate.
  { name: 'wild', auth: null },
];
const HOST = new Map(HOSTS.map((h) => [h.name, h]));

/** A name no server has: the SNI of a client that names none of them (nginx then keeps no ssl_servername). */
const UNKNOWN_NAME = 'unknown.example';
/** The name a client sends for a host (the wildcard's: one instance of it; `unknown`: no host's). */
const nameOf = (host: string) =>
  host === 'wild' ? `x.${DOMAIN}` : host === 'unknown' ? UNKNOWN_NAME : `${host}.${DOMAIN}`;
/** The Ingress host. */
const ingressHost = (host: string) => (host === 'wild' ? `*.${DOMAIN}` : `${host}.${DOMAIN}`);

// ---------- the two configurations ----------

function nginxServer(dir: string, port: number, backend: number, h: Host): string {
  const a = h.auth;
  const name =
    h.name === 'wild' ? `"~^(?<subdomain>[\\w-]+)\\.${DOMAIN.replace('.', '\\.')}$"` : nameOf(h.name);
  const fields =
    a === null
      ? []
      : [
          ...(a.pass ? ['    proxy_set_header ssl-client-cert $ssl_client_escaped_cert;'] : []),
          '    proxy_set_header ssl-client-verify $ssl_client_verify;',
          '    proxy_set_header ssl-client-subject-dn $ssl_client_s_dn;',
          '    proxy_set_header ssl-client-issuer-dn $ssl_client_i_dn;',
        ];
  return [
    `server { listen 127.0.0.1:${port} ssl http2; server_name ${name};`,
    `  ssl_certificate ${dir}/server.crt; ssl_certificate_key ${dir}/server.key;`,
    ...(a === null
      ? []
      : [
          ...(a.matchCn === undefined
            ? []
            : [
                `  if ( $ssl_client_s_dn !~ ${JSON.stringify(a.matchCn)} ) { return 403 "client certificate unauthorized"; }`,
              ]),
          `  ssl_client_certificate ${dir}/${a.ca}.crt;`,
          `  ssl_verify_client ${a.verify};`,
          `  ssl_verify_depth ${a.depth};`,
          ...(a.errorPage ? [`  error_page 495 496 = ${ERROR_PAGE};`] : []),
        ]),
    '  location / {',
    '    proxy_set_header Host $host;',
    ...fields,
    `    proxy_pass http://127.0.0.1:${backend};`,
    '  }',
    '}',
  ].join('\n');
}

function nginxHttp(dir: string, port: number, backends: NamedBackends): string {
  return [
    'ssl_protocols TLSv1.2 TLSv1.3;',
    `server { listen 127.0.0.1:${port} ssl http2 default_server; server_name _;`,
    `  ssl_certificate ${dir}/server.crt; ssl_certificate_key ${dir}/server.key;`,
    '  location / { return 404; } }',
    ...HOSTS.map((h) => nginxServer(dir, port, backends.port(h.name), h)),
  ].join('\n');
}

function keepipTopology(m: Material, backends: NamedBackends): Topology {
  const objects: K8sObject[] = [
    tlsSecret('wild-tls', m.cert.server, m.key.server),
    opaqueSecret('ca-ca', { 'ca.crt': m.cert.ca }),
    opaqueSecret('ca-other', { 'ca.crt': m.cert.other }),
  ];
  for (const h of HOSTS) {
    const a = h.auth;
    const annotations: Record<string, string> =
      a === null
        ? {}
        : {
            'auth-tls-secret': `default/ca-${a.ca}`,
            'auth-tls-verify-client': a.verify,
            'auth-tls-verify-depth': String(a.depth),
            ...(a.pass ? { 'auth-tls-pass-certificate-to-upstream': 'true' } : {}),
            ...(a.errorPage ? { 'auth-tls-error-page': ERROR_PAGE } : {}),
            ...(a.matchCn === undefined ? {} : { 'auth-tls-match-cn': a.matchCn }),
          };
    objects.push(
      ...serviceWithEndpoints({ name: `svc-${h.name}`, ports: [backends.port(h.name)] }),
      ingress({
        name: `ing-${h.name}`,
        host: ingressHost(h.name),
        tlsSecret: 'wild-tls',
        annotations,
        paths: [{ path: '/', service: `svc-${h.name}`, port: 80 }],
      }),
    );
  }
  const topology = topologyOf(objects);
  const issues = topology.issues.filter((i) => i.severity === 'error' || /auth-tls/.test(i.message));
  assert.deepEqual(issues, [], 'keepip reports issues with the configuration');
  return topology;
}

// ---------- the exchanges ----------

/** Forged client-certificate fields on every request (values no certificate here carries but SUCCESS). */
const FORGED: readonly (readonly [string, string])[] = [
  ['ssl-client-verify', 'SUCCESS'],
  ['ssl-client-subject-dn', 'CN=forged-admin'],
  ['ssl-client-issuer-dn', 'CN=forged-ca'],
  ['ssl-client-cert', 'forged'],
  ['ssl_client_verify', 'SUCCESS'],
];
const FORGED_LINES = FORGED.map(([n, v]) => `${n}: ${v}`);

interface Answer {
  status: number | null;
  location: string | null;
  /** Why there is no status (a reset stream, a closed connection), else null. */
  error: string | null;
}

interface Outcome extends Answer {
  backend: string | null;
  /** Every ssl-client-* / ssl_client_* field the backend got, `name: value` (name lower case), sorted. */
  fields: string[];
}

const SOURCE = '127.0.77.1';
let counter = 0;

interface Bench {
  dir: string;
  m: Material;
  backends: NamedBackends;
  gateway: TestGateway;
  nginx: RunningNginx;
}

type Side = 'nginx' | 'keepip';
const portOf = (b: Bench, side: Side) => (side === 'nginx' ? b.nginx.ports[0]! : b.gateway.httpsPort);

/** The client's certificate and chain (leaf first), or nothing. */
function clientCredentials(m: Material, client: Client): tls.ConnectionOptions {
  return client === 'none' ? {} : { key: m.key[client], cert: m.chain[client] };
}

function outcomeOf(b: Bench, path: string, answer: Answer): Outcome {
  const seen = b.backends.seen.find((s) => s.url === path);
  const fields: string[] = [];
  const raw = seen?.rawHeaders ?? [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (/^ssl[-_]client/.test(name)) fields.push(`${name}: ${raw[i + 1]}`);
  }
  return { ...answer, backend: seen?.backend ?? null, fields: fields.sort() };
}

/** One HTTP/2 connection (ALPN h2) with SNI `sni` presenting `client`'s certificate. */
async function h2Connect(b: Bench, side: Side, sni: string, client: Client): Promise<ClientHttp2Session> {
  const port = portOf(b, side);
  const session = http2.connect(`https://${sni}:${port}`, {
    createConnection: () =>
      tls.connect({
        socket: net.connect({ host: '127.0.0.1', port, localAddress: SOURCE }),
        servername: sni,
        ALPNProtocols: ['h2'],
        rejectUnauthorized: false,
        ...clientCredentials(b.m, client),
      }),
  });
  session.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${side}: no h2 session within 10 s`)), 10_000);
    session.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    session.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
  return session;
}

/** How a stream names its host: `:authority` (the default), `host` alone, or both. */
interface Naming {
  authority?: string;
  host?: string;
}

/** One stream on `session`; answered, reset or cut by the connection's end, within 10 s. */
function h2Stream(session: ClientHttp2Session, path: string, naming: Naming): Promise<Answer> {
  const headers: http2.OutgoingHttpHeaders = { ':method': 'GET', ':path': path };
  if (naming.authority !== undefined) headers[':authority'] = naming.authority;
  if (naming.host !== undefined) headers.host = naming.host;
  for (const [n, v] of FORGED) headers[n] = v;
  return new Promise((resolve) => {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(headers, { endStream: true });
    } catch (error) {
      resolve({
        status: null,
        location: null,
        error: `request: ${(error as Error & { code?: string }).code}`,
      });
      return;
    }
    let status: number | null = null;
    let location: string | null = null;
    const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), 10_000);
    stream.on('response', (h) => {
      status = Number(h[':status']);
      location = typeof h.location === 'string' ? h.location : null;
    });
    stream.on('error', () => {});
    stream.resume();
    stream.on('close', () => {
      clearTimeout(timer);
      resolve({ status, location, error: status === null ? `no answer (RST ${stream.rstCode})` : null });
    });
  });
}

function closeSession(session: ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => {
    if (session.closed || session.destroyed) return resolve();
    const timer = setTimeout(() => {
      session.destroy();
      resolve();
    }, 5_000);
    session.close(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** One stream on a connection of its own: SNI and :authority the host's name. */
async function singleH2(b: Bench, side: Side, host: string, client: Client): Promise<Outcome> {
  const path = `/s${++counter}?via=${side}-h2`;
  const session = await h2Connect(b, side, nameOf(host), client);
  try {
    return outcomeOf(b, path, await h2Stream(session, path, { authority: nameOf(host) }));
  } finally {
    await closeSession(session);
  }
}

/** The same request over HTTP/1.1 (ALPN http/1.1), one connection. */
function singleH1(b: Bench, side: Side, host: string, client: Client): Promise<Outcome> {
  const path = `/s${++counter}?via=${side}-h1`;
  const forged = FORGED.map(([n, v]) => `${n}: ${v}\r\n`).join('');
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let connected = false;
    const socket = tls.connect({
      socket: net.connect({ host: '127.0.0.1', port: portOf(b, side), localAddress: SOURCE }),
      servername: nameOf(host),
      ALPNProtocols: ['http/1.1'],
      rejectUnauthorized: false,
      ...clientCredentials(b.m, client),
    });
    const timer = setTimeout(() => socket.destroy(), 10_000);
    socket.on('secureConnect', () => {
      connected = true;
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${nameOf(host)}\r\n${forged}Connection: close\r\n\r\n`);
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      const head = Buffer.concat(chunks).toString('latin1').split('\r\n\r\n')[0] ?? '';
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      const location = /\r\nlocation: *([^\r]*)/i.exec(head);
      resolve(
        outcomeOf(b, path, {
          status: status ? Number(status[1]) : null,
          location: location?.[1] ?? null,
          error: status ? null : connected ? 'no answer' : 'handshake failed',
        }),
      );
    });
  });
}

/** One curl probe: SNI host, client certificate, and a Host (curl's :authority over h2) or none. */
type CurlProbe = readonly [sni: string, client: Client, host?: string];

/**
 * curl --http2 (libcurl's nghttp2), one process for all `probes` (`--next` between them: a spawn costs
 * tens of ms): status and Location of each, by `-w`. curl reuses a connection only for the same name,
 * port and client certificate, so two probes alike in those share one (as a browser would).
 */
function curlH2(b: Bench, side: Side, probes: readonly CurlProbe[]): Promise<Outcome[]> {
  const port = portOf(b, side);
  const paths = probes.map(() => `/c${++counter}?via=${side}-curl`);
  const args = probes.flatMap(([sni, client, host], i) => [
    ...(i === 0 ? [] : ['--next']),
    '--http2',
    '-sk',
    '--max-time',
    '10',
    '--interface',
    SOURCE,
    '--resolve',
    `${nameOf(sni)}:${port}:127.0.0.1`,
    '-o',
    '/dev/null',
    '-w',
    'HTTP/%{http_version} %{http_code} [%{redirect_url}]\\n',
    ...(client === 'none'
      ? []
      : ['--cert', join(b.dir, `${client}.chain`), '--key', join(b.dir, `${client}.key`)]),
    ...(host === undefined ? [] : ['-H', `Host: ${host}`]),
    ...FORGED.flatMap(([n, v]) => ['-H', `${n}: ${v}`]),
    `https://${nameOf(sni)}:${port}${paths[i]}`,
  ]);
  return new Promise((resolve) => {
    execFile(requireBinary('curl'), args, { timeout: 30_000 }, (_error, stdout) => {
      const lines = String(stdout).split('\n');
      resolve(
        probes.map((_, i) => {
          const line = /^HTTP\/2 (\d{3}) \[(.*)\]$/.exec(lines[i] ?? '');
          return outcomeOf(b, paths[i]!, {
            status: line ? Number(line[1]) : null,
            location: line?.[2] ? line[2] : null,
            error: line ? null : `curl: ${lines[i] ?? 'nothing'}`,
          });
        }),
      );
    });
  });
}

// ---------- judging ----------

type Kind = 'unsafe' | 'stricter' | 'other' | 'allowed';
type Group = 'single' | 'h1-vs-h2' | 'coalesce' | 'curl';

interface Probe {
  group: Group;
  /** The connection's SNI host and client certificate. */
  sni: string;
  client: Client;
  /** The host the stream names (by :authority, host, or both), and how, as text. */
  target: string;
  naming: string;
  /** For a stream with `host` equal to `:authority`: keepip's answer to `:authority` alone on that connection. */
  twin?: Outcome;
}

interface Verdict {
  kind: Kind;
  group: Group;
  rule?: string;
  text: string;
}

interface Allowed {
  /** The doc line that says keepip differs so, and why that is acceptable. */
  reason: string;
  covers(p: Probe, n: Outcome, k: Outcome): boolean;
}

/** Differences where keepip is stricter on purpose or as documented (both as the HTTP/1.1 file's). */
const ALLOWED: Readonly<Record<string, Allowed>> = {
  'forged-field-removed': {
    reason:
      'docs/ingress-nginx-compat.md, auth-tls-match-cn: "The backend and auth service always get ' +
      "ssl-client-verify, ssl-client-subject-dn, ssl-client-issuer-dn on such a host (the client's own are " +
      'removed)". keepip removes a client-sent ssl-client-cert as well on a host without ' +
      'auth-tls-pass-certificate-to-upstream; nginx passes it on there (no proxy_set_header names it). ' +
      'As auth-tls-differential-nginx.test.ts ALLOWED forged-field-removed (HTTP/1.1)',
    covers: (_p, n, k) =>
      n.backend !== null &&
      n.backend === k.backend &&
      HOST.get(k.backend)?.auth != null &&
      k.fields.every((f) => n.fields.includes(f)) &&
      n.fields.filter((f) => !k.fields.includes(f)).every((f) => FORGED_LINES.includes(f)),
  },
  'depth-cut-chain-refused': {
    reason:
      'docs/ingress-nginx-compat.md, auth-tls-verify-depth: "how many intermediate CAs may stand between the ' +
      'client certificate and the CA, as OpenSSL\'s verify depth". keepip refuses (400) a chain to the CA ' +
      "with more intermediates than that under optional_no_ca too; nginx's OpenSSL stops building the chain " +
      'at the depth and reports an unknown issuer ("unable to get local issuer certificate"), which ' +
      'optional_no_ca lets through to the backend as FAILED. Stricter. As auth-tls-differential-nginx.test.ts ' +
      'ALLOWED depth-cut-chain-refused (HTTP/1.1)',
    covers: (p, n, k) => {
      const auth = HOST.get(p.target)?.auth;
      return (
        auth?.verify === 'optional_no_ca' &&
        p.client === 'deep' &&
        n.fields.includes('ssl-client-verify: FAILED:unable to get local issuer certificate') &&
        k.status === 400 &&
        k.backend === null
      );
    },
  },
  'host-equal-to-authority': {
    reason:
      'docs/gateway.md, HTTP/2: "the route is chosen by `:authority` (which also replaces a `host` field equal ' +
      'to it, RFC 9113 §8.3.1 …)". nginx 1.22 turns :authority into a Host line and refuses a client `host` ' +
      'as a duplicate (400) whatever its value; keepip serves the stream as it serves `:authority` alone on ' +
      'the same connection (checked: the twin stream, field by field). As h2-request-differential-nginx LOOSER',
    covers: (p, n, k) =>
      p.twin !== undefined && n.status === 400 && n.backend === null && compare(p.twin, k) === null,
  },
  'host-conflict-before-421': {
    reason:
      'docs/gateway.md, HTTP/2: "a `host` that differs from `:authority` is a 400, `H2_HOST_CONFLICT`, as ' +
      'nginx answers it". Both refuse; nginx reaches its 421 first when the :authority names a host that ' +
      'verifies client certificates other than the SNI name (it checks the :authority as it reads it, then ' +
      'the duplicate host), keepip answers the conflict first',
    covers: (p, n, k) =>
      /^:authority \S+ \+ host /.test(p.naming) &&
      n.status === 421 &&
      n.backend === null &&
      k.status === 400 &&
      k.backend === null,
  },
  'unknown-sni-421': {
    reason:
      'docs/gateway.md, Client certificates: "421 when the Host is not the SNI name (port, case and a trailing ' +
      'dot aside) and the Host\'s host verifies client certificates". nginx keeps the SNI only when a server ' +
      'has that name (ngx_http_ssl_servername), so after an SNI no server names it judges the stream by its ' +
      ":authority's server (no certificate was asked for: 400 under `on`, NONE under optional); keepip " +
      'answers 421 to any SNI that is not the :authority. Stricter',
    covers: (p, n, k) =>
      p.sni === 'unknown' &&
      HOST.get(p.target)?.auth != null &&
      n.status !== 421 &&
      k.status === 421 &&
      k.backend === null,
  },
  'depth-failed-text': {
    reason:
      "a chain longer than auth-tls-verify-depth, verified by the SNI host's handshake and carried by " +
      'coalescing to a host with auth-tls-verify-client off (which checks nothing): both backends get ' +
      'ssl-client-verify FAILED, keepip\'s text is "certificate chain too long" (its own depth count, ' +
      'certificate-chain.ts) where nginx\'s OpenSSL, stopped at the depth, says "unable to get local issuer ' +
      'certificate". The verdict is the same, only the reason text differs',
    covers: (p, n, k) => {
      if (HOST.get(p.target)?.auth?.verify !== 'off' || p.client !== 'deep') return false;
      if (n.backend === null || n.backend !== k.backend) return false;
      const swap = (f: string) =>
        f === 'ssl-client-verify: FAILED:unable to get local issuer certificate'
          ? 'ssl-client-verify: FAILED:certificate chain too long'
          : f;
      const expected = n.fields.map(swap).filter((f) => !FORGED_LINES.includes(f) || k.fields.includes(f));
      return expected.join('\n') === k.fields.join('\n') && !n.fields.every((f) => expected.includes(f));
    },
  },
};

function describeProbe(p: Probe): string {
  return `[${p.group}] SNI ${nameOf(p.sni)}, ${p.client === 'none' ? 'no certificate' : p.client}, ${p.naming}`;
}

const short = (f: string) => (f.length > 100 ? `${f.slice(0, 97)}...` : f);

function onlyIn(a: Outcome, b: Outcome): string {
  const own = a.fields.filter((f) => !b.fields.includes(f));
  return own.length === 0 ? '(nothing else)' : own.map((f) => JSON.stringify(short(f))).join(', ');
}

/** `ref` is what keepip must match (nginx, or keepip over HTTP/1.1), `k` keepip's answer. */
function compare(ref: Outcome, k: Outcome): { kind: Exclude<Kind, 'allowed'>; text: string } | null {
  const text =
    `status ${k.status ?? k.error} (backend ${k.backend ?? 'none'}) from keepip, ` +
    `${ref.status ?? ref.error} (backend ${ref.backend ?? 'none'}) expected`;
  if (k.backend !== null && k.backend !== ref.backend) return { kind: 'unsafe', text };
  if (k.backend === null && ref.backend !== null) return { kind: 'stricter', text };
  if (k.status !== ref.status || k.location !== ref.location)
    return { kind: 'other', text: `${text}; Location ${k.location} / ${ref.location}` };
  if (ref.fields.join('\n') === k.fields.join('\n')) return null;
  return {
    kind: 'unsafe',
    text: `the backend got\n      from keepip ${onlyIn(k, ref)}\n      expected    ${onlyIn(ref, k)}`,
  };
}

function judge(p: Probe, ref: Outcome, k: Outcome, allowed: boolean): Verdict | null {
  const found = compare(ref, k);
  if (found === null) return null;
  const text = `${describeProbe(p)}: ${found.text}`;
  if (allowed)
    for (const [rule, a] of Object.entries(ALLOWED))
      if (a.covers(p, ref, k)) return { kind: 'allowed', group: p.group, rule, text };
  return { ...found, group: p.group, text };
}

// ---------- the bench ----------

async function startBench(): Promise<Bench> {
  const dir = mkdtempSync(join(tmpdir(), 'keepip-authtls-h2-'));
  let backends: NamedBackends | undefined;
  try {
    const m = await material(dir);
    for (const c of CLIENTS) writeFileSync(join(dir, `${c}.chain`), m.chain[c]);
    backends = await startNamedBackends(HOSTS.map((h) => h.name));
    const ready = backends;
    const [gateway, nginx] = await Promise.allSettled([
      startTestGateway(keepipTopology(m, ready)),
      startNginx({
        freePorts: 1,
        http: (_dir, [port]) => nginxHttp(dir, port!, ready),
        waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
      }),
    ]);
    if (gateway.status === 'fulfilled' && nginx.status === 'fulfilled')
      return { dir, m, backends, gateway: gateway.value, nginx: nginx.value };
    if (gateway.status === 'fulfilled') await gateway.value.close();
    if (nginx.status === 'fulfilled') await nginx.value.stop();
    throw gateway.status === 'rejected' ? gateway.reason : (nginx as PromiseRejectedResult).reason;
  } catch (error) {
    await backends?.close();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

async function stopBench(b: Bench | undefined): Promise<void> {
  if (b === undefined) return;
  await b.nginx.stop();
  await b.gateway.close();
  await b.backends.close();
  rmSync(b.dir, { recursive: true, force: true });
}

interface Run {
  verdicts: Verdict[];
  /** Per group: nginx's answers (status or error) and how many reached a backend. */
  statuses: Map<Group, Map<string, number>>;
  admitted: Map<Group, number>;
  /** keepip's outcomes, with the probe, for the invariant checks. */
  keepip: { p: Probe; k: Outcome }[];
}

function record(run: Run, p: Probe, ref: Outcome | null, k: Outcome, allowed = true): void {
  if (process.env.AUTHTLS_H2_DUMP !== undefined)
    console.log(`${describeProbe(p)}\n  REF ${JSON.stringify(ref)}\n  K   ${JSON.stringify(k)}`);
  run.keepip.push({ p, k });
  if (ref === null) return;
  const statuses = run.statuses.get(p.group) ?? new Map<string, number>();
  const key = String(ref.status ?? ref.error);
  statuses.set(key, (statuses.get(key) ?? 0) + 1);
  run.statuses.set(p.group, statuses);
  if (ref.backend !== null) run.admitted.set(p.group, (run.admitted.get(p.group) ?? 0) + 1);
  const verdict = judge(p, ref, k, allowed);
  if (verdict !== null) run.verdicts.push(verdict);
}

/** Runs `jobs` at most `width` at a time. */
async function pool<T>(jobs: readonly T[], width: number, run: (job: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) await run(jobs[next++]!);
  };
  await Promise.all(Array.from({ length: width }, worker));
}

/** The clients of the single group: each host gets these, match-cn's also CN=admin, `on` also one intermediate. */
const SINGLE_CLIENTS: readonly Client[] = ['none', 'valid', 'expired', 'foreign', 'deep'];
const singleClients = (host: string): readonly Client[] =>
  host === 'cn' ? [...SINGLE_CLIENTS, 'admin'] : host === 'on' ? [...SINGLE_CLIENTS, 'mid'] : SINGLE_CLIENTS;

/** single and h1-vs-h2: every host × every client, one stream per connection. */
async function runSingle(b: Bench, run: Run): Promise<void> {
  // off2 differs from off by its depth only, which a connection of its own never asks about (verify off).
  const hosts = HOSTS.filter((h) => h.name !== 'off2');
  const jobs = hosts.flatMap((h) => singleClients(h.name).map((client) => ({ host: h.name, client })));
  await pool(jobs, 6, async ({ host, client }) => {
    const [n, k, k1] = await Promise.all([
      singleH2(b, 'nginx', host, client),
      singleH2(b, 'keepip', host, client),
      singleH1(b, 'keepip', host, client),
    ]);
    const p: Probe = {
      group: 'single',
      sni: host,
      client,
      target: host,
      naming: `:authority ${nameOf(host)}`,
    };
    record(run, p, n, k);
    // keepip over h2 answers as keepip over HTTP/1.1, with no allowance at all.
    record(run, { ...p, group: 'h1-vs-h2' }, k1, k, false);
  });
}

/** The connections of the coalescing group: SNI host × client. */
const COALESCE: readonly (readonly [string, Client])[] = [
  // A certificate accepted for `on`, one from another CA, a chain within `deep`'s depth 2 but not `on`'s 1.
  ['on', 'valid'],
  ['on', 'foreign'],
  ['on', 'deep'],
  ['deep', 'deep'],
  // optional: none passes, a valid one; optional_no_ca: another CA's passes.
  ['opt', 'none'],
  ['opt', 'valid'],
  ['nca', 'foreign'],
  // No certificate asked for: verify off, the wildcard without auth-tls, a name no host has.
  ['off', 'valid'],
  ['wild', 'none'],
  ['wild', 'valid'],
  ['unknown', 'none'],
];

/** The streams of one coalescing connection: every host by :authority, then spellings of the SNI's own and of `on`. */
function coalesceStreams(sni: string): { target: string; naming: Naming; text: string }[] {
  const own = nameOf(sni);
  const byAuthority = HOSTS.map((h) => ({
    target: h.name,
    naming: { authority: nameOf(h.name) },
    text: `:authority ${nameOf(h.name)}`,
  }));
  const spell = (target: string, naming: Naming) => ({
    target,
    naming,
    text: Object.entries(naming)
      .map(([k, v]) => `${k === 'authority' ? ':authority' : k} ${v}`)
      .join(' + '),
  });
  return [
    ...byAuthority,
    spell(sni, { authority: `${own}:443` }),
    spell(sni, { authority: own.toUpperCase() }),
    spell(sni, { authority: `${own}.` }),
    spell(sni, { host: own }),
    spell('on', { host: nameOf('on') }),
    spell('on', { authority: `${nameOf('on')}:8443` }),
    spell('on', { authority: `${nameOf('on').toUpperCase()}.` }),
    spell('other', { host: nameOf('other') }),
    spell('on', { authority: own, host: nameOf('on') }),
    spell('on', { authority: nameOf('on'), host: own }),
  ];
}

/** One connection to `side`: the streams one at a time, then all of them at once. */
async function coalesceOn(
  b: Bench,
  side: Side,
  sni: string,
  client: Client,
  streams: { naming: Naming }[],
): Promise<{ sequential: Outcome[]; together: Outcome[] }> {
  const session = await h2Connect(b, side, nameOf(sni), client);
  try {
    const sequential: Outcome[] = [];
    for (const s of streams) {
      const path = `/q${++counter}?via=${side}`;
      sequential.push(outcomeOf(b, path, await h2Stream(session, path, s.naming)));
    }
    const paths = streams.map(() => `/t${++counter}?via=${side}`);
    const answers = await Promise.all(streams.map((s, i) => h2Stream(session, paths[i]!, s.naming)));
    return { sequential, together: answers.map((a, i) => outcomeOf(b, paths[i]!, a)) };
  } finally {
    await closeSession(session);
  }
}

async function runCoalesce(b: Bench, run: Run): Promise<void> {
  await pool(COALESCE, 6, async ([sni, client]) => {
    const streams = coalesceStreams(sni);
    const [n, k] = await Promise.all([
      coalesceOn(b, 'nginx', sni, client, streams),
      coalesceOn(b, 'keepip', sni, client, streams),
    ]);
    // A stream naming its host by `:authority` alone, for each host (the first streams).
    const alone = (target: string) => HOSTS.findIndex((h) => h.name === target);
    streams.forEach((s, i) => {
      const equal =
        s.naming.authority !== undefined &&
        s.naming.authority.toLowerCase() === s.naming.host?.toLowerCase() &&
        alone(s.target) >= 0;
      const p = (order: string, twin: Outcome | undefined): Probe => ({
        group: 'coalesce',
        sni,
        client,
        target: s.target,
        naming: `${s.text} (${order})`,
        ...(equal && twin !== undefined ? { twin } : {}),
      });
      record(run, p('one at a time', k.sequential[alone(s.target)]), n.sequential[i]!, k.sequential[i]!);
      record(run, p('all at once', k.together[alone(s.target)]), n.together[i]!, k.together[i]!);
    });
  });
}

/** curl --http2: [SNI host, client, Host (curl's :authority) or none]. */
const CURL_PROBES: readonly CurlProbe[] = [
  ['on', 'valid'],
  ['on', 'none'],
  ['on', 'expired'],
  ['on', 'foreign'],
  ['on', 'deep'],
  ['deep', 'deep'],
  ['err', 'none'],
  ['err', 'foreign'],
  ['cn', 'admin'],
  ['cn', 'valid'],
  ['nca', 'foreign'],
  ['opt', 'none'],
  ['off', 'valid'],
  ['wild', 'none'],
  ['on', 'valid', nameOf('other')],
  ['on', 'valid', nameOf('cn')],
  ['on', 'valid', nameOf('wild')],
  ['wild', 'none', nameOf('on')],
  ['wild', 'valid', nameOf('opt')],
  ['off', 'none', nameOf('on')],
  ['opt', 'none', nameOf('off')],
  ['unknown', 'valid', nameOf('opt')],
  ['unknown', 'none', nameOf('on')],
  ['unknown', 'valid', nameOf('wild')],
];

async function runCurl(b: Bench, run: Run): Promise<void> {
  const [n, k] = await Promise.all([curlH2(b, 'nginx', CURL_PROBES), curlH2(b, 'keepip', CURL_PROBES)]);
  CURL_PROBES.forEach(([sni, client, host], i) => {
    const target = host === undefined ? sni : [...HOST.keys()].find((h) => nameOf(h) === host)!;
    const naming = host === undefined ? 'curl' : `curl -H 'Host: ${host}'`;
    record(run, { group: 'curl', sni, client, target, naming }, n[i]!, k[i]!);
  });
}

/** Whether `client`'s certificate verifies in the handshake of the SNI host `sni` (its CA and depth). */
function verifiesAt(client: Client, sni: string): boolean {
  const auth = HOST.get(sni)?.auth;
  if (auth == null || auth.verify === 'off' || client === 'none' || client === 'expired') return false;
  if (client === 'foreign') return auth.ca === 'other';
  if (auth.ca !== 'ca') return false;
  return client === 'deep' ? auth.depth >= 2 : true;
}

function listed(verdicts: readonly Verdict[]): string {
  const shown = verdicts.slice(0, 20).map((v) => `  [${v.kind}] ${v.text}`);
  return `${verdicts.length} difference(s)\n${shown.join('\n')}`;
}

describe('auth-tls-* over HTTP/2 against nginx 1.22 (listen … ssl http2, ingress-nginx template)', () => {
  let bench: Bench | undefined;
  const run: Run = { verdicts: [], statuses: new Map(), admitted: new Map(), keepip: [] };

  before(async () => {
    bench = await startBench();
    const b = bench;
    await Promise.all([runSingle(b, run), runCoalesce(b, run), runCurl(b, run)]);
  });
  after(() => stopBench(bench));

  const of = (group: Group) => run.verdicts.filter((v) => v.group === group && v.kind !== 'allowed');

  it('one stream per connection (node:http2), every host × every client: as nginx (or ALLOWED)', () => {
    assert.equal(of('single').length, 0, listed(of('single')));
  });

  it('keepip over h2 answers each of those as keepip over HTTP/1.1 (status, backend, every ssl-client-* field)', () => {
    assert.equal(of('h1-vs-h2').length, 0, listed(of('h1-vs-h2')));
  });

  it('several streams on one connection, other hosts by :authority / host (coalescing): as nginx', () => {
    assert.equal(of('coalesce').length, 0, listed(of('coalesce')));
  });

  it('curl --http2 (libcurl nghttp2), a custom Host as :authority: as nginx', () => {
    assert.equal(of('curl').length, 0, listed(of('curl')));
  });

  it("a backend of a host with auth-tls-secret never gets a client's own ssl-client-* value, nor SUCCESS for a certificate the handshake did not verify", () => {
    const leaks = run.keepip.filter(({ k }) => {
      if (k.backend === null || HOST.get(k.backend)?.auth == null) return false;
      return k.fields.some((f) => /forged/.test(f) || f.startsWith('ssl_client'));
    });
    const unverified = run.keepip.filter(
      ({ p, k }) =>
        k.backend !== null &&
        HOST.get(k.backend)?.auth != null &&
        !verifiesAt(p.client, p.sni) &&
        k.fields.includes('ssl-client-verify: SUCCESS'),
    );
    const text = [...leaks, ...unverified]
      .slice(0, 10)
      .map(({ p, k }) => `  ${describeProbe(p)} -> ${k.backend}: ${k.fields.map(short).join(', ')}`);
    assert.equal(leaks.length + unverified.length, 0, text.join('\n'));
  });

  it('the comparison is not vacuous: nginx admitted and refused (400, 403, 421, 302) in every group', (t) => {
    for (const group of ['single', 'coalesce', 'curl'] as const) {
      const statuses = run.statuses.get(group) ?? new Map<string, number>();
      t.diagnostic(
        `${group}: ${JSON.stringify(Object.fromEntries(statuses))}, admitted ${run.admitted.get(group)}`,
      );
      assert.ok((run.admitted.get(group) ?? 0) > 0, `${group}: nginx admitted nothing`);
      for (const status of group === 'single' ? ['200', '400', '403', '302'] : ['200', '400', '421'])
        assert.ok((statuses.get(status) ?? 0) > 0, `${group}: nginx never answered ${status}`);
    }
    const single = run.statuses.get('single')!;
    assert.equal(single.get('421'), undefined, 'single: a 421 where SNI and :authority are one name');
  });

  it('each ALLOWED difference is still seen (the table does not rot)', (t) => {
    for (const rule of Object.keys(ALLOWED)) {
      const seen = run.verdicts.filter((v) => v.rule === rule).length;
      t.diagnostic(`${rule}: ${seen} probe(s)`);
      assert.ok(seen > 0, `ALLOWED ${rule} is no longer seen: drop it`);
    }
  });
});
