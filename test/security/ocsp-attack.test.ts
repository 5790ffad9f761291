// enable-ocsp attacked by a hostile OCSP responder (or whoever answers the plain-HTTP request in its
// place) and by clients: a responder that hangs, trickles, sends megabytes (by length, chunked without
// end, gzip-compressed), redirects; answers that are about another certificate, several SingleResponses
// (one good for a stranger, ours revoked), `unknown`, too old or not yet current, signed by an expired
// delegate, by another CA's delegate, by a sub-CA's delegate, with a garbled signature or the wrong
// algorithm, tryLater / unauthorized, and a response whose embedded certificates issue each other (a
// cycle for the path builder). Clients: two hosts under one responder (each its own serial, read with
// `openssl s_client -status`), 100 handshakes while the only fetch hangs (none waits, one request),
// handshakes after a response whose nextUpdate just passed, no SNI, and enable-ocsp turned off by a
// reload. Reference: ingress-nginx's certificate.lua (lua-resty-core's ngx.ocsp, i.e. OpenSSL's
// OCSP_basic_verify and OCSP_check_validity with 300 s of leeway; lua-resty-http 1 s + 1 s + 2 s) and
// RFC 6960 §4.2.2.2 (a delegate is issued directly by the CA). The PKI and every signature are OpenSSL's
// (`openssl ocsp -index … -rsigner …`), except three responses whose times OpenSSL cannot set
// (thisUpdate ahead, nextUpdate past): those are re-signed here with the CA's key (pkijs over WebCrypto).
// Every wait is on a signal: a log line, the responder having (or not having) answered, a socket closing.
// The file cannot take less than the fetch's deadline (4 s, FETCH_DEADLINE_MS) plus the start: the
// cases that wait for it start first and all the rest runs meanwhile.
import assert from 'node:assert/strict';
import { createPrivateKey, webcrypto } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import http from '../../src/node-http.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { gzipSync } from 'node:zlib';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  tlsSecret,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { mapLimited } from '../helpers/concurrency.ts';
import { listenTracked } from '../helpers/net.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';

const openssl = requireBinary('openssl');
const engine = new pkijs.CryptoEngine({
  name: 'node',
  crypto: webcrypto as unknown as pkijs.CryptoEngineParameters['crypto'],
});
const DAY = 86_400_000;
/** The handshakes a client makes while the only fetch hangs (20 at a time); more: KEEPIP_OCSP_FLOOD=300. */
const FLOOD = Number(process.env.KEEPIP_OCSP_FLOOD ?? 100);

/** A host per case, `<name>.test`, whose certificate names `<responder>/<path>` (its name, but `shared-*`). */
const HOSTS = [
  'hang',
  'trickle-body',
  'trickle-head',
  'huge',
  'chunked',
  'gzip',
  'redirect',
  'other-serial',
  'multi',
  'unknown',
  'past',
  'future',
  'stale',
  'delegate-expired',
  'delegate-stranger',
  'delegate-sub',
  'bad-signature',
  'other-algorithm',
  'try-later',
  'unauthorized',
  'cycle',
  'hang-ref',
  'good',
  'shared-a',
  'shared-b',
  'fresh',
  'sentinel',
] as const;
type Host = (typeof HOSTS)[number];
/** Every leaf: a host's each, and `bystander`, of the same CA but served by no host (answers about it go to others). */
const LEAVES = [...HOSTS, 'bystander'] as const;
type Leaf = (typeof LEAVES)[number];
const serialOf = (name: Leaf): number => 0x2000 + LEAVES.indexOf(name);
const pathOf = (name: Leaf): string => (name.startsWith('shared-') ? 'shared' : name);
/** Hosts whose first handshake comes from the test that reads them, not from before(). */
const NOT_PRIMED: readonly Host[] = ['fresh', 'sentinel', 'cycle', 'hang-ref'];

