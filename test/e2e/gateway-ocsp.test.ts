// enable-ocsp over real TLS: OpenSSL's own responder (`openssl ocsp -reqin … -respout`, behind a small
// HTTP front on 127.0.0.1) answers the gateway's requests, and `openssl s_client -status` reads what is
// stapled. A good certificate's response is stapled from the handshake after the fetch (never waited
// for); a revoked one, a response signed by another CA, by a delegate without OCSPSigning, an HTTP
// error, garbage, a certificate whose issuer is not in the Secret or that names no responder: nothing is
// stapled, and the error log says why with its code. Every wait is on a signal (a log line, the
// responder having answered).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import http from '../../src/node-http.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  tlsSecret,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { listenTracked } from '../helpers/net.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';

const openssl = requireBinary('openssl');

/** Each host's certificate names this responder path; the front answers each path its own way. */
const CASES = [
  'good',
  'no-certs',
  'revoked',
  'rogue',
  'delegate',
  'delegate-no-eku',
  'status500',
  'garbage',
] as const;
type Case = (typeof CASES)[number];

async function run(dir: string, args: string[]): Promise<string> {
  const out = await runCommand(openssl, args, { input: '', timeoutMs: 20_000, cwd: dir });
  if (out.code !== 0) throw new Error(`openssl ${args.join(' ')}: ${out.stderr}`);
  return out.stdout;
}

const EXTENSIONS = `[req]
distinguished_name=dn
[dn]
[ca]
basicConstraints=critical,CA:true
keyUsage=critical,keyCertSign,cRLSign
[signer]
basicConstraints=CA:false
extendedKeyUsage=OCSPSigning
[plain]
basicConstraints=CA:false
`;

