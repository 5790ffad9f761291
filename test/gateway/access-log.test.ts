import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

process.env.TZ = 'UTC';

const {
  compileLogFormat,
  createAccessLogVars,
  DEFAULT_LOG_FORMAT_UPSTREAM,
  describeLogFormat,
  escapeLogDefault,
  escapeLogJson,
  formatErrorLogPrefix,
  formatForbiddenLine,
  LOG_VARIABLE_NAMES,
} = await import('../../src/gateway/access-log.ts');
const { formatMsAsSeconds, formatTimeIso8601, formatTimeLocal } = await import(
  '../../src/gateway/nginx-time.ts'
);
const { CONFIGMAP_CATALOG } = await import('../../src/k8s/annotation-catalog.ts');
type AccessLogVars = import('../../src/gateway/access-log.ts').AccessLogVars;

const UA =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/134.0.0.0 Safari/537.36';

// A line from the seed (ingress-nginx 1.12.0), with kubectl's pod-name prefix removed and the blog's
// markdown damage (`[gitea-gitea-http-3000[] []`) undone to the real `[gitea-gitea-http-3000] []`.
const SEED_LINE =
  '10.x.y.z - - [19/Mar/2025:11:00:37 +0000] "GET /assets/css/index.css?v=1.23.5 HTTP/1.1" 200 63593 "-" ' +
  `"${UA}" 3067 0.001 [gitea-gitea-http-3000] [] <REDACTED_POD_IP>:3000 63485 0.001 200 871bcb777c269d5d6be938f3b75f59bd`;

function seedVars(): AccessLogVars {
  const v = createAccessLogVars();
  v.remoteAddr = '10.x.y.z';
  v.timeMs = Date.UTC(2025, 2, 19, 11, 0, 37, 412);
  v.requestMethod = 'GET';
  v.requestUri = '/assets/css/index.css?v=1.23.5';
  v.uri = '/assets/css/index.css';
  v.serverProtocol = 'HTTP/1.1';
  v.status = 200;
  v.bodyBytesSent = 63593;
  v.headers = { 'user-agent': UA, host: 'gitea.example.com' };
  v.requestLength = 3067;
  v.requestTimeMs = 1.4;
  v.proxyUpstreamName = 'gitea-gitea-http-3000';
  v.proxyAlternativeUpstreamName = '';
  v.upstreamAddr = '<REDACTED_POD_IP>:3000';
  v.upstreamResponseLength = 63485;
  v.upstreamResponseTimeMs = 1;
  v.upstreamStatus = 200;
  v.reqId = '871bcb777c269d5d6be938f3b75f59bd';
  return v;
}

describe('default log-format-upstream', () => {
  it('is exactly ingress-nginx default', () => {
    assert.equal(
      DEFAULT_LOG_FORMAT_UPSTREAM,
      '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id',
    );
  });

  it('reproduces a line of the seed byte for byte', () => {
    const format = compileLogFormat(DEFAULT_LOG_FORMAT_UPSTREAM, { escape: 'default' });
    assert.equal(format(seedVars()), SEED_LINE);
  });

  it('writes - for missing values and nothing for empty ones (no upstream: the 403 line)', () => {
    const format = compileLogFormat(DEFAULT_LOG_FORMAT_UPSTREAM, { escape: 'default' });
    const v = createAccessLogVars();
    v.remoteAddr = '10.0.0.9';
    v.timeMs = Date.UTC(2025, 2, 19, 10, 1, 3);
    v.requestUri = '/';
    v.status = 403;
    v.bodyBytesSent = 146;
    v.requestLength = 79;
    v.requestTimeMs = 0;
    v.proxyUpstreamName = 'gitea-gitea-http-3000';
    v.reqId = '0123456789abcdef0123456789abcdef';
    assert.equal(
      format(v),
      '10.0.0.9 - - [19/Mar/2025:10:01:03 +0000] "GET / HTTP/1.1" 403 146 "-" "-" 79 0.000 [gitea-gitea-http-3000] [] - - - - 0123456789abcdef0123456789abcdef',
    );
  });

  it('escapes quotes, backslashes, control and high bytes in values as \\xHH', () => {
    const format = compileLogFormat(DEFAULT_LOG_FORMAT_UPSTREAM, { escape: 'default' });
    const v = seedVars();
    v.headers = { 'user-agent': 'a"b\\c\x1b\x7f\xc3\xa9', referer: 'x\ny' };
    const line = format(v);
    assert.ok(line.includes('"x\\x0Ay" "a\\x22b\\x5Cc\\x1B\\x7F\\xC3\\xA9"'), line);
  });

  it('escapes every line on its own when values change and repeat', () => {
    const format = compileLogFormat('"$http_user_agent"', { escape: 'default' });
    const v = createAccessLogVars();
    const agents = ['plain agent 1.0', 'quoted "agent" 2.0', 'plain agent 1.0', 'quoted "agent" 2.0', 'x"y'];
    const lines = agents.map((ua) => {
      v.headers = { 'user-agent': ua };
      return format(v);
    });
    assert.deepEqual(lines, [
      '"plain agent 1.0"',
      '"quoted \\x22agent\\x22 2.0"',
      '"plain agent 1.0"',
      '"quoted \\x22agent\\x22 2.0"',
      '"x\\x22y"',
    ]);
  });

  it('keeps a PROXY v2 signature sent to a plain listener readable, as nginx logs it', () => {
    const format = compileLogFormat('"$request"', { escape: 'default' });
    const v = createAccessLogVars();
    v.request = '\r\n\r\n\x00\r\nQUIT\n';
    assert.equal(format(v), '"\\x0D\\x0A\\x0D\\x0A\\x00\\x0D\\x0AQUIT\\x0A"');
  });
});

