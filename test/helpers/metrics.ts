// Prometheus text from a running process's /metrics, read the way a user's scraper would: tests use
// counters as signals ("three health checks have run") instead of sleeping and hoping they did.
import http from '../../src/node-http.ts';
import type { Registry } from 'prom-client';

/** GET http://host:port/metrics as text. */
export function scrape(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host, port, path: '/metrics', agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () =>
          res.statusCode === 200 ? resolve(text) : reject(new Error(`/metrics answered ${res.statusCode}`)),
        );
      })
      .on('error', reject);
  });
}

/** The sum of every series of `name` whose labels include `labels` (0 when there is none). */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    const found = new Map(
      [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([key, value]) => found.get(key) === value)) sum += Number(match[3]);
  }
  return sum;
}

/**
 * Scrapes until `ready(text)` holds, every 50 ms; fails after `timeoutMs` (a generous bound) with the
 * last scrape. Resolves with that scrape.
 */
export async function scrapeUntil(
  host: string,
  port: number,
  ready: (text: string) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await scrape(host, port);
    if (ready(text)) return text;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}; last scrape:\n${text}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The sum of every series of `name` in an in-process registry (0 when it has none). */
export async function registrySum(registry: Registry, name: string): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  return metric?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
}
