// Controller vs gateway parity: the same Ingresses, Services, EndpointSlices, Secrets and ConfigMaps,
// once as manifest files (`keepip gateway`: topologyOf → buildTopology) and once from an API server
// (`keepip controller`: fake API server, real reflectors, real snapshotObjects, the gateway it serves),
// must give the same Topology. Claims checked (quoted):
// - docs/controller.md: "serves the Ingresses of its class through keepip's gateway (the same one
//   `keepip gateway` runs, with the same model the manifest files produce)".
// - docs/controller.md: "the cluster's objects go through the same `buildTopology` the manifest files use
//   (`src/controller/snapshot.ts` only decides which objects: ingress-nginx's class rules …, the Secrets
//   the served Ingresses reference)".
// - docs/controller.md: "`--default-ssl-certificate`'s Secret is part of the snapshot, as Ingress TLS
//   Secrets are: a renewed Secret (cert-manager renews in place) is a reload".
// - allow-cross-namespace-resources (annotation catalog): "`true` lets auth-secret, auth-tls-secret,
//   proxy-ssl-secret and auth-proxy-set-headers name a Secret or ConfigMap of another namespace …
//   custom-headers stays same-namespace either way … The controller then also reads those Secrets".
// - add-headers / proxy-set-headers: "`namespace/name` (or `name` in the controller's namespace) of a
//   ConfigMap"; ssl-dh-param: "The controller watches the Secret".
// Corpus: every reference an Ingress or the controller ConfigMap makes to another object (spec.tls,
// auth-secret auth-file and auth-map, auth-tls-secret, proxy-ssl-secret, custom-headers,
// auth-proxy-set-headers, default-backend, a canary pair, ExternalName, named target ports, add-headers,
// proxy-set-headers as a bare name, ssl-dh-param, --default-ssl-certificate), in three namespaces, an
// Ingress with the legacy class annotation, one whose annotation contradicts its spec.ingressClassName,
// one of another class, Services written without the fields the API server defaults,
// allow-cross-namespace-resources off then on (cross-namespace references of each kind). Then each
// referenced object is changed (replaced, re-pointed, removed and created again) in the API server and,
// after the controller's `reloaded:` line, parity is checked again.
// Found here and fixed: the controller dropped the CONFLICTING_INGRESS_CLASS warning (servedIngresses
// deleted kubernetes.io/ingress.class before buildTopology, also beside a spec.ingressClassName).
// One fake API server and one controller for the whole file.
import assert from 'node:assert/strict';
import { getDiffieHellman } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Topology } from '../../src/config/model.ts';
import { type FakeApiServer, type Obj, startFakeApiServer } from '../fixtures/fake-apiserver.ts';
import { certificateFor } from '../fixtures/gateway/certificates.ts';
import { shaPassword, topologyOf } from '../fixtures/gateway/manifests.ts';
import { startTestController, type TestController } from './harness.ts';

const CONTROLLER_NS = 'ingress-nginx';
const CONTROLLER_CM = `${CONTROLLER_NS}/ingress-nginx-controller`;
const DEFAULT_CERT = `${CONTROLLER_NS}/default-cert`;
const PREFIX = 'nginx.ingress.kubernetes.io/';

// ---------------------------------------------------------------------------------------------
// Objects, with apiVersion (the file path needs it; the API server sets its own)

type Pair = { cert: string; key: string };
const b64 = (text: string) => Buffer.from(text).toString('base64');
const meta = (namespace: string, name: string, at = 0) => ({
  namespace,
  name,
  creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, at)).toISOString().replace('.000', ''),
});

function configMap(namespace: string, name: string, data: Record<string, string>): Obj {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(namespace, name), data };
}

function secret(namespace: string, name: string, data: Record<string, string>, type = 'Opaque'): Obj {
  const encoded = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)]));
  return { apiVersion: 'v1', kind: 'Secret', type, metadata: meta(namespace, name), data: encoded };
}

const tlsSecret = (namespace: string, name: string, pair: Pair) =>
  secret(namespace, name, { 'tls.crt': pair.cert, 'tls.key': pair.key }, 'kubernetes.io/tls');

/**
 * A Service whose port `http` (80) targets the named container port `web`, and its EndpointSlice;
 * `minimal`: written as people write them (no type, protocol or targetPort: the API server fills them in).
 */
function service(namespace: string, name: string, address: string, port: number, minimal = false): Obj[] {
  const full = { type: 'ClusterIP', clusterIP: '10.96.0.10' };
  const ports = minimal
    ? [{ name: 'http', port: 80 }]
    : [{ name: 'http', port: 80, targetPort: 'web', protocol: 'TCP' }];
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(namespace, name),
      spec: { ...(minimal ? {} : full), selector: { app: name }, ports },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { ...meta(namespace, `${name}-x1`), labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      endpoints: [{ addresses: [address], conditions: { ready: true } }],
      ports: [{ name: 'http', port, protocol: 'TCP' }],
    },
  ];
}

function externalName(namespace: string, name: string, host: string): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(namespace, name),
    spec: { type: 'ExternalName', externalName: host, ports: [{ name: 'http', port: 80 }] },
  };
}

