// One checked request before a load: wrk counts only statuses, so the body is verified here — a
// system that answers 200 with the wrong bytes must not get measured as if it worked.
import http from 'node:http';

export interface ProbeOptions {
  host: string;
  port: number;
  path?: string;
  hostHeader?: string;
  localAddress?: string;
  expectStatus?: number;
  /** The exact body the backend sends; compared byte for byte. */
  expectBody?: string;
  timeoutMs?: number;
}

/** null when the answer is as expected; otherwise what was wrong. */
export function probe(options: ProbeOptions): Promise<string | null> {
  const expectStatus = options.expectStatus ?? 200;
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: options.host,
        port: options.port,
        path: options.path ?? '/',
        agent: false,
        headers: options.hostHeader ? { host: options.hostHeader } : {},
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== expectStatus) {
            resolve(`status ${res.statusCode} (expected ${expectStatus}): ${body.slice(0, 200)}`);
          } else if (options.expectBody !== undefined && body !== options.expectBody) {
            resolve(
              `wrong body (${body.length} bytes, expected ${options.expectBody.length}): ${body.slice(0, 200)}`,
            );
          } else {
            resolve(null);
          }
        });
        res.on('error', (error) => resolve(`response error: ${error.message}`));
      },
    );
    req.setTimeout(options.timeoutMs ?? 5_000, () => req.destroy(new Error('timed out')));
    req.on('error', (error) => resolve(`request failed: ${error.message}`));
    req.end();
  });
}