describe('escaping', () => {
  const defaults: Array<[string, string]> = [
    ['plain', 'plain'],
    ['"', '\\x22'],
    ['\\', '\\x5C'],
    ['\t', '\\x09'],
    ['\x7f', '\\x7F'],
    ['\xff', '\\xFF'],
    ['€', '\\xE2\\x82\\xAC'],
    ['😀', '\\xF0\\x9F\\x98\\x80'],
    ['\ud800x', '\\xEF\\xBF\\xBDx'],
  ];
  for (const [input, expected] of defaults) {
    it(`default: ${JSON.stringify(input)}`, () => assert.equal(escapeLogDefault(input), expected));
  }

  // nginx's own test (access_log_escape.t): `"1 \ <1b><1c> "` and the `-` for a missing $arg_b.
  it('matches nginx access_log_escape.t for json and default', () => {
    const v = createAccessLogVars();
    v.requestUri = '/?a="1 \\ \x1b\x1c "&c=2';
    assert.equal(
      compileLogFormat('$arg_a$arg_b$arg_c', { escape: 'json' })(v),
      '\\"1 \\\\ \\u001B\\u001C \\"2',
    );
    assert.equal(
      compileLogFormat('$arg_a$arg_b$arg_c', { escape: 'default' })(v),
      '\\x221 \\x5C \\x1B\\x1C \\x22-2',
    );
  });

  const jsons: Array<[string, string]> = [
    ['\n\r\t\b\f', '\\n\\r\\t\\b\\f'],
    ['\x00\x1f', '\\u0000\\u001F'],
    ['\x7f', '\x7f'],
    ['\xc3\xa9', 'é'],
    ['é€', 'é€'],
  ];
  for (const [input, expected] of jsons) {
    it(`json: ${JSON.stringify(input)}`, () => assert.equal(escapeLogJson(input), expected));
  }

  it('json lines are valid JSON whatever the values hold', () => {
    const format = compileLogFormat(
      '{"ua":"$http_user_agent","req":"$request","user":"$remote_user","st":$status}',
      { escape: 'json' },
    );
    const v = seedVars();
    v.headers = { 'user-agent': 'a"\\\n\x01\xc3\xa9' };
    const parsed = JSON.parse(format(v));
    assert.deepEqual(parsed, {
      ua: 'a"\\\n\x01é',
      req: 'GET /assets/css/index.css?v=1.23.5 HTTP/1.1',
      user: '',
      st: 200,
    });
  });

  it('none writes values untouched, but control bytes as \\xHH (one line stays one line)', () => {
    const v = seedVars();
    v.headers = { 'user-agent': 'a"b\\\xc3\xa9' };
    assert.equal(compileLogFormat('$http_user_agent|$remote_user', { escape: 'none' })(v), 'a"b\\é|');
    v.remoteUser = 'us\ner\r\x7f';
    assert.equal(compileLogFormat('$remote_user', { escape: 'none' })(v), 'us\\x0Aer\\x0D\\x7F');
  });
});

