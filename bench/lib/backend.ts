// The backend every HTTP suite proxies to: nginx answering `return 200` with a fixed 100-byte body,
// one worker, no access log (the backend is not what is measured).

/** Exactly 100 bytes; probes compare it byte for byte after every proxy hop. */
export const BACKEND_BODY = `keepip bench backend: ${'0123456789'.repeat(7)}${'-'.repeat(7)}\n`;

/** Host header every HTTP suite sends; nginx server_name and the Ingress host both use it. */
export const BENCH_HOST = 'bench.keepip.test';

export function backendServerBlock(host: string, port: number): string {
  return [
    'server {',
    `  listen ${host}:${port} backlog=4096;`,
    '  access_log off;',
    // The proxies keep upstream connections open; do not make them reconnect every 1,000 requests.
    '  keepalive_requests 1000000;',
    '  default_type text/plain;',
    `  location / { return 200 "${BACKEND_BODY.replace(/\n/g, '\\n')}"; }`,
    '}',
  ].join('\n');
}