function ingressClass(name: string, controller: string): Obj {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'IngressClass',
    metadata: meta('', name),
    spec: { controller },
  };
}

interface IngressSpec {
  namespace: string;
  name: string;
  host: string;
  /** [path, Service, port (number or the Service port's name)] */
  paths: [string, string, number | string][];
  annotations?: Record<string, string>;
  tls?: string;
  /** spec.ingressClassName; null: none (the legacy annotation, when given, decides). */
  className?: string | null;
  at: number;
}

function ingress(s: IngressSpec): Obj {
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.annotations ?? {})) annotations[k.includes('/') ? k : PREFIX + k] = v;
  const className = s.className === undefined ? 'nginx' : s.className;
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { ...meta(s.namespace, s.name, s.at), annotations },
    spec: {
      ...(className === null ? {} : { ingressClassName: className }),
      ...(s.tls ? { tls: [{ hosts: [s.host], secretName: s.tls }] } : {}),
      rules: [
        {
          host: s.host,
          http: {
            paths: s.paths.map(([path, name, port]) => ({
              path,
              pathType: 'Prefix',
              backend: {
                service: { name, port: typeof port === 'number' ? { number: port } : { name: port } },
              },
            })),
          },
        },
      ],
    },
  };
}

/** PEM DH parameters of an RFC 3526 group (`modp14`, `modp15`): DER SEQUENCE { p, g }, no generation. */
function dhParams(group: 'modp14' | 'modp15'): string {
  const dh = getDiffieHellman(group);
  const length = (n: number) =>
    n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  const integer = (bytes: Buffer) => {
    const body = bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
    return Buffer.concat([Buffer.from([0x02]), length(body.length), body]);
  };
  const body = Buffer.concat([integer(dh.getPrime()), integer(dh.getGenerator())]);
  const der = Buffer.concat([Buffer.from([0x30]), length(body.length), body]);
  const lines = der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n');
  return `-----BEGIN DH PARAMETERS-----\n${lines}\n-----END DH PARAMETERS-----\n`;
}

const htpasswd = (users: Record<string, string>) =>
  Object.entries(users)
    .map(([user, password]) => `${user}:${shaPassword(password)}\n`)
    .join('');

interface Pki {
  tlsA: Pair;
  tlsA2: Pair;
  clientCa: Pair;
  clientCa2: Pair;
  upstreamCa: Pair;
  upstreamCa2: Pair;
  upstreamClient: Pair;
  defaultCert: Pair;
  defaultCert2: Pair;
}

async function makePki(): Promise<Pki> {
  const names = [
    'a.example.com',
    'a.example.com',
    'client-ca',
    'client-ca-2',
    'upstream-ca',
    'upstream-ca-2',
    'keepip-upstream-client',
    'keepip-parity-default',
    'keepip-parity-default-2',
  ] as const;
  const made = await Promise.all(names.map((n) => certificateFor(n)));
  const [
    tlsA,
    tlsA2,
    clientCa,
    clientCa2,
    upstreamCa,
    upstreamCa2,
    upstreamClient,
    defaultCert,
    defaultCert2,
  ] = made as [Pair, Pair, Pair, Pair, Pair, Pair, Pair, Pair, Pair];
  return {
    tlsA,
    tlsA2,
    clientCa,
    clientCa2,
    upstreamCa,
    upstreamCa2,
    upstreamClient,
    defaultCert,
    defaultCert2,
  };
}

