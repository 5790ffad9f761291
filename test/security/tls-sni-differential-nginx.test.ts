// TLS server name, certificate and client certificate: keepip's HTTPS listener against nginx 1.22 set up
// as ingress-nginx's template renders TLS servers (rootfs/etc/nginx/template/nginx.tmpl): one `server`
// per host (`listen 443 ssl`, server_name the host and its server-alias names, a `*.x` host as the
// single-label regex buildServerName writes), the host's Secret as ssl_certificate or the default (fake)
// certificate, the default server `_` with ssl_reject_handshake per the ConfigMap, and auth-tls-* as
// ssl_client_certificate / ssl_verify_client / ssl_verify_depth / error_page 495 496 plus the
// ssl-client-* proxy_set_header lines of the location. Static ssl_certificate stands for
// ssl_certificate_by_lua (certificate.lua picks the same pair by SNI: exact, then one wildcard label;
// every host certificate here names the host and its alias, so both agree).
//
// Generated configurations (fast-check, fixed seed; TLSDIFF_SEED=<n> or `random` explores others): four
// host slots, each absent or present, with or without a TLS Secret, a server-alias, client certificate
// auth (on / optional / optional_no_ca, pass-certificate-to-upstream, an error page), and the ConfigMap's
// ssl-reject-handshake. Probes per configuration: SNI exact / other case / trailing dot / wildcard
// instance / alias / unknown / an IP / absent, a Host that is the SNI name or another configured name,
// no client certificate, a valid one, one from another CA, an expired one, and forged ssl-client-*
// headers or not. Compared: the handshake (alert or not), the certificate served, the status (and
// Location), the backend reached and the ssl-client-* headers it got, ssl-client-verify's `FAILED:`
// reason text included. TLSDIFF_DUMP=1 prints every pair. The last test checks that nginx's answers
// showed every FEATURES entry: with few configurations a rare one (the wildcard with a Secret) can drop out.
//
// A difference where keepip serves a backend nginx refuses, or hands it client-certificate headers
// nginx would not, or completes a handshake nginx rejects, is unsafe: the test fails with it. A
// difference where keepip is stricter must be in ALLOWED (with the reason); anything else fails too.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import fc from 'fast-check';
import type { Topology } from '../../src/config/model.ts';
import { startTestGateway, type TestGateway, testCertificate } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  tlsSecret,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import { makePki, type Pem } from '../helpers/pki.ts';
import { type NamedBackends, startNamedBackends } from './helpers.ts';

const SLOTS = ['h0', 'h1', 'h2', 'w'] as const;
type Slot = (typeof SLOTS)[number];
type Auth = 'none' | 'on' | 'optional' | 'optional_no_ca';
type ClientCert = 'none' | 'valid' | 'foreign' | 'expired';

interface SlotConfig {
  present: boolean;
  tls: boolean;
  alias: boolean;
  auth: Auth;
  pass: boolean;
  errorPage: boolean;
}

interface Config {
  slots: Record<Slot, SlotConfig>;
  reject: boolean;
}

const ERROR_PAGE = 'https://err.tls.test/denied';
const SEED_VARIABLE = 'TLSDIFF_SEED';
const DEFAULT_SEED = 20_260_301;
const CONFIGS = 14;
const PROBES_PER_CONFIG = 48;

/** The host of a slot as the Ingress names it. */
const hostOf = (slot: Slot) => (slot === 'w' ? '*.wild.tls.test' : `${slot}.tls.test`);
/** A name the slot's server answers for (a wildcard's instance). */
const nameOf = (slot: Slot) => (slot === 'w' ? 'x.wild.tls.test' : `${slot}.tls.test`);
const aliasOf = (slot: Slot) => `alias-${slot}.tls.test`;

interface Material {
  dir: string;
  /** Host certificates (CN the host, SAN the host and its alias) by slot. */
  hosts: Record<Slot, Pem>;
  ca: string;
  clients: Record<Exclude<ClientCert, 'none'>, Pem>;
  defaultPair: Pem;
  /** Certificate fingerprint -> label (`default`, a slot). */
  labels: Map<string, string>;
}

