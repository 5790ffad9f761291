// The status writer stops writing the moment leadership is lost, even in the middle of a sync over
// many Ingresses or between a 409 and its retry: a replica that lost the Lease must not overwrite what
// the new leader writes. A scripted API: no timing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseControllerFlags } from '../../src/controller/flags.ts';
import type { KubeClient } from '../../src/controller/kube-client.ts';
import type { KubeObject } from '../../src/controller/resources.ts';
import { createStatusWriter } from '../../src/controller/status-writer.ts';

function options() {
  const parsed = parseControllerFlags(['--publish-status-address=192.0.2.10'], {});
  if (parsed.ok !== true) throw new Error('flags');
  return parsed.options;
}

const ingress = (name: string): KubeObject => ({
  metadata: { namespace: 'default', name, resourceVersion: '1' },
  spec: {},
});

/** PUTs answer `putStatus` (200 by default) and call `onPut` first; GETs answer the Ingress again. */
function scriptedClient(onPut: (path: string) => void, putStatus = 200) {
  const puts: string[] = [];
  const client: KubeClient = {
    server: 'scripted',
    listWatcher: () => {
      throw new Error('not used');
    },
    async request(method, path) {
      if (method === 'PUT') {
        puts.push(path);
        onPut(path);
        if (putStatus !== 200)
          return { ok: false, error: { code: 'KUBE_API_STATUS', status: putStatus, message: 'conflict' } };
        return { ok: true, value: {} };
      }
      return { ok: true, value: ingress(path.split('/').pop()!) };
    },
  };
  return { client, puts };
}

const writer = (client: KubeClient, leading: () => boolean) =>
  createStatusWriter({ client, options: options(), log: () => {}, leading });

describe('status writes and leadership', () => {
  it('a sync stops writing at the Ingress after leadership was lost', async () => {
    let leading = true;
    const api = scriptedClient(() => {
      leading = false; // the Lease is lost while the first write is on the wire
    });
    const w = writer(api.client, () => leading);
    const written = await w.sync([ingress('a'), ingress('b'), ingress('c')]);
    assert.equal(written, 1);
    assert.deepEqual(api.puts, ['/apis/networking.k8s.io/v1/namespaces/default/ingresses/a/status']);
  });

  it('a 409 is not retried once leadership was lost', async () => {
    let leading = true;
    const api = scriptedClient(() => {
      leading = false;
    }, 409);
    const w = writer(api.client, () => leading);
    assert.equal(await w.sync([ingress('a')]), 0);
    assert.equal(api.puts.length, 1);
  });

  it('a follower writes nothing', async () => {
    const api = scriptedClient(() => {});
    const w = writer(api.client, () => false);
    assert.equal(await w.sync([ingress('a')]), 0);
    assert.equal(await w.clear([ingress('a')]), 0);
    assert.deepEqual(api.puts, []);
  });

  it('while leading, every Ingress is written and a 409 is retried once over a fresh read', async () => {
    const api = scriptedClient(() => {}, 409);
    const w = writer(api.client, () => true);
    await w.sync([ingress('a'), ingress('b')]);
    assert.equal(api.puts.length, 4);
  });
});

