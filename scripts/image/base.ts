// The base image: a Debian root of the pinned packages only (mmdebstrap, extract variant: no package
// manager, no shell beyond what the pins bring), Node.js from the npm registry stripped and given
// cap_net_bind_service, the keepip user, a dpkg status file for scanners. Keyed by its recipe, and
// reused from local storage while the recipe is unchanged.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashText } from './hash.ts';
import { BASE_EPOCH, DEBIAN, IMAGE_USER, NODE } from './pins.ts';
import { capture, run } from './run.ts';

const BASE_REPO = 'localhost/keepip-base';

function cacheDir(): string {
  const dir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'keepip-image');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The node binary of the pinned npm package, checked against the pinned integrity. */
function fetchNode(work: string): string {
  const dir = cacheDir();
  const tarball = join(dir, `${NODE.package}-${NODE.version}.tgz`);
  const packed = capture('npm', [
    'pack',
    `${NODE.package}@${NODE.version}`,
    '--json',
    '--pack-destination',
    dir,
  ]);
  if (packed === null) throw new Error(`npm pack ${NODE.package}@${NODE.version} failed`);
  const integrity = (JSON.parse(packed) as { integrity: string }[])[0]?.integrity;
  if (integrity !== NODE.integrity)
    throw new Error(`${tarball}: integrity ${integrity}, pinned ${NODE.integrity}`);
  run('tar', ['-xzf', tarball, '-C', work, 'package/bin/node']);
  const node = join(work, 'package/bin/node');
  // Debug symbols are a sixth of the binary; the official build stays otherwise as published.
  run('strip', ['--strip-debug', '--strip-unneeded', node]);
  return node;
}

const DROP = [
  'usr/share/man',
  'usr/share/info',
  'usr/share/locale',
  'usr/share/lintian',
  'usr/share/i18n',
  'usr/share/gdb',
  'usr/share/bug',
  'usr/share/menu',
  'usr/lib/x86_64-linux-gnu/gconv',
  'usr/bin/tini-static',
  'etc/apt',
  'var/lib/apt',
  'var/cache/apt',
  'var/cache/debconf',
  'var/log',
  'etc/resolv.conf',
  'etc/hostname',
  'etc/dpkg/dpkg.cfg.d/99mmdebstrap',
];

/** The extract hook: runs on the host with the new root as $1. */
function hookScript(node: string): string {
  const expected = Object.entries(DEBIAN.packages)
    .map(([p, v]) => `${p}_${v.replace(/^\d+:/, '')}`)
    .sort();
  const u = IMAGE_USER;
  return `#!/bin/sh
set -eu
root="$1"
got=$(for deb in "$root"/var/cache/apt/archives/*.deb; do basename "$deb" | sed 's/_[^_]*\\.deb$//'; done | sort | tr '\\n' ' ')
[ "$got" = "${expected.join(' ')} " ] || { echo "package set differs from the pins: $got" >&2; exit 1; }
for deb in "$root"/var/cache/apt/archives/*.deb; do dpkg-deb -f "$deb"; echo 'Status: install ok installed'; echo; done > "$root/var/lib/dpkg/status"
find "$root/usr/share/doc" -type f ! -name copyright -delete
find "$root/usr/share/doc" -type l -delete
${DROP.map((p) => `rm -rf "$root/${p}"`).join('\n')}
install -D -m 0755 ${JSON.stringify(node)} "$root/usr/local/bin/node"
# Every binary on the way to node: under no_new_privs (allowPrivilegeEscalation: false) an exec keeps
# only what the previous one held and its file grants, so tini needs the capability too.
setcap cap_net_bind_service=+ep "$root/usr/local/bin/node"
setcap cap_net_bind_service=+ep "$root/usr/bin/tini"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\\n${u.name}:x:${u.uid}:${u.gid}:keepip:/nonexistent:/usr/sbin/nologin\\n' > "$root/etc/passwd"
printf 'root:x:0:\\n${u.name}:x:${u.gid}:\\n' > "$root/etc/group"
`;
}

export function baseKey(): string {
  return hashText(
    JSON.stringify({ DEBIAN, NODE, BASE_EPOCH, IMAGE_USER, DROP }),
    readFileSync(import.meta.filename, 'utf8'),
  );
}

/** The base image's name, built now unless local storage has it. */
export function ensureBase(log: (line: string) => void): string {
  const ref = `${BASE_REPO}:${baseKey().slice(0, 16)}`;
  if (capture('buildah', ['inspect', '--type', 'image', ref]) !== null) {
    log(`base ${ref}: cached`);
    return ref;
  }
  const work = mkdtempSync(join(tmpdir(), 'keepip-base-'));
  try {
    const hook = join(work, 'hook.sh');
    writeFileSync(hook, hookScript(fetchNode(work)), { mode: 0o755 });
    const rootfs = join(work, 'rootfs.tar');
    const { suite, mirror, security } = DEBIAN;
    run(
      'mmdebstrap',
      [
        '--variant=extract',
        '--skip=cleanup/apt,cleanup/mmdebstrap',
        '--quiet',
        `--include=${Object.entries(DEBIAN.packages)
          .map(([p, v]) => `${p}=${v}`)
          .join(',')}`,
        `--extract-hook=${hook} "$1"`,
        suite,
        rootfs,
        `deb ${mirror} ${suite} main`,
        `deb ${mirror} ${suite}-updates main`,
        `deb ${security} ${suite}-security main`,
      ],
      { env: { ...process.env, SOURCE_DATE_EPOCH: String(BASE_EPOCH) } },
    );
    const ctr = capture('buildah', ['from', 'scratch'])?.trim();
    if (!ctr) throw new Error('buildah from scratch failed');
    run('buildah', ['add', '--quiet', ctr, rootfs, '/']);
    run('buildah', [
      'commit',
      '--quiet',
      '--rm',
      '--identity-label=false',
      '--omit-history',
      '--timestamp',
      String(BASE_EPOCH),
      ctr,
      ref,
    ]);
    log(`base ${ref}: built`);
    return ref;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