describe('variables', () => {
  const v = seedVars();
  v.remotePort = 51234;
  v.realipRemoteAddr = '10.a.b.c';
  v.proxyProtocolAddr = '10.1.2.3';
  v.proxyProtocolPort = 40000;
  v.host = 'gitea.example.com';
  v.scheme = 'https';
  v.serverName = 'gitea.example.com';
  v.serverAddr = '127.0.0.1';
  v.serverPort = 8443;
  v.namespace = 'gitea';
  v.ingressName = 'gitea';
  v.serviceName = 'gitea-http';
  v.servicePort = 3000;
  v.bytesSent = 63800;
  v.requestId = 'ffffffffffffffffffffffffffffffff';
  v.headers = { 'user-agent': UA, cookie: 'a=1; sid=xyz', 'x-forwarded-for': ['1.1.1.1', '2.2.2.2'] };
  v.response = { sentHeader: (name) => (name === 'content-type' ? 'text/css' : null) };
  const cases: Array<[string, string]> = [
    ['$remote_port', '51234'],
    ['$realip_remote_addr', '10.a.b.c'],
    ['$proxy_protocol_addr:$proxy_protocol_port', '10.1.2.3:40000'],
    ['$time_iso8601', '2025-03-19T11:00:37+00:00'],
    ['$msec', '1742382037.412'],
    ['$request_method $uri $args $is_args', 'GET /assets/css/index.css v=1.23.5 ?'],
    ['$request_uri', '/assets/css/index.css?v=1.23.5'],
    ['$scheme $https $server_protocol', 'https on HTTP/1.1'],
    ['$host $server_name $server_addr $server_port', 'gitea.example.com gitea.example.com 127.0.0.1 8443'],
    ['$namespace/$ingress_name $service_name:$service_port', 'gitea/gitea gitea-http:3000'],
    ['$bytes_sent', '63800'],
    ['$req_id $request_id', '871bcb777c269d5d6be938f3b75f59bd ffffffffffffffffffffffffffffffff'],
    ['$cookie_sid $cookie_nope', 'xyz -'],
    ['$arg_v $arg_V', '1.23.5 1.23.5'],
    ['$http_x_forwarded_for', '1.1.1.1, 2.2.2.2'],
    ['$sent_http_content_type', 'text/css'],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: nginx's ${name} syntax
    ['${remote_addr}x', '10.x.y.zx'],
    ['$the_real_ip', '10.x.y.z'],
    ['$no_such_variable', '-'],
    ['cost $ 5', 'cost $ 5'],
  ];
  for (const [format, expected] of cases) {
    it(format, () => assert.equal(compileLogFormat(format, { escape: 'default' })(v), expected));
  }

  it('reads $cookie_<name> as nginx 1.27.1 does: any case, `,` between pairs, first wins, each line', () => {
    const v = createAccessLogVars();
    const line = compileLogFormat('$cookie_sid|$cookie_e|$cookie_x|$cookie_nope', { escape: 'default' });
    v.headers = { cookie: 'x=1, SID=xyz; e=; sid=later' };
    assert.equal(line(v), 'xyz||1, SID=xyz|-');
    v.headers = { cookie: ['nope', 'sid=two'] };
    assert.equal(line(v), 'two|-|-|-');
  });

  it('reports unknown variables so start-up can name them', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: nginx's ${name} syntax
    assert.deepEqual(describeLogFormat('$remote_addr $foo $http_x_y ${bar} $foo'), {
      variables: ['remote_addr', 'foo', 'http_x_y', 'bar'],
      unknown: ['foo', 'bar'],
    });
    assert.deepEqual(describeLogFormat(DEFAULT_LOG_FORMAT_UPSTREAM).unknown, []);
  });

  it('the connection, TLS and upstream variables custom formats use', () => {
    const w = seedVars();
    w.remoteAddr = '198.51.100.7';
    w.connection = 1393;
    w.connectionRequests = 4;
    w.hostname = 'ingress-nginx-controller-abc';
    w.locationPath = '/api';
    w.headers = { 'x-forwarded-for': ['1.1.1.1', '2.2.2.2'] };
    w.upstreamConnectTimeMs = 0;
    w.upstreamHeaderTimeMs = 12.4;
    w.tls = {
      getProtocol: () => 'TLSv1.3',
      getCipher: () => ({ name: 'TLS_AES_128_GCM_SHA256' }),
      isSessionReused: () => true,
      servername: 'gitea.example.com',
    };
    const format =
      '$connection $connection_requests $hostname $location_path [$proxy_add_x_forwarded_for] ' +
      '$upstream_connect_time $upstream_header_time $ssl_protocol $ssl_cipher $ssl_server_name $ssl_session_reused';
    assert.equal(
      compileLogFormat(format, { escape: 'default' })(w),
      '1393 4 ingress-nginx-controller-abc /api [1.1.1.1, 2.2.2.2, 198.51.100.7] 0.000 0.012 TLSv1.3 ' +
        'TLS_AES_128_GCM_SHA256 gitea.example.com r',
    );
    // Over plain HTTP and without a client header: no TLS values, the forwarded list is the client.
    w.tls = null;
    w.headers = {};
    assert.equal(
      compileLogFormat('[$proxy_add_x_forwarded_for] $ssl_protocol $ssl_cipher $ssl_session_reused', {
        escape: 'default',
      })(w),
      '[198.51.100.7] - - -',
    );
    // The same composition as proxy-set-headers' (nginx-vars.ts): a client keepip could not resolve
    // appends nothing, an empty line counts as nginx counts it.
    const chain = compileLogFormat('[$proxy_add_x_forwarded_for]', { escape: 'default' });
    w.headers = { 'x-forwarded-for': '1.1.1.1' };
    w.remoteAddr = '';
    assert.equal(chain(w), '[1.1.1.1]');
    w.headers = { 'x-forwarded-for': '' };
    w.remoteAddr = '198.51.100.7';
    assert.equal(chain(w), '[, 198.51.100.7]');
  });

  it("the ConfigMap catalog's log-format-upstream entry names exactly the variables keepip knows", () => {
    const note = CONFIGMAP_CATALOG.find((entry) => entry.names.includes('log-format-upstream'))?.note ?? '';
    const named = [...note.matchAll(/`\$([a-z_0-9]+)`/g)].map((m) => m[1] as string);
    assert.deepEqual([...named].sort(), [...LOG_VARIABLE_NAMES].sort());
    assert.deepEqual(describeLogFormat(named.map((name) => `$${name}`).join(' ')).unknown, []);
  });
});