async function run(dir: string, args: string[]): Promise<void> {
  const out = await runCommand(openssl, args, { input: '', timeoutMs: 20_000, cwd: dir });
  if (out.code !== 0) throw new Error(`openssl ${args.join(' ')}: ${out.stderr}`);
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function extensions(base: string): string {
  const leaves = LEAVES.map(
    (name, i) =>
      `[leaf${i}]\nbasicConstraints=CA:false\nsubjectAltName=DNS:${name}.test\n` +
      `authorityInfoAccess=OCSP;URI:${base}/${pathOf(name)}\n`,
  );
  return [
    '[req]\ndistinguished_name=dn\n[dn]',
    '[ca]\nbasicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    '[signer]\nbasicConstraints=CA:false\nextendedKeyUsage=OCSPSigning',
    // `openssl ca` for the expired delegate (fixed dates).
    '[ca_d]\ndatabase=ca-db.txt\nnew_certs_dir=.\nserial=ca-serial\ndefault_md=sha256\npolicy=p\nunique_subject=no',
    '[p]\ncommonName=supplied',
    ...leaves,
  ].join('\n');
}

/** `openssl x509` signing `input` (a CSR, or a certificate issued again) as `ca`, extensions from x.cnf. */
function sign(dir: string, out: string, ca: string, serial: number, section: string, input: string[]) {
  return run(dir, [
    ...['x509', ...input, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-set_serial', String(serial)],
    ...['-days', '3', '-extfile', 'x.cnf', '-extensions', section, '-out', `${out}.crt`],
  ]);
}
const selfSigned = (dir: string, name: string) =>
  run(dir, [
    ...['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', `/CN=${name}`],
    ...['-days', '3', '-config', 'x.cnf', '-extensions', 'ca'],
  ]);
const fromCsr = (subject: string) => ['-req', '-in', 'leaf.csr', '-subj', subject];

/** The CA, the one key (and CSR) of the leaves and delegates, OpenSSL's responder database. */
async function makeCa(dir: string, base: string): Promise<void> {
  writeFileSync(join(dir, 'x.cnf'), extensions(base));
  writeFileSync(join(dir, 'ca-db.txt'), '');
  writeFileSync(join(dir, 'ca-serial'), '3000\n');
  // Every leaf valid but `multi` (revoked); `unknown` is not in the database.
  const lines = LEAVES.filter((name) => name !== 'unknown').map((name) => {
    const status = name === 'multi' ? 'R\t301231000000Z\t261201000000Z' : 'V\t301231000000Z\t';
    return `${status}\t${serialOf(name).toString(16).toUpperCase()}\tunknown\t/CN=${name}.test`;
  });
  writeFileSync(join(dir, 'index.txt'), `${lines.join('\n')}\n`);
  await Promise.all([
    selfSigned(dir, 'ca'),
    run(dir, ['req', ...EC, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=leaf']),
  ]);
}

const makeLeaves = (dir: string, names: readonly Leaf[]) =>
  Promise.all(
    names.map((name) =>
      sign(dir, name, 'ca', serialOf(name), `leaf${LEAVES.indexOf(name)}`, fromCsr(`/CN=${name}.test`)),
    ),
  );

/** Two CAs A and B that issue each other, a responder S under A, and its response about `cycle.test`. */
async function makeCycle(dir: string): Promise<Buffer> {
  await Promise.all([...['A', 'B', 'S'].map((name) => selfSigned(dir, name)), makeLeaves(dir, ['cycle'])]);
  await Promise.all([
    sign(dir, 'A-by-B', 'B', 0x1004, 'ca', ['-in', 'A.crt']),
    sign(dir, 'B-by-A', 'A', 0x1005, 'ca', ['-in', 'B.crt']),
    sign(dir, 'S-by-A', 'A', 0x1006, 'signer', ['-in', 'S.crt']),
  ]);
  const read = (name: string) => readFileSync(join(dir, `${name}.crt`), 'utf8');
  writeFileSync(join(dir, 'cycle.pem'), read('A-by-B') + read('B-by-A'));
  return respond(dir, 'cycle', ['cycle'], 'cycle');
}

/** A stranger CA, a sub-CA of ca, and three OCSP delegates: ca's (expired), the stranger's, the sub-CA's. */
async function makeDelegates(dir: string): Promise<void> {
  await Promise.all(['stranger', 'sub'].map((name) => selfSigned(dir, name)));
  await Promise.all([
    sign(dir, 'sub-ca', 'ca', 0x1001, 'ca', ['-in', 'sub.crt']),
    sign(dir, 'signer-stranger', 'stranger', 0x1002, 'signer', fromCsr('/CN=stranger signer')),
    sign(dir, 'signer-sub', 'sub', 0x1003, 'signer', fromCsr('/CN=sub-ca signer')),
    run(dir, [
      ...['ca', '-batch', '-config', 'x.cnf', '-name', 'ca_d', '-cert', 'ca.crt', '-keyfile', 'ca.key'],
      ...['-in', 'leaf.csr', '-out', 'signer-expired.crt', '-subj', '/CN=expired signer', '-notext'],
      ...['-startdate', '20200101000000Z', '-enddate', '20200201000000Z'],
      ...['-extfile', 'x.cnf', '-extensions', 'signer'],
    ]),
  ]);
}

/** OpenSSL's responder signing as: certificate, key, and the certificates it adds to the response. */
const SIGNERS = {
  ca: ['ca.crt', 'ca.key'],
  'delegate-expired': ['signer-expired.crt', 'leaf.key'],
  'delegate-stranger': ['signer-stranger.crt', 'leaf.key', 'stranger.crt'],
  'delegate-sub': ['signer-sub.crt', 'leaf.key', 'sub-ca.crt'],
  cycle: ['S-by-A.crt', 'S.key', 'cycle.pem'],
} as const;

/** `openssl ocsp` as a responder for `certificates` (one request asking for all), nextUpdate in an hour. */
async function respond(
  dir: string,
  out: string,
  certificates: Leaf[],
  signer: keyof typeof SIGNERS,
): Promise<Buffer> {
  const [cert, key, other] = SIGNERS[signer] as readonly string[];
  await run(dir, [
    'ocsp',
    '-no_nonce',
    '-issuer',
    'ca.crt',
    ...certificates.flatMap((c) => ['-cert', `${c}.crt`]),
    '-index',
    'index.txt',
    '-CA',
    'ca.crt',
    '-rsigner',
    cert as string,
    '-rkey',
    key as string,
    ...(other === undefined ? [] : ['-rother', other]),
    '-respout',
    `${out}.der`,
    '-nmin',
    '60',
  ]);
  return readFileSync(join(dir, `${out}.der`));
}

/** The basic response inside `der`, edited by `edit`, put back (signed again when `edit` does it). */
async function rewrite(
  der: Buffer,
  edit: (basic: pkijs.BasicOCSPResponse) => Promise<void>,
): Promise<Buffer> {
  const response = pkijs.OCSPResponse.fromBER(der);
  const bytes = response.responseBytes as pkijs.ResponseBytes;
  const basic = pkijs.BasicOCSPResponse.fromBER(bytes.response.valueBlock.valueHexView);
  await edit(basic);
  bytes.response = new asn1js.OctetString({ valueHex: basic.toSchema().toBER() });
  return Buffer.from(response.toSchema().toBER());
}

/** OpenSSL cannot date a response: these times, signed again with the CA's key (what a CA once signed). */
function redated(dir: string, thisUpdate: number, nextUpdate: number) {
  return async (basic: pkijs.BasicOCSPResponse) => {
    for (const single of basic.tbsResponseData.responses)
      Object.assign(single, { thisUpdate: new Date(thisUpdate), nextUpdate: new Date(nextUpdate) });
    basic.tbsResponseData.producedAt = new Date(thisUpdate);
    const key = await createPrivateKey(readFileSync(join(dir, 'ca.key'))).toCryptoKey(
      { name: 'ECDSA', namedCurve: 'P-256' },
      false,
      ['sign'],
    );
    await basic.sign(key, 'SHA-256', engine);
  };
}

/** OCSPResponse with only a status: tryLater (3), unauthorized (6). */
const statusOnly = (status: number) => Buffer.from([0x30, 0x03, 0x0a, 0x01, status]);

/** The answer of each responder path that answers with a prepared response (but `cycle`). */
async function makeResponses(dir: string): Promise<Map<string, Buffer>> {
  const now = Date.now();
  const own = (name: Leaf) => respond(dir, name, [name], 'ca');
  const entries: [string, Promise<Buffer>][] = [
    ['other-serial', respond(dir, 'other-serial', ['bystander'], 'ca')],
    ['multi', respond(dir, 'multi', ['bystander', 'multi'], 'ca')],
    ['unknown', own('unknown')],
    ['good', own('good')],
    ['fresh', own('fresh')],
    ['sentinel', own('sentinel')],
    ['redirect-target', own('redirect')],
    ['delegate-expired', respond(dir, 'delegate-expired', ['delegate-expired'], 'delegate-expired')],
    ['delegate-stranger', respond(dir, 'delegate-stranger', ['delegate-stranger'], 'delegate-stranger')],
    ['delegate-sub', respond(dir, 'delegate-sub', ['delegate-sub'], 'delegate-sub')],
    // A response replayed from two days ago; one dated tomorrow; one whose nextUpdate passed 2 minutes ago.
    ['past', own('past').then((der) => rewrite(der, redated(dir, now - 2 * DAY, now - DAY)))],
    ['future', own('future').then((der) => rewrite(der, redated(dir, now + DAY, now + 2 * DAY)))],
    ['stale', own('stale').then((der) => rewrite(der, redated(dir, now - 3_600_000, now - 120_000)))],
    [
      'bad-signature',
      own('bad-signature').then((der) =>
        rewrite(der, async (basic) => {
          const signature = new Uint8Array(basic.signature.valueBlock.valueHexView);
          signature[signature.length - 1] = (signature.at(-1) as number) ^ 0x01;
          basic.signature = new asn1js.BitString({ valueHex: signature });
        }),
      ),
    ],
    [
      'other-algorithm',
      own('other-algorithm').then((der) =>
        rewrite(der, async (basic) => {
          basic.signatureAlgorithm.algorithmId = '1.2.840.10045.4.3.3'; // ecdsa-with-SHA384, signed SHA-256
        }),
      ),
    ],
    ['try-later', Promise.resolve(statusOnly(3))],
    ['unauthorized', Promise.resolve(statusOnly(6))],
  ];
  return new Map(await Promise.all(entries.map(async ([path, der]) => [path, await der] as const)));
}

const MiB = 1024 * 1024;
const OCSP_TYPE = { 'content-type': 'application/ocsp-response' };
/** 16 MiB of zeros, gzip-compressed to some 16 KiB: within the cap on the wire, far past it decoded. */
const GZIP_BOMB = gzipSync(Buffer.alloc(16 * MiB));

function deferred<T>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Writes `total` bytes as fast as the peer reads them (Infinity: without end), until it hangs up. */
function pump(res: ServerResponse, total: number): void {
  const chunk = Buffer.alloc(16 * 1024, 0x30);
  let sent = 0;
  const more = (): void => {
    while (sent < total && !res.destroyed) {
      sent += chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', more);
        return;
      }
    }
    if (!res.destroyed) res.end();
  };
  more();
}

/** `write` every 100 ms until the peer hangs up. */
function drip(res: ServerResponse, write: () => void): void {
  const timer = setInterval(write, 100);
  res.on('close', () => clearInterval(timer));
}

interface Responder {
  base: string;
  /** The prepared answer of `path`: its requests wait for it. */
  answer(path: string, der: Buffer): void;
  hits(path: string): number;
  /** Resolves once a request on `path` has been read in full. */
  arrived(path: string): Promise<unknown>;
  /** Resolves when the first exchange on `path` is over: true when the answer was sent in full. */
  closed(path: string): Promise<unknown>;
  /** Whether the first exchange on `path` is still open (the request held, unanswered). */
  open(path: string): boolean;
  close(): Promise<void>;
}

type Route = (res: ServerResponse, body: Buffer) => void;

/** The paths that answer their own way (the others answer their prepared response); `base` for redirects. */
function hostileRoutes(dir: string, base: () => string): Record<string, Route> {
  let n = 0;
  /** OpenSSL's responder on the request as received (the `shared` path: each certificate its answer). */
  const sign = async (res: ServerResponse, body: Buffer) => {
    const name = `dynamic-${++n}`;
    writeFileSync(join(dir, `${name}.req`), body);
    await run(dir, [
      ...['ocsp', '-index', 'index.txt', '-CA', 'ca.crt', '-rsigner', 'ca.crt', '-rkey', 'ca.key'],
      ...['-reqin', `${name}.req`, '-respout', `${name}.resp`, '-nmin', '60'],
    ]);
    res.writeHead(200, OCSP_TYPE).end(readFileSync(join(dir, `${name}.resp`)));
  };
  return {
    hang: () => {},
    'hang-ref': () => {},
    'trickle-body': (res) => {
      res.writeHead(200, { ...OCSP_TYPE, 'content-length': '100000' }).flushHeaders();
      drip(res, () => res.write('0'));
    },
    'trickle-head': (res) => {
      res.socket?.write('HTTP/1.1 200 OK\r\n');
      drip(res, () => res.socket?.write('x-slow: 1\r\n'));
    },
    huge: (res) => {
      res.writeHead(200, { ...OCSP_TYPE, 'content-length': String(64 * MiB) });
      pump(res, 64 * MiB);
    },
    chunked: (res) => {
      res.writeHead(200, OCSP_TYPE);
      pump(res, Number.POSITIVE_INFINITY);
    },
    gzip: (res) => res.writeHead(200, { ...OCSP_TYPE, 'content-encoding': 'gzip' }).end(GZIP_BOMB),
    redirect: (res) => res.writeHead(302, { location: `${base()}/redirect-target` }).end(),
    shared: (res, body) =>
      void sign(res, body).catch((error: Error) => res.writeHead(503).end(error.message)),
  };
}

/** The responder every certificate names: each path (the case) answers its own way. */
async function startResponder(dir: string): Promise<Responder> {
  const hits = new Map<string, number>();
  const signals = new Map<string, ReturnType<typeof deferred<unknown>>>();
  const signal = (key: string) => {
    if (!signals.has(key)) signals.set(key, deferred<unknown>());
    return signals.get(key) as ReturnType<typeof deferred<unknown>>;
  };
  const isOpen = new Map<string, boolean>();
  let port = 0;
  const routes = hostileRoutes(dir, () => `http://127.0.0.1:${port}`);
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').slice(1);
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (!isOpen.has(path)) {
      isOpen.set(path, true);
      res.on('close', () => {
        isOpen.set(path, false);
        signal(`closed:${path}`).resolve(res.writableFinished);
      });
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      signal(`arrived:${path}`).resolve(undefined);
      const route = routes[path];
      if (route !== undefined) route(res, Buffer.concat(chunks));
      else void signal(`answer:${path}`).promise.then((der) => res.writeHead(200, OCSP_TYPE).end(der));
    });
  });
  const listening = await listenTracked(server);
  port = listening.port;
  return {
    base: `http://127.0.0.1:${port}`,
    answer: (path, der) => signal(`answer:${path}`).resolve(der),
    hits: (path) => hits.get(path) ?? 0,
    arrived: (path) => signal(`arrived:${path}`).promise,
    closed: (path) => signal(`closed:${path}`).promise,
    open: (path) => isOpen.get(path) === true,
    close: () => listening.close(),
  };
}

