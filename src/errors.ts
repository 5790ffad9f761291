// Every stable code keepip reports, in one table: what it means and what the user does about it.
// The modules keep producing their own codes and messages; this registry names them all so that
// docs/errors.md and the tests (test/errors.test.ts) can hold the whole product to one list.
// The PROXY protocol codes come from the codec's own table (PP_ERROR_MESSAGES), so their meaning is
// written once; every other entry is written here.
import { PP_ERROR_MESSAGES, type PpErrorCode } from './proxy-protocol/errors.ts';

export type ErrorModule = 'proxy-protocol' | 'net' | 'k8s' | 'gateway' | 'lb' | 'doctor' | 'up' | 'whoami';

/** Each module's heading in docs/errors.md, in the order the registry lists the modules. */
export const ERROR_MODULES: { readonly [M in ErrorModule]: string } = {
  'proxy-protocol': 'PROXY protocol codec (`src/proxy-protocol/`, `keepip pp`, every PROXY-aware listener)',
  net: 'Addresses, CIDR sets and client-IP resolution (`src/net/`)',
  k8s: 'Manifests and their translation (`src/k8s/`): configuration issues',
  gateway: 'Gateway (`src/gateway/`, `keepip gateway`): routes, configuration snapshots, upstream outcomes',
  lb: 'Load balancer (`src/lb/`, `keepip lb`)',
  doctor: 'Doctor (`src/doctor/`, `keepip doctor`): errors, probe outcomes and finding ids',
  up: 'The whole chain (`src/up/`, `keepip up`)',
  whoami: 'Echo backend (`src/whoami/`, `keepip whoami`)',
};

/**
 * How a code reaches the user:
 * - `error`: an error value returned by a parser or check (`{ ok: false, error: { code, message } }`);
 * - `thrown`: an exception with a `code` property, for invalid input handed to a programmatic API;
 * - `issue`: a configuration issue (`ConfigIssue`, severity error/warning/info) from loading manifests;
 * - `finding`: a `keepip doctor` finding id;
 * - `outcome`: what happened to a request or probe, as printed in logs and probe results.
 */
export type ErrorKind = 'error' | 'thrown' | 'issue' | 'finding' | 'outcome';

export interface ErrorEntry {
  readonly code: string;
  readonly module: ErrorModule;
  readonly kind: ErrorKind;
  /** One line: what the code means. */
  readonly summary: string;
  /** One line: what the user does about it. */
  readonly fix: string;
}

interface PpFix {
  readonly kind: ErrorKind;
  readonly fix: string;
}

const PEER_FIX =
  "a broken sender: check the load balancer's PROXY settings, and that nothing else reaches a PROXY listener";
const ENCODE_FIX = 'fix the header spec passed to encodeProxyHeader or `keepip pp encode`';

// Keyed by PpErrorCode, so the type checker demands a fix for every code the codec defines.
const PP_FIXES: { readonly [C in PpErrorCode]: PpFix } = {
  PP_INCOMPLETE: {
    kind: 'error',
    fix: 'pass the whole header (keepip pp decode reads complete input); on a socket the reader waits for more bytes',
  },
  PP_NOT_PROXY_PROTOCOL: {
    kind: 'error',
    fix: 'the peer sent no PROXY header: enable PROXY protocol on the load balancer, or set use-proxy-protocol: "false"',
  },
  PP_V1_BAD_SIGNATURE: { kind: 'error', fix: PEER_FIX },
  PP_V1_TOO_LONG: { kind: 'error', fix: PEER_FIX },
  PP_V1_BAD_LINE_END: { kind: 'error', fix: PEER_FIX },
  PP_V1_BAD_PROTOCOL: { kind: 'error', fix: PEER_FIX },
  PP_V1_BAD_FIELD_COUNT: { kind: 'error', fix: PEER_FIX },
  PP_V1_BAD_ADDRESS: { kind: 'error', fix: PEER_FIX },
  PP_V1_BAD_PORT: { kind: 'error', fix: PEER_FIX },
  PP_V2_BAD_VERSION: { kind: 'error', fix: PEER_FIX },
  PP_V2_BAD_COMMAND: { kind: 'error', fix: PEER_FIX },
  PP_V2_BAD_FAMILY: { kind: 'error', fix: PEER_FIX },
  PP_V2_LENGTH_TOO_SMALL: { kind: 'error', fix: PEER_FIX },
  PP_V2_TLV_TRUNCATED: { kind: 'error', fix: PEER_FIX },
  PP_V2_TLV_OVERFLOW: { kind: 'error', fix: PEER_FIX },
  PP_V2_CRC32C_BAD_LENGTH: { kind: 'error', fix: PEER_FIX },
  PP_V2_CRC32C_MISMATCH: {
    kind: 'error',
    fix: 'the header was altered on the way or the sender computes CRC32C wrongly: check the hop that sends it',
  },
  PP_V2_CRC32C_DUPLICATE: { kind: 'error', fix: PEER_FIX },
  PP_V2_BAD_AUTHORITY: { kind: 'error', fix: PEER_FIX },
  PP_V2_BAD_NETNS: { kind: 'error', fix: PEER_FIX },
  PP_V2_UNIQUE_ID_TOO_LONG: { kind: 'error', fix: PEER_FIX },
  PP_V2_SSL_TRUNCATED: { kind: 'error', fix: PEER_FIX },
  PP_V2_SSL_TLV_TRUNCATED: { kind: 'error', fix: PEER_FIX },
  PP_V2_SSL_TLV_OVERFLOW: { kind: 'error', fix: PEER_FIX },
  PP_V2_SSL_BAD_TEXT: { kind: 'error', fix: PEER_FIX },
  PP_ENCODE_BAD_SPEC: {
    kind: 'thrown',
    fix: `${ENCODE_FIX}: version 1 or 2, command PROXY or LOCAL, a known protocol`,
  },
  PP_ENCODE_BAD_ADDRESS: { kind: 'thrown', fix: `${ENCODE_FIX}: addresses of the protocol's family` },
  PP_ENCODE_BAD_PORT: { kind: 'thrown', fix: `${ENCODE_FIX}: ports 0-65535` },
  PP_ENCODE_BAD_TLV: { kind: 'thrown', fix: `${ENCODE_FIX}: TLV types 0-255 with values the parser accepts` },
  PP_ENCODE_TOO_LONG: { kind: 'thrown', fix: `${ENCODE_FIX}: fewer or shorter TLVs` },
  PP_ENCODE_UNSUPPORTED: { kind: 'thrown', fix: 'use version 2 for UDP, UNIX sockets, TLVs or CRC32C' },
};