describe('times and numbers', () => {
  it('formats $time_local and $time_iso8601 like nginx', () => {
    const t = Date.UTC(2025, 2, 19, 11, 0, 37);
    assert.equal(formatTimeLocal(t), '19/Mar/2025:11:00:37 +0000');
    assert.equal(formatTimeIso8601(new Date(t)), '2025-03-19T11:00:37+00:00');
    assert.equal(formatTimeLocal(Date.UTC(2024, 0, 5, 3, 4, 5)), '05/Jan/2024:03:04:05 +0000');
  });

  it('uses the local time zone, as nginx does', () => {
    const saved = process.env.TZ;
    try {
      process.env.TZ = 'Asia/Seoul';
      assert.equal(formatTimeLocal(Date.UTC(2025, 2, 19, 11, 0, 37)), '19/Mar/2025:20:00:37 +0900');
      process.env.TZ = 'America/St_Johns';
      assert.equal(formatTimeIso8601(Date.UTC(2025, 0, 19, 11, 0, 37)), '2025-01-19T07:30:37-03:30');
    } finally {
      process.env.TZ = saved;
    }
  });

  const seconds: Array<[number, string]> = [
    [0, '0.000'],
    [0.9, '0.000'],
    [1, '0.001'],
    [55, '0.055'],
    [1000, '1.000'],
    [61234.7, '61.234'],
    [-5, '0.000'],
  ];
  for (const [ms, text] of seconds) {
    it(`${ms} ms -> ${text}`, () => assert.equal(formatMsAsSeconds(ms), text));
  }
});

describe('error log', () => {
  it('writes the forbidden line exactly as the seed shows it', () => {
    const prefix = formatErrorLogPrefix(Date.UTC(2025, 2, 19, 10, 1, 3), 31, 1393);
    assert.equal(
      prefix +
        formatForbiddenLine({
          client: '10.a.b.c',
          server: 'gitea.example.com',
          request: 'GET / HTTP/1.1',
          host: 'gitea.example.com',
        }),
      '2025/03/19 10:01:03 [error] 31#31: *1393 access forbidden by rule, client: 10.a.b.c, server: gitea.example.com, request: "GET / HTTP/1.1", host: "gitea.example.com"',
    );
    assert.equal(
      formatForbiddenLine({
        client: '10.a.b.c',
        server: 'gitea.example.com',
        request: 'GET /favicon.ico HTTP/1.1',
        host: 'gitea.example.com',
        referrer: 'https://gitea.example.com/',
      }),
      'access forbidden by rule, client: 10.a.b.c, server: gitea.example.com, request: "GET /favicon.ico HTTP/1.1", host: "gitea.example.com", referrer: "https://gitea.example.com/"',
    );
  });

  it('cannot be split into forged lines', () => {
    const line = formatForbiddenLine({
      client: '1.2.3.4',
      server: 's',
      request: 'GET /\n2025 x',
      host: 'h\r',
    });
    assert.ok(!/[\r\n]/.test(line));
    assert.ok(line.includes('GET /\\x0A2025 x'));
  });

  it('omits the connection when there is none and takes other levels', () => {
    assert.equal(
      formatErrorLogPrefix(Date.UTC(2025, 0, 2, 3, 4, 5), 7, null, 'warn'),
      '2025/01/02 03:04:05 [warn] 7#7: ',
    );
  });
});
