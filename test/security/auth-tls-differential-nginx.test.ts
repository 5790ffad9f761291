// Client certificates (auth-tls-*) in depth: keepip's HTTPS listener against nginx 1.22 set up as
// ingress-nginx's template renders a host with auth-tls-secret (rootfs/etc/nginx/template/nginx.tmpl:
// `if ( $ssl_client_s_dn !~ "<match-cn>" ) { return 403 }`, ssl_client_certificate, ssl_verify_client,
// ssl_verify_depth, ssl_crl, error_page 495 496, and the location's proxy_set_header ssl-client-cert
// $ssl_client_escaped_cert / ssl-client-verify / ssl-client-subject-dn / ssl-client-issuer-dn;
// internal/ingress/annotations/authtls: a verify-depth of 0 is 1, match-cn must start with "CN=").
// test/security/tls-sni-differential-nginx.test.ts compares SNI x verify modes x a valid / other-CA /
// expired certificate; this file takes what that one does not: CRLs, chains and verify depth, match-cn
// against odd subjects, the exact DN and certificate text the backend gets, forged ssl-client-* fields,
// key types, key usage and CA constraints, cross-signed paths.
//
// The claims checked (docs/ingress-nginx-compat.md):
//   auth-tls-secret: "with `ca.crl`, a revoked certificate is refused (400) and, as nginx's ssl_crl,
//     every CA of the chain needs its CRL there"
//   auth-tls-verify-client: "`on`: no certificate 400, one that does not verify 400; `optional`: none
//     passes (ssl-client-verify NONE); `optional_no_ca`: one whose issuer is unknown or untrusted passes
//     (FAILED:…), an expired, revoked or badly signed one is 400 as nginx's; `off`: none is asked for"
//   auth-tls-verify-depth: "how many intermediate CAs may stand between the client certificate and the
//     CA, as OpenSSL's verify depth: 1 takes a certificate signed by the CA or by one intermediate the
//     client sends" (0 is 1, as ingress-nginx)
//   auth-tls-pass-certificate-to-upstream: "`ssl-client-cert`: the PEM URL-escaped, as
//     `$ssl_client_escaped_cert`"
//   auth-tls-match-cn: "matched (unanchored) against the subject DN in RFC 2253 form (`CN=x,O=y`): no
//     match is 403. The backend and auth service always get `ssl-client-verify`,
//     `ssl-client-subject-dn`, `ssl-client-issuer-dn` on such a host (the client's own are removed)"
//   README: "Every regex an Ingress or the ConfigMap gives (… auth-tls-match-cn …) means what PCRE means"
//   docs/gateway.md: "400 without a required or with an unverified one, 403 on `auth-tls-match-cn`"
//
// Compared per probe (one TLS connection to each): the handshake, the status (and Location), the backend
// that got the request and every ssl-client-* / ssl_client_* field it got, byte for byte. A difference
// where keepip admits a client nginx refuses, or hands the backend client-certificate fields nginx's
// would not, is unsafe (a FINDING: the test asserts nginx's answer). A difference where keepip is
// stricter must be in ALLOWED with the doc line that says so; anything else fails. AUTHTLS_DUMP=1 prints
// every pair. The PKI is made once per run by openssl in one sh script (keys by node:crypto), the probes
// are a fixed list: nothing else is drawn at random.
//
// FINDINGS when this was written, all mended since (certificate-chain.ts links and counts only a chain
// that verifies; tls.ts reads every CRL of ca.crl; distinguished-name.ts prints the DN from the DER):
//   chains: verify-depth is checked on the chain Node links from the certificates the client sent
//     (getPeerCertificate(true), certificate-chain.ts), not on the chain OpenSSL verified: a client that
//     sends leaf, Int 3, a decoy named "Int 2" (expired, issued by anyone, Int 2's key id), then the real
//     Int 2 and Int 1 is verified by OpenSSL through the real ones (5 certificates, depth 3) while the
//     linked chain stops at the decoy (3): admitted (200, SUCCESS) at depth 1 where nginx answers 400.
//   crl: only the first CRL of ca.crl is loaded (one PEM string as Node's `crl`): with a CRL per CA, as
//     the doc asks, clients under any other CA are refused (400) where nginx admits them.
//   dn, match-cn: ssl-client-subject-dn / -issuer-dn are Node's X509Certificate.subject (already RFC 2253
//     escaped, UTF-8, unknown attributes as text, multi-valued RDNs as "A=x + B=y") escaped once more,
//     not OpenSSL's XN_FLAG_RFC2253 text nginx writes (\C3\B6 for non-ASCII, #hex for unknown OIDs,
//     "CN=a+OU=b"); match-cn runs on that text: a subject 1.3.6.1.4.1.55555.1="x,CN=admin" passes
//     `CN=admin` and `CN=admin(,|$)`, {CN=admin+OU=ops} passes `CN=admin(,|$)`, CN=Jösé passes `CN=Jösé`
//     (nginx: 403 for each), and a subject beyond U+00FF is a 502.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import type { Topology } from '../../src/config/model.ts';
import type { TestGateway } from '../fixtures/gateway/harness.ts';
import type { K8sObject } from '../fixtures/gateway/manifests.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import { requireBinary } from '../helpers/process.ts';
import type { NamedBackends } from './helpers.ts';

/** The gateway's side: imported while openssl makes the PKI (loading them takes about a second). */
async function gatewayModules() {
  const [harness, manifests, helpers] = await Promise.all([
    import('../fixtures/gateway/harness.ts'),
    import('../fixtures/gateway/manifests.ts'),
    import('./helpers.ts'),
  ]);
  return { ...harness, ...manifests, ...helpers };
}
type GatewayModules = Awaited<ReturnType<typeof gatewayModules>>;

// ---------- the PKI ----------

type KeyKind = 'p256' | 'p384' | 'ed25519' | 'rsa-pss';

/** Int 2's subject key identifier, fixed so that the decoy can carry it too. */
const I2_KEY_ID = '12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:BC:DE:F0:12:34:56:78';
const AKI = 'authorityKeyIdentifier=keyid';
const CA_USAGE = 'keyUsage=critical,keyCertSign,cRLSign';
const LEAF_USAGE = 'keyUsage=critical,digitalSignature';
const lines = (...parts: string[]) => parts.join('\n');