/** The whole corpus: what the manifest files hold, and what is applied to the API server. */
function corpus(pki: Pki): Obj[] {
  const upstream = (ca: Pair) =>
    secret('team-a', 'upstream-tls', {
      'ca.crt': ca.cert,
      'tls.crt': pki.upstreamClient.cert,
      'tls.key': pki.upstreamClient.key,
    });
  return [
    ingressClass('nginx', 'k8s.io/ingress-nginx'),
    ingressClass('other', 'example.com/other'),
    // The controller's namespace: its ConfigMap and the objects the ConfigMap names.
    configMap(CONTROLLER_NS, 'ingress-nginx-controller', {
      'add-headers': `${CONTROLLER_NS}/add-headers`,
      'proxy-set-headers': 'proxy-headers',
      'ssl-dh-param': `${CONTROLLER_NS}/dhparam`,
      'global-allowed-response-headers': 'X-Custom-A,X-Custom-B',
      'allow-cross-namespace-resources': 'false',
    }),
    configMap(CONTROLLER_NS, 'add-headers', { 'X-Added': 'added-1' }),
    configMap(CONTROLLER_NS, 'proxy-headers', { 'X-Proxied': 'proxied-1' }),
    secret(CONTROLLER_NS, 'dhparam', { 'dhparam.pem': dhParams('modp14') }),
    tlsSecret(CONTROLLER_NS, 'default-cert', pki.defaultCert),
    // team-a: one object of every kind an Ingress names, in its own namespace.
    ...service('team-a', 'web', '127.0.0.11', 8080),
    ...service('team-a', 'canary', '127.0.0.12', 8080, true),
    ...service('team-a', 'fallback', '127.0.0.13', 8080, true),
    externalName('team-a', 'ext', 'backend.example.invalid'),
    tlsSecret('team-a', 'tls-a', pki.tlsA),
    secret('team-a', 'basic-users', { auth: htpasswd({ alice: 'wonderland' }) }),
    secret('team-a', 'map-users', { bob: shaPassword('builder') }),
    secret('team-a', 'client-ca', { 'ca.crt': pki.clientCa.cert }),
    upstream(pki.upstreamCa),
    secret('team-a', 'unused', { nothing: 'here' }),
    configMap('team-a', 'custom-headers', { 'X-Custom-A': 'custom-1' }),
    configMap('team-a', 'auth-headers', { 'X-Auth-Forward': '$remote_addr' }),
    configMap('team-a', 'unrelated', { key: 'value' }),
    // Named by nobody until the live phase points a reference at them.
    secret('team-a', 'spare-users', { auth: htpasswd({ grace: 'hopper' }) }),
    configMap('team-a', 'spare-headers', { 'X-Custom-B': 'spare' }),
    configMap(CONTROLLER_NS, 'spare-add', { 'X-Spare': 'spare' }),
    secret(CONTROLLER_NS, 'dhparam-2', { 'dhparam.pem': dhParams('modp14') }),
    ingress({
      namespace: 'team-a',
      name: 'main',
      host: 'a.example.com',
      tls: 'tls-a',
      at: 1,
      paths: [
        ['/', 'web', 'http'],
        ['/ext', 'ext', 80],
      ],
      annotations: {
        'custom-headers': 'custom-headers',
        'default-backend': 'fallback',
        'auth-tls-secret': 'team-a/client-ca',
        'auth-tls-verify-client': 'optional',
      },
    }),
    ingress({
      namespace: 'team-a',
      name: 'main-canary',
      host: 'a.example.com',
      at: 2,
      paths: [['/', 'canary', 80]],
      annotations: { canary: 'true', 'canary-weight': '20' },
    }),
    ingress({
      namespace: 'team-a',
      name: 'basic',
      host: 'basic.example.com',
      at: 3,
      paths: [['/', 'web', 80]],
      annotations: { 'auth-type': 'basic', 'auth-secret': 'basic-users', 'auth-realm': 'team a' },
    }),
    ingress({
      namespace: 'team-a',
      name: 'map',
      host: 'map.example.com',
      at: 4,
      paths: [['/', 'web', 80]],
      annotations: {
        'auth-type': 'basic',
        'auth-secret-type': 'auth-map',
        'auth-secret': 'team-a/map-users',
      },
    }),
    ingress({
      namespace: 'team-a',
      name: 'upstream',
      host: 'up.example.com',
      at: 5,
      paths: [['/', 'web', 80]],
      annotations: {
        'backend-protocol': 'HTTPS',
        'proxy-ssl-secret': 'team-a/upstream-tls',
        'proxy-ssl-verify': 'on',
        'proxy-ssl-name': 'upstream.team-a.svc',
      },
    }),
    ingress({
      namespace: 'team-a',
      name: 'extauth',
      host: 'auth.example.com',
      at: 6,
      paths: [['/', 'web', 80]],
      annotations: { 'auth-url': 'http://auth.team-a.svc/check', 'auth-proxy-set-headers': 'auth-headers' },
    }),
    ingress({
      namespace: 'team-a',
      name: 'legacy',
      host: 'legacy.example.com',
      className: null,
      at: 7,
      paths: [['/', 'web', 80]],
      annotations: { 'kubernetes.io/ingress.class': 'nginx' },
    }),
    ingress({
      namespace: 'team-a',
      name: 'other-class',
      host: 'other.example.com',
      className: 'other',
      at: 8,
      paths: [['/', 'web', 80]],
      annotations: { 'auth-type': 'basic', 'auth-secret': 'basic-users' },
    }),
    // ingressClassName wins over the legacy annotation (ingress-nginx): served, with a warning
    // (CONFLICTING_INGRESS_CLASS) on both sides (found here, fixed: the cluster's had none, so no
    // Warning Event and no admission warning either).
    ingress({
      namespace: 'team-a',
      name: 'conflict',
      host: 'conflict.example.com',
      at: 9,
      paths: [['/', 'web', 80]],
      annotations: { 'kubernetes.io/ingress.class': 'other' },
    }),
    // shared: what team-b names across namespaces.
    secret('shared', 'users', { auth: htpasswd({ carol: 'secret' }) }),
    secret('shared', 'client-ca', { 'ca.crt': pki.clientCa.cert }),
    secret('shared', 'upstream-tls', { 'ca.crt': pki.upstreamCa.cert }),
    configMap('shared', 'auth-headers', { 'X-Shared': 'shared-1' }),
    configMap('shared', 'custom-headers', { 'X-Custom-B': 'shared-1' }),
    // team-b: every cross-namespace reference.
    ...service('team-b', 'web', '127.0.0.21', 8080),
    ingress({
      namespace: 'team-b',
      name: 'cross-basic',
      host: 'cross-basic.example.com',
      at: 11,
      paths: [['/', 'web', 80]],
      annotations: { 'auth-type': 'basic', 'auth-secret': 'shared/users' },
    }),
    ingress({
      namespace: 'team-b',
      name: 'cross-mtls',
      host: 'cross-mtls.example.com',
      at: 12,
      paths: [['/', 'web', 80]],
      annotations: { 'auth-tls-secret': 'shared/client-ca' },
    }),
    ingress({
      namespace: 'team-b',
      name: 'cross-upstream',
      host: 'cross-up.example.com',
      at: 13,
      paths: [['/', 'web', 80]],
      annotations: { 'backend-protocol': 'HTTPS', 'proxy-ssl-secret': 'shared/upstream-tls' },
    }),
    ingress({
      namespace: 'team-b',
      name: 'cross-auth-headers',
      host: 'cross-auth.example.com',
      at: 14,
      paths: [['/', 'web', 80]],
      annotations: {
        'auth-url': 'http://auth.shared.svc/check',
        'auth-proxy-set-headers': 'shared/auth-headers',
      },
    }),
    ingress({
      namespace: 'team-b',
      name: 'cross-custom',
      host: 'cross-custom.example.com',
      at: 15,
      paths: [['/', 'web', 80]],
      annotations: { 'custom-headers': 'shared/custom-headers' },
    }),
  ];
}

