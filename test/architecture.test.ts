// The dependency rules of docs/architecture.md ("Layers"), checked on every import of src/**/*.ts:
// (a) no import cycle, type-only imports included; (b) nothing outside src/cli/ imports src/cli/;
// (c) no I/O module (sockets, files, processes) reachable from a pure module. Every edge counts,
// `import type` too: a pure module that names a socket's type is bound to the socket.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { type ImportRef, scanImports } from './helpers/import-scan.ts';

const ROOT = join(import.meta.dirname, '..');

/**
 * Violations that exist today and are being removed. This list may only shrink: a violation not listed
 * fails, and so does a listed one that no longer exists. Empty it, then delete it.
 */
const KNOWN_VIOLATIONS: readonly string[] = [];

/** Pure folders: every module in them is pure, except the named edge files. */
const PURE_FOLDERS = ['src/proxy-protocol/', 'src/net/', 'src/config/', 'src/k8s/', 'src/doctor/'];
const EDGES_IN_PURE_FOLDERS = [
  'src/proxy-protocol/reader.ts', // the socket reader
  'src/proxy-protocol/index.ts', // the codec's entry point re-exports the reader
  'src/k8s/load.ts', // reads manifest files
  'src/k8s/index.ts', // re-exports loadManifests
  'src/doctor/probe.ts', // `doctor --probe` sends real requests
];
/** Pure modules inside edge folders. */
const PURE_FILES = [
  'src/errors.ts',
  'src/error-table.ts',
  'src/result.ts', // the one result shape of a fallible pure function
  // Each module's table of codes (src/config/model.ts names the k8s and gateway issue codes).
  'src/gateway/errors.ts',
  'src/lb/errors.ts',
  'src/up/errors.ts',
  'src/whoami/errors.ts',
  'src/gateway/router.ts',
  'src/gateway/rewrite.ts',
  'src/gateway/redirects.ts',
  'src/gateway/host.ts',
  'src/gateway/request-target.ts',
  'src/gateway/upstream-headers.ts',
  'src/gateway/access/basic-credentials.ts',
  'src/gateway/error-pages.ts',
  'src/gateway/client-hello.ts',
  'src/gateway/held-bytes.ts',
  'src/gateway/trace-context.ts',
  'src/gateway/otlp-encode.ts',
  'src/gateway/cookies.ts',
  'src/gateway/nginx-time.ts',
  'src/gateway/header-templates.ts',
  'src/lb/config.ts',
  'src/lb/manifest.ts',
  'src/lb/selection.ts',
  'src/lb/health-state.ts',
  'src/lb/source-address.ts',
  'src/lb/proxy-header.ts',
  'src/up/plan.ts',
  'src/whoami/echo.ts',
  'src/workers/count.ts',
  'src/workers/errors.ts',
  'src/workers/protocol.ts',
];
/** Node modules that open sockets, touch files or the host, or start processes; `node:` or not. */
const IO_BUILTINS = new Set([
  'net',
  'http',
  'https',
  'http2',
  'tls',
  'dgram',
  'dns',
  'fs',
  'os',
  'child_process',
  'cluster',
  'worker_threads',
  // createRequire loads code from disk (src/node-http.ts).
  'module',
]);
/** The one module that loads node:http's values (an ESM import of it loads Node's bundled undici). */
const NODE_HTTP = 'src/node-http.ts';
/** Packages that do network I/O. */
const IO_PACKAGES = new Set(['undici', 'ws']);

interface Edge {
  from: string;
  /** A repository path (`src/…`) for relative imports, the specifier for packages and builtins. */
  to: string;
  ref: ImportRef;
}

function listSources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true })
    .flatMap((entry) => {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) return listSources(path);
      return entry.name.endsWith('.ts') ? [path] : [];
    })
    .sort();
}

/** Relative specifiers become repository paths; packages and builtins stay as written. */
function resolveSpecifier(from: string, specifier: string): string {
  if (!specifier.startsWith('.')) return specifier;
  return relative(ROOT, resolve(ROOT, dirname(from), specifier))
    .split('\\')
    .join('/');
}

