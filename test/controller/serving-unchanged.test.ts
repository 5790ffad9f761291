// A change in the cluster that does not change what is served (a Secret no Ingress uses, an object
// rewritten as it was) is no reload: no new config version, no `reloaded` line, no warnings logged
// again. ingress-nginx's test/e2e/ssl/secret_update.go "should not appear references to secret updates
// not used in ingress rules": an unused Secret's update starts no sync; its controller also skips a
// reload when the new configuration equals the running one.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { parseControllerFlags } from '../../src/controller/flags.ts';
import type { ClusterObjects } from '../../src/controller/snapshot.ts';
import { createServing } from '../../src/controller/serving.ts';
import { createTcpRunner } from '../../src/controller/tcp-runner.ts';
import { createLineSink } from '../../src/gateway/line-sink.ts';
import { createGatewayMetrics } from '../../src/gateway/metrics.ts';
import { DEFAULT_SNAPSHOT_OPTIONS, EMPTY_CLUSTER, endpointSlice, ingress, service } from './harness.ts';

test('an unused Secret or an unchanged object is no reload; a real change still is', async (t) => {
  const parsed = parseControllerFlags(
    ['--bind-address', '127.0.0.1', '--http-port=0', '--https-port=0', '--healthz-port=0'],
    { POD_NAMESPACE: 'ingress-nginx' },
  );
  if (parsed.ok !== true) throw new Error(`flags: ${JSON.stringify(parsed)}`);
  let objects: ClusterObjects = {
    ...EMPTY_CLUSTER,
    services: [service('web')],
    endpointSlices: [endpointSlice('web', '127.0.0.1', 8080)],
    ingresses: [ingress('web', 'web.example.com', 'web')],
  };
  const lines: string[] = [];
  const log = (line: string) => lines.push(line);
  const quiet = createLineSink(new Writable({ write: (_c, _e, cb) => cb() }));
  const tcp = createTcpRunner({ host: '127.0.0.1', accessLog: () => {}, registry: new Registry(), log });
  const serving = createServing({
    options: parsed.options,
    snapshotOptions: DEFAULT_SNAPSHOT_OPTIONS,
    objects: () => objects,
    metrics: createGatewayMetrics(),
    tcp,
    log,
    accessLog: quiet,
    errorLog: quiet,
    onServed: () => {},
  });
  serving.flush();
  const gateway = await serving.ready;
  t.after(async () => {
    serving.stop();
    await gateway.close();
    await tcp.close();
  });
  const reloads = () => lines.filter((l) => l.startsWith('reloaded:'));

  serving.flush();
  objects = {
    ...objects,
    secrets: [
      { kind: 'Secret', metadata: { namespace: 'default', name: 'dummy' }, data: { key: 'dmFsdWU=' } },
    ],
  };
  serving.flush();
  assert.deepEqual(reloads(), []);
  assert.equal(gateway.snapshot().version, 1);

  objects = { ...objects, ingresses: [...objects.ingresses, ingress('other', 'other.example.com', 'web')] };
  serving.flush();
  assert.equal(reloads().length, 1);
  assert.match(reloads()[0]!, /^reloaded: config v2 /);
});
