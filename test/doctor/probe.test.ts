// `keepip doctor --probe` against a live local chain: client (bound to 127.0.20.x) -> a tiny L4 relay
// in the NLB's role (connects from 127.0.10.1, optionally writes a PROXY v2 header) -> the keepip
// gateway -> keepip whoami. The doctor reads the manifests describing that chain and must explain
// what the backend saw.
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { backendView } from '../../src/doctor/probe.ts';
import { startGateway, type RunningGateway } from '../../src/gateway/gateway.ts';
import type { LineSink } from '../../src/gateway/line-sink.ts';
import { loadTopology } from '../../src/k8s/index.ts';
import { encodeProxyHeader } from '../../src/proxy-protocol/index.ts';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { runKeepip } from '../helpers/process.ts';

const fixtures = fileURLToPath(new URL('../fixtures/doctor/', import.meta.url));
const LB_SOURCE = '127.0.10.1';

interface Relay {
  port: number;
  close(): Promise<void>;
}

/** An L4 hop that connects to the target from LB_SOURCE; with `proxy`, it first writes a PROXY v2 header. */
async function startRelay(target: { host: string; port: number }, proxy: boolean): Promise<Relay> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: target.host, port: target.port, localAddress: LB_SOURCE });
    sockets.add(client).add(upstream);
    if (proxy) {
      upstream.write(
        encodeProxyHeader({
          version: 2,
          source: { address: client.remoteAddress!.replace(/^::ffff:/, ''), port: client.remotePort! },
          destination: { address: client.localAddress!.replace(/^::ffff:/, ''), port: client.localPort! },
        }),
      );
    }
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, LB_SOURCE, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A sink that keeps lines in memory (the gateway would otherwise write to stdout/stderr). */
function quietSink(): LineSink & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    write: (line: string) => {
      lines.push(line);
    },
    flush: async () => {},
    close: async () => {},
    dropped: 0,
  };
}

interface Chain {
  dir: string;
  gateway: RunningGateway;
  relay: Relay;
  accessLog: string[];
}

let whoami: RunningWhoami;
const chains: Chain[] = [];

/** A manifest directory from a fixture with the backend endpoint on whoami's port, and the chain it describes. */
async function startChain(fixture: string, proxy: boolean): Promise<Chain> {
  const dir = await mkdtemp(join(tmpdir(), `keepip-doctor-${fixture}-`));
  await cp(join(fixtures, fixture), dir, { recursive: true });
  const appFile = join(dir, 'app.yaml');
  const text = await readFile(appFile, 'utf8');
  await writeFile(appFile, text.replaceAll('8080', String(whoami.address.port)));
  const accessLog = quietSink();
  const gateway = await startGateway({
    topology: await loadTopology([dir]),
    http: { host: '127.0.30.1', port: 0 },
    accessLog,
    errorLog: quietSink(),
  });
  const relay = await startRelay({ host: '127.0.30.1', port: gateway.httpAddress!.port }, proxy);
  const chain = { dir, gateway, relay, accessLog: accessLog.lines };
  chains.push(chain);
  return chain;
}

before(async () => {
  whoami = await startWhoami({ host: '127.0.40.11', port: 0 });
});

after(async () => {
  for (const c of chains) {
    await c.relay.close();
    await c.gateway.close();
    await rm(c.dir, { recursive: true, force: true });
  }
  await whoami.close();
});

interface ProbeRow {
  from: string;
  status: number | null;
  backendSaw: string | null;
  matches: boolean | null;
  agrees: boolean | null;
  explainedBy: string | null;
  predicted: { status: number | null; gatewayLogsAddress: string | null } | null;
}

async function probe(chain: Chain, from: string[], extra: string[] = []) {
  const args = [
    'doctor',
    '--probe',
    `http://${LB_SOURCE}:${chain.relay.port}/`,
    '--host',
    'app.example.com',
    '--json',
    ...extra,
  ];
  for (const f of from) args.push('--from', f);
  const { code, stdout, stderr } = await runKeepip(args);
  assert.equal(stderr, '');
  const body = JSON.parse(stdout) as { probes: ProbeRow[]; exitCode: number };
  return { code, probes: body.probes };
}