async function material(): Promise<Material> {
  const hostSpec = (slot: Slot) => ({
    name: slot,
    subject: `/CN=${hostOf(slot)}`,
    extensions: `subjectAltName=DNS:${hostOf(slot)},DNS:${aliasOf(slot)}\n`,
  });
  const client = '/CN=client/O=Tenant';
  const { certs } = await makePki({
    certificates: [
      ...SLOTS.map(hostSpec),
      { name: 'ca', subject: '/CN=client-ca' },
      { name: 'other', subject: '/CN=other-ca' },
      { name: 'valid', issuer: 'ca', subject: client },
      { name: 'foreign', issuer: 'other', subject: client },
      { name: 'expired', issuer: 'ca', subject: client, dates: ['20200101000000Z', '20200102000000Z'] },
    ],
  });
  const defaultPair = await testCertificate();
  const dir = mkdtempSync(join(tmpdir(), 'keepip-tlsdiff-'));
  const labels = new Map<string, string>();
  const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;
  labels.set(fingerprint(defaultPair.cert), 'default');
  for (const slot of SLOTS) {
    writeFileSync(join(dir, `${slot}.crt`), certs[slot].cert);
    writeFileSync(join(dir, `${slot}.key`), certs[slot].key);
    labels.set(fingerprint(certs[slot].cert), slot);
  }
  writeFileSync(join(dir, 'default.crt'), defaultPair.cert);
  writeFileSync(join(dir, 'default.key'), defaultPair.key);
  writeFileSync(join(dir, 'ca.crt'), certs.ca.cert);
  return {
    dir,
    hosts: Object.fromEntries(SLOTS.map((s) => [s, certs[s]])) as Record<Slot, Pem>,
    ca: certs.ca.cert,
    clients: { valid: certs.valid, foreign: certs.foreign, expired: certs.expired },
    defaultPair,
    labels,
  };
}

// ---------- the two configurations ----------

/** nginx's server_name of a slot: buildServerName's single-label regex for `*.x`, then the alias. */
function serverNames(slot: Slot, c: SlotConfig): string {
  const host = slot === 'w' ? '"~^(?<subdomain>[\\w-]+)\\.wild\\.tls\\.test$"' : `"${hostOf(slot)}"`;
  return c.alias ? `${host} "${aliasOf(slot)}"` : host;
}

/** One host's `server` as ingress-nginx renders it (the parts that bear on TLS and auth-tls). */
function nginxServer(m: Material, port: number, backend: number, slot: Slot, c: SlotConfig): string {
  const pair = c.tls ? slot : 'default';
  const auth =
    c.auth === 'none'
      ? []
      : [
          `  ssl_client_certificate ${m.dir}/ca.crt;`,
          `  ssl_verify_client ${c.auth};`,
          '  ssl_verify_depth 1;',
          ...(c.errorPage ? [`  error_page 495 496 = ${ERROR_PAGE};`] : []),
        ];
  const headers =
    c.auth === 'none'
      ? []
      : [
          ...(c.pass ? ['    proxy_set_header ssl-client-cert $ssl_client_escaped_cert;'] : []),
          '    proxy_set_header ssl-client-verify $ssl_client_verify;',
          '    proxy_set_header ssl-client-subject-dn $ssl_client_s_dn;',
          '    proxy_set_header ssl-client-issuer-dn $ssl_client_i_dn;',
        ];
  return [
    `server { listen 127.0.0.1:${port} ssl; server_name ${serverNames(slot, c)};`,
    `  ssl_certificate ${m.dir}/${pair}.crt; ssl_certificate_key ${m.dir}/${pair}.key;`,
    ...auth,
    '  location / {',
    '    proxy_set_header Host $host;',
    ...headers,
    `    proxy_pass http://127.0.0.1:${backend};`,
    '  }',
    '}',
  ].join('\n');
}

function nginxHttp(m: Material, config: Config, port: number, backends: NamedBackends): string {
  const present = SLOTS.filter((s) => config.slots[s].present);
  return [
    'ssl_protocols TLSv1.2 TLSv1.3;',
    `server { listen 127.0.0.1:${port} ssl default_server; server_name _;`,
    `  ssl_certificate ${m.dir}/default.crt; ssl_certificate_key ${m.dir}/default.key;`,
    `  ssl_reject_handshake ${config.reject ? 'on' : 'off'};`,
    '  location / { return 404; } }',
    ...present.map((s) => nginxServer(m, port, backends.port(s), s, config.slots[s])),
  ].join('\n');
}