/** A TLS handshake asking for the certificate status (no SNI when `name` is null): the staple, or null. */
function handshake(port: number, name: string | null): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    let staple: Buffer | null = null;
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ...(name === null ? {} : { servername: `${name}.test` }),
      requestOCSP: true,
      rejectUnauthorized: false,
    });
    socket.setTimeout(20_000, () => socket.destroy(new Error(`handshake with ${name}: nothing in 20 s`)));
    socket.on('OCSPResponse', (response: Buffer | null) => {
      staple = response !== null && response.length > 0 ? response : null;
    });
    socket.once('secureConnect', () => {
      socket.destroy();
      resolve(staple);
    });
    socket.once('error', reject);
  });
}

/** `openssl s_client -status` to `name`: the serial number the stapled response is about ('none': none). */
async function stapledSerial(dir: string, port: number, name: string): Promise<string> {
  const out = await runCommand(
    openssl,
    [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-servername',
      `${name}.test`,
      '-status',
      '-CAfile',
      'ca.crt',
    ],
    { input: '', timeoutMs: 20_000, cwd: dir },
  );
  assert.match(out.stdout, /Verify return code: 0 \(ok\)/, `${name}: the handshake itself is fine`);
  if (/OCSP response: no response sent/.test(out.stdout)) return 'none';
  return /OCSP Response Data:[\s\S]*?Serial Number: ([0-9A-F]+)/.exec(out.stdout)?.[1] ?? out.stdout;
}