function ppEntries(): ErrorEntry[] {
  return (Object.keys(PP_FIXES) as PpErrorCode[]).map((code) => ({
    code,
    module: 'proxy-protocol',
    kind: PP_FIXES[code].kind,
    summary: PP_ERROR_MESSAGES[code],
    fix: PP_FIXES[code].fix,
  }));
}

const SOURCE_RANGE_FIX =
  'keep only valid CIDRs or bare IPs, comma-separated, in the annotation or ConfigMap key (no zone ids, no leading zeros)';

// Everything outside the PROXY codec, grouped by the module that reports it.
const OTHER_ENTRIES = [
  // net: addresses, CIDR sets, client-IP resolution (pure)
  {
    code: 'CIDR_EMPTY',
    module: 'net',
    kind: 'error',
    summary: 'a CIDR entry is empty',
    fix: 'remove the empty entry (a doubled or trailing comma)',
  },
  {
    code: 'CIDR_BAD_ADDRESS',
    module: 'net',
    kind: 'error',
    summary: 'the address part of a CIDR is not a strict IPv4/IPv6 address',
    fix: 'write the address canonically: no leading zeros, no zone id, no hex or integer forms',
  },
  {
    code: 'CIDR_BAD_PREFIX',
    module: 'net',
    kind: 'error',
    summary: 'the prefix length of a CIDR is not a decimal 0-32 (IPv4) or 0-128 (IPv6)',
    fix: 'correct the /prefix',
  },
  {
    code: 'CIDR_SET_BAD_ENTRY',
    module: 'net',
    kind: 'error',
    summary: 'a list of CIDRs holds an entry that is not a CIDR or an IP; the whole list is refused',
    fix: 'fix or remove the entry named in the message (its index is given)',
  },
  {
    code: 'CLIENT_IP_BAD_PEER',
    module: 'net',
    kind: 'error',
    summary: 'the TCP peer address is not an IP address, so no client address can be resolved',
    fix: 'none for users; report it, the listener handed over an unexpected socket address',
  },
  {
    code: 'CLIENT_IP_BAD_PROXY_SOURCE',
    module: 'net',
    kind: 'error',
    summary:
      'a trusted PROXY header carried a source that is not a valid address; the client is unknown and every access rule denies',
    fix: 'fix the sender of the PROXY header (the load balancer)',
  },
  {
    code: 'CLIENT_IP_MALFORMED_ENTRY',
    module: 'net',
    kind: 'error',
    summary:
      'while walking X-Forwarded-For (or X-Real-IP) from a trusted hop, an entry was not an address; the client is unknown and every access rule denies',
    fix: 'make every trusted proxy append plain addresses, or trust fewer hops (proxy-real-ip-cidr)',
  },
  {
    code: 'CLIENT_IP_MALFORMED_FORWARDED',
    module: 'net',
    kind: 'error',
    summary:
      'a Forwarded (RFC 7239) header from a trusted hop cannot be parsed; the client is unknown and every access rule denies',
    fix: 'make the trusted proxy send a well-formed Forwarded header, or use X-Forwarded-For',
  },

  // k8s: loading manifests (files, YAML, object shapes)
  {
    code: 'MANIFEST_READ_ERROR',
    module: 'k8s',
    kind: 'issue',
    summary: 'a manifest file or directory cannot be read',
    fix: 'check the path and its permissions',
  },
  {
    code: 'MANIFEST_TOO_LARGE',
    module: 'k8s',
    kind: 'issue',
    summary: 'a manifest file is larger than keepip reads',
    fix: 'split it into several files',
  },
  {
    code: 'MANIFEST_YAML_ERROR',
    module: 'k8s',
    kind: 'issue',
    summary: 'a manifest document is not valid YAML or JSON',
    fix: 'fix the syntax at the line given in the message',
  },
  {
    code: 'MANIFEST_NOT_AN_OBJECT',
    module: 'k8s',
    kind: 'issue',
    summary: 'a document (or a List item) is not a mapping, so it is not a Kubernetes object',
    fix: 'remove the document or make it an object with apiVersion and kind',
  },
  {
    code: 'MANIFEST_LIST_TOO_DEEP',
    module: 'k8s',
    kind: 'issue',
    summary: 'Lists are nested deeper than keepip follows',
    fix: 'flatten the nested List objects',
  },
  {
    code: 'MANIFEST_MISSING_FIELD',
    module: 'k8s',
    kind: 'issue',
    summary: 'a required field of an object is missing',
    fix: 'add the field named in the message',
  },
  {
    code: 'MANIFEST_INVALID_FIELD',
    module: 'k8s',
    kind: 'issue',
    summary: 'a field has the wrong type or an invalid value',
    fix: 'correct the field named in the message as the Kubernetes API defines it',
  },
  {
    code: 'MANIFEST_FIELD_NOT_STRING',
    module: 'k8s',
    kind: 'issue',
    summary: 'a string field holds a number or boolean (Kubernetes would reject it); keepip reads its text',
    fix: 'quote the value, e.g. "true"',
  },

  // k8s: translation into the topology
  {
    code: 'UNSUPPORTED_KIND',
    module: 'k8s',
    kind: 'issue',
    summary: 'an object of a kind keepip does not read; it is ignored',
    fix: 'nothing to do if the object is unrelated to ingress; otherwise see docs/manifests.md for the kinds read',
  },
  {
    code: 'UNSUPPORTED_API_VERSION',
    module: 'k8s',
    kind: 'issue',
    summary: 'a known kind with an apiVersion keepip does not read; it is ignored',
    fix: 'use the current apiVersion (e.g. networking.k8s.io/v1 for Ingress)',
  },
  {
    code: 'DUPLICATE_OBJECT',
    module: 'k8s',
    kind: 'issue',
    summary: 'the same kind/namespace/name appears twice; the later one is ignored',
    fix: 'remove the duplicate',
  },
  {
    code: 'INGRESS_NOT_SERVED',
    module: 'k8s',
    kind: 'issue',
    summary:
      'an Ingress belongs to another ingress class (or has none and no default applies); keepip does not serve it',
    fix: 'set spec.ingressClassName to the class keepip serves, if it should be served',
  },
  {
    code: 'INGRESS_CLASS_OTHER_CONTROLLER',
    module: 'k8s',
    kind: 'issue',
    summary: 'the IngressClass keepip was asked to serve names another controller; keepip serves it anyway',
    fix: 'set spec.controller to k8s.io/ingress-nginx, or pick the right class with --ingress-class',
  },
  {
    code: 'MULTIPLE_DEFAULT_INGRESS_CLASSES',
    module: 'k8s',
    kind: 'issue',
    summary: 'more than one IngressClass is marked default; the first is used',
    fix: 'keep ingressclass.kubernetes.io/is-default-class on one class only',
  },
  {
    code: 'CONFLICTING_INGRESS_CLASS',
    module: 'k8s',
    kind: 'issue',
    summary:
      'the legacy kubernetes.io/ingress.class annotation differs from spec.ingressClassName, which wins',
    fix: 'remove the annotation',
  },
  {
    code: 'INVALID_HOST',
    module: 'k8s',
    kind: 'issue',
    summary: 'an Ingress rule host is not a host name or a single leading wildcard; the rule is ignored',
    fix: 'write a DNS name or *.example.com',
  },
  {
    code: 'INVALID_PATH',
    module: 'k8s',
    kind: 'issue',
    summary: 'an Ingress path is not valid for its pathType; the path is ignored',
    fix: 'start paths with "/" and use only /[A-Za-z0-9-._~/]*, or pathType ImplementationSpecific for a regex',
  },
  {
    code: 'INVALID_PATH_REGEX',
    module: 'k8s',
    kind: 'issue',
    summary:
      'a path regex cannot be compiled; the gateway contains it (that path is not routed) instead of refusing the config',
    fix: 'correct the regular expression',
  },
  {
    code: 'DUPLICATE_PATH',
    module: 'k8s',
    kind: 'issue',
    summary: 'the same host, path and pathType is defined twice; the older Ingress wins',
    fix: 'remove one of the two paths',
  },
  {
    code: 'DUPLICATE_DEFAULT_BACKEND',
    module: 'k8s',
    kind: 'issue',
    summary: 'several Ingresses set spec.defaultBackend; the older one wins',
    fix: 'keep one default backend',
  },
  {
    code: 'SERVICE_NOT_FOUND',
    module: 'k8s',
    kind: 'issue',
    summary: 'an Ingress backend names a Service that is not in the manifests; its requests get 503',
    fix: 'add the Service or correct the name',
  },
  {
    code: 'SERVICE_PORT_NOT_FOUND',
    module: 'k8s',
    kind: 'issue',
    summary: 'an Ingress backend names a port the Service does not have; its requests get 503',
    fix: 'use a port number or name the Service defines',
  },
  {
    code: 'UNSUPPORTED_BACKEND',
    module: 'k8s',
    kind: 'issue',
    summary: 'a resource backend (not a Service) is not supported; its requests get 503',
    fix: 'point the path at a Service',
  },
  {
    code: 'TLS_SECRET_NOT_FOUND',
    module: 'k8s',
    kind: 'issue',
    summary: 'an Ingress TLS secret is not in the manifests; its hosts use the default certificate',
    fix: 'add the kubernetes.io/tls Secret or correct secretName',
  },
  {
    code: 'TLS_SECRET_INVALID',
    module: 'k8s',
    kind: 'issue',
    summary: 'an Ingress TLS secret has no usable tls.crt/tls.key; its hosts use the default certificate',
    fix: 'put a PEM certificate and its matching key in the Secret',
  },
  {
    code: 'CONFIGMAP_NOT_FOUND',
    module: 'k8s',
    kind: 'issue',
    summary: "the controller ConfigMap is not in the manifests; ingress-nginx's defaults apply",
    fix: 'add the ConfigMap, or pass --configmap namespace/name if it has another name',
  },
  {
    code: 'INVALID_CONFIGMAP_OPTION',
    module: 'k8s',
    kind: 'issue',
    summary: '--configmap is not "namespace/name"; the default name is used',
    fix: 'pass --configmap namespace/name',
  },
  {
    code: 'UNSUPPORTED_ANNOTATION',
    module: 'k8s',
    kind: 'issue',
    summary: 'an ingress-nginx annotation keepip does not implement; it has no effect',
    fix: 'remove it, or see docs/ingress-nginx-compat.md for what keepip supports instead',
  },
  {
    code: 'UNSUPPORTED_CONFIGMAP_KEY',
    module: 'k8s',
    kind: 'issue',
    summary:
      'a ConfigMap key keepip does not implement (or allow-snippet-annotations other than "false"); it has no effect',
    fix: 'remove the key; keepip never runs snippets',
  },
  {
    code: 'INVALID_ANNOTATION_VALUE',
    module: 'k8s',
    kind: 'issue',
    summary: 'a supported annotation has a value of the wrong form; it is ignored and the default applies',
    fix: 'use the form the message names (e.g. "true", a number, a duration)',
  },
  {
    code: 'INVALID_CONFIGMAP_VALUE',
    module: 'k8s',
    kind: 'issue',
    summary: 'a supported ConfigMap key has a value of the wrong form; the default applies',
    fix: 'use the form the message names',
  },
  {
    code: 'INVALID_SOURCE_RANGE',
    module: 'k8s',
    kind: 'issue',
    summary:
      'an allow/deny annotation or ConfigMap list has a bad entry: it fails closed, 503 for everyone on the locations it covers (also a doctor finding id)',
    fix: SOURCE_RANGE_FIX,
  },
  {
    code: 'INVALID_TRUSTED_CIDR',
    module: 'k8s',
    kind: 'issue',
    summary:
      'proxy-real-ip-cidr has a bad entry; keepip trusts no peer, so PROXY and forwarded headers are refused',
    fix: "set proxy-real-ip-cidr to valid CIDRs of the load balancer's addresses",
  },
  {
    code: 'TRUSTS_EVERYONE',
    module: 'k8s',
    kind: 'issue',
    summary: 'proxy-real-ip-cidr is unset, so the default 0.0.0.0/0 lets any peer supply the client address',
    fix: "set proxy-real-ip-cidr to the load balancer's (or nodes') addresses",
  },
  {
    code: 'UNSUPPORTED_BACKEND_PROTOCOL',
    module: 'k8s',
    kind: 'issue',
    summary: 'backend-protocol GRPC, GRPCS, FCGI or AUTO_HTTP is not supported; the locations answer 503',
    fix: 'use HTTP or HTTPS backends',
  },
  {
    code: 'UNKNOWN_LB_ANNOTATION',
    module: 'k8s',
    kind: 'issue',
    summary: 'a Service annotation in the AWS load balancer namespace that no AWS controller reads (a typo?)',
    fix: 'correct the annotation name',
  },
  {
    code: 'CONFLICTING_LB_ANNOTATIONS',
    module: 'k8s',
    kind: 'issue',
    summary:
      'load balancer annotations contradict each other or the LB type; the message says which one wins',
    fix: 'remove the losing annotation so the manifest says what runs',
  },
  {
    code: 'INVALID_LB_ANNOTATION',
    module: 'k8s',
    kind: 'issue',
    summary: 'a load balancer annotation has a value of the wrong form; it is ignored',
    fix: 'use key=value lists and true/false as the AWS controller documents',
  },
  {
    code: 'INVALID_LB_SOURCE_RANGE',
    module: 'k8s',
    kind: 'issue',
    summary:
      'loadBalancerSourceRanges (or its annotation) has an entry that is not a CIDR; it is dropped, and with none left the LB is open',
    fix: 'keep only valid CIDRs',
  },
  {
    code: 'LB_HEALTHCHECK_HTTPS_AS_HTTP',
    module: 'k8s',
    kind: 'issue',
    summary: 'an HTTPS health check is modelled as HTTP (keepip lb does not check certificates)',
    fix: 'nothing to do; informational',
  },
  {
    code: 'INVALID_KEEPIP_ANNOTATION',
    module: 'k8s',
    kind: 'issue',
    summary: 'a keepip.dev/ annotation has an invalid value; it is ignored or the default applies',
    fix: 'use the values the message lists',
  },
  {
    code: 'UNKNOWN_KEEPIP_ANNOTATION',
    module: 'k8s',
    kind: 'issue',
    summary: 'a keepip.dev/ annotation keepip does not know (a typo?)',
    fix: 'correct it to one of the names the message lists',
  },
  {
    code: 'TOO_MANY_LOAD_BALANCERS',
    module: 'k8s',
    kind: 'issue',
    summary: 'more LoadBalancer Services than default loopback addresses for them',
    fix: 'set each Service status.loadBalancer.ingress[0].ip, or run fewer load balancers',
  },
  {
    code: 'NODE_WITHOUT_ADDRESS',
    module: 'k8s',
    kind: 'issue',
    summary: 'a Node has no valid InternalIP address; it cannot be a target',
    fix: 'add an InternalIP to status.addresses of the Node',
  },
  {
    code: 'UNSUPPORTED_ADDRESS_TYPE',
    module: 'k8s',
    kind: 'issue',
    summary: 'an EndpointSlice of addressType FQDN; it is ignored',
    fix: 'use IPv4 or IPv6 EndpointSlices',
  },

  // gateway
  {
    code: 'ROUTE_INVALID_REGEX',
    module: 'gateway',
    kind: 'issue',
    summary:
      'a regex path (use-regex or rewrite-target) is not a valid regular expression; the location fails closed with 503',
    fix: 'correct the regular expression in the path',
  },
  {
    code: 'ROUTE_INVALID_REWRITE_TARGET',
    module: 'gateway',
    kind: 'issue',
    summary: 'rewrite-target does not have the form ingress-nginx accepts; the rewrite is ignored',
    fix: 'write a path target such as /$2 (captures $0-$9 allowed)',
  },
  {
    code: 'ROUTE_REWRITE_VARIABLE',
    module: 'gateway',
    kind: 'issue',
    summary:
      'rewrite-target uses an nginx variable or a bare $; only $0-$9 captures are supported; the rewrite is ignored',
    fix: 'replace variables with captures of the path regex',
  },
  {
    code: 'ROUTE_INVALID_HOST',
    module: 'gateway',
    kind: 'issue',
    summary: 'a virtual host name can never match a request; it is ignored',
    fix: 'correct the host of the Ingress rule',
  },
  {
    code: 'ROUTE_DUPLICATE_HOST',
    module: 'gateway',
    kind: 'issue',
    summary: 'the same host is defined twice after normalisation; the first is used',
    fix: 'merge the rules into one host',
  },
  {
    code: 'GATEWAY_CONFIG_INVALID',
    module: 'gateway',
    kind: 'error',
    summary:
      'the configuration has errors the gateway cannot contain; it does not start, and a reload keeps the running config',
    fix: 'fix the issues listed with the error (each names file, object and field)',
  },
  {
    code: 'GATEWAY_TRUSTED_CIDRS_INVALID',
    module: 'gateway',
    kind: 'error',
    summary: '--trusted-proxies or proxy-real-ip-cidr is not a valid CIDR list; the config is refused',
    fix: 'pass valid CIDRs',
  },
  {
    code: 'GATEWAY_ROUTES_FAILED',
    module: 'gateway',
    kind: 'error',
    summary: 'the routing table could not be compiled; the config is refused',
    fix: 'report it with the manifests; the message names the cause',
  },
  {
    code: 'UPSTREAM_CONNECT_REFUSED',
    module: 'gateway',
    kind: 'outcome',
    summary: 'the backend refused the connection (502, or the next endpoint is tried)',
    fix: 'check that the pod listens on the Service targetPort',
  },
  {
    code: 'UPSTREAM_CONNECT_TIMEOUT',
    module: 'gateway',
    kind: 'outcome',
    summary: 'connecting to the backend timed out (504)',
    fix: 'check the network path to the endpoint, or raise proxy-connect-timeout',
  },
  {
    code: 'UPSTREAM_READ_TIMEOUT',
    module: 'gateway',
    kind: 'outcome',
    summary: 'the backend did not answer in time (504)',
    fix: 'speed up the backend or raise proxy-read-timeout',
  },
  {
    code: 'UPSTREAM_SEND_TIMEOUT',
    module: 'gateway',
    kind: 'outcome',
    summary: 'the backend did not accept the request body in time (504)',
    fix: 'check the backend, or raise proxy-send-timeout',
  },
  {
    code: 'H1_BAD_REQUEST_LINE',
    module: 'gateway',
    kind: 'error',
    summary: 'the request line is not `METHOD SP target SP HTTP/1.x` (400)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'H1_BAD_METHOD',
    module: 'gateway',
    kind: 'error',
    summary: 'the method is not a token, or is CONNECT (400)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'H1_BAD_TARGET',
    module: 'gateway',
    kind: 'error',
    summary:
      'the request target has control characters or spaces, or is not origin-, absolute- (http/https) or `*` (OPTIONS) form (400)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'H1_BAD_VERSION',
    module: 'gateway',
    kind: 'error',
    summary: 'the HTTP version is malformed (400)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'TARGET_FRAGMENT',
    module: 'gateway',
    kind: 'error',
    summary: 'the request target carries a fragment (`#`), which a backend would cut the path at (400)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'TARGET_NUL',
    module: 'gateway',
    kind: 'error',
    summary: 'the path holds a NUL once percent-decoded (`%00`) (400, as nginx)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'TARGET_ABOVE_ROOT',
    module: 'gateway',
    kind: 'error',
    summary: 'the path climbs above the root with `..` (raw or encoded) (400, as nginx)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'TARGET_BAD_FORM',
    module: 'gateway',
    kind: 'error',
    summary: 'the target is neither origin-form, absolute-form with http/https, nor `*` (400)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'TARGET_BAD_AUTHORITY',
    module: 'gateway',
    kind: 'error',
    summary: 'an absolute-form target with an empty, userinfo-carrying (`user@`) or invalid authority (400)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'HOST_MISSING',
    module: 'gateway',
    kind: 'error',
    summary: 'an HTTP/1.1 request without a Host header (400, as nginx and RFC 9112 §3.2)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'HOST_INVALID',
    module: 'gateway',
    kind: 'error',
    summary: 'the Host header is not a valid host name (`/`, `..`, a leading dot, spaces…) (400, as nginx)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'H1_UNSUPPORTED_VERSION',
    module: 'gateway',
    kind: 'error',
    summary: 'an HTTP version other than 1.0 and 1.1 (505)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'H1_BARE_LF',
    module: 'gateway',
    kind: 'error',
    summary: 'a line of the request ends in LF without CR (400)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'H1_BARE_CR',
    module: 'gateway',
    kind: 'error',
    summary: 'a CR inside a request line or header line (400)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'H1_BAD_HEADER',
    module: 'gateway',
    kind: 'error',
    summary:
      'a header field name that is not a token, whitespace before the colon, or a control character in a value (400)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'H1_OBS_FOLD',
    module: 'gateway',
    kind: 'error',
    summary: 'a header line continued on the next line (obsolete line folding) (400)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'H1_HEADER_TOO_LARGE',
    module: 'gateway',
    kind: 'error',
    summary: 'the request head (or the trailers) is larger than the header size limit (431)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'H1_BAD_CONTENT_LENGTH',
    module: 'gateway',
    kind: 'error',
    summary: 'a Content-Length that is not plain digits (400)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'H1_DUPLICATE_CONTENT_LENGTH',
    module: 'gateway',
    kind: 'error',
    summary: 'two Content-Length headers with different values (400)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'H1_CONTENT_LENGTH_WITH_TRANSFER_ENCODING',
    module: 'gateway',
    kind: 'error',
    summary: 'Content-Length and Transfer-Encoding in one request (400)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'H1_UNSUPPORTED_TRANSFER_ENCODING',
    module: 'gateway',
    kind: 'error',
    summary: 'a Transfer-Encoding other than exactly `chunked` (501), repeated, or in HTTP/1.0 (400)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'H1_DUPLICATE_HOST',
    module: 'gateway',
    kind: 'error',
    summary: 'two Host headers (400)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'H1_BAD_CHUNK',
    module: 'gateway',
    kind: 'error',
    summary:
      'a chunk size that is not hex, too long, with bad extensions, or chunk data not followed by CRLF (400)',
    fix: 'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses',
  },
  {
    code: 'UPSTREAM_CLOSED',
    module: 'gateway',
    kind: 'outcome',
    summary: 'the backend closed the connection before a complete response (502)',
    fix: 'check the backend logs',
  },
  {
    code: 'UPSTREAM_ERROR',
    module: 'gateway',
    kind: 'outcome',
    summary: 'another error talking to the backend (502); the error log has the details',
    fix: 'read the error log line for the request',
  },
  {
    code: 'CLIENT_BODY_TOO_LARGE',
    module: 'gateway',
    kind: 'outcome',
    summary: 'the request body exceeds proxy-body-size (413)',
    fix: 'send a smaller body or raise proxy-body-size for the location',
  },
  {
    code: 'CLIENT_CLOSED',
    module: 'gateway',
    kind: 'outcome',
    summary: 'the client closed the connection before the response (logged as 499)',
    fix: 'nothing on the gateway; check client timeouts if frequent',
  },

  // lb
  {
    code: 'LB_BAD_LISTEN_ADDRESS',
    module: 'lb',
    kind: 'error',
    summary: 'the listen address is not IP:PORT',
    fix: 'pass --listen IP:PORT',
  },
  {
    code: 'LB_BAD_TARGET',
    module: 'lb',
    kind: 'error',
    summary: 'a target is not IP:PORT with a port 1-65535',
    fix: 'pass --target IP:PORT',
  },
  {
    code: 'LB_BAD_SOURCE_ADDRESS',
    module: 'lb',
    kind: 'error',
    summary: 'the source address for target connections is not an IP address',
    fix: 'pass an address local to this machine',
  },
  {
    code: 'LB_BAD_ALGORITHM',
    module: 'lb',
    kind: 'error',
    summary: 'the target selection algorithm is unknown',
    fix: 'use flow-hash, round-robin or least-conn',
  },
  {
    code: 'LB_BAD_PROXY_PROTOCOL',
    module: 'lb',
    kind: 'error',
    summary: 'the PROXY protocol setting is neither v1, v2 nor off',
    fix: 'use v1 or v2, or leave PROXY protocol off',
  },
  {
    code: 'LB_TLVS_NEED_V2',
    module: 'lb',
    kind: 'error',
    summary: 'TLVs (unique id, CRC32C, VPC endpoint id) were asked for without PROXY v2',
    fix: 'enable PROXY v2 or drop the TLV options',
  },
  {
    code: 'LB_BAD_VPC_ENDPOINT_ID',
    module: 'lb',
    kind: 'error',
    summary: 'the VPC endpoint id TLV value is not 1-255 printable ASCII characters',
    fix: 'pass an id of the form vpce-0123abcd',
  },
  {
    code: 'LB_BAD_HEALTH_CHECK',
    module: 'lb',
    kind: 'error',
    summary: 'the health check settings are out of range (port, path, interval, thresholds)',
    fix: 'correct the setting the message names',
  },
  {
    code: 'LB_BAD_TIMEOUT',
    module: 'lb',
    kind: 'error',
    summary: 'the idle timeout or deregistration delay is not a number of milliseconds >= 0',
    fix: 'pass a non-negative duration',
  },
  {
    code: 'LB_BAD_SOURCE_RANGE',
    module: 'lb',
    kind: 'error',
    summary: 'an allowed source range (loadBalancerSourceRanges) is not a CIDR or IP address',
    fix: 'correct the range the message names',
  },
  {
    code: 'LB_CONFIG_INVALID',
    module: 'lb',
    kind: 'thrown',
    summary: 'startLoadBalancer was given a config that validateLbConfig refuses; nothing listens',
    fix: 'validate first and fix the LB_* errors it carries',
  },
  {
    code: 'LB_NO_LOAD_BALANCER',
    module: 'lb',
    kind: 'error',
    summary: 'keepip lb -f: the manifests hold no Service of type LoadBalancer',
    fix: 'add one, or pass --listen and --target',
  },
  {
    code: 'LB_SERVICE_NOT_FOUND',
    module: 'lb',
    kind: 'error',
    summary: 'keepip lb --service names no LoadBalancer Service in the manifests',
    fix: 'pass namespace/name of an existing LoadBalancer Service',
  },
  {
    code: 'LB_NO_TCP_PORT',
    module: 'lb',
    kind: 'error',
    summary: 'the LoadBalancer Service has no TCP port to listen on',
    fix: 'add a TCP port to the Service',
  },
  {
    code: 'LB_NO_TARGETS',
    module: 'lb',
    kind: 'error',
    summary:
      'a listener has no targets: no node address with a nodePort (instance targets) or no ready endpoint (ip targets)',
    fix: 'add Nodes or EndpointSlices to the manifests, or pass --target',
  },
  {
    code: 'LB_LISTEN_AMBIGUOUS',
    module: 'lb',
    kind: 'error',
    summary: '--listen names one address but the manifests describe several listeners',
    fix: 'pick one with --service, or drop --listen',
  },

  // doctor
  {
    code: 'DOCTOR_UNKNOWN_LB',
    module: 'doctor',
    kind: 'error',
    summary: '--lb names no LoadBalancer Service in the manifests',
    fix: 'use one of the names the message lists',
  },
  {
    code: 'DOCTOR_BAD_TRUSTED_CIDRS',
    module: 'doctor',
    kind: 'error',
    summary: 'proxy-real-ip-cidr cannot be parsed, so the chain cannot be modelled',
    fix: 'fix proxy-real-ip-cidr in the controller ConfigMap',
  },
  {
    code: 'DOCTOR_PATCH_TARGET_MISSING',
    module: 'doctor',
    kind: 'error',
    summary: 'a fix patch targets a Service or Ingress that is not in the manifests',
    fix: 'run the doctor over all manifests of the chain',
  },
  {
    code: 'CLOSED_WITHOUT_RESPONSE',
    module: 'doctor',
    kind: 'outcome',
    summary: '--probe: the connection was closed without any answer (a gateway waiting for a PROXY header)',
    fix: 'see PROXY_PROTOCOL_EXPECTED_NOT_SENT and PEER_NOT_TRUSTED',
  },
  {
    code: 'CLIENT_IP_LOST_AT_LB',
    module: 'doctor',
    kind: 'finding',
    summary: 'the load balancer connects from its own address and sends no PROXY header: backends see the LB',
    fix: 'PROXY protocol end to end (LB annotation + use-proxy-protocol + proxy-real-ip-cidr)',
  },
  {
    code: 'CLIENT_VIA_TRANSIT_GATEWAY',
    module: 'doctor',
    kind: 'finding',
    summary:
      'clients arrive via transit gateway, VPN or PrivateLink, where client IP preservation cannot work',
    fix: 'PROXY protocol end to end',
  },
  {
    code: 'CLIENT_IP_LOST_AT_KUBE_PROXY',
    module: 'doctor',
    kind: 'finding',
    summary: 'instance targets with externalTrafficPolicy: Cluster SNAT the client to a node address',
    fix: 'externalTrafficPolicy: Local on the controller Service',
  },
  {
    code: 'PROXY_PROTOCOL_SENT_NOT_EXPECTED',
    module: 'doctor',
    kind: 'finding',
    summary: 'the load balancer sends PROXY headers but use-proxy-protocol is off: every request gets 400',
    fix: 'use-proxy-protocol: "true" with proxy-real-ip-cidr set to the peers',
  },
  {
    code: 'PROXY_PROTOCOL_EXPECTED_NOT_SENT',
    module: 'doctor',
    kind: 'finding',
    summary: 'use-proxy-protocol is on but the load balancer sends no header: connections are closed',
    fix: 'turn on the LB\'s PROXY protocol, or use-proxy-protocol: "false"',
  },
  {
    code: 'PEER_NOT_TRUSTED',
    module: 'doctor',
    kind: 'finding',
    summary:
      'PROXY on both ends, but the peer the header arrives from is outside proxy-real-ip-cidr: connections are closed',
    fix: 'add the real peers (LB subnets, or nodes after SNAT) to proxy-real-ip-cidr',
  },
  {
    code: 'PROXY_PROTOCOL_TRUSTS_EVERYONE',
    module: 'doctor',
    kind: 'finding',
    summary:
      'use-proxy-protocol with proxy-real-ip-cidr containing a /0: anyone reaching the gateway forges the client',
    fix: "set proxy-real-ip-cidr to the chain's peers",
  },
  {
    code: 'FORWARDED_HEADERS_SPOOFABLE',
    module: 'doctor',
    kind: 'finding',
    summary: 'use-forwarded-headers/enable-real-ip let a client outside every list forge its address',
    fix: 'turn them off and use PROXY protocol behind an L4 load balancer',
  },
  {
    code: 'HEALTH_CHECK_CANNOT_SPEAK_PROXY',
    module: 'doctor',
    kind: 'finding',
    summary:
      'health checks reach a port that does not speak PROXY (healthCheckNodePort, or an HTTP check off the traffic port)',
    fix: 'AWS: TCP check on traffic-port; or externalTrafficPolicy: Cluster with the nodes trusted',
  },
  {
    code: 'IN_CLUSTER_BYPASS',
    module: 'doctor',
    kind: 'finding',
    summary:
      'in-cluster callers skip the load balancer (status holds only an IP) and send no PROXY header: closed',
    fix: 'status ipMode: Proxy on the LoadBalancer Service',
  },
  {
    code: 'HAIRPIN_TIMEOUT',
    module: 'doctor',
    kind: 'finding',
    summary:
      'internal AWS NLB with preservation on: a target calling its own NLB can be routed to itself and time out',
    fix: 'preservation off plus PROXY protocol end to end',
  },

  // up
  {
    code: 'UP_CONFIG_INVALID',
    module: 'up',
    kind: 'thrown',
    summary: 'keepip up: the manifests have errors the chain cannot run with; nothing starts',
    fix: 'fix the issues listed (each names file, object and field)',
  },
  {
    code: 'UP_LISTEN_FAILED',
    module: 'up',
    kind: 'thrown',
    summary: 'keepip up: a listener cannot bind its address (in use, not local, or a privileged port)',
    fix: 'free the port, or use --ephemeral-ports to put every listener on a free port',
  },

  // whoami
  {
    code: 'WHOAMI_BAD_WAIT',
    module: 'whoami',
    kind: 'error',
    summary: 'the ?wait= parameter is not a duration',
    fix: 'write e.g. 250ms or 2s',
  },
  {
    code: 'WHOAMI_WAIT_TOO_LONG',
    module: 'whoami',
    kind: 'error',
    summary: 'the ?wait= parameter exceeds the maximum delay',
    fix: 'ask for a shorter wait',
  },
] as const satisfies readonly ErrorEntry[];

export type ErrorCode = PpErrorCode | (typeof OTHER_ENTRIES)[number]['code'];

/** Every code, grouped by module in the order docs/errors.md lists them. */
export const ERROR_REGISTRY: readonly (ErrorEntry & { readonly code: ErrorCode })[] = [
  ...ppEntries(),
  ...OTHER_ENTRIES,
] as (ErrorEntry & { readonly code: ErrorCode })[];

const BY_CODE = new Map<string, ErrorEntry & { readonly code: ErrorCode }>(
  ERROR_REGISTRY.map((e) => [e.code, e]),
);

export function isErrorCode(value: string): value is ErrorCode {
  return BY_CODE.has(value);
}

/** The registry entry of a code; undefined for a string that is not a registered code. */
export function describeErrorCode(code: string): (ErrorEntry & { readonly code: ErrorCode }) | undefined {
  return BY_CODE.get(code);
}
