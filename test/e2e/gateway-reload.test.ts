// Live reload under load (security invariant 7: config changes are atomic, no request is dropped):
// `keepip gateway -f dir` serves two keep-alive clients in a loop while the manifest changes 20 times,
// valid and invalid edits alternating. Every request must succeed, every valid change must take effect,
// every invalid one must be reported (file and reason) while the previous config keeps serving.
// Also: SIGHUP reloads, and SIGTERM drains an in-flight request before exiting 0. Every wait is on a
// signal (the served version, a log line, the backend holding the request); the deadlines only bound
// a broken gateway and are generous enough for a busy machine.
import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import http from '../../src/node-http.ts';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from '../fixtures/gateway/harness.ts';
import { ingress, manifestDir, serviceWithEndpoints, toYaml } from '../fixtures/gateway/manifests.ts';
import { type HeldBackend, startHeldBackend } from '../helpers/held-backend.ts';
import { type Running, startKeepip } from '../helpers/process.ts';

function manifest(backendPort: number, version: number): string {
  return toYaml([
    ...serviceWithEndpoints({ name: 'web', ports: [backendPort] }),
    ingress({
      name: 'web',
      host: 'web.example.com',
      paths: [{ path: '/', service: 'web', port: 80 }],
      annotations: { 'rewrite-target': `/v${version}` },
    }),
  ]);
}

/** Invalid edits of different kinds: broken YAML, a field of the wrong type, a missing name. */
const INVALID = [
  'apiVersion: v1\nkind: Service\nmetadata: {name: web\n',
  'apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: default\nspec:\n  rules: 42\n',
  'apiVersion: v1\nkind: Service\nmetadata:\n  namespace: default\nspec: {}\n',
];

/** Polls `condition` every 20 ms until it holds; fails with `what` after a generous 20 s. */
async function eventually(condition: () => boolean | Promise<boolean>, what: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await condition())) {
    assert.ok(Date.now() < deadline, what());
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('gateway reload', () => {
  let backend: HeldBackend;
  let dir: ReturnType<typeof manifestDir>;
  let gateway: Running;
  let port = 0;
  let file = '';

  const write = (text: string) => {
    // Atomic replace, as editors and kubectl-style tools do: the watcher never sees half a file.
    const temporary = join(dir.dir, '.web.yaml.tmp');
    writeFileSync(temporary, text);
    renameSync(temporary, file);
  };

  const servedVersion = async (): Promise<string> => {
    const reply = await request(port, { host: 'web.example.com', headers: { accept: 'application/json' } });
    return (JSON.parse(reply.body) as { url: string }).url;
  };

  before(async () => {
    backend = await startHeldBackend({ hold: (url) => url.includes('hold') });
    dir = manifestDir();
    file = join(dir.dir, 'web.yaml');
    write(manifest(backend.port, 0));
    gateway = startKeepip([
      'gateway',
      '-f',
      dir.dir,
      '--http',
      '127.0.0.1:0',
      '--access-log',
      join(dir.dir, 'access.log'),
    ]);
    const match = await gateway.waitFor(/listening http 127\.0\.0\.1:(\d+)/);
    port = Number(match[1]);
  });

  after(async () => {
    await gateway.stop();
    await backend.close();
    dir.remove();
  });

  test('20 edits under load: no failed request, valid edits applied, invalid ones reported and refused', async () => {
    assert.equal(await servedVersion(), '/v0');
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    const client = async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        // Bounded: stops when the edits are done, and never runs more than 60 s.
        const deadline = Date.now() + 60_000;
        while (!stop && Date.now() < deadline) {
          try {
            const reply = await request(port, { host: 'web.example.com', agent });
            if (reply.status === 200) ok += 1;
            else failures.push(`status ${reply.status}`);
          } catch (error) {
            failures.push((error as Error).message);
          }
        }
      } finally {
        agent.destroy();
      }
    };
    const load = [client(), client()];

    let valid = 0;
    let rejected = 0;
    // The load must run across every edit: after each one, at least two more requests succeed.
    const loadAnswers = async (since: number, edit: number) =>
      eventually(
        () => ok >= since + 2 || failures.length > 0,
        () => `no request answered after edit ${edit}; failures: ${failures.join(', ')}`,
      );
    try {
      for (let edit = 1; edit <= 20; edit++) {
        const answered = ok;
        if (edit % 2 === 1) {
          valid += 1;
          write(manifest(backend.port, edit));
          await eventually(
            async () => (await servedVersion()) === `/v${edit}`,
            () => `edit ${edit} did not take effect; output:\n${gateway.output()}`,
          );
        } else {
          rejected += 1;
          const before = gateway.output().split('reload rejected').length;
          write(INVALID[(edit / 2) % INVALID.length]!);
          await eventually(
            () => gateway.output().split('reload rejected').length > before,
            () => `invalid edit ${edit} was not reported; output:\n${gateway.output()}`,
          );
          assert.equal(await servedVersion(), `/v${edit - 1}`, 'the previous config keeps serving');
        }
        await loadAnswers(answered, edit);
      }
    } finally {
      stop = true;
      await Promise.all(load);
    }
    assert.deepEqual(failures, []);
    assert.ok(ok >= 40, `the load ran across the edits (${ok} requests)`);
    assert.equal(valid, 10);
    assert.equal(rejected, 10);
    // Each rejection names the file and what is wrong with it.
    assert.match(gateway.output(), /reload rejected .*still serving config v\d+/);
    assert.match(gateway.output(), /web\.yaml, document 1.*MANIFEST_YAML_ERROR/);
    assert.match(
      gateway.output(),
      /web\.yaml, document 1 \(Ingress default\/web\) spec\.rules: .*\[MANIFEST_INVALID_FIELD\]/,
    );
  });

  test('SIGHUP reloads the manifests (the last edit was invalid: it is re-read and refused again)', async () => {
    const before = gateway.output().split('reload rejected').length;
    gateway.child.kill('SIGHUP');
    await eventually(
      () => gateway.output().split('reload rejected').length > before,
      () => `no reload after SIGHUP; output:\n${gateway.output()}`,
    );
  });

  test('SIGTERM drains: an in-flight request completes, then the process exits 0', async () => {
    const exited = new Promise<number | null>((resolve) => gateway.child.once('exit', resolve));
    const pending = request(port, { host: 'web.example.com', path: '/?hold' });
    await backend.arrived(/hold/); // in flight: the backend holds it until the gateway is draining
    gateway.child.kill('SIGTERM');
    await gateway.waitFor(/SIGTERM: stopped accepting, draining/);
    backend.release();
    const reply = await pending;
    assert.equal(reply.status, 200);
    assert.equal(await exited, 0);
  });
});