function annotationsOf(slot: Slot, c: SlotConfig): Record<string, string> {
  const out: Record<string, string> = {};
  if (c.alias) out['server-alias'] = aliasOf(slot);
  if (c.auth === 'none') return out;
  out['auth-tls-secret'] = 'default/client-ca';
  out['auth-tls-verify-client'] = c.auth;
  out['auth-tls-verify-depth'] = '1';
  if (c.pass) out['auth-tls-pass-certificate-to-upstream'] = 'true';
  if (c.errorPage) out['auth-tls-error-page'] = ERROR_PAGE;
  return out;
}

function keepipTopology(m: Material, config: Config, backends: NamedBackends): Topology {
  const caSecret: K8sObject = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'client-ca', namespace: 'default' },
    data: { 'ca.crt': Buffer.from(m.ca).toString('base64') },
  };
  const objects: K8sObject[] = [
    controllerConfigMap({ 'ssl-reject-handshake': String(config.reject) }),
    caSecret,
  ];
  for (const slot of SLOTS) {
    const c = config.slots[slot];
    if (!c.present) continue;
    objects.push(...serviceWithEndpoints({ name: `svc-${slot}`, ports: [backends.port(slot)] }));
    if (c.tls) objects.push(tlsSecret(`tls-${slot}`, m.hosts[slot].cert, m.hosts[slot].key));
    objects.push(
      ingress({
        name: `ing-${slot}`,
        host: hostOf(slot),
        ...(c.tls ? { tlsSecret: `tls-${slot}` } : {}),
        annotations: annotationsOf(slot, c),
        paths: [{ path: '/', service: `svc-${slot}`, port: 80 }],
      }),
    );
  }
  const topology = topologyOf(objects);
  const errors = topology.issues.filter((i) => i.severity === 'error');
  assert.deepEqual(errors, [], 'keepip reports errors for the configuration');
  return topology;
}

// ---------- probes ----------

type SniForm = 'exact' | 'upper' | 'dot' | 'ip' | 'none';

interface Probe {
  /** The name the SNI is made of (ignored for `ip` and `none`). */
  sniName: string;
  sniForm: SniForm;
  /** The Host header: null is the SNI name (lower case, no dot), else this name. */
  host: string | null;
  cert: ClientCert;
  forge: boolean;
}

/** The names a probe may use: what each present slot answers for, an absent slot's, an unknown one. */
function namePool(config: Config): string[] {
  const names = ['nope.tls.test', 'a.b.wild.tls.test'];
  for (const slot of SLOTS) {
    const c = config.slots[slot];
    // A configured name three times: most probes reach a server.
    names.push(...(c.present ? [nameOf(slot), nameOf(slot), nameOf(slot)] : [nameOf(slot)]));
    if (c.present && c.alias) names.push(aliasOf(slot));
  }
  return names;
}

function probeArb(config: Config): fc.Arbitrary<Probe> {
  const pool = namePool(config);
  return fc.record({
    sniName: fc.constantFrom(...pool),
    sniForm: fc.constantFrom<SniForm>('exact', 'exact', 'upper', 'dot', 'ip', 'none'),
    host: fc.option(fc.constantFrom(...pool), { freq: 2 }),
    cert: fc.constantFrom<ClientCert>('none', 'valid', 'valid', 'foreign', 'expired'),
    forge: fc.boolean(),
  });
}

function sniOf(p: Probe): string | undefined {
  switch (p.sniForm) {
    case 'exact':
      return p.sniName;
    case 'upper':
      return p.sniName.toUpperCase();
    case 'dot':
      return `${p.sniName}.`;
    case 'ip':
      return '127.0.0.1';
    case 'none':
      return undefined;
  }
}

function hostHeaderOf(p: Probe): string {
  if (p.host !== null) return p.host;
  return p.sniForm === 'ip' || p.sniForm === 'none' ? 'nope.tls.test' : p.sniName;
}

function describeProbe(p: Probe): string {
  const sni = sniOf(p);
  return `SNI ${sni === undefined ? '(none)' : JSON.stringify(sni)}, Host ${hostHeaderOf(p)}, client cert ${p.cert}${p.forge ? ', forged ssl-client-*' : ''}`;
}

// ---------- one exchange ----------

interface Outcome {
  /** `ok`, or the handshake's failure (`alert:<code>`). */
  handshake: string;
  /** The certificate served: `default` or a slot. */
  cert: string | null;
  status: number | null;
  location: string | null;
  /** The backend that got the request (seen by it), or null. */
  backend: string | null;
  /** The ssl-client-* headers the backend got. */
  ssl: Record<string, string>;
}