/** Extension sections by kind (`openssl req -x509 -extensions x`). */
const EXT = {
  ca: lines('basicConstraints=critical,CA:true', CA_USAGE, 'subjectKeyIdentifier=hash', AKI),
  i2: lines('basicConstraints=critical,CA:true', CA_USAGE, `subjectKeyIdentifier=${I2_KEY_ID}`, AKI),
  leaf: lines('basicConstraints=CA:false', LEAF_USAGE, 'extendedKeyUsage=clientAuth', AKI),
  /** Under an issuer without a key identifier (a v1 certificate). */
  leafNoKeyId: lines('basicConstraints=CA:false', LEAF_USAGE, 'extendedKeyUsage=clientAuth'),
  serverAuthOnly: lines('basicConstraints=CA:false', LEAF_USAGE, 'extendedKeyUsage=serverAuth', AKI),
  certSignOnly: lines('basicConstraints=CA:false', 'keyUsage=critical,keyCertSign', AKI),
  caLeaf: lines('basicConstraints=critical,CA:true', 'keyUsage=critical,digitalSignature,keyCertSign', AKI),
  notCa: lines('basicConstraints=critical,CA:false', CA_USAGE, 'subjectKeyIdentifier=hash', AKI),
  pathLen0: lines('basicConstraints=critical,CA:true,pathlen:0', CA_USAGE, 'subjectKeyIdentifier=hash', AKI),
  server: lines(
    'basicConstraints=CA:false',
    LEAF_USAGE,
    'extendedKeyUsage=serverAuth',
    'subjectAltName=DNS:*.atls.test',
  ),
  noCertSign: lines(
    'basicConstraints=critical,CA:true',
    'keyUsage=critical,digitalSignature,cRLSign',
    'subjectKeyIdentifier=hash',
    AKI,
  ),
} as const;

interface CertSpec {
  name: string;
  /** `-subj` (UTF-8; `+` joins a multi-valued RDN, `\` escapes; testAttr is an OID no one else knows). */
  subject: string;
  /** The certificate that signs it; absent: self-signed. */
  issuer?: string;
  /** Extension lines; null: an X.509 v1 certificate (no extensions). */
  ext: string | null;
  /** A new key of this kind (default P-256), or the key of the named certificate. */
  key?: KeyKind | { of: string };
  serial: number;
  /** Valid in 2020 only (`openssl ca` backdates it). */
  expired?: boolean;
}

/** Serials in hex, as the CA databases behind the CRLs list them. */
const serialHex = (n: number) => n.toString(16).toUpperCase().padStart(4, '0');

const leaf = (name: string, subject: string, issuer: string, serial: number, more: Partial<CertSpec> = {}) =>
  ({ name, subject, issuer, ext: EXT.leaf, serial, ...more }) satisfies CertSpec;
const ca = (
  name: string,
  subject: string,
  issuer: string | undefined,
  serial: number,
  ext: string = EXT.ca,
) => ({ name, subject, ...(issuer === undefined ? {} : { issuer }), ext, serial }) satisfies CertSpec;

const CERTS: readonly CertSpec[] = [
  // nginx's certificate (keepip serves its generated one): the client does not check it.
  ca('server', '/CN=atls.test', undefined, 0x0f, EXT.server),
  ca('root', '/CN=Root CA/O=Keepip Test', undefined, 0x10),
  ca('other', '/CN=Other CA', undefined, 0x11),
  ca('xroot', '/CN=X Root', undefined, 0x12),
  ca('nobody', '/CN=Nobody', undefined, 0x13),
  { ...ca('edroot', '/CN=Ed25519 Root', undefined, 0x14), key: 'ed25519' },
  { ...ca('pssroot', '/CN=PSS Root', undefined, 0x15), key: 'rsa-pss' },
  ca('ncroot', '/CN=Root Without CA', undefined, 0x16, EXT.notCa),
  // root -> i1 -> i2 -> i3; i1r is revoked by root's CRL.
  ca('i1', '/CN=Int 1', 'root', 0x101),
  ca('i2', '/CN=Int 2', 'i1', 0x102, EXT.i2),
  ca('i3', '/CN=Int 3', 'i2', 0x103),
  ca('i1r', '/CN=Int 1 Revoked', 'root', 0x104),
  ca('oi1', '/CN=Other Int 1', 'other', 0x105),
  ca('oi2', '/CN=Other Int 2', 'oi1', 0x106),
  ca('iw', '/O=Evil\\, Inc./CN=Issuing+OU=x\\+y', 'root', 0x107),
  ca('ncint', '/CN=Int Not CA', 'root', 0x108, EXT.notCa),
  { ...ca('v1int', '/CN=Int V1', 'root', 0x109), ext: null },
  ca('pl0', '/CN=Int Pathlen 0', 'root', 0x10a, EXT.pathLen0),
  ca('pl0sub', '/CN=Int Under Pathlen 0', 'pl0', 0x10b),
  ca('noksign', '/CN=Int No CertSign', 'root', 0x10c, EXT.noCertSign),
  // Cross-signed: one key and one name, two issuers.
  ca('xint-x', '/CN=X Int', 'xroot', 0x10d),
  { ...ca('xint-r', '/CN=X Int', 'root', 0x10e), key: { of: 'xint-x' } },
  // A decoy: named as Int 2, with Int 2's key id, issued by Nobody, expired. OpenSSL passes over it for
  // the real Int 2 the client also sends; a walk of the sent certificates that takes the first one
  // named as the issuer stops at it.
  { ...ca('decoy', '/CN=Int 2', 'nobody', 0x10f, EXT.i2), expired: true },
  // Clients at each depth, revoked ones, one under the revoked intermediate, another CA's, a cross-signed one.
  leaf('c0', '/CN=client0/O=Tenant', 'root', 0x1000),
  leaf('c1', '/CN=client1/O=Tenant', 'i1', 0x1001),
  leaf('c2', '/CN=client2/O=Tenant', 'i2', 0x1002),
  leaf('c3', '/CN=client3/O=Tenant', 'i3', 0x1003),
  leaf('rev0', '/CN=revoked0', 'root', 0x1004),
  leaf('rev1', '/CN=revoked1', 'i1', 0x1005),
  leaf('c1r', '/CN=under-revoked-int', 'i1r', 0x1006),
  leaf('o2', '/CN=client0/O=Tenant', 'oi2', 0x1007),
  leaf('x', '/CN=cross', 'xint-x', 0x1008),
  // Subjects for match-cn and the DN fields.
  leaf('s-admin', '/O=Tenant/CN=admin', 'root', 0x2000),
  leaf('s-admin-bare', '/CN=admin', 'root', 0x2001),
  leaf('s-o-cn', '/CN=user/O=CN=admin', 'root', 0x2002),
  leaf('s-comma', '/CN=admin\\, O=x', 'root', 0x2003),
  leaf('s-plus', '/CN=admin\\+OU=ops', 'root', 0x2004),
  leaf('s-multi', '/O=Tenant/CN=admin+OU=ops', 'root', 0x2005),
  leaf('s-utf8', '/CN=Jösé/O=Zürich', 'root', 0x2006),
  leaf('s-wide', '/CN=\u010aadmin', 'root', 0x2007),
  leaf('s-email', '/CN=user/emailAddress=admin@example.com', 'root', 0x2008),
  leaf('s-oid', '/CN=user/testAttr=x\\,CN=admin', 'root', 0x2009),
  leaf('s-special', '/O=#hash/CN=\\ lead"q<>;\\\\ ', 'root', 0x200a),
  leaf('s-tab', '/CN=ad\tmin', 'root', 0x200b),
  leaf('s-dc', '/DC=com/DC=example/UID=jdoe/CN=admin', 'root', 0x200c),
  leaf('s-case', '/CN=Admin', 'root', 0x200d),
  leaf('s-under-iw', '/CN=admin', 'iw', 0x200e),
  // Key types.
  leaf('k-p384', '/CN=p384', 'root', 0x3000, { key: 'p384' }),
  leaf('k-ed25519', '/CN=ed25519', 'root', 0x3001, { key: 'ed25519' }),
  leaf('k-pss', '/CN=rsa-pss', 'root', 0x3002, { key: { of: 'pssroot' } }),
  leaf('k-edca', '/CN=under-ed25519', 'edroot', 0x3003),
  leaf('k-pssca', '/CN=under-pss', 'pssroot', 0x3004),
  // Key usage and CA constraints.
  leaf('e-server', '/CN=server-auth-only', 'root', 0x4000, { ext: EXT.serverAuthOnly }),
  leaf('e-certsign', '/CN=certsign-only', 'root', 0x4001, { ext: EXT.certSignOnly }),
  leaf('e-v1', '/CN=v1-leaf', 'root', 0x4002, { ext: null }),
  leaf('e-ca-leaf', '/CN=ca-as-leaf', 'root', 0x4003, { ext: EXT.caLeaf }),
  leaf('e-ncint', '/CN=under-not-ca', 'ncint', 0x4004),
  leaf('e-v1int', '/CN=under-v1', 'v1int', 0x4005, { ext: EXT.leafNoKeyId }),
  leaf('e-pl0sub', '/CN=under-pathlen', 'pl0sub', 0x4006),
  leaf('e-noksign', '/CN=under-no-certsign', 'noksign', 0x4007),
  leaf('e-ncroot', '/CN=under-root-not-ca', 'ncroot', 0x4008),
];

