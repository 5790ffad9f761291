// The harness's moving parts against real processes on 127.0.0.0/8: the supervisor, the baselines
// (naive proxy, nginx, HAProxy -> nginx with PROXY v2), the idle-connection client, probes and wrk.
import assert from 'node:assert/strict';
import http from '../../src/node-http.ts';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { BACKEND_BODY, BENCH_HOST } from '../../bench/lib/backend.ts';
import { startHaproxy } from '../../bench/lib/haproxy.ts';
import { openIdle } from '../../bench/lib/idle-client.ts';
import { buildAllowList, startNaiveProxy } from '../../bench/lib/naive-proxy.ts';
import { probe } from '../../bench/lib/probe.ts';
import { cpuSeconds, processTree, rssBytes } from '../../bench/lib/procfs.ts';
import { startProcess, stopAllProcesses } from '../../bench/lib/supervisor.ts';
import { endpoint, Started, startBackend, startNginxProxy } from '../../bench/lib/systems.ts';
import { runWrk } from '../../bench/lib/wrk.ts';
import { wrkErrors } from '../../bench/lib/wrk-parse.ts';
import type { WhoamiEcho } from '../../src/whoami/echo.ts';
import { startWhoami } from '../../src/whoami/server.ts';
import { isPortClash } from '../helpers/net.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const scratch = mkdtempSync(join(tmpdir(), 'keepip-bench-test-'));
after(async () => {
  await stopAllProcesses();
  rmSync(scratch, { recursive: true, force: true });
});

const LISTENER = `const s = require('node:http').createServer((q, r) => r.end('x'));
s.listen(0, '127.0.0.1', () => console.log('port=' + s.address().port));`;

test('supervisor: ready on a printed line, its tree is measurable, stopped by PID', async () => {
  const managed = await startProcess({
    name: 'listener',
    command: process.execPath,
    args: ['-e', LISTENER],
    readyPattern: /port=(\d+)/,
  });
  assert.ok(Number(managed.ready?.[1]) > 0);
  assert.deepEqual(processTree(managed.pid), [managed.pid]);
  assert.ok(rssBytes(managed.pids()) > 1024 * 1024);
  assert.ok(cpuSeconds(managed.pids()) >= 0);
  assert.equal(managed.exited(), null);
  await managed.stop();
  assert.equal(managed.exited(), 'killed by SIGTERM');
  assert.deepEqual(processTree(managed.pid), []);
});

test('supervisor: a process that exits before it is ready is an error carrying its output', async () => {
  await assert.rejects(
    startProcess({
      name: 'broken',
      command: process.execPath,
      args: ['-e', 'console.error("no config here"); process.exit(3)'],
      listening: [{ host: '127.0.0.1', port: 1 }],
    }),
    /broken did not start: exited with code 3[\s\S]*no config here/,
  );
});

test('naive proxy: the allowlist admits 127.0.0.1 and answers 403 to 127.0.0.9; X-Real-IP reaches the backend', async (t) => {
  const whoami = await startWhoami({ host: '127.0.0.1', port: 0 });
  t.after(() => whoami.close());
  const allow = buildAllowList('10.0.0.0/8, 127.0.0.1\n');
  assert.ok(allow.ok);
  if (!allow.ok) return;
  assert.equal(buildAllowList('10.0.0.0/8,banana').ok, false);
  const proxy = await startNaiveProxy({
    listen: { host: '127.0.0.1', port: 0 },
    upstream: { host: '127.0.0.1', port: whoami.address.port },
    allow: allow.list,
  });
  t.after(() => {
    proxy.closeAllConnections();
    proxy.close();
  });
  const port = (proxy.address() as AddressInfo).port;
  const get = (localAddress: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/?format=json', localAddress, agent: false }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on('error', reject);
    });
  const allowed = await get('127.0.0.1');
  assert.equal(allowed.status, 200);
  assert.equal((JSON.parse(allowed.body) as WhoamiEcho).headers['x-real-ip'], '127.0.0.1');
  assert.equal((await get('127.0.0.9')).status, 403);
});