interface Ctx {
  m: Material;
  backends: NamedBackends;
}

let probeCounter = 0;

/** The request of a probe; the path is unique so the backend's record of it is found. */
function requestText(p: Probe, path: string): string {
  const forged = p.forge
    ? 'ssl-client-verify: SUCCESS\r\nssl-client-subject-dn: CN=admin\r\nssl-client-issuer-dn: CN=client-ca\r\n'
    : '';
  return `GET ${path} HTTP/1.1\r\nHost: ${hostHeaderOf(p)}\r\n${forged}Connection: close\r\n\r\n`;
}

/** Sends `p` to 127.0.0.1:`port` on a fresh TLS connection; resolves when the server closed it. */
function exchangeTls(
  ctx: Ctx,
  port: number,
  p: Probe,
  path: string,
): Promise<Omit<Outcome, 'backend' | 'ssl'>> {
  return new Promise((resolve) => {
    const sni = sniOf(p);
    const pair = p.cert === 'none' ? {} : ctx.m.clients[p.cert];
    const chunks: Buffer[] = [];
    let cert: string | null = null;
    let handshake = 'pending';
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      rejectUnauthorized: false,
      ...(sni === undefined ? {} : { servername: sni }),
      ...pair,
    });
    const timer = setTimeout(() => socket.destroy(new Error('no answer within 20 s')), 20_000);
    socket.on('secureConnect', () => {
      handshake = 'ok';
      const x509 = socket.getPeerX509Certificate();
      cert = x509 === undefined ? null : (ctx.m.labels.get(x509.fingerprint256) ?? x509.subject);
      socket.write(requestText(p, path));
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error: Error & { code?: string }) => {
      if (handshake === 'pending') handshake = `alert:${alertName(error)}`;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const head = Buffer.concat(chunks).toString('latin1').split('\r\n\r\n')[0] ?? '';
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      const location = /\r\nlocation: *([^\r]*)/i.exec(head);
      resolve({
        handshake: handshake === 'pending' ? 'alert:closed' : handshake,
        cert,
        status: status ? Number(status[1]) : null,
        location: location?.[1] ?? null,
      });
    });
  });
}

/** The alert a failed handshake got, as a short name (`unrecognized_name`), else the error code. */
function alertName(error: Error & { code?: string }): string {
  if (/unrecognized.name/i.test(error.message)) return 'unrecognized_name';
  return error.code ?? error.message;
}

async function ask(ctx: Ctx, port: number, p: Probe, via: string): Promise<Outcome> {
  const path = `/p${++probeCounter}?via=${via}`;
  const answer = await exchangeTls(ctx, port, p, path);
  const seen = ctx.backends.seen.find((s) => s.url === path);
  const ssl: Record<string, string> = {};
  for (const [name, value] of Object.entries(seen?.headers ?? {}))
    if (name.startsWith('ssl-client-')) ssl[name] = String(value);
  return { ...answer, backend: seen?.backend ?? null, ssl };
}

// ---------- judging ----------

type Kind = 'unsafe' | 'allowed' | 'other';

interface Verdict {
  kind: Kind;
  /** For `allowed`: the ALLOWED entry. */
  rule?: keyof typeof ALLOWED;
  text: string;
}

/** Where keepip is stricter than nginx, on purpose (docs/ingress-nginx-compat.md). */
const ALLOWED = {
  'misdirected-421':
    'a request whose Host is a host that verifies client certificates and is not the SNI name is 421 ' +
    '(compat doc, difference 13), also when the SNI (or an IP sent as SNI) names no server: nginx ' +
    "(ngx_http_ssl_servername) then records no server name, skips its 421, and checks the certificate for the Host's " +
    'server, for which the handshake asked none: 400 with "on", ssl-client-verify NONE passes with "optional"',
} as const;

function sslVerdicts(n: Outcome, k: Outcome): Verdict[] {
  const out: Verdict[] = [];
  const names = new Set([...Object.keys(n.ssl), ...Object.keys(k.ssl)]);
  for (const name of [...names].sort()) {
    const [nv, kv] = [n.ssl[name], k.ssl[name]];
    if (nv === kv) continue;
    const text = `backend ${k.backend} got ${name}: ${JSON.stringify(kv)} from keepip, ${JSON.stringify(nv)} from nginx`;
    // Forged ssl-client-* headers reach a host without auth-tls as nginx passes them (compat doc):
    // no difference here is allowed.
    out.push({ kind: kv === undefined ? 'other' : 'unsafe', text });
  }
  return out;
}

