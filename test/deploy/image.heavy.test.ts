// The container image, tested without a container runtime: `npm run image`'s build (reused from local
// storage when its inputs are unchanged), then the image mounted with `buildah mount` and its commands
// run in it with chroot, as uid 101, on a read-only root with a private /tmp, as a kubelet would run
// it. Needs root (buildah, mount, chroot), as .ci/run has; anything missing fails with the reason.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from '../../src/node-http.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { build, ENTRYPOINT, INPUTS_LABEL, PORTS } from '../../scripts/image/build.ts';
import { IMAGE_USER } from '../../scripts/image/pins.ts';
import { repoRoot, requireBinary, type Running, start } from '../helpers/process.ts';

const APP = '/usr/local/lib/keepip';
const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  version: string;
  license: string;
};

function sh(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0)
    throw new Error(`${command} ${args.join(' ')}: ${result.stderr || result.error?.message}`);
  return result.stdout.trim();
}

/**
 * A shell script that shows the mounted image at a fresh path read-only, gives it /dev, a /proc of
 * its own PID namespace and a tmpfs /tmp, and runs `argv` in it as uid 101 with the image's PATH.
 */
const roots: string[] = [];

function sandbox(rootfs: string, argv: readonly string[]): string[] {
  const root = mkdtempSync(join(tmpdir(), 'keepip-image-root-'));
  roots.push(root);
  const quoted = argv.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ');
  const script = [
    'set -e',
    `mount --bind '${rootfs}' '${root}'`,
    `mount -o remount,bind,ro '${root}'`,
    `mount --rbind /dev '${root}/dev'`,
    `mount -t proc proc '${root}/proc'`,
    `mount -t tmpfs -o size=16m tmpfs '${root}/tmp'`,
    `exec env -i PATH=/usr/local/bin:/usr/bin:/bin NODE_ENV=production ${requireBinary('chroot')} --userspec=${IMAGE_USER.uid}:${IMAGE_USER.gid} '${root}' ${quoted}`,
  ].join('\n');
  return ['--mount', '--pid', '--fork', '--propagation', 'private', 'sh', '-c', script];
}