function buildGraph(files: readonly string[]): Map<string, Edge[]> {
  const graph = new Map<string, Edge[]>();
  for (const from of files) {
    const refs = scanImports(readFileSync(join(ROOT, from), 'utf8'));
    graph.set(
      from,
      refs.map((ref) => ({ from, to: resolveSpecifier(from, ref.specifier), ref })),
    );
  }
  return graph;
}

/** Strongly connected components with more than one module, or a module importing itself (Tarjan). */
function findCycles(graph: Map<string, Edge[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const { to } of graph.get(node) ?? []) {
      if (!graph.has(to)) continue;
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node)!, low.get(to)!));
      } else if (onStack.has(to)) {
        low.set(node, Math.min(low.get(node)!, index.get(to)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    const selfImport = (graph.get(node) ?? []).some((edge) => edge.to === node);
    if (component.length > 1 || selfImport) cycles.push(component.sort());
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return cycles;
}

/** The builtin module a specifier names (`node:fs/promises` -> `fs`), or null for anything else. */
function ioModule(specifier: string): string | null {
  if (IO_PACKAGES.has(specifier)) return specifier;
  const name = specifier.replace(/^node:/, '').split('/')[0]!;
  return IO_BUILTINS.has(name) ? name : null;
}

function isPure(file: string): boolean {
  if (PURE_FILES.includes(file)) return true;
  return PURE_FOLDERS.some((folder) => file.startsWith(folder)) && !EDGES_IN_PURE_FOLDERS.includes(file);
}

/** For one pure module: each I/O module it reaches, with the import path that reaches it. */
function ioReachedFrom(graph: Map<string, Edge[]>, start: string): Map<string, string[]> {
  const cameFrom = new Map<string, string | null>([[start, null]]);
  const queue = [start];
  const reached = new Map<string, string[]>();
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const { to } of graph.get(node) ?? []) {
      const io = ioModule(to);
      if (io !== null && !reached.has(io)) reached.set(io, [...pathTo(cameFrom, node), to]);
      if (graph.has(to) && !cameFrom.has(to)) {
        cameFrom.set(to, node);
        queue.push(to);
      }
    }
  }
  return reached;
}

function pathTo(cameFrom: Map<string, string | null>, node: string): string[] {
  const path = [node];
  for (let at = cameFrom.get(node); at !== null && at !== undefined; at = cameFrom.get(at)) path.unshift(at);
  return path;
}

/** Every violation as `key` (what KNOWN_VIOLATIONS lists) and `detail` (how it arises). */
function findViolations(graph: Map<string, Edge[]>): Map<string, string> {
  const found = new Map<string, string>();
  for (const cycle of findCycles(graph)) {
    const key = `cycle: ${cycle.join(' <-> ')}`;
    const edges = cycle.flatMap((file) => graph.get(file)!.filter((edge) => cycle.includes(edge.to)));
    found.set(key, edges.map((e) => `${e.from} -> ${e.to}${e.ref.typeOnly ? ' (type)' : ''}`).join('; '));
  }
  for (const edges of graph.values()) {
    for (const edge of edges) {
      if (edge.to.startsWith('src/cli/') && !edge.from.startsWith('src/cli/')) {
        found.set(
          `cli: ${edge.from} -> ${edge.to}`,
          'src/cli/ is the top layer: move what is shared below it',
        );
      }
    }
  }
  for (const edges of graph.values()) {
    for (const edge of edges) {
      if (ioModule(edge.to) !== 'http' || edge.ref.typeOnly || edge.from === NODE_HTTP) continue;
      found.set(
        `http: ${edge.from} imports node:http`,
        `import it from ${NODE_HTTP}: an ESM import of node:http loads Node's bundled undici`,
      );
    }
  }
  for (const file of graph.keys()) {
    if (!isPure(file)) continue;
    for (const [io, path] of ioReachedFrom(graph, file)) {
      found.set(`io: ${file} reaches ${io}`, path.join(' -> '));
    }
  }
  return found;
}

const SOURCES = listSources('src');
const GRAPH = buildGraph(SOURCES);