function gatewayObjects(dir: string, enableOcsp: boolean, hosts: readonly Host[] = HOSTS): K8sObject[] {
  const objects: K8sObject[] = [
    controllerConfigMap({ 'enable-ocsp': String(enableOcsp), 'error-log-level': 'info' }),
    // No request is proxied: the handshakes are the whole test.
    ...serviceWithEndpoints({ name: 'web', ports: [9] }),
  ];
  const read = (file: string) => readFileSync(join(dir, file), 'utf8');
  for (const name of hosts) {
    objects.push(tlsSecret(`${name}-tls`, read(`${name}.crt`) + read('ca.crt'), read('leaf.key')));
    objects.push(
      ingress({
        name,
        host: `${name}.test`,
        tlsSecret: `${name}-tls`,
        paths: [{ path: '/', service: 'web', port: 80 }],
      }),
    );
  }
  return objects;
}

let dir: string;
let gw: TestGateway;
let responder: Responder;
/** The first handshake of each host, made as soon as the gateway serves it: never stapled (never waited). */
const primed = new Map<Host, Promise<Buffer | null>>();
/** The handshakes made while the hung fetch holds its request: whether it still held it after the first. */
let hangFlood: Promise<{ held: boolean; staples: (Buffer | null)[] }>;
const rejections: unknown[] = [];
const onRejection = (reason: unknown) => rejections.push(reason);