const SPEC = new Map(CERTS.map((c) => [c.name, c]));

/** CRLs: the issuing CA, the certificates it revokes, and whether it is past its nextUpdate. */
const CRLS = {
  root: { ca: 'root', revoked: ['rev0', 'i1r'], expired: false },
  'root-expired': { ca: 'root', revoked: ['rev0', 'i1r'], expired: true },
  i1: { ca: 'i1', revoked: ['rev1'], expired: false },
  i2: { ca: 'i2', revoked: [], expired: false },
  i3: { ca: 'i3', revoked: [], expired: false },
  i1r: { ca: 'i1r', revoked: [], expired: false },
  other: { ca: 'other', revoked: [], expired: false },
} as const satisfies Record<string, { ca: string; revoked: readonly string[]; expired: boolean }>;
type CrlName = keyof typeof CRLS;

interface Material {
  dir: string;
  cert: Map<string, string>;
  key: Map<string, string>;
  crl: Map<CrlName, string>;
}

const OPENSSL_BASE = [
  'oid_section=oids',
  '[oids]',
  'testAttr=1.3.6.1.4.1.55555.1',
  '[req]',
  'distinguished_name=dn',
  'utf8=yes',
  'string_mask=utf8only',
  '[dn]',
  '',
].join('\n');

/** Runs `script` with sh in `cwd`: one spawn for the whole PKI (a spawn from a large Node process costs tens of ms). */
function sh(script: string, cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('/bin/sh', ['-c', script], { cwd, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`making the PKI failed: ${stderr}\n${stdout}`));
      else resolve();
    });
  });
}

/** A word for sh. */
const quote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;

/** A new private key (PKCS#8 PEM). */
function newKey(kind: KeyKind): string {
  const key =
    kind === 'p256' || kind === 'p384'
      ? generateKeyPairSync('ec', { namedCurve: kind === 'p256' ? 'P-256' : 'P-384' }).privateKey
      : kind === 'ed25519'
        ? generateKeyPairSync('ed25519').privateKey
        : generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).privateKey;
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** `openssl ca` set up for `issuer` (its own database `tag`, listing `revoked`): backdating and CRLs. */
function caArgs(dir: string, issuer: string, tag: string, revoked: readonly string[]): string[] {
  const index = revoked
    .map((name) => `R\t300101000000Z\t240101000000Z\t${serialHex(SPEC.get(name)!.serial)}\tunknown\t/CN=x\n`)
    .join('');
  writeFileSync(join(dir, `${tag}.index`), index);
  writeFileSync(join(dir, `${tag}.crlnumber`), '01\n');
  writeFileSync(join(dir, `${tag}.serial`), '7000\n');
  writeFileSync(
    join(dir, `${tag}.ca.cnf`),
    `${OPENSSL_BASE}[ca]\ndefault_ca=d\n[d]\ndatabase=${tag}.index\nnew_certs_dir=.\n` +
      `crlnumber=${tag}.crlnumber\nserial=${tag}.serial\ndefault_md=sha256\npolicy=p\nunique_subject=no\n` +
      '[p]\ncommonName=supplied\n',
  );
  return ['ca', '-batch', '-config', `${tag}.ca.cnf`, '-cert', `${issuer}.crt`, '-keyfile', `${issuer}.key`];
}