function runIn(
  rootfs: string,
  argv: readonly string[],
): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync('unshare', sandbox(rootfs, argv), { encoding: 'utf8', timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The host PID of the sandbox's PID 1 (unshare's only child). */
function sandboxInit(unsharePid: number): number {
  const children = readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8').trim();
  const pid = Number(children.split(/\s+/)[0]);
  assert.ok(Number.isInteger(pid) && pid > 0, `no child of unshare ${unsharePid}`);
  return pid;
}

function get(host: string, port: number, hostHeader: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port, path: '/', headers: { host: hostHeader }, agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The parts of the OCI image config the tests read. */
interface ImageConfig {
  User?: string;
  Entrypoint?: string[];
  ExposedPorts?: Record<string, object>;
  StopSignal?: string;
  Labels?: Record<string, string>;
}

describe('the keepip image (npm run image)', { timeout: 600_000 }, () => {
  let ref = '';
  let ctr = '';
  let rootfs = '';
  let config: ImageConfig = {};
  let annotations: Record<string, string> = {};

  before(() => {
    assert.equal(process.getuid?.(), 0, 'the image tests mount and chroot: run them as root (.ci/run does)');
    for (const tool of ['buildah', 'mmdebstrap', 'unshare', 'chroot', 'getcap']) requireBinary(tool);
    const started = Date.now();
    const built = build({ tags: [], log: (line) => process.stderr.write(`# image: ${line}\n`) });
    process.stderr.write(
      `# image: ${built.ref} ${built.cached ? 'reused' : 'built'} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
    ref = built.ref;
    const inspected = JSON.parse(sh('buildah', ['inspect', '--type', 'image', ref]));
    config = inspected.OCIv1.config;
    annotations = inspected.ImageAnnotations ?? {};
    ctr = sh('buildah', ['from', '--pull-never', ref]);
    rootfs = sh('buildah', ['mount', ctr]);
  });

  after(() => {
    if (ctr !== '') {
      spawnSync('buildah', ['umount', ctr]);
      spawnSync('buildah', ['rm', ctr]);
    }
  });

  it('is configured to run keepip under tini as uid 101, exposing 80, 443, the webhook and healthz ports', () => {
    assert.equal(config.User, `${IMAGE_USER.uid}:${IMAGE_USER.gid}`);
    assert.deepEqual(config.Entrypoint, ENTRYPOINT);
    assert.deepEqual(Object.keys(config.ExposedPorts ?? {}).sort(), [...PORTS].sort());
    assert.equal(config.StopSignal, 'SIGTERM');
    const size = Number(sh('buildah', ['images', '--format', '{{.Size}}', ref]).replace(/ MB$/, ''));
    process.stderr.write(`# image: ${ref} ${size} MB\n`);
    assert.ok(size > 0 && size <= 150, `the image is ${size} MB, over the 150 MB target`);
  });

  it('carries OCI labels and annotations: version, licence, source, revision, and the inputs it was built from', () => {
    for (const labels of [config.Labels ?? {}, annotations]) {
      assert.equal(labels['org.opencontainers.image.version'], pkg.version);
      assert.equal(labels['org.opencontainers.image.licenses'], pkg.license);
      assert.ok(labels['org.opencontainers.image.source'], 'source');
      assert.match(labels['org.opencontainers.image.revision'] ?? '', /^[0-9a-f]{40}$|^unknown$/);
    }
    assert.match(config.Labels?.[INPUTS_LABEL] ?? '', /^[0-9a-f]{64}$/);
  });

  it('gives tini and node (each exec on the way) the NET_BIND_SERVICE file capability and nothing else; the user is 101', () => {
    for (const binary of ['usr/bin/tini', 'usr/local/bin/node'])
      assert.match(sh('getcap', [join(rootfs, binary)]), /cap_net_bind_service=ep$/, binary);
    assert.match(
      readFileSync(join(rootfs, 'etc/passwd'), 'utf8'),
      new RegExp(`^${IMAGE_USER.name}:x:101:101:`, 'm'),
    );
  });

  it('runs keepip --version through the entrypoint as uid 101 on a read-only root', () => {
    const result = runIn(rootfs, [...ENTRYPOINT, '--version']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `keepip ${pkg.version}\n`);
    // The sandbox is what the test claims: the root refuses writes, /tmp takes them.
    const write = (path: string) =>
      runIn(rootfs, ['/usr/local/bin/node', '-e', `require('node:fs').writeFileSync('${path}', 'x')`]);
    assert.match(write('/usr/local/lib/keepip/x').stderr, /EROFS/);
    assert.equal(write('/tmp/x').code, 0);
  });

  it("runs keepip doctor on the seed's manifests shipped in the image: the fix lets the laptop in", () => {
    const after = runIn(rootfs, [
      '/usr/local/bin/keepip',
      'doctor',
      '-f',
      `${APP}/examples/seed/after`,
      '--client',
      '127.0.20.10',
      '--host',
      'gitea.example.com',
    ]);
    assert.equal(after.code, 0, after.stdout + after.stderr);
    assert.match(after.stdout, /^keepip doctor: 200 /);
    const before = runIn(rootfs, [
      '/usr/local/bin/keepip',
      'doctor',
      '-f',
      `${APP}/examples/seed/before`,
      '--json',
    ]);
    assert.equal(before.code, 1, before.stderr);
    assert.match(before.stdout, /CLIENT_IP_LOST_AT_LB/);
  });

  it('loads the production dependencies after their whitespace was stripped (the API client, metrics, logs)', () => {
    const modules = ['@kubernetes/client-node', 'prom-client', 'undici', 'ws', 'yaml', 'selfsigned'];
    const code = `const load = require('node:module').createRequire('${APP}/package.json'); for (const m of ${JSON.stringify(modules)}) load(m);`;
    const result = runIn(rootfs, ['/usr/local/bin/node', '-e', code]);
    assert.equal(result.code, 0, result.stderr);
  });

  it('binds port 80 as uid 101, serves, and drains and exits 0 on SIGTERM with tini as PID 1', async () => {
    let gateway: Running | null = null;
    try {
      gateway = start(
        'unshare',
        sandbox(rootfs, [
          ...ENTRYPOINT,
          'gateway',
          '-f',
          `${APP}/examples/seed/before`,
          '--http',
          '127.0.95.1:80',
        ]),
      );
      await gateway.waitFor(/listening http 127\.0\.95\.1:80/, 30_000);
      assert.equal(await get('127.0.95.1', 80, 'unknown.example.com'), 404);
      const init = sandboxInit(gateway.child.pid!);
      assert.match(readFileSync(`/proc/${init}/cmdline`, 'utf8'), /^\/usr\/bin\/tini\0/);
      process.kill(init, 'SIGTERM');
      await gateway.waitFor(/stopped/, 30_000);
      assert.equal(await gateway.exited(), 0, gateway.output());
      assert.match(gateway.output(), /SIGTERM: stopped accepting, draining/);
    } finally {
      await gateway?.stop();
    }
  });
});

// The roots made by sandbox() are mount points only inside their private namespaces: empty here.
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});