/** The first line the stapler logs about `name`'s certificate: stapled, or the code of the refusal. */
const verdict = (name: Host) => gw.errors.waitFor(new RegExp(`CN=${name}\\.test(?![\\w.-])`), 20_000);
const prime = (names: readonly Host[]) => {
  for (const name of names) {
    const first = handshake(gw.httpsPort, name);
    first.catch(() => {}); // read (and asserted) by the host's test
    primed.set(name, first);
  }
};
const none = (count: number, name: Host) =>
  mapLimited(Array.from({ length: count }), 20, () => handshake(gw.httpsPort, name));

before(async () => {
  process.on('unhandledRejection', onRejection);
  dir = mkdtempSync(join(tmpdir(), 'keepip-ocsp-attack-'));
  responder = await startResponder(dir);
  const starting = startTestGateway(topologyOf(gatewayObjects(dir, true, [])));
  // The cases that end at the fetch's 4-s deadline start first, alone; the rest is made meanwhile.
  const first: Host[] = ['hang', 'trickle-body', 'trickle-head'];
  await makeCa(dir, responder.base);
  await makeLeaves(dir, first);
  gw = await starting;
  assert.equal(gw.gateway.reload(topologyOf(gatewayObjects(dir, true, first))).ok, true);
  prime(first);
  await responder.arrived('hang');
  // One handshake while the fetch is held, before this process starts the CPU-heavy certificate work
  // below (which would share its event loop with the gateway's handshakes and stretch this one towards
  // the fetch's deadline on a loaded machine); the flood goes on meanwhile.
  const staple = await handshake(gw.httpsPort, 'hang');
  const held = responder.open('hang');
  hangFlood = none(FLOOD, 'hang').then((staples) => ({ held, staples: [staple, ...staples] }));
  hangFlood.catch(() => {}); // read by the test
  const rest = LEAVES.filter((name) => !first.includes(name as Host) && name !== 'cycle');
  const [cycle] = await Promise.all([makeCycle(dir), makeDelegates(dir), makeLeaves(dir, rest)]);
  responder.answer('cycle', cycle);
  for (const [path, der] of await makeResponses(dir)) responder.answer(path, der);
  assert.equal(gw.gateway.reload(topologyOf(gatewayObjects(dir, true))).ok, true);
  prime(HOSTS.filter((name) => !first.includes(name) && !NOT_PRIMED.includes(name)));
});