describe('architecture: the import scanner', () => {
  it('finds every import form and nothing that only looks like one', () => {
    const text = [
      "import a from './a.ts';",
      "import type { B } from './b.ts';",
      "import {\n  type C,\n  c,\n} from './c.ts';",
      "import * as d from 'node:net';",
      "import './e.ts';",
      "export * from './f.ts';",
      "export * as g from './g.ts';",
      "export { h } from './h.ts';",
      "export type { I } from './i.ts';",
      "const j = await import('./j.ts');",
      "type K = typeof import('./k.ts');",
      "import data from './l.json' with { type: 'json' };",
      "// import x from './comment.ts';",
      "/* export * from './block.ts'; */",
      'const s = "import y from \'./string.ts\'";',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a template literal is what is being scanned
      "const t = `${`import z from './template.ts'`} ${'}'} import w from './template2.ts'`;",
      "const r = /import v from '.\\/regex.ts'`/;",
      'const u = import.meta.url; const n = 4 / 2; export const m = 1; export { a };',
      "export type T = import('./m.ts').T;",
    ].join('\n');
    assert.deepEqual(
      scanImports(text).map(
        (ref) => `${ref.specifier}${ref.typeOnly ? ' type' : ''}${ref.dynamic ? ' dynamic' : ''}`,
      ),
      [
        './a.ts',
        './b.ts type',
        './c.ts',
        'node:net',
        './e.ts',
        './f.ts',
        './g.ts',
        './h.ts',
        './i.ts type',
        './j.ts dynamic',
        './k.ts dynamic',
        './l.json',
        './m.ts dynamic',
      ],
    );
  });

  it('resolves every relative .ts import of src/ to a file that exists', () => {
    const unresolved = [...GRAPH.values()]
      .flat()
      .filter((edge) => edge.to.endsWith('.ts') && edge.ref.specifier.startsWith('.') && !GRAPH.has(edge.to))
      .map((edge) => `${edge.from}: ${edge.ref.specifier}`);
    assert.deepEqual(unresolved, []);
    assert.ok(SOURCES.length > 100, `only ${SOURCES.length} files under src/`);
  });

  it('names only files that exist in the pure and edge lists', () => {
    const missing = [...EDGES_IN_PURE_FOLDERS, ...PURE_FILES].filter((file) => !existsSync(join(ROOT, file)));
    assert.deepEqual(missing, [], 'renamed or deleted: update the lists here and in docs/architecture.md');
  });
});

describe('architecture: the dependency rules', () => {
  it('finds the known violations and no other (a new one fails; a fixed one must leave KNOWN_VIOLATIONS)', () => {
    const found = findViolations(GRAPH);
    const added = [...found]
      .filter(([key]) => !KNOWN_VIOLATIONS.includes(key))
      .map(([k, d]) => `${k}\n    ${d}`);
    const fixed = KNOWN_VIOLATIONS.filter((key) => !found.has(key));
    assert.deepEqual(added, [], 'new dependency violations (see docs/architecture.md, "Layers")');
    assert.deepEqual(fixed, [], 'fixed: remove these from KNOWN_VIOLATIONS in test/architecture.test.ts');
  });

  it('catches a cycle, an upward import and I/O in a pure module when they are added', () => {
    const graph = new Map(GRAPH);
    const add = (from: string, to: string): void => {
      graph.set(from, [
        ...(graph.get(from) ?? []),
        { from, to, ref: { specifier: to, typeOnly: true, dynamic: false } },
      ]);
    };
    add('src/net/ip.ts', 'src/net/cidr.ts');
    add('src/config/model.ts', 'src/cli/main.ts');
    add('src/lb/selection.ts', 'node:fs/promises');
    add('src/net/ip.ts', 'os');
    const http = { from: 'src/gateway/proxy.ts', to: 'node:http' };
    graph.set(http.from, [
      ...(graph.get(http.from) ?? []),
      { ...http, ref: { specifier: http.to, typeOnly: false, dynamic: false } },
    ]);
    const found = findViolations(graph);
    assert.ok(found.has('cycle: src/net/cidr.ts <-> src/net/ip.ts'));
    assert.ok(found.has('cli: src/config/model.ts -> src/cli/main.ts'));
    assert.ok(found.has('io: src/lb/selection.ts reaches fs'));
    assert.ok(found.has('http: src/gateway/proxy.ts imports node:http'));
    assert.equal(
      found.get('io: src/net/cidr-set.ts reaches os'),
      'src/net/cidr-set.ts -> src/net/ip.ts -> os',
    );
  });
});