/** The openssl commands that make `c` (its key is written already), in order. */
function certificateCommands(dir: string, c: CertSpec): string[][] {
  const serial = ['-set_serial', `0x${serialHex(c.serial)}`];
  const request = ['-key', `${c.name}.key`, '-utf8', '-subj', c.subject];
  const signer = c.issuer === undefined ? [] : ['-CA', `${c.issuer}.crt`, '-CAkey', `${c.issuer}.key`];
  writeFileSync(join(dir, `${c.name}.cnf`), `${OPENSSL_BASE}[x]\n${c.ext ?? ''}\n`);
  if (c.ext !== null && !c.expired) {
    const x509 = ['-x509', '-days', '3', '-config', `${c.name}.cnf`, '-extensions', 'x'];
    return [['req', '-new', ...request, ...serial, ...x509, ...signer, '-out', `${c.name}.crt`]];
  }
  const csr = ['req', '-new', ...request, '-config', `${c.name}.cnf`, '-out', `${c.name}.csr`];
  if (c.expired) {
    const dates = ['-startdate', '20200101000000Z', '-enddate', '20200102000000Z'];
    const ext = ['-extfile', `${c.name}.cnf`, '-extensions', 'x', '-notext', '-preserveDN'];
    const ca = caArgs(dir, c.issuer!, `${c.name}-by-${c.issuer}`, []);
    return [csr, [...ca, ...ext, ...dates, '-in', `${c.name}.csr`, '-out', `${c.name}.crt`]];
  }
  // X.509 v1: `openssl x509 -req` without extensions.
  const signing = c.issuer === undefined ? ['-signkey', `${c.name}.key`] : signer;
  const io = ['-in', `${c.name}.csr`, '-out', `${c.name}.crt`];
  return [csr, ['x509', '-req', ...io, ...signing, ...serial, '-days', '3']];
}

function crlCommand(dir: string, name: CrlName): string[] {
  const { ca: issuer, revoked, expired } = CRLS[name];
  const when = expired
    ? ['-crl_lastupdate', '20200101000000Z', '-crl_nextupdate', '20200102000000Z']
    : ['-crldays', '3'];
  return [...caArgs(dir, issuer, `crl-${name}`, revoked), '-gencrl', ...when, '-out', `${name}.crl`];
}

/**
 * One sh script: each level of the tree (a certificate after its issuer) in parallel, then the CRLs.
 * A failed job leaves its name in `failed` and its output in `<job>.log`.
 */
function pkiScript(dir: string): string {
  const openssl = quote(requireBinary('openssl'));
  const job = (name: string, commands: string[][]) => {
    const steps = commands.map((args) => `${openssl} ${args.map(quote).join(' ')}`).join(' && ');
    return `( ${steps} ) >${quote(`${name}.log`)} 2>&1 || echo ${quote(name)} >>failed &`;
  };
  const out: string[] = [];
  const made = new Set<string>();
  while (made.size < CERTS.length) {
    const ready = CERTS.filter((c) => !made.has(c.name) && (c.issuer === undefined || made.has(c.issuer)));
    out.push(...ready.map((c) => job(c.name, certificateCommands(dir, c))), 'wait');
    for (const c of ready) made.add(c.name);
  }
  for (const name of Object.keys(CRLS) as CrlName[]) out.push(job(`crl-${name}`, [crlCommand(dir, name)]));
  out.push('wait', 'if [ -s failed ]; then for f in $(cat failed); do cat "$f.log"; done; exit 1; fi');
  return out.join('\n');
}

