// TLS session resumption as the ConfigMap's ssl-session-* keys set it, checked with openssl s_client
// (its -sess_out / -sess_in, as an operator would): by default no ticket (ingress-nginx's
// ssl-session-tickets false) and TLS 1.2 sessions resumed from the session cache; with tickets, TLS 1.2 and 1.3 sessions resume, for
// ssl-session-timeout; the ticket key decides which tickets are read (a reload to another key drops
// them, back to the first reads them again); and every worker of `--workers 2` reads every ticket.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { startTestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  manifestDir,
  serviceWithEndpoints,
  topologyOf,
  toYaml,
} from '../fixtures/gateway/manifests.ts';
import { requireBinary, runCommand, startKeepip } from '../helpers/process.ts';

const HOST = 'web.example.com';
const KEY_A = Buffer.alloc(48, 0xa1).toString('base64');
const KEY_B = Buffer.alloc(48, 0xb2).toString('base64');

interface Handshake {
  resumed: boolean;
  /** The ticket lifetime hint of the session, in seconds; null without a ticket. */
  lifetime: number | null;
}

/**
 * One HTTPS request with openssl s_client; `sessionIn` resumes that session file, `sessionOut` saves
 * the session (the request and its answer are read first, so a TLS 1.3 ticket has arrived).
 */
async function sClient(
  port: number,
  version: 'tls1_2' | 'tls1_3',
  files: { sessionIn?: string; sessionOut?: string },
): Promise<Handshake> {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', HOST, `-${version}`, '-ign_eof'];
  if (files.sessionIn !== undefined) args.push('-sess_in', files.sessionIn);
  if (files.sessionOut !== undefined) args.push('-sess_out', files.sessionOut);
  const out = await runCommand(requireBinary('openssl'), args, {
    input: `GET / HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`,
    timeoutMs: 20_000,
  });
  const line = /^(New|Reused), (TLSv1\.[23])/m.exec(out.stdout);
  assert.ok(line !== null, `openssl s_client handshake failed:\n${out.stdout}\n${out.stderr}`);
  assert.match(out.stdout, /HTTP\/1\.1 200 /, 'the request was answered');
  const hint = /TLS session ticket lifetime hint: (\d+)/.exec(out.stdout);
  return { resumed: line[1] === 'Reused', lifetime: hint === null ? null : Number(hint[1]) };
}

