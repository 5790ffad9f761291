// --tcp-services-configmap on keepip's stream proxy: an entry with `::PROXY` sends a PROXY header with
// the client's own address to the backend (Gitea's SSH keeps the client IP); `:PROXY:PROXY` reads the
// load balancer's header and passes the client it names on; unusable TCP and UDP entries are
// reported by name. Connections go on past an endpoint that refuses and are logged in the ConfigMap's
// log-format-stream. Also: /healthz stays 500 until the first complete sync.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import type { Obj } from '../fixtures/fake-apiserver.ts';
import { freePort } from '../helpers/net.ts';
import { get, healthz, webCluster } from './harness.ts';

function sshService(port: number): Obj[] {
  return [
    {
      kind: 'Service',
      metadata: { namespace: 'gitea', name: 'gitea-ssh' },
      spec: { ports: [{ name: 'ssh', port: 22, targetPort: 2222 }] },
    },
    {
      kind: 'EndpointSlice',
      metadata: {
        namespace: 'gitea',
        name: 'gitea-ssh-1',
        labels: { 'kubernetes.io/service-name': 'gitea-ssh' },
      },
      addressType: 'IPv4',
      // 127.0.0.2 refuses (the backend listens on 127.0.0.1 only): proxy-stream-next-upstream goes on.
      endpoints: [
        { addresses: ['127.0.0.2'], conditions: { ready: true } },
        { addresses: ['127.0.0.1'], conditions: { ready: true } },
      ],
      ports: [{ name: 'ssh', port }],
    },
  ];
}