/** Whether some configured server answers to `sni` (nginx then compares the Host with it). */
function serverHasName(config: Config, sni: string | undefined): boolean {
  if (sni === undefined) return false;
  const name = sni.toLowerCase().replace(/\.$/, '');
  return SLOTS.some((slot) => {
    const c = config.slots[slot];
    if (!c.present) return false;
    if (c.alias && name === aliasOf(slot)) return true;
    return slot === 'w' ? /^[\w-]+\.wild\.tls\.test$/.test(name) : name === hostOf(slot);
  });
}

function answerVerdicts(n: Outcome, k: Outcome, sniKnown: boolean): Verdict[] {
  const text = `status ${k.status} (backend ${k.backend ?? 'none'}) from keepip, ${n.status} (backend ${n.backend ?? 'none'}) from nginx`;
  if (k.backend !== null && k.backend !== n.backend) return [{ kind: 'unsafe', text }];
  if (k.backend === null && k.status === 421 && n.status !== 421 && !sniKnown)
    return [{ kind: 'allowed', rule: 'misdirected-421', text }];
  if (k.status !== n.status || k.location !== n.location)
    return [{ kind: 'other', text: `${text}; Location ${k.location} / ${n.location}` }];
  return k.backend === null ? [] : sslVerdicts(n, k);
}

function judge(n: Outcome, k: Outcome, sniKnown: boolean): Verdict[] {
  if (n.handshake !== k.handshake) {
    const text = `handshake ${k.handshake} (certificate ${k.cert}, status ${k.status}) from keepip, ${n.handshake} from nginx`;
    return [{ kind: n.handshake !== 'ok' && k.handshake === 'ok' ? 'unsafe' : 'other', text }];
  }
  if (n.handshake !== 'ok') return [];
  const out = answerVerdicts(n, k, sniKnown);
  if (n.cert !== k.cert)
    out.push({ kind: 'other', text: `certificate ${k.cert} from keepip, ${n.cert} from nginx` });
  return out;
}

// ---------- the bench ----------

function slotArb(): fc.Arbitrary<SlotConfig> {
  return fc.record({
    present: fc.boolean(),
    tls: fc.boolean(),
    alias: fc.boolean(),
    auth: fc.constantFrom<Auth>('none', 'on', 'on', 'optional', 'optional_no_ca'),
    pass: fc.boolean(),
    errorPage: fc.boolean(),
  });
}

const configArb: fc.Arbitrary<Config> = fc.record({
  slots: fc.record({ h0: slotArb(), h1: slotArb(), h2: slotArb(), w: slotArb() }),
  reject: fc.boolean(),
});

function describeConfig(config: Config): string {
  const slots = SLOTS.filter((s) => config.slots[s].present).map((s) => {
    const c = config.slots[s];
    const flags = [c.tls ? 'tls' : 'no-tls', c.alias ? `alias ${aliasOf(s)}` : '', `auth ${c.auth}`];
    if (c.auth !== 'none') flags.push(c.pass ? 'pass-cert' : '', c.errorPage ? 'error-page' : '');
    return `${hostOf(s)} [${flags.filter(Boolean).join(', ')}]`;
  });
  return `ssl-reject-handshake ${config.reject}; ${slots.join('; ') || 'no hosts'}`;
}

interface Bench extends Ctx {
  gateway: TestGateway;
  /** How many of nginx's answers showed each feature (certificateFeatures, requestFeatures). */
  seen: Map<string, number>;
}

/** A host certificate (not the default one, not the wildcard's). */
const isHostCert = (cert: string | null) => cert === 'h0' || cert === 'h1' || cert === 'h2';
/** The certificate of some slot, the wildcard's included. */
const isSlotCert = (cert: string | null) => isHostCert(cert) || cert === 'w';

/**
 * What nginx's handshake for `p` shows. The Outcome has no SNI, so the probe says which name was sent
 * and the answer (alert, certificate) what nginx did with it; `config` only tells a host without a TLS
 * Secret from an unknown name, and whether the wildcard had a certificate to withhold.
 */
