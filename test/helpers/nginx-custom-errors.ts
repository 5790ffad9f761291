// ingress-nginx's custom error pages as its template renders them for nginx (rootfs/etc/nginx/template/
// nginx.tmpl, the CUSTOM_ERRORS named location), and the headers of a "SERVER" location towards its
// backend: shared by the differentials that run custom-http-errors against nginx.

/** The template's CUSTOM_ERRORS named location of `upstream` for `code`, proxying to `port`. */
export function namedLocation(upstream: string, code: number, port: number): string {
  return [
    `  location @custom_${upstream}_${code} {`,
    '    internal;',
    '    proxy_intercept_errors off;',
    `    proxy_set_header X-Code ${code};`,
    '    proxy_set_header X-Format $http_accept;',
    '    proxy_set_header X-Original-URI $request_uri;',
    '    proxy_set_header X-Namespace $namespace;',
    '    proxy_set_header X-Ingress-Name $ingress_name;',
    '    proxy_set_header X-Service-Name $service_name;',
    '    proxy_set_header X-Service-Port $service_port;',
    '    proxy_set_header X-Request-ID $req_id;',
    '    proxy_set_header X-Forwarded-For $remote_addr;',
    '    proxy_set_header Host $best_http_host;',
    `    set $proxy_upstream_name "${upstream}";`,
    '    rewrite (.*) / break;',
    `    proxy_pass http://127.0.0.1:${port};`,
    '  }',
  ].join('\n');
}

/** The "SERVER" location's headers towards its backend (those that decide what a backend sees). */
export const LOCATION_HEADERS = [
  'proxy_set_header Host $best_http_host;',
  'proxy_set_header X-Request-ID $req_id;',
  'proxy_set_header X-Real-IP $remote_addr;',
  'proxy_set_header X-Forwarded-For $remote_addr;',
  'proxy_set_header X-Forwarded-Host $best_http_host;',
  'proxy_set_header X-Scheme $scheme;',
  'proxy_set_header Proxy "";',
];