/**
 * An object as the API server hands it back: the defaults it fills in (Service type, port protocol and
 * targetPort, sessionAffinity; Secret type; EndpointSlice port protocol), so the file side can keep
 * them unwritten as people write manifests.
 */
function asApiServerReturns(object: Obj): Obj {
  const o = structuredClone(object);
  if (o.kind === 'Service') {
    o.spec.type ??= 'ClusterIP';
    if (o.spec.type !== 'ExternalName') o.spec.sessionAffinity ??= 'None';
    for (const port of o.spec.ports ?? []) {
      port.protocol ??= 'TCP';
      port.targetPort ??= port.port;
    }
  }
  if (o.kind === 'Secret') o.type ??= 'Opaque';
  if (o.kind === 'EndpointSlice') for (const port of o.ports ?? []) port.protocol ??= 'TCP';
  return o;
}

// ---------------------------------------------------------------------------------------------
// Comparison

/** What `keepip gateway -f` passes (src/cli/gateway.ts readTopology) for the controller's flags. */
const FILE_OPTIONS = {
  ingressClass: 'nginx',
  configMap: CONTROLLER_CM,
  enableSslPassthrough: false,
  disableServiceExternalName: false,
};

const isOrigin = (v: Record<string, unknown>) =>
  typeof v.file === 'string' && typeof v.document === 'number' && typeof v.kind === 'string' && 'name' in v;