after(async () => {
  process.off('unhandledRejection', onRejection);
  await gw?.close();
  await responder?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('enable-ocsp: a hostile responder, greedy clients', { concurrency: true }, () => {
  it(`a responder that never answers: ${FLOOD} handshakes finish while it holds the one request, which ends at the fetch's deadline`, async () => {
    assert.equal(await primed.get('hang'), null, 'the first handshake did not wait');
    const { held, staples } = await hangFlood;
    assert.ok(held, 'a handshake finished while the responder held the request, unanswered');
    assert.ok(staples.every((s) => s === null));
    assert.equal(responder.hits('hang'), 1, 'one fetch for the certificate, however many clients ask');
    assert.match(await verdict('hang'), /OCSP_FETCH_FAILED: /);
    assert.equal(await responder.closed('hang'), false, 'the gateway hung up on the silent responder');
  });

  for (const name of ['trickle-body', 'trickle-head'] as const)
    it(`a responder that trickles (${name}): the fetch ends at its deadline, nothing stapled`, async () => {
      assert.equal(await primed.get(name), null);
      assert.match(await verdict(name), /OCSP_FETCH_FAILED: /);
      assert.equal(await responder.closed(name), false, 'the gateway hung up mid-answer');
      assert.equal(await handshake(gw.httpsPort, name), null);
    });

  for (const name of ['huge', 'chunked', 'gzip'] as const)
    it(`a body past 64 KiB (${name}): refused at the cap, nothing stapled`, async () => {
      assert.equal(await primed.get(name), null);
      assert.match(await verdict(name), /OCSP_FETCH_FAILED: .*larger than 65536 bytes/);
      if (name !== 'gzip') assert.equal(await responder.closed(name), false, 'hung up before the end');
      assert.equal(await handshake(gw.httpsPort, name), null);
    });

  it('a redirect to another URL is not followed', async () => {
    assert.equal(await primed.get('redirect'), null);
    assert.match(await verdict('redirect'), /OCSP_FETCH_FAILED: /);
    assert.equal(responder.hits('redirect-target'), 0);
    assert.equal(await handshake(gw.httpsPort, 'redirect'), null);
  });

  const refusals: [Host, RegExp][] = [
    ['other-serial', /OCSP_BAD_RESPONSE: the response is not about this certificate/],
    ['multi', /OCSP_NOT_GOOD: the responder says revoked/],
    ['unknown', /OCSP_NOT_GOOD: the responder says unknown/],
    ['past', /OCSP_NOT_CURRENT: /],
    ['future', /OCSP_NOT_CURRENT: /],
    ['delegate-expired', /OCSP_SIGNATURE_INVALID: /],
    ['delegate-stranger', /OCSP_SIGNATURE_INVALID: /],
    ['delegate-sub', /OCSP_SIGNATURE_INVALID: /],
    ['bad-signature', /OCSP_SIGNATURE_INVALID: /],
    ['other-algorithm', /OCSP_SIGNATURE_INVALID: /],
    ['try-later', /OCSP_NOT_SUCCESSFUL: the responder answered status 3/],
    ['unauthorized', /OCSP_NOT_SUCCESSFUL: the responder answered status 6/],
  ];
  for (const [name, code] of refusals)
    it(`${name}: never stapled, the error log says why`, async () => {
      assert.equal(await primed.get(name), null);
      assert.match(await verdict(name), code);
      assert.equal(await handshake(gw.httpsPort, name), null);
    });

  it('a response whose certificates issue each other (A by B, B by A): refused before a hung fetch started with it ends', async () => {
    const checked = verdict('cycle');
    const reference = verdict('hang-ref');
    checked.catch(() => {});
    reference.catch(() => {});
    // Both fetches start together; this answer comes at once, the other one never (4 s of margin). A check
    // cut off at a deadline of its own would not do: the loop would go on spinning in the background.
    assert.equal(await handshake(gw.httpsPort, 'cycle'), null);
    assert.equal(await handshake(gw.httpsPort, 'hang-ref'), null);
    const first = await Promise.race([
      checked.then(() => 'the verdict'),
      reference.then(() => "the hung fetch's deadline"),
    ]);
    assert.equal(first, 'the verdict', 'the check of the response never ended (the signer chain loops)');
    assert.match(await checked, /OCSP_SIGNATURE_INVALID: /);
    assert.equal(await handshake(gw.httpsPort, 'cycle'), null);
  });

  it('two certificates under one responder: each handshake gets the response about its own certificate', async () => {
    assert.equal(await primed.get('shared-a'), null);
    assert.equal(await primed.get('shared-b'), null);
    assert.match(await verdict('shared-a'), /stapled until/);
    assert.match(await verdict('shared-b'), /stapled until/);
    const serials = await Promise.all(
      ['shared-a', 'shared-b'].map((n) => stapledSerial(dir, gw.httpsPort, n)),
    );
    const expected = (['shared-a', 'shared-b'] as const).map((n) => serialOf(n).toString(16).toUpperCase());
    assert.deepEqual(serials, expected);
    assert.equal(responder.hits('shared'), 2, 'one fetch per certificate');
  });

  it('a response whose nextUpdate just passed (within the leeway): not stapled, and not fetched again per handshake', async () => {
    assert.equal(await primed.get('stale'), null);
    await verdict('stale');
    const staples = await none(40, 'stale');
    assert.ok(
      staples.every((s) => s === null),
      'an expired response is never stapled',
    );
    assert.equal(
      responder.hits('stale'),
      1,
      'clients drive no fetch of their own (failure: one per handshake)',
    );
  });

  it('a client without SNI: the handshake completes, nothing stapled', async () => {
    assert.equal(await handshake(gw.httpsPort, null), null);
    assert.equal(await handshake(gw.httpsPort, null), null);
  });
});

describe('enable-ocsp turned off by a reload', () => {
  it('the cached response is no longer stapled, and no certificate is fetched', async () => {
    assert.equal(await primed.get('good'), null);
    assert.match(await verdict('good'), /stapled until/);
    assert.notEqual(await handshake(gw.httpsPort, 'good'), null, 'stapled while enable-ocsp is on');
    assert.equal(gw.gateway.reload(topologyOf(gatewayObjects(dir, false))).ok, true);
    assert.equal(await handshake(gw.httpsPort, 'good'), null);
    assert.equal(await handshake(gw.httpsPort, 'fresh'), null);
    // Back on: a fetch for another certificate shows the stapler at work; `fresh` was never asked for.
    assert.equal(gw.gateway.reload(topologyOf(gatewayObjects(dir, true))).ok, true);
    assert.equal(await handshake(gw.httpsPort, 'sentinel'), null);
    await responder.arrived('sentinel');
    assert.equal(responder.hits('fresh'), 0);
    assert.notEqual(await handshake(gw.httpsPort, 'good'), null, 'stapled again once back on');
  });

  it('no promise rejection reached the process', () => {
    assert.deepEqual(rejections, []);
  });
});