async function material(): Promise<Material> {
  const dir = mkdtempSync(join(tmpdir(), 'keepip-authtls-'));
  try {
    const key = new Map<string, string>();
    for (const c of CERTS) {
      const pem = typeof c.key === 'object' ? key.get(c.key.of)! : newKey(c.key ?? 'p256');
      key.set(c.name, pem);
      writeFileSync(join(dir, `${c.name}.key`), pem);
    }
    await sh(pkiScript(dir), dir);
    const read = (file: string) => readFileSync(join(dir, file), 'utf8');
    return {
      dir,
      key,
      cert: new Map(CERTS.map((c) => [c.name, read(`${c.name}.crt`)])),
      crl: new Map((Object.keys(CRLS) as CrlName[]).map((name) => [name, read(`${name}.crl`)])),
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

// ---------- the hosts ----------

type Group = 'chains' | 'crl' | 'match-cn' | 'dn' | 'keys' | 'constraints' | 'cross' | 'forged';
type Verify = 'on' | 'off' | 'optional' | 'optional_no_ca';

interface Host {
  name: string;
  /** The certificates in the Secret's ca.crt. */
  ca: readonly string[];
  /** The CRLs in its ca.crl, in this order. */
  crl?: readonly CrlName[];
  verify?: Verify;
  /** auth-tls-verify-depth as written. */
  depth: string;
  matchCn?: string;
  pass?: boolean;
  errorPage?: boolean;
}

const ERROR_PAGE = 'https://err.atls.test/denied';
const DOMAIN = 'atls.test';
const hostName = (h: string) => `${h}.${DOMAIN}`;

/**
 * match-cn regexes (annotation values as written) and the host each gets. Each starts with "CN=": ingress-nginx's
 * validator refuses the Ingress otherwise (keepip answers 403 to every client of such a host), so no `^`.
 */
const MATCH_CN: Readonly<Record<string, string>> = {
  'cn-plain': 'CN=admin',
  'cn-end': 'CN=admin$',
  'cn-rdn': 'CN=admin(,|$)',
  'cn-tenant': 'CN=admin,O=Tenant$',
  'cn-escaped-comma': 'CN=admin\\\\, O=x',
  'cn-plus': 'CN=admin\\+OU=ops',
  'cn-utf8': 'CN=Jösé',
  'cn-hex': 'CN=J\\\\C3\\\\B6s',
  'cn-email': 'CN=user,emailAddress=admin@example\\.com$',
  'cn-tab': 'CN=ad\\tmin',
  'cn-hex-tab': 'CN=ad\\\\09min',
};

const HOSTS: readonly Host[] = [
  // Chains and verify depth.
  { name: 'd0', ca: ['root'], depth: '0' },
  { name: 'd1', ca: ['root'], depth: '1' },
  { name: 'd2', ca: ['root'], depth: '2' },
  { name: 'd3', ca: ['root'], depth: '3' },
  { name: 'bundle1', ca: ['root', 'i1', 'i2'], depth: '1' },
  { name: 'bundle3', ca: ['root', 'i1', 'i2'], depth: '3' },
  { name: 'intonly-nca', ca: ['i1'], depth: '3', verify: 'optional_no_ca', pass: true },
  { name: 'nca1', ca: ['root'], depth: '1', verify: 'optional_no_ca', pass: true },
  { name: 'opt1', ca: ['root'], depth: '1', verify: 'optional' },
  // CRLs.
  { name: 'crl-root', ca: ['root'], crl: ['root'], depth: '3', errorPage: true },
  { name: 'crl-all', ca: ['root'], crl: ['root', 'i1', 'i2', 'i3'], depth: '3' },
  { name: 'crl-i1-first', ca: ['root'], crl: ['i1', 'root', 'i2', 'i3'], depth: '3' },
  { name: 'crl-other', ca: ['root'], crl: ['other'], depth: '3' },
  { name: 'crl-expired', ca: ['root'], crl: ['root-expired'], depth: '3' },
  { name: 'crl-expired-nca', ca: ['root'], crl: ['root-expired'], depth: '3', verify: 'optional_no_ca' },
  { name: 'crl-nca', ca: ['root'], crl: ['root', 'i1', 'i2', 'i3'], depth: '3', verify: 'optional_no_ca' },
  { name: 'crl-intonly', ca: ['i1'], crl: ['i1'], depth: '3' },
  { name: 'crl-bundle', ca: ['root', 'i1'], crl: ['root', 'i1'], depth: '3' },
  { name: 'crl-i1r', ca: ['root'], crl: ['root', 'i1r'], depth: '3' },
  // match-cn.
  ...Object.entries(MATCH_CN).map(([name, matchCn]) => ({ name, ca: ['root'], depth: '1', matchCn })),
  // The DN and certificate fields.
  { name: 'dn', ca: ['root'], depth: '1', pass: true },
  // Key types.
  { name: 'keys', ca: ['root'], depth: '1', pass: true },
  { name: 'edca', ca: ['edroot'], depth: '1', pass: true },
  { name: 'pssca', ca: ['pssroot'], depth: '1', pass: true },
  // Key usage and CA constraints.
  { name: 'eku', ca: ['root'], depth: '2', pass: true },
  { name: 'eku-nca', ca: ['root'], depth: '2', verify: 'optional_no_ca', pass: true },
  { name: 'ncroot', ca: ['ncroot'], depth: '2' },
  { name: 'ncroot-nca', ca: ['ncroot'], depth: '2', verify: 'optional_no_ca', pass: true },
  // Cross-signed paths.
  { name: 'x-root', ca: ['root'], depth: '2' },
  { name: 'x-xroot', ca: ['xroot'], depth: '2' },
  { name: 'x-both', ca: ['root', 'xroot'], depth: '2' },
  // Forged ssl-client-* fields.
  { name: 'f-off', ca: ['root'], depth: '1', verify: 'off' },
  { name: 'f-opt', ca: ['root'], depth: '1', verify: 'optional', pass: true },
  { name: 'f-nca', ca: ['root'], depth: '1', verify: 'optional_no_ca', pass: true },
  { name: 'f-cn', ca: ['root'], depth: '1', verify: 'optional', matchCn: 'CN=admin' },
  { name: 'f-on', ca: ['root'], depth: '1', errorPage: true, pass: true },
];

const HOST = new Map(HOSTS.map((h) => [h.name, h]));

/** ingress-nginx's ValidationDepth: the annotation's integer, 0 (or none) is 1. */
const nginxDepth = (h: Host) => Number(h.depth) || 1;

// ---------- the probes ----------

type Forge = 'hyphen' | 'underscore';

interface Probe {
  group: Group;
  host: string;
  /** The client certificate (null: none), then the certificates sent after it. */
  client: string | null;
  chain: readonly string[];
  tls12?: boolean;
  forge?: Forge;
}

/** The issuers of `name` up to, not including, a self-signed root. */
function chainOf(name: string): string[] {
  const out: string[] = [];
  let up = SPEC.get(name)?.issuer;
  while (up !== undefined && SPEC.get(up)?.issuer !== undefined) {
    out.push(up);
    up = SPEC.get(up)?.issuer;
  }
  return out;
}

const full = (name: string) => ({ client: name, chain: chainOf(name) });
const bare = (name: string) => ({ client: name, chain: [] as string[] });

function probes(): Probe[] {
  const out: Probe[] = [];
  const each = (
    group: Group,
    hosts: readonly string[],
    clients: readonly Omit<Probe, 'group' | 'host'>[],
  ) => {
    for (const host of hosts) {
      assert.ok(HOST.has(host), `no host ${host}`);
      for (const c of clients) out.push({ group, host, ...c });
    }
  };
  each(
    'chains',
    ['d0', 'd1', 'd2', 'd3', 'bundle1', 'bundle3', 'intonly-nca', 'nca1', 'opt1'],
    [
      { client: null, chain: [] },
      full('c0'),
      full('c1'),
      bare('c1'),
      { client: 'c1', chain: ['i1', 'root'] },
      full('c2'),
      full('c3'),
      { client: 'c3', chain: ['i3'] },
      { client: 'c3', chain: ['i3', 'decoy', 'i2', 'i1'] },
      full('o2'),
    ],
  );
  each(
    'crl',
    HOSTS.filter((h) => h.crl !== undefined).map((h) => h.name),
    [full('c0'), full('rev0'), full('c1'), full('rev1'), full('c1r'), full('c3')],
  );
  const subjects = CERTS.filter((c) => c.name.startsWith('s-')).map((c) => full(c.name));
  // Every regex against the subjects that put CN=admin in odd places, then each against its own cases.
  each(
    'match-cn',
    Object.keys(MATCH_CN),
    ['s-admin', 's-admin-bare', 's-o-cn', 's-comma', 's-multi', 's-oid'].map(full),
  );
  each('match-cn', ['cn-plain'], ['s-case', 's-plus', 's-utf8', 's-tab', 's-email', 's-under-iw'].map(full));
  each('match-cn', ['cn-end', 'cn-rdn'], [full('s-under-iw')]);
  each('match-cn', ['cn-plus'], [full('s-plus')]);
  each('match-cn', ['cn-utf8', 'cn-hex'], [full('s-utf8')]);
  each('match-cn', ['cn-tab', 'cn-hex-tab'], [full('s-tab')]);
  each('match-cn', ['cn-email'], [full('s-email')]);
  each(
    'dn',
    ['dn'],
    [...subjects, full('c0'), full('c3'), { client: 'c3', chain: ['i3', 'i2', 'i1', 'root'] }],
  );
  for (const tls12 of [false, true]) {
    each(
      'keys',
      ['keys'],
      [full('k-p384'), full('k-ed25519'), full('k-pss')].map((c) => ({ ...c, tls12 })),
    );
    each('keys', ['edca'], [{ ...full('k-edca'), tls12 }]);
    each('keys', ['pssca'], [{ ...full('k-pssca'), tls12 }]);
  }
  const constrained = ['e-server', 'e-certsign', 'e-v1', 'e-ca-leaf', 'e-ncint', 'e-v1int', 'e-pl0sub'];
  each(
    'constraints',
    ['eku', 'eku-nca', 'ncroot', 'ncroot-nca'],
    [...constrained, 'e-noksign', 'e-ncroot'].map(full),
  );
  each(
    'cross',
    ['x-root', 'x-xroot', 'x-both'],
    [
      { client: 'x', chain: ['xint-r'] },
      { client: 'x', chain: ['xint-x'] },
      { client: 'x', chain: ['xint-r', 'xint-x'] },
      { client: 'x', chain: ['xint-x', 'xint-r'] },
      bare('x'),
    ],
  );
  for (const forge of ['hyphen', 'underscore'] as const)
    each(
      'forged',
      ['f-off', 'f-opt', 'f-nca', 'f-cn', 'f-on'],
      [
        { client: null, chain: [], forge },
        { ...full('c0'), forge },
        { ...full('o2'), forge },
      ],
    );
  return out;
}

function describeProbe(p: Probe): string {
  const sent = p.client === null ? 'no certificate' : [p.client, ...p.chain].join('+');
  return `${p.host}: ${sent}${p.tls12 ? ' (TLS 1.2)' : ''}${p.forge ? `, forged ${p.forge} fields` : ''}`;
}

/** Forged client-certificate fields: the names nginx sets, and the underscore spellings CGI folds into them. */
const FORGED: Record<Forge, string> = {
  hyphen:
    'SSL-Client-Verify: SUCCESS\r\nssl-client-subject-dn: CN=admin\r\nssl-client-issuer-dn: CN=Root CA\r\n' +
    'ssl-client-cert: forged\r\n',
  underscore: 'ssl_client_verify: SUCCESS\r\nSSL_CLIENT_S_DN: CN=admin\r\nssl_client_cert: forged\r\n',
};

// ---------- the two configurations ----------

function nginxServer(m: Material, port: number, backend: number, h: Host): string {
  const file = (kind: string) => join(m.dir, `${h.name}.${kind}`);
  const fields = [
    ...(h.pass ? ['    proxy_set_header ssl-client-cert $ssl_client_escaped_cert;'] : []),
    '    proxy_set_header ssl-client-verify $ssl_client_verify;',
    '    proxy_set_header ssl-client-subject-dn $ssl_client_s_dn;',
    '    proxy_set_header ssl-client-issuer-dn $ssl_client_i_dn;',
  ];
  return [
    `server { listen 127.0.0.1:${port} ssl; server_name ${hostName(h.name)};`,
    // ingress-nginx's `| quote` (Go's strconv.Quote): backslashes and quotes escaped, nginx reads them back.
    ...(h.matchCn === undefined
      ? []
      : [
          `  if ( $ssl_client_s_dn !~ ${JSON.stringify(h.matchCn)} ) { return 403 "client certificate unauthorized"; }`,
        ]),
    `  ssl_certificate ${m.dir}/server.crt; ssl_certificate_key ${m.dir}/server.key;`,
    `  ssl_client_certificate ${file('ca.crt')};`,
    `  ssl_verify_client ${h.verify ?? 'on'};`,
    `  ssl_verify_depth ${nginxDepth(h)};`,
    ...(h.crl === undefined ? [] : [`  ssl_crl ${file('ca.crl')};`]),
    ...(h.errorPage ? [`  error_page 495 496 = ${ERROR_PAGE};`] : []),
    '  location / {',
    '    proxy_set_header Host $host;',
    ...fields,
    `    proxy_pass http://127.0.0.1:${backend};`,
    '  }',
    '}',
  ].join('\n');
}

const caText = (m: Material, h: Host) => h.ca.map((n) => m.cert.get(n)!).join('');
const crlText = (m: Material, h: Host) => (h.crl ?? []).map((n) => m.crl.get(n)!).join('');

function nginxHttp(m: Material, port: number, backends: NamedBackends): string {
  for (const h of HOSTS) {
    writeFileSync(join(m.dir, `${h.name}.ca.crt`), caText(m, h));
    if (h.crl !== undefined) writeFileSync(join(m.dir, `${h.name}.ca.crl`), crlText(m, h));
  }
  return [
    'ssl_protocols TLSv1.2 TLSv1.3;',
    `server { listen 127.0.0.1:${port} ssl default_server; server_name _;`,
    `  ssl_certificate ${m.dir}/server.crt; ssl_certificate_key ${m.dir}/server.key;`,
    '  location / { return 404; } }',
    ...HOSTS.map((h) => nginxServer(m, port, backends.port(h.name), h)),
  ].join('\n');
}

function annotationsOf(h: Host): Record<string, string> {
  return {
    'auth-tls-secret': `default/ca-${h.name}`,
    'auth-tls-verify-client': h.verify ?? 'on',
    'auth-tls-verify-depth': h.depth,
    ...(h.pass ? { 'auth-tls-pass-certificate-to-upstream': 'true' } : {}),
    ...(h.errorPage ? { 'auth-tls-error-page': ERROR_PAGE } : {}),
    ...(h.matchCn === undefined ? {} : { 'auth-tls-match-cn': h.matchCn }),
  };
}

function keepipTopology(m: Material, backends: NamedBackends, g: GatewayModules): Topology {
  const objects: K8sObject[] = [];
  for (const h of HOSTS) {
    const data: Record<string, string> = { 'ca.crt': Buffer.from(caText(m, h)).toString('base64') };
    if (h.crl !== undefined) data['ca.crl'] = Buffer.from(crlText(m, h)).toString('base64');
    objects.push(
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: `ca-${h.name}`, namespace: 'default' }, data },
      ...g.serviceWithEndpoints({ name: `svc-${h.name}`, ports: [backends.port(h.name)] }),
      g.ingress({
        name: `ing-${h.name}`,
        host: hostName(h.name),
        annotations: annotationsOf(h),
        paths: [{ path: '/', service: `svc-${h.name}`, port: 80 }],
      }),
    );
  }
  const topology = g.topologyOf(objects);
  // Neither errors nor an auth-tls-* value keepip would not take as written (nginx takes each).
  const issues = topology.issues.filter((i) => i.severity === 'error' || /auth-tls/.test(i.message));
  assert.deepEqual(issues, [], 'keepip reports issues with the configuration');
  return topology;
}

// ---------- one exchange ----------

interface Outcome {
  /** `ok`, or how the handshake failed. */
  handshake: string;
  status: number | null;
  location: string | null;
  /** The backend that got the request, or null. */
  backend: string | null;
  /** Every ssl-client-* / ssl_client_* field the backend got, `name: value` (name lower case), sorted. */
  fields: string[];
}

let probeCounter = 0;

/** One client context per certificate, chain and TLS version, made once (a context per connection costs more than its handshake). */
const clientContexts = new Map<string, tls.SecureContext>();

function clientContext(m: Material, p: Probe): tls.SecureContext {
  const sent = p.client === null ? [] : [p.client, ...p.chain];
  const id = `${sent.join('+')}|${p.tls12 === true}`;
  let context = clientContexts.get(id);
  if (context === undefined) {
    context = tls.createSecureContext({
      ...(p.client === null
        ? {}
        : { key: m.key.get(p.client)!, cert: sent.map((n) => m.cert.get(n)!).join('') }),
      ...(p.tls12 ? { maxVersion: 'TLSv1.2' as const } : {}),
    });
    clientContexts.set(id, context);
  }
  return context;
}

function exchangeTls(m: Material, port: number, p: Probe, path: string) {
  return new Promise<Omit<Outcome, 'backend' | 'fields'>>((resolve) => {
    const secureContext = clientContext(m, p);
    const chunks: Buffer[] = [];
    let handshake = 'pending';
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: hostName(p.host),
      rejectUnauthorized: false,
      secureContext,
    });
    const timer = setTimeout(() => socket.destroy(new Error('no answer within 20 s')), 20_000);
    socket.on('secureConnect', () => {
      handshake = 'ok';
      const forged = p.forge === undefined ? '' : FORGED[p.forge];
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostName(p.host)}\r\n${forged}Connection: close\r\n\r\n`);
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error: Error & { code?: string }) => {
      if (handshake === 'pending') handshake = `failed:${error.code ?? error.message}`;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const head = Buffer.concat(chunks).toString('latin1').split('\r\n\r\n')[0] ?? '';
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      const location = /\r\nlocation: *([^\r]*)/i.exec(head);
      resolve({
        handshake: handshake === 'pending' ? 'failed:closed' : handshake,
        status: status ? Number(status[1]) : null,
        location: location?.[1] ?? null,
      });
    });
  });
}

async function ask(bench: Bench, port: number, p: Probe, via: string): Promise<Outcome> {
  const path = `/p${++probeCounter}?via=${via}`;
  const answer = await exchangeTls(bench.m, port, p, path);
  const seen = bench.backends.seen.find((s) => s.url === path);
  const fields: string[] = [];
  const raw = seen?.rawHeaders ?? [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (/^ssl[-_]client/.test(name)) fields.push(`${name}: ${raw[i + 1]}`);
  }
  return { ...answer, backend: seen?.backend ?? null, fields: fields.sort() };
}

// ---------- judging ----------

type Kind = 'unsafe' | 'stricter' | 'other' | 'allowed';

interface Verdict {
  kind: Kind;
  group: Group;
  rule?: string;
  text: string;
}

interface Allowed {
  /** The doc line that says keepip differs so, and why that is acceptable. */
  reason: string;
  /** Whether a difference is this one. */
  covers(p: Probe, n: Outcome, k: Outcome): boolean;
}

/** The root a client certificate's chain ends at. */
function rootOf(name: string): string {
  let at = name;
  while (SPEC.get(at)?.issuer !== undefined) at = SPEC.get(at)!.issuer!;
  return at;
}

/** The `name: value` lines of a forged field set, as the backend would list them. */
const forgedLines = (forge: Forge) =>
  FORGED[forge]
    .split('\r\n')
    .filter(Boolean)
    .map((line) => line.replace(/^([^:]+): /, (_, name: string) => `${name.toLowerCase()}: `));

/** Differences where keepip is stricter on purpose or as documented. */
const ALLOWED: Readonly<Record<string, Allowed>> = {
  'forged-field-removed': {
    reason:
      'docs/ingress-nginx-compat.md, auth-tls-match-cn: "The backend and auth service always get ' +
      "ssl-client-verify, ssl-client-subject-dn, ssl-client-issuer-dn on such a host (the client's own are " +
      'removed)". keepip removes a client-sent ssl-client-cert as well on a host without ' +
      'auth-tls-pass-certificate-to-upstream; nginx passes it on there (no proxy_set_header names it)',
    covers: (p, n, k) =>
      p.forge !== undefined &&
      n.backend !== null &&
      n.backend === k.backend &&
      k.fields.every((f) => n.fields.includes(f)) &&
      n.fields.filter((f) => !k.fields.includes(f)).every((f) => forgedLines(p.forge!).includes(f)),
  },
  'depth-cut-chain-refused': {
    reason:
      'docs/ingress-nginx-compat.md, auth-tls-verify-depth: "how many intermediate CAs may stand between the ' +
      'client certificate and the CA, as OpenSSL\'s verify depth". keepip refuses (400) a chain to the CA ' +
      "with more intermediates than that under optional_no_ca too; nginx's OpenSSL stops building the chain " +
      'at the depth and reports an unknown issuer ("unable to get local issuer certificate"), which ' +
      'optional_no_ca lets through to the backend as FAILED. Stricter',
    covers: (p, n, k) => {
      const host = HOST.get(p.host)!;
      return (
        host.verify === 'optional_no_ca' &&
        p.client !== null &&
        host.ca.includes(rootOf(p.client)) &&
        chainOf(p.client).length > nginxDepth(host) &&
        n.fields.includes('ssl-client-verify: FAILED:unable to get local issuer certificate') &&
        k.status === 400 &&
        k.backend === null
      );
    },
  },
  'decoy-chain-refused': {
    reason:
      'docs/gateway.md (client certificates): a chain keepip cannot count is refused. Node links the ' +
      'certificates the client sent by name and key id, so a decoy named as an intermediate cuts it short; ' +
      'keepip checks every link (signature, dates) and refuses a chain that does not verify that way (400), ' +
      "even where nginx's OpenSSL found another path within the depth through the real intermediates. Stricter",
    covers: (p, n, k) =>
      p.client !== null &&
      (p.chain ?? []).includes('decoy') &&
      n.status === 200 &&
      k.status === 400 &&
      k.backend === null,
  },
};

/** The fields one side gave the backend and the other did not (a long ssl-client-cert cut short). */
function onlyIn(a: Outcome, b: Outcome): string {
  const own = a.fields.filter((f) => !b.fields.includes(f));
  const short = (f: string) => (f.length > 120 ? `${f.slice(0, 117)}...` : f);
  return own.length === 0 ? '(nothing else)' : own.map((f) => JSON.stringify(short(f))).join(', ');
}

function compare(n: Outcome, k: Outcome): { kind: Exclude<Kind, 'allowed'>; text: string } | null {
  if (n.handshake !== k.handshake)
    return {
      kind: k.handshake === 'ok' ? 'unsafe' : 'other',
      text: `handshake ${k.handshake} (status ${k.status}) from keepip, ${n.handshake} from nginx`,
    };
  if (n.handshake !== 'ok') return null;
  const text = `status ${k.status} (backend ${k.backend ?? 'none'}) from keepip, ${n.status} (backend ${n.backend ?? 'none'}) from nginx`;
  if (k.backend !== null && k.backend !== n.backend) return { kind: 'unsafe', text };
  if (k.backend === null && n.backend !== null) return { kind: 'stricter', text };
  if (k.status !== n.status || k.location !== n.location)
    return { kind: 'other', text: `${text}; Location ${k.location} / ${n.location}` };
  if (k.backend === null || n.fields.join('\n') === k.fields.join('\n')) return null;
  return {
    kind: 'unsafe',
    text: `the backend got\n      from keepip ${onlyIn(k, n)}\n      from nginx  ${onlyIn(n, k)}`,
  };
}

function judge(p: Probe, n: Outcome, k: Outcome): Verdict | null {
  const found = compare(n, k);
  if (found === null) return null;
  const text = `${describeProbe(p)}: ${found.text}`;
  for (const [rule, allowed] of Object.entries(ALLOWED))
    if (allowed.covers(p, n, k)) return { kind: 'allowed', group: p.group, rule, text };
  return { ...found, group: p.group, text };
}

// ---------- the bench ----------

interface Bench {
  m: Material;
  backends: NamedBackends;
  gateway: TestGateway;
  nginx: RunningNginx;
}

async function startBench(): Promise<Bench> {
  const [m, g] = await Promise.all([material(), gatewayModules()]);
  let backends: NamedBackends | undefined;
  try {
    backends = await g.startNamedBackends(HOSTS.map((h) => h.name));
    const ready = backends;
    // Both at once; whichever started is stopped when the other could not.
    const [gateway, nginx] = await Promise.allSettled([
      g.startTestGateway(keepipTopology(m, ready, g)),
      startNginx({
        freePorts: 1,
        http: (_dir, [port]) => nginxHttp(m, port!, ready),
        waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
      }),
    ]);
    if (gateway.status === 'fulfilled' && nginx.status === 'fulfilled')
      return { m, backends, gateway: gateway.value, nginx: nginx.value };
    if (gateway.status === 'fulfilled') await gateway.value.close();
    if (nginx.status === 'fulfilled') await nginx.value.stop();
    throw gateway.status === 'rejected' ? gateway.reason : (nginx as PromiseRejectedResult).reason;
  } catch (error) {
    await backends?.close();
    rmSync(m.dir, { recursive: true, force: true });
    throw error;
  }
}

async function stopBench(bench: Bench | undefined): Promise<void> {
  if (bench === undefined) return;
  await bench.nginx.stop();
  await bench.gateway.close();
  await bench.backends.close();
  rmSync(bench.m.dir, { recursive: true, force: true });
}

interface Run {
  verdicts: Verdict[];
  /** Per group: how many probes nginx admitted (to a backend) and refused. */
  admitted: Map<Group, number>;
  refused: Map<Group, number>;
}

/** Probes in flight at once (each a connection to nginx and one to keepip). */
const CONCURRENCY = 8;

async function runProbes(bench: Bench): Promise<Run> {
  const all = probes();
  const out: Run = { verdicts: [], admitted: new Map(), refused: new Map() };
  const bump = (map: Map<Group, number>, g: Group) => map.set(g, (map.get(g) ?? 0) + 1);
  let next = 0;
  const worker = async () => {
    while (next < all.length) {
      const p = all[next++]!;
      const [n, k] = await Promise.all([
        ask(bench, bench.nginx.ports[0]!, p, 'nginx'),
        ask(bench, bench.gateway.httpsPort, p, 'keepip'),
      ]);
      if (process.env.AUTHTLS_DUMP !== undefined)
        console.log(`${describeProbe(p)}\n  N ${JSON.stringify(n)}\n  K ${JSON.stringify(k)}`);
      bump(n.backend === null ? out.refused : out.admitted, p.group);
      const verdict = judge(p, n, k);
      if (verdict !== null) out.verdicts.push(verdict);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return out;
}

function listed(verdicts: readonly Verdict[]): string {
  const shown = verdicts.slice(0, 20).map((v) => `  [${v.kind}] ${v.text}`);
  return `${verdicts.length} difference(s)\n${shown.join('\n')}`;
}

const GROUPS: Readonly<Record<Group, string>> = {
  chains:
    'chains and auth-tls-verify-depth (intermediates sent or not, a CA bundle of an intermediate, a decoy)',
  crl: 'ca.crl: revoked leaf and intermediate, a CRL per CA, another CA’s CRL, an expired CRL',
  'match-cn': 'auth-tls-match-cn against anchors, CN= in other RDNs, escapes, multi-valued RDNs, UTF-8',
  dn: 'the exact ssl-client-subject-dn / -issuer-dn / -cert / -verify text the backend gets',
  keys: 'client keys EC P-384, Ed25519, RSA-PSS and CAs of Ed25519 and RSA-PSS, TLS 1.3 and 1.2',
  constraints:
    'extended key usage, key usage, CA:false, X.509 v1 and pathlen intermediates, a root without CA:true',
  cross: 'a cross-signed intermediate sent by either issuer',
  forged: 'client-sent ssl-client-* and ssl_client_* fields with verify off / optional / optional_no_ca / on',
};

describe('auth-tls-* in depth against nginx 1.22 (ingress-nginx template)', () => {
  let bench: Bench | undefined;
  let result: Run = { verdicts: [], admitted: new Map(), refused: new Map() };

  before(async () => {
    bench = await startBench();
    result = await runProbes(bench);
  });
  after(() => stopBench(bench));

  for (const [group, title] of Object.entries(GROUPS) as [Group, string][])
    it(`${group}: ${title}: keepip answers as nginx (or as ALLOWED)`, () => {
      const of = result.verdicts.filter((v) => v.group === group && v.kind !== 'allowed');
      assert.equal(of.length, 0, listed(of));
    });

  it('every group saw nginx admit some probes and refuse others (the comparison is not vacuous)', () => {
    for (const group of Object.keys(GROUPS) as Group[]) {
      assert.ok((result.admitted.get(group) ?? 0) > 0, `${group}: nginx admitted nothing`);
      if (group !== 'keys')
        assert.ok((result.refused.get(group) ?? 0) > 0, `${group}: nginx refused nothing`);
    }
  });

  it('each ALLOWED difference is still seen (the table does not rot)', (t) => {
    for (const rule of Object.keys(ALLOWED)) {
      const seen = result.verdicts.filter((v) => v.rule === rule).length;
      t.diagnostic(`${rule}: ${seen} probe(s)`);
      assert.ok(seen > 0, `ALLOWED ${rule} is no longer seen: drop it`);
    }
  });
});