function certificateFeatures(config: Config, p: Probe, n: Outcome): string[] {
  const named = p.sniForm !== 'ip' && p.sniForm !== 'none';
  const out: string[] = [];
  if (n.handshake !== 'ok')
    out.push(named ? 'handshake refused, unknown SNI' : 'handshake refused, no SNI or an IP');
  if (isHostCert(n.cert)) out.push("a host's certificate");
  if (isSlotCert(n.cert)) {
    if (p.sniForm === 'upper') out.push("a host's certificate for its SNI in upper case");
    if (p.sniForm === 'dot') out.push("a host's certificate for its SNI with a trailing dot");
    if (named && p.sniName === aliasOf(n.cert as Slot)) out.push("a server-alias's certificate");
  }
  if (n.cert === 'w' && named && p.sniName === nameOf('w')) out.push('the wildcard certificate');
  const w = config.slots.w;
  if (named && p.sniName === 'a.b.wild.tls.test' && w.present && w.tls && n.cert !== 'w')
    out.push('no wildcard certificate two labels down');
  if (n.cert !== 'default') return out;
  if (p.sniForm === 'none') out.push('the default certificate, no SNI');
  else if (p.sniForm === 'ip') out.push('the default certificate, an IP as SNI');
  else if (serverHasName(config, sniOf(p))) out.push('the default certificate, a host without a TLS Secret');
  else out.push('the default certificate, an unknown SNI');
  return out;
}

/** What nginx's answer to the request shows: status, Location, the backend and its ssl-client-* headers. */
function requestFeatures(p: Probe, n: Outcome): string[] {
  const out: string[] = [];
  if (n.status === 404 && n.backend === null) out.push("the default server's 404");
  if (n.status === 421) out.push('421, a Host other than the SNI name');
  if (n.status === 400)
    out.push(p.cert === 'none' ? '400, no client certificate' : '400, a refused client certificate');
  if (n.status === 302 && n.location === ERROR_PAGE) out.push('the auth-tls error page');
  if (isSlotCert(n.cert) && n.backend !== null && n.backend !== n.cert)
    out.push("one host's certificate, another's backend");
  const verify = n.ssl['ssl-client-verify'];
  if (verify === 'SUCCESS' && n.ssl['ssl-client-subject-dn'] === 'O=Tenant,CN=client')
    out.push('ssl-client-verify SUCCESS');
  if (verify === 'NONE') out.push('ssl-client-verify NONE');
  if (verify?.startsWith('FAILED:')) out.push('ssl-client-verify FAILED:<reason>');
  if (n.ssl['ssl-client-cert'] !== undefined) out.push('ssl-client-cert passed upstream');
  if (n.ssl['ssl-client-subject-dn'] === 'CN=admin') out.push('forged ssl-client-* headers passed through');
  return out;
}

/** Every feature the generated runs must have shown in nginx's answers (a smaller run can lose one). */
const FEATURES = [
  'handshake refused, unknown SNI',
  'handshake refused, no SNI or an IP',
  "a host's certificate",
  "a host's certificate for its SNI in upper case",
  "a host's certificate for its SNI with a trailing dot",
  "a server-alias's certificate",
  'the wildcard certificate',
  'no wildcard certificate two labels down',
  'the default certificate, no SNI',
  'the default certificate, an IP as SNI',
  'the default certificate, a host without a TLS Secret',
  'the default certificate, an unknown SNI',
  "the default server's 404",
  '421, a Host other than the SNI name',
  '400, no client certificate',
  '400, a refused client certificate',
  'the auth-tls error page',
  "one host's certificate, another's backend",
  'ssl-client-verify SUCCESS',
  'ssl-client-verify NONE',
  'ssl-client-verify FAILED:<reason>',
  'ssl-client-cert passed upstream',
  'forged ssl-client-* headers passed through',
];