/** A CA, a stranger CA (signs the rogue answers), two responder certificates, and a leaf per case naming `responder/<case>`. */
async function makePki(dir: string, responder: string): Promise<void> {
  writeFileSync(join(dir, 'x.cnf'), EXTENSIONS);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  for (const ca of ['ca', 'stranger'])
    await run(dir, [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      `${ca}.key`,
      '-out',
      `${ca}.crt`,
      '-subj',
      `/CN=${ca}`,
      '-days',
      '30',
      '-config',
      'x.cnf',
      '-extensions',
      'ca',
    ]);
  // One key for every certificate the CA issues: what differs is the certificate.
  await run(dir, ['req', ...ec, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=leaf']);
  const issue = (name: string, subject: string, extfile: string, extensions: string) =>
    run(dir, [
      'x509',
      '-req',
      '-in',
      'leaf.csr',
      '-subj',
      subject,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-set_serial',
      String(serialOf(name)),
      '-out',
      `${name}.crt`,
      '-days',
      '10',
      '-extfile',
      extfile,
      '-extensions',
      extensions,
    ]);
  await issue('signer', '/CN=ocsp signer', 'x.cnf', 'signer');
  await issue('plain', '/CN=not an ocsp signer', 'x.cnf', 'plain');
  for (const name of LEAVES) {
    const aia =
      name === 'no-aia'
        ? ''
        : `authorityInfoAccess=OCSP;URI:${responder}/${name === 'no-issuer' ? 'good' : name}\n`;
    writeFileSync(
      join(dir, `${name}.cnf`),
      `[leaf]\nbasicConstraints=CA:false\nsubjectAltName=DNS:${name}.test\n${aia}`,
    );
    await issue(name, `/CN=${name}.test`, `${name}.cnf`, 'leaf');
  }
  // OpenSSL's responder database: every leaf valid, `revoked` revoked.
  const lines = LEAVES.map((name) => {
    const serial = serialOf(name).toString(16).toUpperCase().padStart(2, '0');
    const revoked = name === 'revoked';
    return `${revoked ? 'R' : 'V'}\t301231000000Z\t${revoked ? '261201000000Z' : ''}\t${serial}\tunknown\t/CN=${name}.test`;
  });
  writeFileSync(join(dir, 'index.txt'), `${lines.join('\n')}\n`);
}

const LEAVES = [...CASES, 'no-issuer', 'no-aia'];
const SERIALS = ['signer', 'plain', ...LEAVES];
/** Distinct serial numbers, set rather than drawn, so the responder's index can name them. */
function serialOf(name: string): number {
  return 0x1000 + SERIALS.indexOf(name);
}

/** The responder's signing key for a case: the CA, a delegate, a delegate without OCSPSigning, or a stranger. */
function signer(kind: Case): [string, string, string] {
  if (kind === 'rogue') return ['stranger.crt', 'stranger.key', 'stranger.crt'];
  if (kind === 'delegate') return ['signer.crt', 'leaf.key', 'ca.crt'];
  if (kind === 'delegate-no-eku') return ['plain.crt', 'leaf.key', 'ca.crt'];
  return ['ca.crt', 'ca.key', 'ca.crt'];
}

describe('enable-ocsp: stapling against OpenSSL', { concurrency: false }, () => {
  let dir: string;
  let gw: TestGateway;
  let backend: RunningWhoami;
  let front: Awaited<ReturnType<typeof listenTracked>>;
  const answered = new Map<string, number>();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keepip-ocsp-'));
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      // A responder that fails answers 503 at once (the test then fails on what it expected), never hangs.
      req.on('end', () =>
        answer(req.url?.slice(1) as Case, Buffer.concat(chunks), res).catch((error: Error) =>
          res.writeHead(503).end(error.message),
        ),
      );
    });
    const answer = async (kind: Case, body: Buffer, res: ServerResponse) => {
      const n = (answered.get(kind) ?? 0) + 1;
      if (kind === 'status500') res.writeHead(500).end();
      else if (kind === 'garbage') res.writeHead(200).end('not an OCSP response');
      else {
        const [cert, key, ca] = signer(kind);
        writeFileSync(join(dir, `${kind}-${n}.req`), body);
        await run(dir, [
          'ocsp',
          '-index',
          'index.txt',
          '-rsigner',
          cert,
          '-rkey',
          key,
          '-CA',
          ca,
          '-reqin',
          `${kind}-${n}.req`,
          '-respout',
          `${kind}-${n}.resp`,
          '-nmin',
          '60',
          // The issuer's own response without its certificate (as Let's Encrypt's responders answer).
          ...(kind === 'no-certs' ? ['-resp_no_certs'] : []),
        ]);
        res
          .writeHead(200, { 'content-type': 'application/ocsp-response' })
          .end(readFileSync(join(dir, `${kind}-${n}.resp`)));
      }
      answered.set(kind, n);
    };
    front = await listenTracked(server);
    await makePki(dir, `http://127.0.0.1:${front.port}`);
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    const objects: K8sObject[] = [
      controllerConfigMap({ 'enable-ocsp': 'true', 'error-log-level': 'info' }),
      ...serviceWithEndpoints({ name: 'web', ports: [backend.address.port] }),
    ];
    for (const name of LEAVES) {
      const chain =
        readFileSync(join(dir, `${name}.crt`), 'utf8') +
        (name === 'no-issuer' ? '' : readFileSync(join(dir, 'ca.crt'), 'utf8'));
      objects.push(tlsSecret(`${name}-tls`, chain, readFileSync(join(dir, 'leaf.key'), 'utf8')));
      objects.push(
        ingress({
          name,
          host: `${name}.test`,
          tlsSecret: `${name}-tls`,
          paths: [{ path: '/', service: 'web', port: 80 }],
        }),
      );
    }
    gw = await startTestGateway(topologyOf(objects));
  });

  after(async () => {
    await gw?.close();
    await backend?.close();
    await front?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** `openssl s_client -status` to `name`: what it says of the stapled response. */
  async function stapled(name: string): Promise<string> {
    const out = await runCommand(
      openssl,
      [
        's_client',
        '-connect',
        `127.0.0.1:${gw.httpsPort}`,
        '-servername',
        `${name}.test`,
        '-status',
        '-CAfile',
        join(dir, 'ca.crt'),
      ],
      { input: '', timeoutMs: 20_000 },
    );
    const text = out.stdout;
    assert.match(text, /Verify return code: 0 \(ok\)/, `${name}: the handshake itself is fine`);
    if (/OCSP response: no response sent/.test(text)) return 'none';
    const status = /Cert Status: (\w+)/.exec(text)?.[1];
    return status === undefined ? `unreadable: ${text}` : status;
  }

  it('a good certificate: nothing on the first handshake (never waited for), then the response, good', async () => {
    assert.equal(await stapled('good'), 'none');
    await gw.errors.waitFor(/OCSP response for CN=good\.test stapled until/);
    assert.equal(await stapled('good'), 'good');
    assert.equal(await stapled('good'), 'good');
    assert.equal(answered.get('good'), 1, 'fetched once, then served from the cache');
  });

  it("a response of the issuer that embeds no certificate (RFC 6960 allows it; Let's Encrypt sends them) is stapled", async () => {
    await stapled('no-certs');
    await gw.errors.waitFor(/OCSP response for CN=no-certs\.test stapled until/);
    assert.equal(await stapled('no-certs'), 'good');
  });

  it("a response signed by the issuer's delegate (OCSPSigning) is stapled", async () => {
    await stapled('delegate');
    await gw.errors.waitFor(/OCSP response for CN=delegate\.test stapled until/);
    assert.equal(await stapled('delegate'), 'good');
  });

  const refusals: [string, RegExp][] = [
    ['revoked', /OCSP_NOT_GOOD: the responder says revoked.*CN=revoked\.test/],
    ['rogue', /OCSP_SIGNATURE_INVALID: .*CN=rogue\.test/],
    ['delegate-no-eku', /OCSP_SIGNATURE_INVALID: .*CN=delegate-no-eku\.test/],
    ['status500', /OCSP_FETCH_FAILED: .*status code: 500.*CN=status500\.test/],
    ['garbage', /OCSP_BAD_RESPONSE: .*CN=garbage\.test/],
    ['no-issuer', /OCSP_NO_ISSUER: .*CN=no-issuer\.test/],
    ['no-aia', /OCSP_NO_RESPONDER: .*CN=no-aia\.test/],
  ];
  for (const [name, line] of refusals) {
    it(`${name}: nothing stapled, ever, and the error log says why`, async () => {
      assert.equal(await stapled(name), 'none');
      await gw.errors.waitFor(line);
      assert.equal(await stapled(name), 'none');
    });
  }
});
