// tcp-services entries naming a Service of type ExternalName, as ingress-nginx's e2e
// test/e2e/tcpudp/tcp.go "should expose an ExternalName TCP service" (port 5353 -> an ExternalName
// Service with targetPort 53; a DNS query through the controller answers): the entry's one target is
// the externalName on the port's targetPort, resolved by the runner (tcp_udp_balancer.lua resolves
// ExternalName endpoints to their addresses) before the stream proxy, which connects to IPs.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import { Registry } from 'prom-client';
import { createTcpRunner } from '../../src/controller/tcp-runner.ts';
import { planTcpServices } from '../../src/controller/tcp-services.ts';
import type { KubeObject } from '../../src/controller/resources.ts';
import { topologyOf } from '../k8s/helpers.ts';

const EXTERNAL = (name: string, externalName: string) => `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: dns}
spec:
  type: ExternalName
  externalName: "${externalName}"
  ports:
    - {name: dns, port: 5353, targetPort: 53}
---
`;

const tcpServices = (data: Record<string, string>): KubeObject =>
  ({ metadata: { namespace: 'ingress-nginx', name: 'tcp-services' }, data }) as KubeObject;

test('an ExternalName Service is planned as its name on the targetPort; localhost gets no target', () => {
  const topology = topologyOf(EXTERNAL('google', 'dns.example.test.') + EXTERNAL('local', 'localhost'));
  const plan = planTcpServices(
    tcpServices({ '5353': 'dns/google:5353', '5354': 'dns/google:dns', '5355': 'dns/local:5353' }),
    topology,
    [80, 443],
  );
  assert.deepEqual(plan.problems, []);
  assert.deepEqual(
    plan.plans.map((p) => [p.port, p.targets]),
    [
      [5353, [{ host: 'dns.example.test', port: 53 }]],
      [5354, [{ host: 'dns.example.test', port: 53 }]],
      [5355, []],
    ],
  );
});

test('`:proxy` in any case is PROXY, as ingress-nginx compares it case-insensitively', () => {
  const topology = topologyOf(EXTERNAL('google', 'dns.example.test'));
  const plan = planTcpServices(tcpServices({ '5353': 'dns/google:5353:proxy:Proxy' }), topology, []);
  assert.deepEqual(plan.problems, []);
  assert.deepEqual(
    plan.plans.map((p) => [p.decode, p.encode]),
    [[true, true]],
  );
});

/** A TCP server answering "pong <first line>" on each connection. */
async function startPong(): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer((socket) => {
    let text = '';
    socket.on('data', (c) => {
      text += c;
      if (text.includes('\n')) socket.end(`pong ${text}`);
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function ping(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write('ping\n'));
    let text = '';
    socket.on('data', (c) => (text += c));
    socket.on('end', () => resolve(text));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
}

test('the runner resolves a name target before the stream proxy connects; an unresolvable name is logged', async () => {
  const backend = await startPong();
  const lines: string[] = [];
  const names: Record<string, string[]> = { 'dns.example.test': ['127.0.0.1'] };
  const runner = createTcpRunner({
    host: '127.0.0.1',
    accessLog: () => {},
    registry: new Registry(),
    log: (line) => lines.push(line),
    lookup: async (host) => {
      const found = names[host];
      if (found === undefined)
        throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
      return found;
    },
  });
  after(async () => {
    await runner.close();
    await backend.close();
  });
  const entry = (port: number, host: string, decode = false) => ({
    port,
    service: { namespace: 'dns', name: 'google' },
    servicePort: '5353',
    decode,
    encode: false,
    targets: [{ host, port: backend.port }],
  });
  const settings = {
    trustedCidrs: ['127.0.0.0/8'],
    headerTimeoutMs: 5000,
    idleTimeoutMs: 600_000,
    drainMs: 240_000,
  };
  await runner.apply([entry(0, 'dns.example.test')], settings);
  const [listener] = runner.listeners();
  assert.equal(await ping(listener!.actualPort), 'pong ping\n');
  assert.match(lines.join('\n'), /tcp-services 0: listening .* \(1 endpoints\)/);

  await runner.apply([entry(0, 'nowhere.example.test')], settings);
  assert.match(
    lines.join('\n'),
    /tcp-services 0: dns\/google: nowhere\.example\.test could not be resolved \(ENOTFOUND\)/,
  );
  // No target left: the stream proxy resets the connection.
  assert.equal(await ping(runner.listeners()[0]!.actualPort).catch(() => ''), '');
});

test('a port number or name selects the TCP port of the Service, as ingress-nginx matches the protocol', () => {
  const topology = topologyOf(`apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system}
spec:
  ports:
    - {name: dns, port: 53, targetPort: 1053, protocol: UDP}
    - {name: dns-tcp, port: 53, targetPort: 2053, protocol: TCP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: kube-dns-1, namespace: kube-system, labels: {kubernetes.io/service-name: kube-dns}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.5], conditions: {ready: true}}]
ports: [{name: dns, port: 1053, protocol: UDP}, {name: dns-tcp, port: 2053, protocol: TCP}]
---
`);
  const plan = planTcpServices(
    tcpServices({ '53': 'kube-system/kube-dns:53', '54': 'kube-system/kube-dns:dns' }),
    topology,
    [],
  );
  assert.deepEqual(
    plan.plans.map((p) => [p.port, p.targets]),
    [[53, [{ host: '10.0.0.5', port: 2053 }]]],
  );
  assert.deepEqual(
    plan.problems.map((p) => p.message),
    [
      'ConfigMap ingress-nginx/tcp-services data["54"]: Service kube-system/kube-dns with TCP port dns does not exist; not served',
    ],
  );
});
