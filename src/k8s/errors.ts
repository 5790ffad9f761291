// The codes src/k8s/ reports while loading manifests and translating them into the Topology: every one
// is a configuration issue (ConfigIssue), so ConfigIssue.code (src/config/model.ts) is typed by this
// table and the gateway's. src/errors.ts merges it into the registry behind docs/errors.md.
import type { CodesOfKind, CodeTable } from '../error-table.ts';

export const K8S_CODES = {
  MANIFEST_READ_ERROR: {
    kind: 'issue',
    summary: 'a manifest file or directory cannot be read',
    fix: 'check the path and its permissions',
  },
  MANIFEST_TOO_LARGE: {
    kind: 'issue',
    summary: 'a manifest file is larger than keepip reads',
    fix: 'split it into several files',
  },
  MANIFEST_YAML_ERROR: {
    kind: 'issue',
    summary: 'a manifest document is not valid YAML or JSON',
    fix: 'fix the syntax at the line given in the message',
  },
  MANIFEST_NOT_AN_OBJECT: {
    kind: 'issue',
    summary: 'a document (or a List item) is not a mapping, so it is not a Kubernetes object',
    fix: 'remove the document or make it an object with apiVersion and kind',
  },
  MANIFEST_LIST_TOO_DEEP: {
    kind: 'issue',
    summary: 'Lists are nested deeper than keepip follows',
    fix: 'flatten the nested List objects',
  },
  MANIFEST_MISSING_FIELD: {
    kind: 'issue',
    summary: 'a required field of an object is missing',
    fix: 'add the field named in the message',
  },
  MANIFEST_INVALID_FIELD: {
    kind: 'issue',
    summary: 'a field has the wrong type or an invalid value',
    fix: 'correct the field named in the message as the Kubernetes API defines it',
  },
  MANIFEST_FIELD_NOT_STRING: {
    kind: 'issue',
    summary: 'a string field holds a number or boolean (Kubernetes would reject it); keepip reads its text',
    fix: 'quote the value, e.g. "true"',
  },
  UNSUPPORTED_KIND: {
    kind: 'issue',
    summary: 'an object of a kind keepip does not read; it is ignored',
    fix: 'nothing to do if the object is unrelated to ingress; otherwise see docs/manifests.md for the kinds read',
  },
  UNSUPPORTED_API_VERSION: {
    kind: 'issue',
    summary: 'a known kind with an apiVersion keepip does not read; it is ignored',
    fix: 'use the current apiVersion (e.g. networking.k8s.io/v1 for Ingress)',
  },
  DUPLICATE_OBJECT: {
    kind: 'issue',
    summary: 'the same kind/namespace/name appears twice; the later definition wins, as with kubectl apply',
    fix: 'remove the duplicate',
  },
  INGRESS_NOT_SERVED: {
    kind: 'issue',
    summary:
      'an Ingress belongs to another ingress class (or has none and no default applies); keepip does not serve it',
    fix: 'set spec.ingressClassName to the class keepip serves, if it should be served',
  },
  INGRESS_CLASS_OTHER_CONTROLLER: {
    kind: 'issue',
    summary: 'the IngressClass keepip was asked to serve names another controller; keepip serves it anyway',
    fix: 'set spec.controller to k8s.io/ingress-nginx, or pick the right class with --ingress-class',
  },
  MULTIPLE_DEFAULT_INGRESS_CLASSES: {
    kind: 'issue',
    summary:
      'more than one IngressClass is marked default; Ingresses without a class get the newest, as the API server gives it',
    fix: 'keep ingressclass.kubernetes.io/is-default-class on one class only',
  },
  CONFLICTING_INGRESS_CLASS: {
    kind: 'issue',
    summary:
      'the legacy kubernetes.io/ingress.class annotation differs from spec.ingressClassName, which wins',
    fix: 'remove the annotation',
  },
  INVALID_HOST: {
    kind: 'issue',
    summary: 'an Ingress rule host is not a host name or a single leading wildcard; the rule is ignored',
    fix: 'write a DNS name or *.example.com',
  },
  INVALID_PATH: {
    kind: 'issue',
    summary: 'an Ingress path is not valid for its pathType; the path is ignored',
    fix: 'start paths with "/" and use only /[A-Za-z0-9-._/]*, or pathType ImplementationSpecific for a regex (or the ConfigMap\'s strict-validate-path-type "false")',
  },
  DUPLICATE_PATH: {
    kind: 'issue',
    summary:
      'the same host, path and pathType is defined twice (a Prefix `/admin` and `/admin/` are one nginx location); the older Ingress wins (equal times: the later namespace/name, as ingress-nginx)',
    fix: 'remove one of the two paths',
  },
  DUPLICATE_DEFAULT_BACKEND: {
    kind: 'issue',
    summary: 'several Ingresses set spec.defaultBackend; the older one wins',
    fix: 'keep one default backend',
  },
  SERVICE_NOT_FOUND: {
    kind: 'issue',
    summary: 'an Ingress backend names a Service that is not in the manifests; its requests get 503',
    fix: 'add the Service or correct the name',
  },
  SERVICE_PORT_NOT_FOUND: {
    kind: 'issue',
    summary: 'an Ingress backend names a port the Service does not have; its requests get 503',
    fix: 'use a port number or name the Service defines',
  },
  UNSUPPORTED_BACKEND: {
    kind: 'issue',
    summary:
      'a resource backend (not a Service) is ignored, as ingress-nginx does: its path gets no location and its requests go to the default backend',
    fix: 'point the path at a Service',
  },
  TLS_SECRET_NOT_FOUND: {
    kind: 'issue',
    summary: 'an Ingress TLS secret is not in the manifests; its hosts use the default certificate',
    fix: 'add the Secret (tls.crt and tls.key; kubernetes.io/tls or any other type) or correct secretName',
  },
  TLS_SECRET_INVALID: {
    kind: 'issue',
    summary: 'an Ingress TLS secret has no usable tls.crt/tls.key; its hosts use the default certificate',
    fix: 'put a PEM certificate and its matching key in the Secret',
  },
  TLS_SECRET_HOST_MISMATCH: {
    kind: 'issue',
    summary:
      "an Ingress TLS secret's certificate does not name a host its entry lists; that host uses the default certificate, as ingress-nginx",
    fix: 'put a certificate for the host in the Secret (a subjectAltName, or a wildcard covering it)',
  },
  CONFIGMAP_NOT_FOUND: {
    kind: 'issue',
    summary: "the controller ConfigMap is not in the manifests; ingress-nginx's defaults apply",
    fix: 'add the ConfigMap, or pass --configmap namespace/name if it has another name',
  },
  INVALID_CONFIGMAP_OPTION: {
    kind: 'issue',
    summary: '--configmap is not "namespace/name"; the default name is used',
    fix: 'pass --configmap namespace/name',
  },
  UNSUPPORTED_ANNOTATION: {
    kind: 'issue',
    summary:
      "an annotation under nginx.ingress.kubernetes.io/ that ingress-nginx does not have either (a typo, or another controller's); it has no effect",
    fix: 'correct the name (the message suggests the nearest ingress-nginx name) or remove it',
  },
  CANARY_NOT_MERGED: {
    kind: 'issue',
    summary:
      'a path of a canary Ingress (canary: "true") has no main Ingress with the same host, path and pathType and another Service; that canary path is not served',
    fix: 'give the canary the host, path and pathType of the main Ingress it shadows, and a Service of its own',
  },
  CANARY_ACCESS_IGNORED: {
    kind: 'issue',
    summary:
      'a canary Ingress (canary: "true") carries access annotations (allowlist, denylist, auth, limits); as in ingress-nginx, a canary takes the main Ingress\'s and its own are ignored, so they protect nothing',
    fix: 'put the access annotations on the main Ingress (they cover the canary too), and remove them from the canary',
  },
  ANNOTATION_NO_EFFECT: {
    kind: 'issue',
    summary:
      'an ingress-nginx annotation that tunes an nginx internal (buffers, HTTP/2 push…): accepted, and nothing a client or backend observes changes; the message says why',
    fix: 'nothing to do; remove it once the Ingress no longer serves ingress-nginx',
  },
  ANNOTATION_REFUSED: {
    kind: 'issue',
    summary:
      'an ingress-nginx annotation keepip does not honour (snippets, ModSecurity, OpenTelemetry, mirroring, or not implemented yet); the Ingress is served without it',
    fix: 'follow "the keepip way" in the message where there is one; see docs/ingress-nginx-compat.md',
  },
  ANNOTATION_TOO_RISKY: {
    kind: 'issue',
    summary:
      "an Ingress uses an annotation whose risk (as ingress-nginx rates it: Low, Medium, High, Critical) is above the ConfigMap's annotations-risk-level (default High: the snippets are Critical); as ingress-nginx, the whole Ingress is not served and the admission webhook refuses it",
    fix: 'remove the annotation, or raise annotations-risk-level in the controller ConfigMap if its authors may use it',
  },
  ANNOTATION_VALUE_BLOCKED: {
    kind: 'issue',
    summary:
      "an annotation value contains a word of the ConfigMap's annotation-value-word-blocklist; as ingress-nginx, the whole Ingress is not served and the admission webhook refuses it",
    fix: 'change the value, or the blocklist (an empty entry, as in "a,,b" or a trailing comma, blocks every annotated Ingress)',
  },
  UNSUPPORTED_CONFIGMAP_KEY: {
    kind: 'issue',
    summary: 'a controller ConfigMap key ingress-nginx does not have either (a typo); it has no effect',
    fix: 'correct the key (the message suggests the nearest ingress-nginx key) or remove it',
  },
  CONFIGMAP_KEY_NO_EFFECT: {
    kind: 'issue',
    summary:
      'an ingress-nginx ConfigMap key that tunes an nginx internal (workers, buffers, hash sizes…): accepted, and nothing a client or backend observes changes; the message says why',
    fix: 'nothing to do',
  },
  CONFIGMAP_KEY_REFUSED: {
    kind: 'issue',
    summary:
      'an ingress-nginx ConfigMap key keepip does not honour (snippets, ModSecurity, Jaeger tracing, allow-snippet-annotations other than "false", or not implemented yet)',
    fix: 'follow "the keepip way" in the message where there is one; see docs/ingress-nginx-compat.md',
  },
  INVALID_ANNOTATION_VALUE: {
    kind: 'issue',
    summary: 'a supported annotation has a value of the wrong form; it is ignored and the default applies',
    fix: 'use the form the message names (e.g. "true", a number, a duration)',
  },
  AUTH_CACHE_SHARED: {
    kind: 'issue',
    summary:
      "auth-cache-key names nothing of the client (no $http_authorization, $http_cookie, $cookie_<name>, $remote_user, $remote_addr…): one cached auth answer serves every client of the location, as nginx does, so the first client's 200 lets the next one in unchecked",
    fix: 'put the credentials the auth service reads in the key, e.g. auth-cache-key: "$remote_user$http_authorization"',
  },
  TRACING_NOT_EXPORTED: {
    kind: 'issue',
    summary:
      'locations trace (enable-opentelemetry) but the ConfigMap names no otlp-collector-host: spans are propagated to backends, never exported',
    fix: 'set otlp-collector-host (and otlp-collector-port, default 4317) in the controller ConfigMap',
  },
  INVALID_CONFIGMAP_VALUE: {
    kind: 'issue',
    summary: 'a supported ConfigMap key has a value of the wrong form; the default applies',
    fix: 'use the form the message names',
  },
  INVALID_SOURCE_RANGE: {
    kind: 'issue',
    summary:
      'an allow/deny annotation or ConfigMap list has a bad entry: it fails closed, 503 for everyone on the locations it covers (also a doctor finding id)',
    fix: 'keep only valid CIDRs or bare IPs, comma-separated, in the annotation or ConfigMap key (no zone ids, no leading zeros)',
  },
  SOURCE_RANGE_MAPPED_ENTRY: {
    kind: 'issue',
    summary:
      'a source-range list has an IPv4-mapped IPv6 entry (::ffff:…): in an annotation it is the IPv4 range Go prints (::ffff:0:0/96 is 0.0.0.0/0, every IPv4 client), as ingress-nginx; in the ConfigMap it is what nginx makes of it: whitelist-source-range and proxy-real-ip-cidr match no IPv4 client with it, denylist-source-range and block-cidrs deny its IPv4 range (stricter than nginx)',
    fix: 'write the IPv4 range the warning names (or drop the entry)',
  },
  INVALID_TRUSTED_CIDR: {
    kind: 'issue',
    summary:
      'proxy-real-ip-cidr has a bad entry; the configuration is not served: the gateway does not start, a reload keeps the trust it had (as nginx refuses it), never trusting everyone',
    fix: "set proxy-real-ip-cidr to valid CIDRs of the load balancer's addresses",
  },
  TRUSTS_EVERYONE: {
    kind: 'issue',
    summary: 'proxy-real-ip-cidr is unset, so the default 0.0.0.0/0 lets any peer supply the client address',
    fix: "set proxy-real-ip-cidr to the load balancer's (or nodes') addresses",
  },
  UNSUPPORTED_BACKEND_PROTOCOL: {
    kind: 'issue',
    summary: 'backend-protocol FCGI is not supported; the locations answer 503',
    fix: 'use HTTP or HTTPS backends',
  },
  UNKNOWN_LB_ANNOTATION: {
    kind: 'issue',
    summary: 'a Service annotation in the AWS load balancer namespace that no AWS controller reads (a typo?)',
    fix: 'correct the annotation name',
  },
  CONFLICTING_LB_ANNOTATIONS: {
    kind: 'issue',
    summary:
      'load balancer annotations contradict each other or the LB type; the message says which one wins',
    fix: 'remove the losing annotation so the manifest says what runs',
  },
  INVALID_LB_ANNOTATION: {
    kind: 'issue',
    summary: 'a load balancer annotation has a value of the wrong form; it is ignored',
    fix: 'use key=value lists and true/false as the AWS controller documents',
  },
  INVALID_LB_SOURCE_RANGE: {
    kind: 'issue',
    summary:
      'loadBalancerSourceRanges (or its annotation) has an entry that is not a CIDR: keepip lb, up and gateway -f refuse the manifests (the API server or a cloud controller would not set up such a load balancer)',
    fix: 'keep only valid CIDRs',
  },
  LB_HEALTHCHECK_HTTPS_AS_HTTP: {
    kind: 'issue',
    summary: 'an HTTPS health check is modelled as HTTP (keepip lb does not check certificates)',
    fix: 'nothing to do; informational',
  },
  INVALID_KEEPIP_ANNOTATION: {
    kind: 'issue',
    summary: 'a keepip.dev/ annotation has an invalid value; it is ignored or the default applies',
    fix: 'use the values the message lists',
  },
  UNKNOWN_KEEPIP_ANNOTATION: {
    kind: 'issue',
    summary: 'a keepip.dev/ annotation keepip does not know (a typo?)',
    fix: 'correct it to one of the names the message lists',
  },
  TOO_MANY_LOAD_BALANCERS: {
    kind: 'issue',
    summary: 'more LoadBalancer Services than default loopback addresses for them',
    fix: 'set each Service status.loadBalancer.ingress[0].ip, or run fewer load balancers',
  },
  NODE_WITHOUT_ADDRESS: {
    kind: 'issue',
    summary: 'a Node has no valid InternalIP address; it cannot be a target',
    fix: 'add an InternalIP to status.addresses of the Node',
  },
  ACCESS_CONFIG_DENIED: {
    kind: 'issue',
    summary:
      'an access annotation (basic or external auth, limit-allowlist, auth-tls-secret, global-auth-url) or custom-headers cannot be used: its locations answer 503 (auth-tls: its host answers 403), as ingress-nginx denies them',
    fix: 'correct the annotation or create the Secret / ConfigMap it names (same namespace as the Ingress)',
  },
  AUTH_HASH_UNSUPPORTED: {
    kind: 'issue',
    summary:
      'a basic-auth user has a password hash keepip does not verify (DES crypt, SHA-crypt or unknown); that user cannot log in',
    fix: 'hash the password with bcrypt (htpasswd -B) or apr1 (htpasswd -m)',
  },
  EXTERNAL_NAME_REFUSED: {
    kind: 'issue',
    summary:
      'an ExternalName Service names localhost, a loopback or unspecified address (0.0.0.0, ::), an IPv4 address in a numeric form other than dotted decimal (127.1, 2130706433) or an invalid DNS name; it has no endpoint (503)',
    fix: 'set spec.externalName to a DNS-1123 name or a non-loopback IP address',
  },
  EXTERNAL_NAME_DISABLED: {
    kind: 'issue',
    summary: 'an ExternalName Service while --disable-svc-external-name is set: it has no endpoint (503)',
    fix: 'use a Service with endpoints, or run without --disable-svc-external-name',
  },
  UNSUPPORTED_ADDRESS_TYPE: {
    kind: 'issue',
    summary: 'an EndpointSlice of addressType FQDN; it is ignored',
    fix: 'use IPv4 or IPv6 EndpointSlices',
  },
  INVALID_TLS_SETTINGS: {
    kind: 'issue',
    summary:
      'ssl-ciphers or ssl-protocols (the annotation or the ConfigMap key) is not a cipher list or a set of TLS versions keepip can offer: the handshakes it applies to are refused (fail closed), never widened to the defaults',
    fix: 'write an OpenSSL cipher list (e.g. ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES256-GCM-SHA384) and versions among TLSv1.2 TLSv1.3',
  },
  SESSION_COOKIE_PATH_IS_REGEX: {
    kind: 'issue',
    summary:
      "affinity: cookie with use-regex and no session-cookie-path: the sticky cookie's Path is the location's regex as written, which browsers read as a literal path, so the session may not stick (ingress-nginx warns the same)",
    fix: 'set session-cookie-path to the plain path the regex serves (e.g. /foo for /foo/.*)',
  },
  SSL_PASSTHROUGH_IGNORED: {
    kind: 'issue',
    summary:
      'ssl-passthrough is set but keepip terminates TLS for the host: passthrough is not enabled (--enable-ssl-passthrough), or the host has no "/" path with a backend (ingress-nginx ignores it the same way)',
    fix: 'start the gateway or controller with --enable-ssl-passthrough, and give the host a "/" path whose Service speaks TLS',
  },
  PROXY_SSL_NOT_FOR_GRPC: {
    kind: 'issue',
    summary:
      "proxy-ssl-* on an Ingress whose backend-protocol is GRPC or GRPCS: nothing of it applies (ingress-nginx's grpc_pass takes no proxy_ssl_* either), so a GRPCS backend is not verified and gets no client certificate",
    fix: 'verify gRPC backends another way (a mesh, or a backend that is reached only inside the cluster), or remove the annotations',
  },
} as const satisfies CodeTable;

export type K8sCode = keyof typeof K8S_CODES;

/** The codes a ConfigIssue from src/k8s/ carries. */
export type K8sIssueCode = CodesOfKind<typeof K8S_CODES, 'issue'>;
