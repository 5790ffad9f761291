// The pages the gateway answers itself (404, 403, 503, 413, 502, 504, redirects…), shaped like nginx's
// built-in pages so that clients and monitoring that look at bodies see what they saw before. The
// footer names keepip rather than impersonating nginx.

const reasons: Readonly<Record<number, string>> = {
  204: 'No Content',
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Not Allowed',
  408: 'Request Time-out',
  413: 'Request Entity Too Large',
  429: 'Too Many Requests',
  414: 'Request-URI Too Large',
  421: 'Misdirected Request',
  431: 'Request Header Fields Too Large',
  494: 'Request Header Or Cookie Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Temporarily Unavailable',
  504: 'Gateway Time-out',
};

export function reasonPhrase(status: number): string {
  return reasons[status] ?? 'Error';
}

function render(title: string, detail: string | null): Buffer {
  const lines = [
    '<html>',
    `<head><title>${title}</title></head>`,
    '<body>',
    `<center><h1>${title}</h1></center>`,
    ...(detail === null ? [] : [`<center>${detail}</center>`]),
    '<hr><center>keepip</center>',
    '</body>',
    '</html>',
    '',
  ];
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

const cache = new Map<number, Buffer>();

/** The body of the gateway's own error page for `status` (cached: these are answered on hot paths). */
export function errorPageBody(status: number): Buffer {
  let body = cache.get(status);
  if (body === undefined) {
    // nginx's page for 401 says "Authorization Required" (its status line says Unauthorized).
    body = render(`${status} ${status === 401 ? 'Authorization Required' : reasonPhrase(status)}`, null);
    cache.set(status, body);
  }
  return body;
}

/** nginx's answer when a plain HTTP request reaches a TLS listener (G8 in the client-IP rules). */
export const PLAIN_HTTP_ON_HTTPS_BODY: Buffer = (() => {
  const lines = [
    '<html>',
    '<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>',
    '<body>',
    '<center><h1>400 Bad Request</h1></center>',
    '<center>The plain HTTP request was sent to HTTPS port</center>',
    '<hr><center>keepip</center>',
    '</body>',
    '</html>',
    '',
  ];
  return Buffer.from(lines.join('\r\n'), 'latin1');
})();

export const HTML_CONTENT_TYPE = 'text/html';