test('idle client: opens and holds keep-alive connections from several sources; probe checks bodies', async (t) => {
  const whoami = await startWhoami({ host: '127.0.0.1', port: 0 });
  t.after(() => whoami.close());
  const at = { host: '127.0.0.1', port: whoami.address.port };
  const { sockets, ok, failed } = await openIdle({
    target: at,
    hostHeader: BENCH_HOST,
    count: 20,
    sources: ['127.0.1.1', '127.0.1.2'],
    concurrency: 4,
    timeoutMs: 5_000,
  });
  assert.equal(ok, 20);
  assert.equal(failed, 0);
  assert.equal(sockets.size, 20);
  assert.deepEqual(new Set([...sockets].map((s) => s.localAddress)), new Set(['127.0.1.1', '127.0.1.2']));
  for (const socket of sockets) socket.destroy();
  assert.equal(await probe({ ...at, path: '/health', expectBody: 'ok\n' }), null);
  assert.match((await probe({ ...at, path: '/health', expectBody: 'different' })) ?? '', /wrong body/);
  assert.match((await probe({ ...at, path: '/?wait=nope' })) ?? '', /status 400/);
});

test('nginx backend and the seed chain: HAProxy send-proxy-v2 -> nginx proxy_protocol + realip + allowlist', async () => {
  // bench/lib takes ports from the kernel's ephemeral range for nginx and HAProxy, which cannot listen
  // on port 0: when another program takes one meanwhile, the whole chain starts again on new ports.
  for (let attempt = 1; ; attempt++) {
    try {
      await seedChain();
      return;
    } catch (error) {
      if (attempt >= 3 || !isPortClash(error)) throw error;
    }
  }
});

async function seedChain(): Promise<void> {
  const started = new Started();
  try {
    const backend = await startBackend(started, scratch);
    assert.equal(await probe({ ...backend.at, hostHeader: BENCH_HOST, expectBody: BACKEND_BODY }), null);
    const nginx = await startNginxProxy(started, {
      name: 'nginx pp',
      dir: join(scratch, 'nginx-pp'),
      allow: ['10.0.0.0/8', '127.0.0.1/32'],
      upstream: backend.at,
      proxyProtocolFrom: '127.0.0.0/8',
    });
    const listen = await endpoint();
    started.add(
      await startHaproxy('haproxy', join(scratch, 'haproxy'), {
        listen,
        target: nginx.at,
        sendProxy: 'v2',
        sourceAddress: '127.0.0.6',
      }),
    );
    // The client's own address passes the allowlist although HAProxy dials from 127.0.0.6 ...
    assert.equal(await probe({ ...listen, hostHeader: BENCH_HOST, expectBody: BACKEND_BODY }), null);
    // ... and another client is refused: nginx decided on the address the PROXY header carried.
    assert.match(
      (await probe({ ...listen, hostHeader: BENCH_HOST, localAddress: '127.0.0.9' })) ?? '',
      /status 403/,
    );
  } finally {
    await started.stop();
  }
}

test('wrk: a healthy target reports no errors; a target answering 500 fails the load', async (t) => {
  const server = http.createServer((req, res) => {
    res.writeHead(req.url === '/fail' ? 500 : 200, { 'content-length': 2 }).end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const good = await runWrk({ url: `${base}/`, threads: 1, connections: 2, durationSeconds: 1 });
  assert.ok(good.ok, good.ok ? '' : good.error);
  if (good.ok) {
    assert.ok(good.report.requests > 0);
    assert.deepEqual(wrkErrors(good.report), []);
  }
  const bad = await runWrk({ url: `${base}/fail`, threads: 1, connections: 2, durationSeconds: 1 });
  assert.ok(bad.ok);
  if (bad.ok) assert.match(wrkErrors(bad.report).join(), /non-2xx/);
});
