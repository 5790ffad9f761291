// The access log of two workers under load: every request gives exactly one whole line, none cut into
// another, to stdout (a pipe: writes are cut at line ends into chunks of at most PIPE_BUF) and to
// --access-log FILE (O_APPEND: one write per batch). Lines are long (a 1.5 KB User-Agent) so that a
// batch is many times PIPE_BUF, and each line repeats its request's id in the path and the
// User-Agent, so a line spliced from two requests cannot pass.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from '../../src/node-http.ts';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { controllerConfigMap, manifestDir, toYaml, webApp } from '../fixtures/gateway/manifests.ts';
import { metricSum, scrapeUntil } from '../helpers/metrics.ts';
import { startWorkersGateway } from './helpers.ts';

const REQUESTS = 6_000;
const CONNECTIONS = 32;
const PAD = 'x'.repeat(1_500);
const LINE = /^(\d+) 200 L "GET \/r\/(\d+) HTTP\/1\.1" "x{1500}-(\d+)"$/;

/** REQUESTS GETs over CONNECTIONS keep-alive connections, each with its id in the path and the User-Agent. */
async function load(port: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  let next = 0;
  const one = (id: number) =>
    new Promise<void>((resolve, reject) => {
      const req = http.get(
        {
          host: '127.0.0.1',
          port,
          path: `/r/${id}`,
          agent,
          headers: { host: 'web.example.com', 'user-agent': `${PAD}-${id}` },
        },
        (res) => {
          res.resume();
          res.on('end', () =>
            res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
    });
  const worker = async () => {
    while (next < REQUESTS) await one(next++);
  };
  try {
    await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  } finally {
    agent.destroy();
  }
}

/** Every line whole and its own: REQUESTS lines, each id once, path and User-Agent agreeing. */
function checkLines(lines: string[], pids: readonly number[]): void {
  const bad = lines.filter((line) => !LINE.test(line));
  assert.deepEqual(bad.slice(0, 3), [], `${bad.length} lines are cut or spliced`);
  const ids = new Set<number>();
  const byPid = new Map<number, number>();
  for (const line of lines) {
    const [, pid, path, agent] = LINE.exec(line) as RegExpExecArray;
    assert.equal(path, agent, 'the path and the User-Agent of one line name the same request');
    ids.add(Number(path));
    byPid.set(Number(pid), (byPid.get(Number(pid)) ?? 0) + 1);
  }
  assert.equal(lines.length, REQUESTS);
  assert.equal(ids.size, REQUESTS, 'no request logged twice, none missing');
  assert.deepEqual([...byPid.keys()].sort(), [...pids].sort(), 'both workers wrote lines');
}

describe('access log of two workers under load', () => {
  let backend: RunningWhoami;
  let dir: ReturnType<typeof manifestDir>;
  let file: string;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    dir = manifestDir();
    file = dir.write(
      'web.yaml',
      toYaml([
        controllerConfigMap({ 'log-format-upstream': '$pid $status L "$request" "$http_user_agent"' }),
        ...webApp(backend.address.port),
      ]),
    );
  });
  after(async () => {
    await backend.close();
    dir.remove();
  });

  for (const destination of ['stdout (a pipe)', '--access-log FILE'] as const) {
    test(`${destination}: ${REQUESTS} whole lines, none interleaved or lost`, async () => {
      const path = join(dir.dir, `access-${destination.startsWith('stdout') ? 'pipe' : 'file'}.log`);
      const extra = destination.startsWith('stdout') ? [] : ['--access-log', path];
      const gw = await startWorkersGateway(file, ['--workers', '2', ...extra]);
      try {
        await load(gw.port);
        // Every request counted means every line was handed to its sink; SIGTERM flushes the sinks.
        await scrapeUntil(
          '127.0.0.1',
          gw.metricsPort,
          (t) => metricSum(t, 'keepip_gateway_requests_total') >= REQUESTS,
          'every request is counted',
        );
        gw.running.child.kill('SIGTERM');
        assert.equal(await gw.running.exited(), 0);
        const lines =
          extra.length === 0 ? gw.stdoutLines() : readFileSync(path, 'utf8').split('\n').slice(0, -1);
        checkLines(lines, gw.pids);
      } finally {
        await gw.running.stop();
      }
    });
  }
});