/** The origin a message starts with: `test.yaml, document 7 (Kind ns/name)` or `cluster (Kind ns/name)`. */
const ORIGIN_TEXT = /(?:test\.yaml, document \d+|cluster) \(/g;

interface Seen {
  /** origin.file values replaced. */
  files: Set<string>;
  /** Origin texts replaced in strings. */
  texts: Set<string>;
}

/** A deep copy with the origin normalisations (ALLOWED) applied; `seen` records what they changed. */
function normalise(value: unknown, seen: Seen): unknown {
  if (typeof value === 'string') {
    for (const m of value.matchAll(ORIGIN_TEXT))
      seen.texts.add(m[0].startsWith('cluster') ? 'cluster' : 'file');
    return value.replace(ORIGIN_TEXT, '<origin> (');
  }
  if (Array.isArray(value)) return value.map((v) => normalise(v, seen));
  if (typeof value !== 'object' || value === null) return value;
  const object = value as Record<string, unknown>;
  if (isOrigin(object)) {
    seen.files.add(`${object.file}#${object.document}`.replace(/#[1-9]\d*$/, '#N'));
    return { kind: object.kind, namespace: object.namespace, name: object.name };
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(object)) out[k] = normalise(v, seen);
  return out;
}

/** Where `a` (file) and `b` (cluster) differ, as JSON paths with both values (shortened). */
function differences(a: unknown, b: unknown, path = '$', out: string[] = [], limit = 40): string[] {
  if (out.length >= limit || Object.is(a, b)) return out;
  const show = (v: unknown) => {
    const text = JSON.stringify(v) ?? String(v);
    return text.length > 200 ? `${text.slice(0, 200)}…` : text;
  };
  const objects = typeof a === 'object' && a !== null && typeof b === 'object' && b !== null;
  if (!objects || Array.isArray(a) !== Array.isArray(b)) {
    out.push(`${path}: file ${show(a)} / cluster ${show(b)}`);
    return out;
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  for (const k of new Set([...Object.keys(ra), ...Object.keys(rb)])) {
    const sub = Array.isArray(a) ? `${path}[${k}]` : `${path}.${k}`;
    if (!(k in ra)) out.push(`${sub}: only in the cluster's: ${show(rb[k])}`);
    else if (!(k in rb)) out.push(`${sub}: only in the file's: ${show(ra[k])}`);
    else differences(ra[k], rb[k], sub, out, limit);
    if (out.length >= limit) break;
  }
  return out;
}

type Plain = Record<string, unknown>;
const issueText = (i: unknown) => {
  const { severity, code, field, message } = i as Plain;
  return `${severity} ${code}${field ? ` ${field}` : ''}: ${message}`;
};

/** The Ingresses of the corpus the controller does not serve (another class): it never translates them. */
const NOT_OURS = new Set(['team-a/other-class']);

interface Sides {
  file: Plain;
  cluster: Plain;
  /** The ALLOWED parts, as each side has them (before they are taken out of `file` / `cluster`). */
  allowed: Record<string, { file: unknown; cluster: unknown }>;
  seen: { file: Seen; cluster: Seen };
}

/**
 * Differences that are acceptable, each with its reason; `check` says the difference is still what is
 * seen (it returns what is wrong, or null), so the table cannot rot.
 */
const ALLOWED: readonly {
  what: string;
  why: string;
  check: (s: Sides, expect: Expectation) => string | null;
}[] = [
  {
    what: 'origin.file and origin.document of every object, issue and location',
    why: 'a manifest names its file and document; an object from the API has neither (file "cluster", document 0)',
    check: (s) =>
      [...s.seen.file.files].join() === 'test.yaml#N' && [...s.seen.cluster.files].join() === 'cluster#0'
        ? null
        : `origins seen: file ${[...s.seen.file.files]}, cluster ${[...s.seen.cluster.files]}`,
  },
  {
    what: 'the origin at the start of issue messages (describeOrigin)',
    why: 'the same origin as text: "test.yaml, document N (Kind ns/name)" vs "cluster (Kind ns/name)"',
    check: (s) =>
      [...s.seen.file.texts].join() === 'file' && [...s.seen.cluster.texts].join() === 'cluster'
        ? null
        : `origin texts seen: file ${[...s.seen.file.texts]}, cluster ${[...s.seen.cluster.texts]}`,
  },
  {
    what: 'gateway.defaultCertificate',
    why: "`keepip gateway` has no --default-ssl-certificate (buildTopology takes no such option); the controller adds the Secret it names (topologyOfManifests); it must be exactly that Secret's pair",
    check: (s, expect) => {
      const { file, cluster } = s.allowed['gateway.defaultCertificate']!;
      if (file !== undefined) return `the file side has one: ${JSON.stringify(file).slice(0, 100)}`;
      return differences(expect.defaultCertificate, cluster, 'defaultCertificate').join('; ') || null;
    },
  },
  {
    what: 'gateway.requestMetrics',
    why: "the controller's request metrics flags (--metrics-per-host… and its controller labels); `keepip gateway` has none of them",
    check: (s) => {
      const { file, cluster } = s.allowed['gateway.requestMetrics']!;
      const metrics = cluster as Plain | undefined;
      return file === undefined &&
        metrics?.controllerNamespace === 'ingress-nginx' &&
        metrics.perHost === true
        ? null
        : `requestMetrics: file ${JSON.stringify(file)}, cluster ${JSON.stringify(cluster)}`;
    },
  },
  {
    what: 'INGRESS_NOT_SERVED issues of Ingresses of another class',
    why: "the controller hands the translation only the Ingresses it serves (ingress-nginx's class rules, docs/controller.md); the file side reads every Ingress and says which it leaves out",
    check: (s) => {
      const { file, cluster } = s.allowed.notServed as { file: Plain[]; cluster: Plain[] };
      const names = file.map((i) => `${(i.origin as Plain).namespace}/${(i.origin as Plain).name}`);
      return names.join() === [...NOT_OURS].join() && cluster.length === 0
        ? null
        : `INGRESS_NOT_SERVED: file ${names}, cluster ${cluster.map(issueText)}`;
    },
  },
];

/** What the ALLOWED checks compare the cluster's side with. */
interface Expectation {
  defaultCertificate: unknown;
}

/** Both sides normalised, with the ALLOWED parts taken out (kept in `allowed`). */
function sides(fileTopology: Topology, clusterTopology: Topology): Sides {
  const seen = {
    file: { files: new Set<string>(), texts: new Set<string>() },
    cluster: { files: new Set<string>(), texts: new Set<string>() },
  };
  const file = normalise(fileTopology, seen.file) as Plain;
  const cluster = normalise(clusterTopology, seen.cluster) as Plain;
  const allowed: Sides['allowed'] = {};
  for (const key of ['defaultCertificate', 'requestMetrics']) {
    const f = file.gateway as Plain;
    const c = cluster.gateway as Plain;
    allowed[`gateway.${key}`] = { file: f[key], cluster: c[key] };
    delete f[key];
    delete c[key];
  }
  const notServed = (i: unknown) => {
    const { code, origin } = i as Plain;
    const o = origin as Plain | undefined;
    return code === 'INGRESS_NOT_SERVED' && NOT_OURS.has(`${o?.namespace}/${o?.name}`);
  };
  const fi = file.issues as unknown[];
  const ci = cluster.issues as unknown[];
  allowed.notServed = { file: fi.filter(notServed), cluster: ci.filter(notServed) };
  file.issues = fi.filter((i) => !notServed(i));
  cluster.issues = ci.filter((i) => !notServed(i));
  return { file, cluster, allowed, seen };
}

/** The parts of a topology the tests compare one by one. */
const PARTS: Record<string, (t: Plain) => unknown> = {
  'virtual hosts (locations, access rules, headers, certificates, client certificates)': (t) =>
    (t.gateway as Plain).virtualHosts,
  'gateway settings (the controller ConfigMap, add-headers, proxy-set-headers, ssl-dh-param)': (t) =>
    (t.gateway as Plain).settings,
  'gateway model besides hosts and settings (default backend, controller Services, refused Ingresses)': (
    t,
  ) => {
    const { virtualHosts: _v, settings: _s, ...rest } = t.gateway as Plain;
    return rest;
  },
  'Services and their endpoints (named target ports, ExternalName), load balancers, nodes': (t) => ({
    services: t.services,
    loadBalancers: t.loadBalancers,
    nodes: t.nodes,
  }),
  'issues (code, severity, field, message)': (t) => (t.issues as unknown[]).map(issueText),
};

/** Issues only one side has (as a multiset), else whether their order differs. */
function issueDifferences(file: readonly string[], cluster: readonly string[]): string[] {
  const count = (list: readonly string[]) => {
    const m = new Map<string, number>();
    for (const t of list) m.set(t, (m.get(t) ?? 0) + 1);
    return m;
  };
  const [f, c] = [count(file), count(cluster)];
  const out: string[] = [];
  for (const [t, n] of f) if ((c.get(t) ?? 0) < n) out.push(`only in the file's: ${t}`);
  for (const [t, n] of c) if ((f.get(t) ?? 0) < n) out.push(`only in the cluster's: ${t}`);
  if (out.length === 0 && file.join('\n') !== cluster.join('\n'))
    out.push('the same issues in another order');
  return out;
}

/** The differences of one part (issues: by issue). */
function partDifferences(name: string, s: Sides): string[] {
  const part = PARTS[name]!;
  return name.startsWith('issues')
    ? issueDifferences(part(s.file) as string[], part(s.cluster) as string[])
    : differences(part(s.file), part(s.cluster));
}

/** Every difference outside ALLOWED, part by part (empty: parity). */
function allDifferences(s: Sides): string[] {
  return Object.keys(PARTS).flatMap((name) => partDifferences(name, s).map((d) => `${name}: ${d}`));
}

/** What the corpus is meant to do on the file side: parity over references that all failed would prove little. */
function corpusProblems(t: Topology, crossAllowed: boolean): string[] {
  const problems: string[] = [];
  const expect = (ok: boolean, what: string) => {
    if (!ok) problems.push(what);
  };
  const host = (name: string) => t.gateway.virtualHosts.find((v) => v.host === name);
  const root = (name: string) => host(name)?.locations.find((l) => l.path === '/' && l.backend !== null);
  const settings = t.gateway.settings;
  expect(settings.addHeaders?.['x-added'] !== undefined, 'add-headers (namespace/name) is read');
  expect(settings.proxySetHeaders?.['x-proxied'] !== undefined, 'proxy-set-headers (a bare name) is read');
  expect(settings.serverTls?.dhParam?.includes('BEGIN DH PARAMETERS') === true, 'ssl-dh-param is read');
  expect(host('a.example.com')?.tls?.secret.name === 'tls-a', 'spec.tls secretName is read');
  expect(host('a.example.com')?.clientCertificate?.caPem != null, 'auth-tls-secret is read');
  expect(root('a.example.com')?.customHeaders?.['x-custom-a'] !== undefined, 'custom-headers is read');
  expect(root('a.example.com')?.canary !== undefined, 'the canary is merged');
  expect(root('a.example.com')?.defaultBackend != null, 'default-backend is read');
  expect(
    host('a.example.com')?.locations.some((l) => l.path === '/ext' && l.backend !== null) === true,
    'the ExternalName path is served',
  );
  expect((root('basic.example.com')?.access?.basicAuth?.users.length ?? 0) > 0, 'auth-secret is read');
  expect((root('map.example.com')?.access?.basicAuth?.users.length ?? 0) > 0, 'auth-map is read');
  expect(root('up.example.com')?.proxySsl !== undefined, 'proxy-ssl-secret is read');
  expect(
    Object.keys(root('auth.example.com')?.access?.externalAuth?.proxySetHeaders ?? {}).length > 0,
    'auth-proxy-set-headers is read',
  );
  expect(root('legacy.example.com') !== undefined, 'the legacy class annotation is served');
  expect(root('conflict.example.com') !== undefined, 'ingressClassName wins over the annotation');
  expect(host('other.example.com') === undefined, 'another class is not served');
  expect(root('cross-custom.example.com')?.access?.denied != null, 'custom-headers never crosses namespaces');
  const crossed = [
    (root('cross-basic.example.com')?.access?.basicAuth?.users.length ?? 0) > 0,
    host('cross-mtls.example.com')?.clientCertificate?.caPem != null,
    root('cross-up.example.com')?.proxySsl !== undefined,
    Object.keys(root('cross-auth.example.com')?.access?.externalAuth?.proxySetHeaders ?? {}).length > 0,
  ];
  expect(
    crossed.every((c) => c === crossAllowed),
    `cross-namespace references ${crossAllowed ? 'all read' : 'all refused'}: ${crossed}`,
  );
  return problems;
}

// ---------------------------------------------------------------------------------------------
// The run

describe('the controller serves the Topology `keepip gateway` makes of the same objects', () => {
  let api: FakeApiServer;
  let ctl: TestController;
  let pki: Pki;
  /** The objects as they now are in the API server, as manifest files would hold them. */
  const objects = new Map<string, Obj>();
  const keyOf = (o: Obj) => `${o.kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name}`;
  const put = (o: Obj) => {
    cached = null;
    objects.set(keyOf(o), o);
    api.apply(asApiServerReturns(o));
  };
  // The file side's Topology of the objects as they are now (cached until put() changes one).
  let cached: Topology | null = null;
  const fileTopology = () => {
    cached ??= topologyOf([...objects.values()], FILE_OPTIONS);
    return cached;
  };
  const served = () => ctl.running.gateway()!.snapshot().topology;
  const expectation = (): Expectation => {
    const s = objects.get(`Secret/${DEFAULT_CERT}`);
    if (s === undefined) return { defaultCertificate: undefined };
    const text = (k: string) => Buffer.from(s.data[k], 'base64').toString('utf8');
    return {
      defaultCertificate: {
        secret: { namespace: CONTROLLER_NS, name: 'default-cert' },
        certPem: text('tls.crt'),
        keyPem: text('tls.key'),
      },
    };
  };
  /**
   * The differences the first comparison found (each one a failing test above): the later ones report
   * only what is new, so one finding fails once.
   */
  const known = new Set<string>();
  /** ALLOWED differences not seen as described, then every other difference not already known. */
  const newDifferences = () => parity().filter((d) => !known.has(d));
  /** ALLOWED differences not seen as described, then every other difference. */
  const parity = () => {
    const s = sides(fileTopology(), served());
    const rotten = ALLOWED.flatMap((a) => {
      const wrong = a.check(s, expectation());
      return wrong === null ? [] : [`ALLOWED "${a.what}" is not what is seen: ${wrong}`];
    });
    return [...rotten, ...allDifferences(s)];
  };

  before(async () => {
    pki = await makePki();
    api = await startFakeApiServer();
    for (const o of corpus(pki)) put(o);
    ctl = await startTestController(api, [
      `--configmap=${CONTROLLER_CM}`,
      `--default-ssl-certificate=${DEFAULT_CERT}`,
    ]);
    await ctl.running.serving();
    for (const d of parity()) known.add(d);
  });
  after(async () => {
    await ctl?.close();
    await api?.close();
  });

  describe('allow-cross-namespace-resources off', () => {
    it('the corpus resolves every reference on the file side (so parity is not vacuous)', () => {
      assert.deepEqual(corpusProblems(fileTopology(), false), []);
    });

    for (const name of Object.keys(PARTS)) {
      it(`the same ${name}`, () => {
        assert.deepEqual(partDifferences(name, sides(fileTopology(), served())), []);
      });
    }

    it('each ALLOWED difference is still what is seen', () => {
      const s = sides(fileTopology(), served());
      const wrong = ALLOWED.map((a) => [a.what, a.check(s, expectation())]).filter(([, w]) => w !== null);
      assert.deepEqual(wrong, []);
    });
  });

  describe('allow-cross-namespace-resources on (the controller ConfigMap changed in the API server)', () => {
    before(async () => {
      const cm = structuredClone(objects.get(`ConfigMap/${CONTROLLER_CM}`)!);
      cm.data['allow-cross-namespace-resources'] = 'true';
      ctl.mark();
      put(cm);
      await ctl.waitForLine(/^reloaded: config v\d+/);
      // The controller ConfigMap is watched twice (by name, and with every ConfigMap): the reload that
      // carries the change is the signal, whichever of the two watches brought it first.
      await ctl.waitFor(
        () => served().gateway.settings.allowCrossNamespaceResources === true,
        'allow-cross-namespace-resources served',
      );
    });

    it('the corpus now reads every cross-namespace reference on the file side', () => {
      assert.deepEqual(corpusProblems(fileTopology(), true), []);
    });

    it('no other difference: Secrets and ConfigMaps of another namespace reach the controller too', () => {
      assert.deepEqual(newDifferences(), []);
    });
  });

  describe('a referenced object changes in the API server: the next reload serves what the files would', () => {
    /** Replaces (or creates) an object; `fileSide` false: the file side's Topology does not show it. */
    const update = (what: string, next: () => Obj, fileSide = true): Step => ({
      what,
      fileSide,
      run: () => put(next()),
    });
    const removal = (what: string, kind: string, namespace: string, name: string, fileSide = true): Step => ({
      what,
      fileSide,
      run: () => {
        cached = null;
        objects.delete(`${kind}/${namespace}/${name}`);
        api.remove(kind, namespace, name);
      },
    });
    const edited = (key: string, edit: (o: Obj) => void) => () => {
      const o = structuredClone(objects.get(key)!);
      edit(o);
      return o;
    };
    const annotate = (namespace: string, name: string, key: string, value: string) =>
      edited(`Ingress/${namespace}/${name}`, (o) => {
        o.metadata.annotations[PREFIX + key] = value;
      });
    const setting = (key: string, value: string) =>
      edited(`ConfigMap/${CONTROLLER_CM}`, (o) => {
        o.data[key] = value;
      });
    const steps: Step[] = [
      // Secret data
      update('Secret: spec.tls (a renewed certificate)', () => tlsSecret('team-a', 'tls-a', pki.tlsA2)),
      update('Secret: auth-secret (htpasswd)', () =>
        secret('team-a', 'basic-users', { auth: htpasswd({ alice: 'other', dave: 'x' }) }),
      ),
      update('Secret: auth-secret auth-map', () =>
        secret('team-a', 'map-users', { bob: shaPassword('x'), eve: shaPassword('y') }),
      ),
      update('Secret: auth-tls-secret (a new CA)', () =>
        secret('team-a', 'client-ca', { 'ca.crt': pki.clientCa2.cert }),
      ),
      update('Secret: proxy-ssl-secret (a new CA)', () =>
        secret('team-a', 'upstream-tls', {
          'ca.crt': pki.upstreamCa2.cert,
          'tls.crt': pki.upstreamClient.cert,
          'tls.key': pki.upstreamClient.key,
        }),
      ),
      update('Secret: ssl-dh-param', () =>
        secret(CONTROLLER_NS, 'dhparam', { 'dhparam.pem': dhParams('modp15') }),
      ),
      update(
        'Secret: --default-ssl-certificate (renewed in place)',
        () => tlsSecret(CONTROLLER_NS, 'default-cert', pki.defaultCert2),
        false,
      ),
      update('Secret: a cross-namespace auth-secret', () =>
        secret('shared', 'users', { auth: htpasswd({ carol: 'new' }) }),
      ),
      update('Secret: a cross-namespace auth-tls-secret', () =>
        secret('shared', 'client-ca', { 'ca.crt': pki.clientCa2.cert }),
      ),
      // ConfigMap data
      update('ConfigMap: custom-headers', () =>
        configMap('team-a', 'custom-headers', { 'X-Custom-A': 'custom-2', 'X-Custom-B': 'b' }),
      ),
      update('ConfigMap: auth-proxy-set-headers', () =>
        configMap('team-a', 'auth-headers', { 'X-Auth-Forward': '$host' }),
      ),
      update('ConfigMap: add-headers', () =>
        configMap(CONTROLLER_NS, 'add-headers', { 'X-Added': 'added-2' }),
      ),
      update('ConfigMap: proxy-set-headers (a bare name)', () =>
        configMap(CONTROLLER_NS, 'proxy-headers', { 'X-Proxied': 'proxied-2' }),
      ),
      update('ConfigMap: a cross-namespace auth-proxy-set-headers', () =>
        configMap('shared', 'auth-headers', { 'X-Shared': 'shared-2' }),
      ),
      // A reference moves to an object nothing named before (the controller must start passing it on).
      update(
        'Ingress: auth-secret now names a Secret nothing named',
        annotate('team-a', 'basic', 'auth-secret', 'spare-users'),
      ),
      update(
        'Ingress: custom-headers now names a ConfigMap nothing named',
        annotate('team-a', 'main', 'custom-headers', 'spare-headers'),
      ),
      update(
        "Ingress: auth-tls-secret now names another namespace's Secret",
        annotate('team-a', 'main', 'auth-tls-secret', 'shared/client-ca'),
      ),
      update(
        'ConfigMap (controller): add-headers now names another ConfigMap',
        setting('add-headers', 'spare-add'),
      ),
      update(
        'ConfigMap (controller): ssl-dh-param now names another Secret',
        setting('ssl-dh-param', `${CONTROLLER_NS}/dhparam-2`),
      ),
      // Gone, then back
      removal('removed: a referenced Secret (auth-secret)', 'Secret', 'team-a', 'spare-users'),
      update('created again: the Secret', () =>
        secret('team-a', 'spare-users', { auth: htpasswd({ frank: 'f' }) }),
      ),
      removal('removed: a referenced ConfigMap (custom-headers)', 'ConfigMap', 'team-a', 'spare-headers'),
      update('created again: the ConfigMap', () =>
        configMap('team-a', 'spare-headers', { 'X-Custom-B': 'again' }),
      ),
      // docs/controller.md: "While the Secret is missing … the generated certificate … is served".
      removal(
        'removed: the --default-ssl-certificate Secret',
        'Secret',
        CONTROLLER_NS,
        'default-cert',
        false,
      ),
      update(
        'created again: the --default-ssl-certificate Secret',
        () => tlsSecret(CONTROLLER_NS, 'default-cert', pki.defaultCert),
        false,
      ),
    ];
    for (const step of steps) {
      it(step.what, async () => {
        const before = fileTopology();
        const expectedBefore = expectation();
        ctl.mark();
        step.run();
        if (step.fileSide) assert.notDeepEqual(fileTopology(), before, 'the change shows on the file side');
        else assert.notDeepEqual(expectation(), expectedBefore, 'the change shows in the expectation');
        await ctl.waitForLine(/^reloaded: config v\d+/);
        assert.deepEqual(newDifferences(), []);
      });
    }
  });
});

interface Step {
  what: string;
  /** Whether the file side's Topology shows the change (--default-ssl-certificate's does not). */
  fileSide: boolean;
  run(): void;
}