describe('TLS sessions (ssl-session-*)', () => {
  let backend: RunningWhoami;
  let dir: string;
  const objects = (configMap: Record<string, string>): K8sObject[] => [
    controllerConfigMap(configMap),
    ...serviceWithEndpoints({ name: 'web', ports: [backend.address.port] }),
    ingress({ name: 'web', host: HOST, paths: [{ path: '/', service: 'web', port: 80 }] }),
  ];

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    dir = mkdtempSync(join(tmpdir(), 'keepip-tls-sessions-'));
  });
  after(async () => {
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A first handshake that saves its session, then one that offers it back. */
  async function resumeOnce(port: number, version: 'tls1_2' | 'tls1_3', name: string) {
    const file = join(dir, `${name}-${version}.pem`);
    const first = await sClient(port, version, { sessionOut: file });
    const second = await sClient(port, version, { sessionIn: file });
    return { first, second, file };
  }

  test('default (as ingress-nginx): no session ticket; TLS 1.2 resumes from the session cache by its id', async () => {
    const gw = await startTestGateway(topologyOf(objects({})));
    try {
      const tls12 = await resumeOnce(gw.httpsPort, 'tls1_2', 'default');
      assert.equal(tls12.first.lifetime, null, 'no TLS 1.2 ticket');
      assert.equal(tls12.second.resumed, true, 'resumed by session id');
      // Node looks sessions up by the TLS 1.2 id only: TLS 1.3 needs tickets.
      const tls13 = await resumeOnce(gw.httpsPort, 'tls1_3', 'default');
      assert.equal(tls13.second.resumed, false);
    } finally {
      await gw.close();
    }
  });

  test('ssl-session-cache "false": nothing resumes', async () => {
    const gw = await startTestGateway(topologyOf(objects({ 'ssl-session-cache': 'false' })));
    try {
      assert.equal((await resumeOnce(gw.httpsPort, 'tls1_2', 'no-cache')).second.resumed, false);
    } finally {
      await gw.close();
    }
  });

  test('ssl-session-tickets "true": TLS 1.2 and 1.3 sessions resume; ssl-session-timeout is the ticket lifetime', async () => {
    const gw = await startTestGateway(
      topologyOf(objects({ 'ssl-session-tickets': 'true', 'ssl-session-timeout': '30m' })),
    );
    try {
      for (const version of ['tls1_2', 'tls1_3'] as const) {
        const { first, second } = await resumeOnce(gw.httpsPort, version, 'tickets');
        assert.equal(first.lifetime, 1800, `${version} ticket lifetime`);
        assert.equal(second.resumed, true, `${version} resumed`);
      }
    } finally {
      await gw.close();
    }
  });

  test('ssl-session-ticket-key: a reload to another key drops the tickets, back to the first reads them again', async () => {
    const configMap = (key: string) => ({ 'ssl-session-tickets': 'true', 'ssl-session-ticket-key': key });
    const gw = await startTestGateway(topologyOf(objects(configMap(KEY_A))));
    try {
      const { second, file } = await resumeOnce(gw.httpsPort, 'tls1_3', 'key-a');
      assert.equal(second.resumed, true);
      assert.equal(gw.gateway.reload(topologyOf(objects(configMap(KEY_B)))).ok, true);
      assert.equal((await sClient(gw.httpsPort, 'tls1_3', { sessionIn: file })).resumed, false);
      assert.equal(gw.gateway.reload(topologyOf(objects(configMap(KEY_A)))).ok, true);
      assert.equal((await sClient(gw.httpsPort, 'tls1_3', { sessionIn: file })).resumed, true);
    } finally {
      await gw.close();
    }
  });

  test('a ticket key that is not 48 bytes is a warning that does not repeat it; the gateway key applies', async () => {
    const secret = Buffer.alloc(80, 0xc3).toString('base64');
    const topology = topologyOf(objects({ 'ssl-session-tickets': 'true', 'ssl-session-ticket-key': secret }));
    const issue = topology.issues.find((i) => i.message.includes('ssl-session-ticket-key'));
    assert.ok(issue !== undefined);
    assert.equal(issue.severity, 'warning');
    assert.match(issue.message, /48-byte key/);
    assert.ok(!issue.message.includes(secret.slice(0, 16)), 'the key is not in the message');
    const gw = await startTestGateway(topology);
    try {
      assert.equal((await resumeOnce(gw.httpsPort, 'tls1_3', 'bad-key')).second.resumed, true);
    } finally {
      await gw.close();
    }
  });

  test('--workers 2: every worker reads the tickets any of them issued', async () => {
    const files = manifestDir();
    const manifest = files.write('sessions.yaml', toYaml(objects({ 'ssl-session-tickets': 'true' })));
    const running = startKeepip([
      'gateway',
      '-f',
      manifest,
      '--http',
      '127.0.0.1:0',
      '--https',
      '127.0.0.1:0',
      '--workers',
      '2',
    ]);
    try {
      const port = Number((await running.waitFor(/listening https 127\.0\.0\.1:(\d+)/))[1]);
      await running.waitFor(/workers: 2 processes/);
      const file = join(dir, 'workers.pem');
      await sClient(port, 'tls1_3', { sessionOut: file });
      // New connections are spread over the two workers by the kernel (SO_REUSEPORT): with a key per
      // worker about half of these would be full handshakes.
      const resumed: boolean[] = [];
      for (let i = 0; i < 8; i++) resumed.push((await sClient(port, 'tls1_3', { sessionIn: file })).resumed);
      assert.deepEqual(resumed, Array(8).fill(true));
    } finally {
      assert.equal(await running.stop(), 0);
      files.remove();
    }
  });
});