/** Each probe to a fresh nginx for `config` and to keepip reloaded with it; the verdicts, described. */
async function runConfig(bench: Bench, config: Config, probes: readonly Probe[]) {
  const reloaded = bench.gateway.gateway.reload(keepipTopology(bench.m, config, bench.backends));
  assert.ok(reloaded.ok, `keepip refused the configuration: ${JSON.stringify(reloaded)}`);
  const ngx: RunningNginx = await startNginx({
    freePorts: 1,
    http: (_dir, [port]) => nginxHttp(bench.m, config, port!, bench.backends),
    waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
  });
  const found: { verdict: Verdict; probe: Probe }[] = [];
  try {
    for (let i = 0; i < probes.length; i += 6) {
      await Promise.all(
        probes.slice(i, i + 6).map(async (probe) => {
          const [n, k] = await Promise.all([
            ask(bench, ngx.ports[0]!, probe, 'nginx'),
            ask(bench, bench.gateway.httpsPort, probe, 'keepip'),
          ]);
          if (process.env.TLSDIFF_DUMP !== undefined)
            console.log(
              `${describeConfig(config)} | ${describeProbe(probe)}\n  N ${JSON.stringify(n)}\n  K ${JSON.stringify(k)}`,
            );
          for (const feature of [...certificateFeatures(config, probe, n), ...requestFeatures(probe, n)])
            bench.seen.set(feature, (bench.seen.get(feature) ?? 0) + 1);
          for (const verdict of judge(n, k, serverHasName(config, sniOf(probe))))
            found.push({ verdict, probe });
        }),
      );
    }
  } finally {
    await ngx.stop();
  }
  return found.map(({ verdict, probe }) => ({
    ...verdict,
    text: `${describeConfig(config)}\n    ${describeProbe(probe)}: ${verdict.text}`,
  }));
}

async function startBench(): Promise<Bench> {
  const m = await material();
  const backends = await startNamedBackends(SLOTS);
  const gateway = await startTestGateway(topologyOf([]));
  return { m, backends, gateway, seen: new Map() };
}

async function stopBench(bench: Bench | undefined): Promise<void> {
  if (bench === undefined) return;
  await bench.gateway.close();
  await bench.backends.close();
  rmSync(bench.m.dir, { recursive: true, force: true });
}

function seedOf(): number {
  const chosen = process.env[SEED_VARIABLE];
  return chosen === 'random' ? Date.now() % 2 ** 31 : Number(chosen ?? DEFAULT_SEED);
}

/** The first few of `verdicts` of `kind`, one per line. */
function listed(verdicts: readonly Verdict[], kind: Kind, seed: number): string {
  const of = verdicts.filter((v) => v.kind === kind);
  const shown = of.slice(0, 12).map((v) => `  ${v.text}`);
  return `seed ${seed}: ${of.length} ${kind} difference(s)\n${shown.join('\n')}`;
}

describe('TLS SNI, certificates and client certificates against nginx 1.22 (ingress-nginx template)', () => {
  let bench: Bench | undefined;
  const verdicts: Verdict[] = [];
  const seed = seedOf();

  before(async () => {
    bench = await startBench();
    const configs = fc.sample(configArb, { numRuns: CONFIGS, seed });
    for (const [i, config] of configs.entries()) {
      const probes = fc.sample(probeArb(config), { numRuns: PROBES_PER_CONFIG, seed: seed + i + 1 });
      verdicts.push(...(await runConfig(bench, config, probes)));
    }
  });
  after(() => stopBench(bench));

  it('keepip never serves a backend, or client-certificate headers, that nginx refuses, nor completes a handshake nginx rejects', () => {
    assert.equal(verdicts.filter((v) => v.kind === 'unsafe').length, 0, listed(verdicts, 'unsafe', seed));
  });

  it('every other difference is one where keepip is stricter on purpose (ALLOWED)', (t) => {
    for (const rule of Object.keys(ALLOWED))
      t.diagnostic(`${rule}: ${verdicts.filter((v) => v.rule === rule).length} probe(s)`);
    assert.equal(verdicts.filter((v) => v.kind === 'other').length, 0, listed(verdicts, 'other', seed));
  });

  it('the runs exercised every feature (each shown by some nginx answer)', (t) => {
    const seen = bench?.seen ?? new Map<string, number>();
    for (const feature of FEATURES) t.diagnostic(`${feature}: ${seen.get(feature) ?? 0} answer(s)`);
    const missing = FEATURES.filter((feature) => !seen.has(feature));
    const shown = [...seen].map(([feature, count]) => `${feature} (${count})`).join(', ');
    // Missing means no probe checked keepip on it: too few configurations (CONFIGS) or an unlucky seed.
    assert.deepEqual(
      missing,
      [],
      `seed ${seed}, ${CONFIGS} configurations: nginx never answered with these, so keepip went unchecked on them; seen: ${shown}`,
    );
  });
});