describe('status on shutdown: other replicas (ingress-nginx isRunningMultiplePods)', () => {
  const labels = (generation: string) => ({
    'app.kubernetes.io/name': 'ingress-nginx',
    'controller-revision-hash': `rev${generation}`,
    'pod-template-generation': generation,
  });
  const pod = (name: string, generation: string, phase = 'Running', ready = true): KubeObject => ({
    metadata: { namespace: 'ingress-nginx', name, labels: labels(generation) },
    spec: { nodeName: name },
    status: { phase, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  });

  /** A scripted API holding `pods`, answering a labelSelector as the API server does. */
  function podsClient(pods: KubeObject[]) {
    const puts: string[] = [];
    const bodies: KubeObject[] = [];
    const gets: string[] = [];
    const client: KubeClient = {
      server: 'scripted',
      listWatcher: () => {
        throw new Error('not used');
      },
      async request(method, path, body) {
        if (method === 'GET') gets.push(path);
        if (method === 'PUT') {
          puts.push(path);
          bodies.push(body as KubeObject);
          return { ok: true, value: {} };
        }
        const [base, query] = path.split('?') as [string, string | undefined];
        if (base.includes('/nodes/')) {
          const name = base.split('/').pop()!;
          return {
            ok: true,
            value: { status: { addresses: [{ type: 'InternalIP', address: `10.0.0.${name.length}` }] } },
          };
        }
        if (base.endsWith('/pods')) {
          const selector = new URLSearchParams(query ?? '').get('labelSelector') ?? '';
          const wanted = selector.split(',').map((kv) => kv.split('=') as [string, string]);
          const items = pods.filter((p) => wanted.every(([k, v]) => p.metadata?.labels?.[k] === v));
          return { ok: true, value: { items } };
        }
        const own = pods.find((p) => base.endsWith(`/pods/${p.metadata?.name}`));
        if (own) return { ok: true, value: own };
        const shown = {
          ...ingress(base.split('/').pop()!),
          status: { loadBalancer: { ingress: [{ ip: '192.0.2.10' }] } },
        };
        return { ok: true, value: shown };
      },
    };
    return { client, puts, bodies, gets };
  }

  const daemonSetWriter = (client: KubeClient) => {
    const parsed = parseControllerFlags(['--publish-status-address=192.0.2.10'], {
      POD_NAMESPACE: 'ingress-nginx',
      POD_NAME: 'old',
    });
    if (parsed.ok !== true) throw new Error('flags');
    return createStatusWriter({ client, options: parsed.options, log: () => {}, leading: () => true });
  };

  it("a DaemonSet pod of the previous generation keeps the status while the new generation's pods run", async () => {
    const api = podsClient([pod('old', '1'), pod('new', '2')]);
    assert.equal(await daemonSetWriter(api.client).clear([ingress('a')]), 0);
    assert.deepEqual(api.puts, []);
  });

  it('the last controller pod clears it, reading the controller pods once', async () => {
    const api = podsClient([pod('old', '1')]);
    assert.equal(await daemonSetWriter(api.client).clear([ingress('a')]), 1);
    // Its own pod, the pods with its labels, its node, the Ingress again before the write.
    const pods = api.gets.filter((p) => p.includes('/pods'));
    assert.equal(pods.length, 2, api.gets.join('\n'));
  });

  it('a replica still starting (Pending, not Ready) keeps the status: a rolling update must not blank it', async () => {
    const api = podsClient([pod('old', '1'), pod('new', '2', 'Pending', false)]);
    assert.equal(await daemonSetWriter(api.client).clear([ingress('a')]), 0);
    assert.deepEqual(api.puts, []);
  });

  it('the status from nodes names those of Running and Ready pods only (ingress-nginx runningAddresses)', async () => {
    const api = podsClient([
      pod('old', '1'), // node "old": 10.0.0.3
      pod('starting', '2', 'Running', false),
      pod('stale-ready', '2', 'Succeeded'),
      pod('scheduled', '2', 'Pending'),
      pod('newest', '3'), // node "newest": 10.0.0.6
    ]);
    const parsed = parseControllerFlags([], { POD_NAMESPACE: 'ingress-nginx', POD_NAME: 'old' });
    if (parsed.ok !== true) throw new Error('flags');
    const w = createStatusWriter({
      client: api.client,
      options: parsed.options,
      log: () => {},
      leading: () => true,
    });
    assert.equal(await w.sync([ingress('a')]), 1);
    const written = api.bodies[0]?.status as { loadBalancer: { ingress: unknown[] } };
    assert.deepEqual(written.loadBalancer.ingress, [{ ip: '10.0.0.3' }, { ip: '10.0.0.6' }]);
  });

  it('an evicted or completed pod left in the list is no replica: the last running one clears', async () => {
    const api = podsClient([
      pod('old', '1'),
      pod('evicted', '1', 'Failed', false),
      pod('done', '2', 'Succeeded'),
    ]);
    assert.equal(await daemonSetWriter(api.client).clear([ingress('a')]), 1);
  });

  it('a status of several addresses, or addresses that cannot be read, is left for the next leader (ingress-nginx Shutdown)', async () => {
    const shutdown = async (args: string[], env: Record<string, string>) => {
      const api = podsClient([pod('old', '1')]);
      const lines: string[] = [];
      const parsed = parseControllerFlags(args, { POD_NAMESPACE: 'ingress-nginx', ...env });
      if (parsed.ok !== true) throw new Error('flags');
      const w = createStatusWriter({
        client: api.client,
        options: parsed.options,
        log: (l) => lines.push(l),
        leading: () => true,
      });
      return { written: await w.clear([ingress('a')]), puts: api.puts, lines };
    };
    const two = await shutdown(['--publish-status-address=192.0.2.10,lb.example.com'], { POD_NAME: 'old' });
    assert.deepEqual([two.written, two.puts], [0, []]);
    assert.deepEqual(two.lines, ['the status has 2 addresses: kept on shutdown for the next leader']);
    // The nodes of our pods, without POD_NAME: none known, so nothing to decide on: kept.
    const unknown = await shutdown([], {});
    assert.deepEqual([unknown.written, unknown.puts], [0, []]);
    assert.match(
      unknown.lines.join('\n'),
      /^no POD_NAME, so no node of the controller is known: status kept on shutdown$/,
    );
    // One address, the last pod: emptied.
    const one = await shutdown(['--publish-status-address=192.0.2.10'], { POD_NAME: 'old' });
    assert.equal(one.written, 1);
  });
});

describe('status from a --publish-service that does not exist', () => {
  for (const [status, message, line] of [
    [404, 'not found', /--publish-service ingress-nginx\/missing not found; status left as it is/],
    // RBAC's answer is an answer: the line says so with its code, not "unreachable".
    [
      403,
      'GET /api/v1/namespaces/ingress-nginx/services/missing: HTTP 403 (services is forbidden)',
      /^cannot read the status sources \(KUBE_API_STATUS: GET \S+: HTTP 403 \(services is forbidden\)\); status left as it is$/,
    ],
  ] as const) {
    it(`leaves the status as it is on a ${status} (ingress-nginx: an error, no update), saying why`, async () => {
      await leavesStatusOn({ ok: false, error: { code: 'KUBE_API_STATUS', status, message } }, line);
    });
  }
});

/** The --publish-service ingress-nginx/missing read as `answer`: no status written, and a line matching `line`. */
async function leavesStatusOn(
  answer: Awaited<ReturnType<KubeClient['request']>>,
  line: RegExp,
): Promise<void> {
  const puts: string[] = [];
  const lines: string[] = [];
  const client: KubeClient = {
    server: 'scripted',
    listWatcher: () => {
      throw new Error('not used');
    },
    async request(method, path) {
      if (method === 'PUT') {
        puts.push(path);
        return { ok: true, value: {} };
      }
      return answer;
    },
  };
  const parsed = parseControllerFlags(['--publish-service=ingress-nginx/missing'], {});
  if (parsed.ok !== true) throw new Error('flags');
  const shown = {
    ...ingress('a'),
    status: { loadBalancer: { ingress: [{ ip: '192.0.2.10' }] } },
  };
  const w = createStatusWriter({
    client,
    options: parsed.options,
    log: (l) => lines.push(l),
    leading: () => true,
  });
  assert.equal(await w.sync([shown]), 0);
  assert.deepEqual(puts, []);
  assert.ok(
    lines.some((l) => line.test(l)),
    lines.join('\n'),
  );
}

it('a headless --publish-service leaves the status as it is, where an empty one would blank every Ingress', async () => {
  // ingress-nginx writes its clusterIP "None", which the API server refuses: the status stays there too.
  await leavesStatusOn(
    { ok: true, value: { kind: 'Service', spec: { type: 'ClusterIP', clusterIP: 'None' } } },
    /^--publish-service ingress-nginx\/missing is headless \(clusterIP None\): no address; status left as it is$/,
  );
});
