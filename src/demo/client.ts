// The demo's HTTP client: one request from a chosen local source address (playing a client IP on
// loopback), and the curl command that does the same by hand.
import http from '../node-http.ts';

export interface DemoRequest {
  /** Where to connect (the LB listener, or the gateway pod directly). */
  host: string;
  port: number;
  /** The client address to connect from: any 127.x address is local. */
  from: string;
  /** The Host header. */
  hostHeader: string;
  path: string;
}

export interface DemoResponse {
  status: number | null;
  body: string;
  /** Set when no HTTP response came back (connection closed or reset). */
  error: string | null;
}

export function curlCommand(request: DemoRequest): string {
  const port = request.port === 80 ? '' : `:${request.port}`;
  return `curl -sS -H 'Accept: application/json' --interface ${request.from} -H 'Host: ${request.hostHeader}' http://${request.host}${port}${request.path}`;
}

export function send(request: DemoRequest, timeoutMs = 5_000): Promise<DemoResponse> {
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: request.host,
        port: request.port,
        localAddress: request.from,
        path: request.path,
        headers: { host: request.hostHeader, accept: 'application/json', 'user-agent': 'keepip-demo' },
        agent: false,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? null,
            body: Buffer.concat(chunks).toString('utf8'),
            error: null,
          }),
        );
        res.on('error', (error) =>
          resolve({ status: res.statusCode ?? null, body: '', error: error.message }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no response within ${timeoutMs} ms`)));
    req.on('error', (error: NodeJS.ErrnoException) => {
      const reason =
        error.code === 'ECONNRESET' || error.message === 'socket hang up'
          ? 'the connection was closed without a response'
          : error.message;
      resolve({ status: null, body: '', error: reason });
    });
    req.end();
  });
}