/** A TCP server that records the first bytes of each connection and answers "SSH-2.0-fake". */
async function startSshBackend(): Promise<{ port: number; received: Buffer[]; close(): Promise<void> }> {
  const received: Buffer[] = [];
  const server = net.createServer((socket) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c) => {
      chunks.push(c);
      const all = Buffer.concat(chunks);
      if (all.includes('hello\n')) {
        received.push(all);
        socket.end('SSH-2.0-fake\r\n');
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function exchange(port: number, from: string, prefix = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress: from });
    let text = '';
    socket.on('connect', () => socket.write(`${prefix}hello\n`));
    socket.on('data', (c) => (text += c));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

/** A UDP Service gitea/dns (53/UDP) whose one endpoint answers each datagram with `dns <datagram>`. */
async function startUdpDns(): Promise<{ port: number; objects: Obj[]; close(): Promise<void> }> {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (msg, from) => socket.send(`dns ${msg}`, from.port, from.address));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  const objects: Obj[] = [
    {
      kind: 'Service',
      metadata: { namespace: 'gitea', name: 'dns' },
      spec: { ports: [{ name: 'dns', port: 53, targetPort: 'dns', protocol: 'UDP' }] },
    },
    {
      kind: 'EndpointSlice',
      metadata: { namespace: 'gitea', name: 'dns-1', labels: { 'kubernetes.io/service-name': 'dns' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
      ports: [{ name: 'dns', port, protocol: 'UDP' }],
    },
  ];
  return { port, objects, close: () => new Promise((resolve) => socket.close(() => resolve())) };
}

describe('tcp-services and readiness', () => {
  let ssh: Awaited<ReturnType<typeof startSshBackend>>;
  let dns: Awaited<ReturnType<typeof startUdpDns>>;
  let tcpPort: number;
  let decodePort = 0;
  let udpPort = 0;
  const cluster = webCluster(
    [
      '--disable-leader-election',
      '--update-status=false',
      '--configmap=ingress-nginx/ingress-nginx-controller',
      '--tcp-services-configmap=ingress-nginx/tcp-services',
      '--udp-services-configmap=ingress-nginx/udp-services',
    ],
    {
      prepare: async (api) => {
        ssh = await startSshBackend();
        for (const o of sshService(ssh.port)) api.apply(o);
        dns = await startUdpDns();
        for (const o of dns.objects) api.apply(o);
        udpPort = await freePort();
        tcpPort = await freePort();
        decodePort = await freePort();
        api.apply({
          kind: 'ConfigMap',
          metadata: { namespace: 'ingress-nginx', name: 'tcp-services' },
          data: {
            [String(tcpPort)]: 'gitea/gitea-ssh:22::PROXY',
            [String(decodePort)]: 'gitea/gitea-ssh:ssh:PROXY:PROXY',
            '23': 'gitea/nope:22',
          },
        });
        api.apply({
          kind: 'ConfigMap',
          metadata: { namespace: 'ingress-nginx', name: 'ingress-nginx-controller' },
          // enable-real-ip: a :PROXY entry's header names the client (the stream block's set_real_ip_from).
          data: {
            'log-format-stream': '$remote_addr $status "$upstream_addr" $proxy_upstream_name',
            'enable-real-ip': 'true',
          },
        });
        api.apply({
          kind: 'ConfigMap',
          metadata: { namespace: 'ingress-nginx', name: 'udp-services' },
          data: { '53': 'kube-system/dns:53', [String(udpPort)]: 'gitea/dns:53' },
        });
        api.setDown(true);
      },
      awaitServing: false,
    },
  );
  after(async () => {
    await ssh?.close();
    await dns?.close();
  });

  it('/healthz is 500 until the first complete sync, then 200', async () => {
    const { api, ctl } = cluster;
    await api.waitForRequest((r) => r.status === 503);
    const before = await healthz(ctl.running.healthzAddress!.port);
    assert.equal(before.status, 500);
    assert.match(before.body, /waiting for the first complete sync/);
    const check = await get(
      ctl.running.healthzAddress!.port,
      'localhost',
      '/healthz/nginx-ingress-controller',
    );
    assert.deepEqual(
      [check.status, check.body],
      [500, 'internal server error: not ready: waiting for the first complete sync\n'],
    );
    assert.equal((await get(ctl.running.healthzAddress!.port, 'localhost', '/healthz/ping')).status, 200);
    assert.equal(ctl.running.gateway(), null);
    api.setDown(false);
    await ctl.running.serving();
    assert.equal((await healthz(ctl.running.healthzAddress!.port)).status, 200);
  });

  it('serves a ::PROXY entry with the client address in a PROXY v1 header', async () => {
    const { ctl } = cluster;
    await ctl.waitForLine(new RegExp(`tcp-services ${tcpPort}: listening`));
    const answer = await exchange(tcpPort, '127.0.0.7');
    assert.equal(answer, 'SSH-2.0-fake\r\n');
    const first = ssh.received[0]!.toString('latin1');
    assert.match(
      first,
      new RegExp(`^PROXY TCP4 127\\.0\\.0\\.7 127\\.0\\.0\\.1 \\d+ ${tcpPort}\\r\\nhello\\n$`),
    );
    // The connection log in the ConfigMap's log-format-stream, the refusing endpoint tried on the way.
    await ctl.waitFor(() => ctl.accessLines.some((l) => l.startsWith('127.0.0.7 ')), 'a tcp-services line');
    const line = ctl.accessLines.find((l) => l.startsWith('127.0.0.7 '))!;
    assert.match(
      line,
      new RegExp(
        `^127\\.0\\.0\\.7 200 "(127\\.0\\.0\\.2:${ssh.port}, )?127\\.0\\.0\\.1:${ssh.port}" tcp-gitea-gitea-ssh-22$`,
      ),
    );
  });

  it('reports unusable TCP and UDP entries by name', async () => {
    const { ctl } = cluster;
    await ctl.waitForLine(
      /ConfigMap ingress-nginx\/udp-services data\["53"\]: Service kube-system\/dns with UDP port 53 does not exist; not served \[UDP_SERVICE_INVALID\]/,
    );
    await ctl.waitForLine(
      /data\["23"\]: Service gitea\/nope with TCP port 22 does not exist; not served \[TCP_SERVICE_INVALID\]/,
    );
  });

  it('a :PROXY:PROXY entry reads the header the load balancer sends and passes its client on', async () => {
    const { ctl } = cluster;
    await ctl.waitForLine(
      new RegExp(`tcp-services ${decodePort}: listening .*reads PROXY from clients, sends PROXY v1`),
    );
    const before = ssh.received.length;
    const answer = await exchange(decodePort, '127.0.0.8', `PROXY TCP4 198.51.100.9 10.0.0.1 5555 22\r\n`);
    assert.equal(answer, 'SSH-2.0-fake\r\n');
    assert.equal(
      ssh.received[before]!.toString('latin1'),
      'PROXY TCP4 198.51.100.9 10.0.0.1 5555 22\r\nhello\n',
    );
    // Without a header the connection is closed and nothing reaches the backend.
    ctl.mark();
    await exchange(decodePort, '127.0.0.8').catch(() => '');
    await ctl.waitForLine(
      new RegExp(`tcp-services ${decodePort}: PROXY header refused from 127\\.0\\.0\\.8`),
    );
    assert.equal(ssh.received.length, before + 1);
  });

  it("serves a udp-services entry: a datagram from the client, the endpoint's answer back, one UDP line", async () => {
    const { ctl } = cluster;
    // Listening since the first sync (before the previous test's mark).
    const listening = new RegExp(`^udp-services ${udpPort}: listening .* -> gitea/dns:53 \\(1 endpoints\\)$`);
    await ctl.waitFor(() => ctl.lines.some((l) => listening.test(l)), 'the udp-services listener');
    const client = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => client.bind(0, '127.0.0.9', resolve));
    const answer = await new Promise<string>((resolve) => {
      client.once('message', (msg) => resolve(msg.toString()));
      client.send('query', udpPort, '127.0.0.1');
    });
    client.close();
    assert.equal(answer, 'dns query');
    await ctl.waitFor(() => ctl.accessLines.some((l) => l.startsWith('127.0.0.9 ')), 'a udp-services line');
    assert.equal(
      ctl.accessLines.find((l) => l.startsWith('127.0.0.9 ')),
      `127.0.0.9 200 "127.0.0.1:${dns.port}" udp-gitea-dns-53`,
    );
  });
});
