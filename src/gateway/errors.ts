// The codes src/gateway/ reports: route issues, configuration snapshots, malformed requests and
// upstream outcomes. src/errors.ts merges this table into the registry behind docs/errors.md;
// test/errors.test.ts holds the gateway's own code unions (RequestParseErrorCode, RequestTargetErrorCode,
// ProxyFailureCode, SnapshotErrorCode, RouteError…) equal to their part of the table.
import type { CodesOfKind, CodeTable } from '../error-table.ts';

const CLIENT_REQUEST_FIX =
  'the client (or a proxy in front) sends a malformed or ambiguous request; fix the client — keepip never guesses';

export const GATEWAY_CODES = {
  GATEWAY_REQUEST_FAILED: {
    kind: 'error',
    summary:
      'handling a request threw (a keepip bug): that client got a 500 (or its connection was closed) and the gateway went on serving the others; the error log line [alert] carries the stack',
    fix: 'report it with the error log line; the Ingress annotations of the host involved help reproduce it',
  },
  ROUTE_INVALID_REGEX: {
    kind: 'issue',
    summary:
      'a regex path (use-regex or rewrite-target) is not a valid regular expression; the location fails closed with 503',
    fix: 'correct the regular expression in the path',
  },
  ROUTE_REGEX_BACKTRACKS: {
    kind: 'issue',
    summary:
      'an Ingress regex (use-regex path, rewrite-target, ~ server-alias) repeats a group that itself repeats without bound, or, with a backreference, a lookaround or a counted repeat of more than 16 (which the linear-time fallback engine cannot take), repeats any group without bound, has two unbounded runs of `.` or repeats a group with a choice inside by a count (`(a|aa){40}`); JavaScript has no match limit, so it is never matched: a path fails closed with 503, an alias is ignored',
    fix: 'match the same with a single repeat (e.g. "[a-z0-9/]*" instead of "([a-z]+/?)*")',
  },
  ROUTE_INVALID_REWRITE_TARGET: {
    kind: 'issue',
    summary: 'rewrite-target does not have the form ingress-nginx accepts; the rewrite is ignored',
    fix: 'write a path target such as /$2 (captures $0-$9 allowed)',
  },
  ROUTE_REWRITE_VARIABLE: {
    kind: 'issue',
    summary:
      'rewrite-target uses an nginx variable or a bare $; only $0-$9 captures are supported; the rewrite is ignored',
    fix: 'replace variables with captures of the path regex',
  },
  ROUTE_INVALID_HOST: {
    kind: 'issue',
    summary: 'a virtual host name can never match a request; it is ignored',
    fix: 'correct the host of the Ingress rule',
  },
  ROUTE_DUPLICATE_HOST: {
    kind: 'issue',
    summary: 'the same host is defined twice after normalisation; the first is used',
    fix: 'merge the rules into one host',
  },
  GATEWAY_CONFIG_INVALID: {
    kind: 'error',
    summary:
      'the configuration has errors the gateway cannot contain; it does not start, and a reload keeps the running config',
    fix: 'fix the issues listed with the error (each names file, object and field)',
  },
  UPSTREAM_TLS_SETTINGS_INVALID: {
    kind: 'error',
    summary:
      'proxy-ssl-protocols or proxy-ssl-ciphers is a value OpenSSL refuses (no cipher it knows, a version that is not one): every request to those HTTPS backends fails (502); said when the configuration loads',
    fix: 'write TLSv1.2 and/or TLSv1.3 separated by a space, and an OpenSSL cipher list (e.g. ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256)',
  },
  ACCESS_LOG_REOPEN_FAILED: {
    kind: 'error',
    summary:
      'SIGUSR1 could not open the --access-log path again (its directory is gone or not writable); the gateway writes on to the file it had',
    fix: 'make the path writable (logrotate: create the new file with the right owner, or use copytruncate), then send SIGUSR1 again',
  },
  GATEWAY_TRUSTED_CIDRS_INVALID: {
    kind: 'error',
    summary: '--trusted-proxies or proxy-real-ip-cidr is not a valid CIDR list; the config is refused',
    fix: 'pass valid CIDRs',
  },
  GATEWAY_ROUTES_FAILED: {
    kind: 'error',
    summary: 'the routing table could not be compiled; the config is refused',
    fix: 'report it with the manifests; the message names the cause',
  },
  UPSTREAM_CONNECT_REFUSED: {
    kind: 'outcome',
    summary: 'the backend refused the connection (502, or the next endpoint is tried)',
    fix: 'check that the pod listens on the Service targetPort',
  },
  UPSTREAM_CONNECT_TIMEOUT: {
    kind: 'outcome',
    summary: 'connecting to the backend timed out (504)',
    fix: 'check the network path to the endpoint, or raise proxy-connect-timeout',
  },
  UPSTREAM_READ_TIMEOUT: {
    kind: 'outcome',
    summary: 'the backend did not answer in time (504)',
    fix: 'speed up the backend or raise proxy-read-timeout',
  },
  UPSTREAM_SEND_TIMEOUT: {
    kind: 'outcome',
    summary: 'the backend did not accept the request body in time (504)',
    fix: 'check the backend, or raise proxy-send-timeout',
  },
  H1_BAD_REQUEST_LINE: {
    kind: 'error',
    summary: 'the request line is not `METHOD SP target SP HTTP/1.x` (400)',
    fix: CLIENT_REQUEST_FIX,
  },
  H1_TRACE: {
    kind: 'outcome',
    summary:
      "a TRACE request: answered 405 as nginx, never passed on (a backend that echoes it would show HttpOnly cookies and the gateway's headers)",
    fix: 'nothing on the gateway; TRACE is not served',
  },
  H1_BAD_METHOD: {
    kind: 'error',
    summary:
      'the method is not a token, not one llhttp knows (custom methods are refused), or is CONNECT (400)',
    fix: CLIENT_REQUEST_FIX,
  },
  H1_BAD_TARGET: {
    kind: 'error',
    summary:
      'the request target has control characters, spaces or non-ASCII bytes, an absolute-form host with characters outside RFC 3986, or is not origin-, absolute- (http/https) or `*` (OPTIONS) form (400)',
    fix: CLIENT_REQUEST_FIX,
  },
  H1_BAD_VERSION: {
    kind: 'error',
    summary: 'the HTTP version is malformed (400)',
    fix: CLIENT_REQUEST_FIX,
  },
  TARGET_FRAGMENT: {
    kind: 'error',
    summary: 'the request target carries a fragment (`#`), which a backend would cut the path at (400)',
    fix: CLIENT_REQUEST_FIX,
  },
  TARGET_NUL: {
    kind: 'error',
    summary: 'the path holds a NUL once percent-decoded (`%00`) (400, as nginx)',
    fix: CLIENT_REQUEST_FIX,
  },
  TARGET_ABOVE_ROOT: {
    kind: 'error',
    summary: 'the path climbs above the root with `..` (raw or encoded) (400, as nginx)',
    fix: CLIENT_REQUEST_FIX,
  },
  TARGET_BAD_ESCAPE: {
    kind: 'error',
    summary:
      'a `%` in the path is not followed by two hex digits (`%zz`, `%2`, `%%32%65`, `%u002e`) (400, as nginx): a backend that decodes it leniently or twice would read another path than the one the rules were checked on',
    fix: CLIENT_REQUEST_FIX,
  },
  TARGET_BAD_FORM: {
    kind: 'error',
    summary: 'the target is neither origin-form, absolute-form with http/https, nor `*` (400)',
    fix: CLIENT_REQUEST_FIX,
  },
  TARGET_BAD_AUTHORITY: {
    kind: 'error',
    summary: 'an absolute-form target with an empty, userinfo-carrying (`user@`) or invalid authority (400)',
    fix: CLIENT_REQUEST_FIX,
  },
  TARGET_CAPTURE_UNSENDABLE: {
    kind: 'error',
    summary:
      'a rewrite capture of the decoded path that goes into x-forwarded-prefix holds a CR or another control character (`%0d`, `%01`…), which no request head to the backend can carry: 400 once the access rules passed, nothing sent (nginx would write the byte raw into the header)',
    fix: CLIENT_REQUEST_FIX,
  },
  HOST_MISSING: {
    kind: 'error',
    summary: 'an HTTP/1.1 request without a Host header (400, as nginx and RFC 9112 §3.2)',
    fix: CLIENT_REQUEST_FIX,
  },
  HOST_INVALID: {
    kind: 'error',
    summary:
      'the Host header is not a valid host name (`/`, `..`, a leading dot, spaces…) (400, as nginx), or its port is not digits (`app.example:@evil.example`: nginx serves it)',
    fix: CLIENT_REQUEST_FIX,
  },
  H1_UNSUPPORTED_VERSION: {
    kind: 'error',
    summary: 'an HTTP version other than 1.0 and 1.1 (505)',
    fix: CLIENT_REQUEST_FIX,
  },
  H1_BARE_LF: {
    kind: 'error',
    summary: 'a line of the request ends in LF without CR (400)',
    fix: CLIENT_REQUEST_FIX,
  },
  H1_BARE_CR: {
    kind: 'error',
    summary: 'a CR inside a request line or header line (400)',
    fix: CLIENT_REQUEST_FIX,
  },
  H1_BAD_HEADER: {
    kind: 'error',
    summary:
      'a header field name that is not a token, whitespace before the colon, a control character in a value, or Connection in the trailers (400)',
    fix: CLIENT_REQUEST_FIX,
  },
  H1_OBS_FOLD: {
    kind: 'error',
    summary: 'a header line continued on the next line (obsolete line folding) (400)',
    fix: CLIENT_REQUEST_FIX,
  },
  H1_HEADER_TOO_LARGE: {
    kind: 'error',
    summary:
      'the request head (or the trailers) does not fit the header buffers as nginx packs it: larger than all of them, a header line that does not fit client-header-buffer-size and is larger than a large-client-header-buffers buffer, or more lines moving than there are buffers (431)',
    fix: 'send smaller headers (large cookies, tokens) or raise large-client-header-buffers',
  },
  H1_REQUEST_LINE_TOO_LONG: {
    kind: 'error',
    summary:
      'the request line does not fit: longer than client-header-buffer-size (where it starts) and than one large-client-header-buffers buffer (414)',
    fix: 'shorten the URL (query strings) or raise large-client-header-buffers',
  },
  H1_BAD_CONTENT_LENGTH: {
    kind: 'error',
    summary: 'a Content-Length that is not plain digits (400)',
    fix: CLIENT_REQUEST_FIX,
  },
  H1_DUPLICATE_CONTENT_LENGTH: {
    kind: 'error',
    summary: 'two Content-Length headers, even with the same value, as llhttp and nginx (400)',
    fix: CLIENT_REQUEST_FIX,
  },
  H1_CONTENT_LENGTH_WITH_TRANSFER_ENCODING: {
    kind: 'error',
    summary: 'Content-Length and Transfer-Encoding in one request, or Content-Length in the trailers (400)',
    fix: CLIENT_REQUEST_FIX,
  },
  H1_UNSUPPORTED_TRANSFER_ENCODING: {
    kind: 'error',
    summary:
      'a Transfer-Encoding other than exactly `chunked` (501), repeated, in HTTP/1.0 or in the trailers (400)',
    fix: CLIENT_REQUEST_FIX,
  },
  H1_DUPLICATE_HOST: {
    kind: 'error',
    summary: 'two Host headers (400)',
    fix: CLIENT_REQUEST_FIX,
  },
  H1_DUPLICATE_HEADER: {
    kind: 'error',
    summary:
      'a field nginx takes once only (Authorization, Expect, Content-Range, If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since, If-Range) sent twice, as nginx (400)',
    fix: CLIENT_REQUEST_FIX,
  },
  H1_BAD_CHUNK: {
    kind: 'error',
    summary:
      'a chunk size that is not hex, too long, with extensions outside RFC 9112 grammar (no whitespace), or chunk data not followed by CRLF (400)',
    fix: CLIENT_REQUEST_FIX,
  },
  UPSTREAM_CLOSED: {
    kind: 'outcome',
    summary: 'the backend closed the connection before a complete response (502)',
    fix: 'check the backend logs',
  },
  UPSTREAM_ERROR: {
    kind: 'outcome',
    summary: 'another error talking to the backend (502); the error log has the details',
    fix: 'read the error log line for the request',
  },
  UPSTREAM_INVALID_HEADER: {
    kind: 'outcome',
    summary:
      'the backend\'s response head could not be read: invalid, ambiguous or over the size limit (502, nginx\'s "upstream sent invalid header" / "too big header"); the next endpoint is tried only when proxy-next-upstream lists invalid_header',
    fix: 'fix the backend (its status line and header fields); the error log line names what was refused',
  },
  UPSTREAM_EXTRA_DATA: {
    kind: 'outcome',
    summary:
      'the backend sent bytes beyond the framing of its answer (a body longer than its Content-Length, data after the last chunk, a body on a 204, 304 or HEAD answer): the answer is relayed as framed, the rest dropped and the connection closed, with a [warn] error log line in the words of nginx ("upstream sent more data than specified in "Content-Length" header", "upstream sent data after final chunk")',
    fix: 'fix the framing of the backend (a Content-Length computed before the body was compressed or rewritten is the usual cause)',
  },
  CLIENT_BODY_TOO_LARGE: {
    kind: 'outcome',
    summary: 'the request body exceeds proxy-body-size (413)',
    fix: 'send a smaller body or raise proxy-body-size for the location',
  },
  CLIENT_BODY_TIMEOUT: {
    kind: 'outcome',
    summary: 'the client sent nothing of its request body for client-body-timeout (408, connection closed)',
    fix: 'nothing on the gateway for a stalled client; raise client-body-timeout for slow uploaders',
  },
  CLIENT_BODY_INVALID: {
    kind: 'outcome',
    summary:
      'a request body broke its chunked framing (a bad chunk size or end, bad trailers) before anything was answered: 400, nothing more read from the connection, which closes (a body already streaming to the backend is cut there)',
    fix: 'the client (or a proxy in front) sends a malformed body; fix the client — keepip never guesses',
  },
  CLIENT_BODY_BUFFER_FAILED: {
    kind: 'outcome',
    summary:
      'a request body could not be buffered to its temporary file (proxy-request-buffering on): the file could not be created or written (500)',
    fix: 'make the temporary directory ($TMPDIR, or the gateway\'s tempDir) exist, writable and with free space; or set proxy-request-buffering: "off" for the location',
  },
  CLIENT_CLOSED: {
    kind: 'outcome',
    summary:
      'the client closed the connection before the response (logged as 499; as 400 while its body was being buffered, as nginx)',
    fix: 'nothing on the gateway; check client timeouts if frequent',
  },
  H2_HEADER_FIELD_TOO_LARGE: {
    kind: 'outcome',
    summary:
      'an HTTP/2 request header field (name and value, decoded; :path included) is larger than one large-client-header-buffers buffer (431)',
    fix: 'send smaller headers (large cookies, tokens) or raise large-client-header-buffers',
  },
  H2_HEADER_LIST_TOO_LARGE: {
    kind: 'outcome',
    summary:
      'an HTTP/2 request header list (decoded) is larger than all the large-client-header-buffers (431)',
    fix: 'send fewer or smaller headers or raise large-client-header-buffers',
  },
  H2_CONNECT: {
    kind: 'outcome',
    summary: 'a CONNECT request (or WebSocket over HTTP/2, RFC 8441) on an HTTP/2 connection: refused (400)',
    fix: 'use WebSocket over HTTP/1.1 (the TLS listener offers http/1.1 in ALPN)',
  },
  H2_TRACE: {
    kind: 'outcome',
    summary:
      "an HTTP/2 TRACE request: answered 405 as nginx, never passed on (a backend that echoes it would show HttpOnly cookies and the gateway's headers)",
    fix: 'nothing on the gateway; TRACE is not served',
  },
  H2_DUPLICATE_HEADER: {
    kind: 'outcome',
    summary:
      'an HTTP/2 request with a field nginx takes once only (Authorization, Expect, Content-Range, If-*) sent twice: refused (400) as nginx, never passed on',
    fix: 'nothing on the gateway; the client sends one value per such field',
  },
  H2_HOST_CONFLICT: {
    kind: 'outcome',
    summary:
      'an HTTP/2 request whose Host field differs from its :authority (RFC 9113 §8.3.1: malformed): refused (400) as nginx, never routed by either',
    fix: 'nothing on the gateway; the client sends one authority (a Host field, if any, equal to :authority)',
  },
  H2_BAD_METHOD: {
    kind: 'outcome',
    summary:
      'an HTTP/2 request whose :method is not upper-case letters, _ and - (as nginx): refused (400), never passed on as a request line',
    fix: 'nothing on the gateway; the client sends a method no HTTP/1.1 backend would take as such',
  },
  H2_BAD_PATH: {
    kind: 'outcome',
    summary:
      'an HTTP/2 request whose :path does not start with `/` (an absolute URL or `*`, with a :scheme nghttp2 does not check): refused (400) as nginx, never routed by its host',
    fix: 'nothing on the gateway; the client sends an origin-form :path',
  },
  H2_RAPID_RESET: {
    kind: 'outcome',
    summary:
      'an HTTP/2 client reset 100 or more streams before their response, at least half of its streams (CVE-2023-44487): GOAWAY ENHANCE_YOUR_CALM, connection closed',
    fix: 'nothing on the gateway for an attack; a client that cancels this much should reuse fewer, longer streams',
  },
  H2_CONTROL_FLOOD: {
    kind: 'outcome',
    summary:
      'an HTTP/2 client sent PING/SETTINGS frames faster than 20 a second beyond a burst of 200: GOAWAY ENHANCE_YOUR_CALM, connection closed',
    fix: 'nothing on the gateway for an attack; lower the client keepalive ping rate (gRPC: keepalive_time ≥ 10 s)',
  },
  H2_FRAME_FLOOD: {
    kind: 'outcome',
    summary:
      'an HTTP/2 client\'s frames outweighed its requests (more than 8 bytes read per byte of header lists and DATA, beyond 1 MiB): WINDOW_UPDATE, PRIORITY or unknown frames sent as a flood (nginx\'s "http2 flood detected"); GOAWAY ENHANCE_YOUR_CALM, connection closed',
    fix: 'nothing on the gateway for an attack; a client that downloads tens of GB over one connection sends enough WINDOW_UPDATEs to get here too (as with nginx): it reconnects',
  },
  H2_PROTOCOL_ERROR: {
    kind: 'outcome',
    summary:
      "nghttp2 ended an HTTP/2 connection: a protocol violation or one of its limits (CONTINUATION flood, invalid frames, streams past the client's acknowledged maximum)",
    fix: 'nothing on the gateway for an attack; for a real client, its HTTP/2 stack is at fault',
  },
  TLS_CLIENT_CA_CHANGED: {
    kind: 'outcome',
    summary:
      "a request on a connection whose client certificate was verified against a CA or CRL a reload has since replaced (auth-tls-secret): 421, and the connection closes, so the client's next one is verified against the CA of now",
    fix: 'nothing: clients retry on a new connection; nginx closes the connections of the configuration before',
  },
  TLS_HELLO_NOT_HANDSHAKE: {
    kind: 'outcome',
    summary:
      'a connection to the HTTPS listener that starts like TLS but is not a TLS handshake record carrying a ClientHello: closed without an answer',
    fix: 'nothing on the gateway; the client speaks something else than TLS to the HTTPS port',
  },
  TLS_HELLO_MALFORMED: {
    kind: 'outcome',
    summary:
      'a TLS ClientHello whose lengths or fields are inconsistent (a bad record, session id, cipher list, extension, server_name or ALPN): closed without an answer',
    fix: 'nothing on the gateway for a hostile or broken client; for a real one, its TLS stack is at fault',
  },
  TLS_HELLO_TOO_BIG: {
    kind: 'outcome',
    summary:
      'a TLS ClientHello larger than 16 KiB or spread over more than 64 records: closed without reading more',
    fix: 'nothing on the gateway; real clients send hellos of a few KiB in one record',
  },
  OCSP_NO_ISSUER: {
    kind: 'error',
    summary:
      "enable-ocsp: the certificate's issuer is not in the Secret's chain, so no OCSP request can be made; nothing is stapled",
    fix: 'put the intermediate certificate after the leaf in tls.crt (the full chain, as a CA hands it out)',
  },
  OCSP_NO_RESPONDER: {
    kind: 'error',
    summary:
      'enable-ocsp: the certificate names no http(s) OCSP responder (Authority Information Access); nothing is stapled',
    fix: 'nothing, if its CA runs no responder; turn enable-ocsp off to silence it',
  },
  OCSP_BAD_CERTIFICATE: {
    kind: 'error',
    summary: 'enable-ocsp: the certificate or its issuer cannot be read as X.509; nothing is stapled',
    fix: 'check the Secret (tls.crt)',
  },
  OCSP_FETCH_FAILED: {
    kind: 'error',
    summary:
      'enable-ocsp: the OCSP responder could not be reached, answered other than 200, sent more than 64 KiB or took longer than 4 s; retried a minute later, a response still current is stapled meanwhile',
    fix: "check that the gateway can reach the responder's URL (egress, DNS, a proxy)",
  },
  OCSP_BAD_RESPONSE: {
    kind: 'error',
    summary:
      'enable-ocsp: the responder answered with something that is no OCSP response about this certificate; not stapled',
    fix: 'check the responder URL in the certificate; ask the CA',
  },
  OCSP_NOT_SUCCESSFUL: {
    kind: 'error',
    summary:
      'enable-ocsp: the responder answered an OCSP error status (malformedRequest, internalError, tryLater, unauthorized…); not stapled',
    fix: 'nothing on the gateway; it asks again a minute later',
  },
  OCSP_SIGNATURE_INVALID: {
    kind: 'error',
    summary:
      'enable-ocsp: the response is not signed by the issuer or by a responder certificate the issuer signed for OCSP signing; never stapled (a forged status would be)',
    fix: 'nothing on the gateway if someone forges answers; otherwise ask the CA',
  },
  OCSP_NOT_GOOD: {
    kind: 'error',
    summary:
      'enable-ocsp: the responder says the certificate is revoked or unknown; nothing is stapled, as ingress-nginx',
    fix: 'replace the certificate',
  },
  OCSP_NOT_CURRENT: {
    kind: 'error',
    summary:
      "enable-ocsp: the response's thisUpdate is ahead or its nextUpdate past (5 minutes of leeway); not stapled",
    fix: "check the gateway's clock, then the responder's",
  },
} as const satisfies CodeTable;

export type GatewayCode = keyof typeof GATEWAY_CODES;

/** The codes a ConfigIssue from the gateway's router carries. */
export type GatewayIssueCode = CodesOfKind<typeof GATEWAY_CODES, 'issue'>;