test('no PROXY protocol: the backend sees the LB address, and CLIENT_IP_LOST_AT_LB explains it', async () => {
  // The lost-at-LB fixture without its allowlist, so that requests reach the backend.
  const chain = await startChain('client-ip-lost-at-lb', false);
  const ingress = join(chain.dir, 'app.yaml');
  await writeFile(
    ingress,
    (await readFile(ingress, 'utf8')).replace(
      /^ {4}nginx\.ingress\.kubernetes\.io\/allowlist-source-range: .*$/m,
      '    {}',
    ),
  );
  chain.gateway.reload(await loadTopology([chain.dir]));

  const { code, probes } = await probe(chain, ['127.0.20.10', '127.0.20.66'], ['-f', chain.dir]);
  assert.equal(code, 1);
  assert.equal(probes.length, 2);
  for (const [i, from] of ['127.0.20.10', '127.0.20.66'].entries()) {
    const row = probes[i]!;
    assert.equal(row.from, from);
    assert.equal(row.status, 200);
    assert.equal(row.backendSaw, LB_SOURCE, 'X-Real-IP is the relay, not the client');
    assert.equal(row.matches, false);
    assert.equal(row.agrees, true, 'the manifests predict exactly this');
    assert.equal(row.predicted?.gatewayLogsAddress, LB_SOURCE);
    assert.equal(row.explainedBy, 'CLIENT_IP_LOST_AT_LB');
  }
  assert.ok(
    chain.accessLog.some((line) => line.startsWith(`${LB_SOURCE} - `)),
    'the gateway logged the relay',
  );
});

test('the same chain with the allowlist: 403 for the listed client, as predicted', async () => {
  const chain = await startChain('client-ip-lost-at-lb', false);
  const { code, probes } = await probe(chain, ['127.0.20.10'], ['-f', chain.dir]);
  assert.equal(code, 1);
  assert.equal(probes[0]!.status, 403);
  assert.equal(probes[0]!.backendSaw, null);
  assert.equal(probes[0]!.agrees, true);
  assert.equal(probes[0]!.explainedBy, 'CLIENT_IP_LOST_AT_LB');
});

test('PROXY v2 on both ends (the clean fixture): the backend sees each source; exit 0', async () => {
  const chain = await startChain('clean', true);
  const { code, probes } = await probe(chain, ['127.0.20.10'], ['-f', chain.dir]);
  assert.equal(code, 0);
  assert.equal(probes[0]!.status, 200);
  assert.equal(probes[0]!.backendSaw, '127.0.20.10');
  assert.equal(probes[0]!.matches, true);
  assert.equal(probes[0]!.agrees, true);
  assert.equal(probes[0]!.explainedBy, null);

  const denied = await probe(chain, ['127.0.20.66'], ['-f', chain.dir]);
  assert.equal(denied.probes[0]!.status, 403);
  assert.equal(denied.probes[0]!.agrees, true, 'the manifests predict the 403 too');
});

test('without -f the probe still reports what the backend saw, and no prediction', async () => {
  const chain = await startChain('clean', true);
  const { probes } = await probe(chain, ['127.0.20.10']);
  assert.equal(probes[0]!.backendSaw, '127.0.20.10');
  assert.equal(probes[0]!.predicted, null);
  assert.equal(probes[0]!.agrees, null);
});

test('a relay that expects nothing but gets PROXY: the gateway answers 400, as PROXY_PROTOCOL_SENT_NOT_EXPECTED predicts', async () => {
  const chain = await startChain('proxy-protocol-sent-not-expected', true);
  const { probes } = await probe(chain, ['127.0.20.10'], ['-f', chain.dir]);
  assert.equal(probes[0]!.status, 400);
  assert.equal(probes[0]!.agrees, true);
  assert.equal(probes[0]!.explainedBy, 'PROXY_PROTOCOL_SENT_NOT_EXPECTED');
});

test('backendView reads X-Real-IP, then the last X-Forwarded-For entry, then the TCP peer', () => {
  assert.deepEqual(
    backendView(JSON.stringify({ remoteAddress: '127.0.0.9', headers: { 'x-real-ip': '10.1.2.3' } })),
    {
      backendSaw: '10.1.2.3',
      source: 'x-real-ip',
    },
  );
  assert.deepEqual(
    backendView(
      JSON.stringify({ remoteAddress: '127.0.0.9', headers: { 'x-forwarded-for': '1.1.1.1, 10.1.2.4' } }),
    ),
    { backendSaw: '10.1.2.4', source: 'x-forwarded-for' },
  );
  assert.deepEqual(backendView(JSON.stringify({ remoteAddress: '::ffff:127.0.0.9', headers: {} })), {
    backendSaw: '127.0.0.9',
    source: 'remote-address',
  });
  assert.deepEqual(backendView('not json'), { backendSaw: null, source: null });
  assert.deepEqual(backendView(JSON.stringify({ headers: { 'x-real-ip': 'evil' } })), {
    backendSaw: null,
    source: null,
  });
});
