// The app layer: keepip as `npm pack` ships it (bin, src, examples, docs, package.json, README,
// LICENSE) with its production dependencies from package-lock.json, in /usr/local/lib/keepip, and the
// `keepip` command. Dependencies lose what only a compiler or a reader uses (type declarations, source
// maps, markdown) and their whitespace (esbuild, no renaming), which takes the image under 150 MB.
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { transformSync } from 'esbuild';
import { APP_DIR } from './pins.ts';
import { capture, run } from './run.ts';

const DROP_FILES = /(\.d\.[cm]?ts|\.map|\.md|\.markdown|\.tsbuildinfo)$/i;
const KEEP_FILES = /^(licen[cs]e|copying|notice)/i;
const JS = /\.[cm]?js$/;

function prune(dir: string, stats: { before: number; after: number }): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      prune(path, stats);
    } else if (entry.isFile() && DROP_FILES.test(entry.name) && !KEEP_FILES.test(entry.name)) {
      rmSync(path);
    } else if (entry.isFile() && JS.test(entry.name)) {
      const source = readFileSync(path, 'utf8');
      stats.before += source.length;
      try {
        // Whitespace and comments only: names and syntax stay, legal comments stay.
        const { code } = transformSync(source, {
          minifyWhitespace: true,
          legalComments: 'inline',
          loader: 'js',
        });
        writeFileSync(path, code);
        stats.after += code.length;
      } catch {
        stats.after += source.length;
      }
    }
  }
}

/** Files 0644 and directories 0755 whatever the umask, so the layer is the same on every machine. */
function normaliseModes(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) {
      chmodSync(path, 0o755);
      normaliseModes(path);
    } else {
      chmodSync(path, statSync(path).mode & 0o111 ? 0o755 : 0o644);
    }
  }
}

/** The `keepip` command: node is at a fixed path (the image has no /usr/bin/env). */
const LAUNCHER = `#!/usr/local/bin/node
// keepip's command in the image: runs ${APP_DIR}/bin/keepip with node's NET_BIND_SERVICE file capability.
import('${APP_DIR}/bin/keepip');
`;

/** Stages the app into `stage` (a root: usr/local/...); returns what minification saved. */
export function stageApp(repo: string, stage: string, log: (line: string) => void): void {
  const app = join(stage, APP_DIR.slice(1));
  mkdirSync(app, { recursive: true });
  const packed = capture('npm', ['pack', '--json', '--pack-destination', stage], { cwd: repo });
  const file = packed === null ? undefined : (JSON.parse(packed) as { filename: string }[])[0]?.filename;
  if (file === undefined) throw new Error('npm pack failed');
  run('tar', ['-xzf', join(stage, file), '-C', app, '--strip-components=1', '--no-same-owner']);
  rmSync(join(stage, file));
  copyFileSync(join(repo, 'package-lock.json'), join(app, 'package-lock.json'));
  run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: app,
  });
  const stats = { before: 0, after: 0 };
  prune(join(app, 'node_modules'), stats);
  log(
    `dependencies: JavaScript ${(stats.before / 1e6).toFixed(1)} MB -> ${(stats.after / 1e6).toFixed(1)} MB`,
  );
  mkdirSync(join(stage, 'usr/local/bin'), { recursive: true });
  writeFileSync(join(stage, 'usr/local/bin/keepip'), LAUNCHER);
  normaliseModes(stage);
  chmodSync(join(stage, 'usr/local/bin/keepip'), 0o755);
}
