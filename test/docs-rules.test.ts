// The rule ids the source cites (A1, K3, G5 from docs/rules.md; I2 from docs/architecture.md) against
// the headings of those documents: every cited id must have exactly one well-formed heading
// (`### G5 — <title>`) in its family's document. Also: every document the source names must exist.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = join(import.meta.dirname, '..');

/** Each rule family and the document that defines it. */
const FAMILIES: Readonly<Record<string, string>> = {
  A: 'docs/rules.md',
  K: 'docs/rules.md',
  G: 'docs/rules.md',
  I: 'docs/architecture.md',
};
const DOCUMENTS = [...new Set(Object.values(FAMILIES))];

/** `A1`..`A99` for the known families; `L4`, `V8`, `A0` or `A01` are not rule ids. */
const CITATION = /\b([AGKI])([1-9][0-9]?)\b/g;
/** The older spelling of an invariant: "invariant 2". */
const INVARIANT_WORD = /\binvariants? ([1-9][0-9]?)\b/g;
/** "rule X9" names a rule id whatever its family, so an unknown family is caught. */
const RULE_WORD = /\b[Rr]ule ([A-Z]{1,2})([0-9]+)\b/g;
/** A heading that starts like a rule id of a known family, well-formed or not. */
const ID_LIKE_HEADING = /^#{1,6}\s+\(?([A-Za-z])-?(\d+)\b/;
const STRICT_HEADING = /^### ([AGKI])([1-9][0-9]?) — \S/;
/** A document path in a comment or string: `docs/x.md`, `examples/seed/README.md`, `ARCHITECTURE.md`. */
const DOCUMENT_PATH = /(?<![\w/.-])((?:[\w.-]+\/)*[\w.-]+\.md)\b/g;

function listSources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return listSources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The rule ids a text cites, and `rule X9` citations of families that do not exist. */
function citedIds(text: string): { ids: Set<string>; unknownFamilies: string[] } {
  const ids = new Set<string>();
  for (const m of text.matchAll(CITATION)) ids.add(`${m[1]}${m[2]}`);
  for (const m of text.matchAll(INVARIANT_WORD)) ids.add(`I${m[1]}`);
  const unknownFamilies = [...text.matchAll(RULE_WORD)]
    .filter((m) => FAMILIES[m[1]!] === undefined)
    .map((m) => `${m[1]}${m[2]}`);
  return { ids, unknownFamilies };
}

interface HeadingScan {
  /** id -> where its heading is (`docs/rules.md:12`). */
  defined: Map<string, string>;
  problems: string[];
}

/** Collects the rule headings of several documents; malformed, misplaced and repeated ones are problems. */
function scanHeadings(documents: ReadonlyMap<string, string>): HeadingScan {
  const scan: HeadingScan = { defined: new Map(), problems: [] };
  for (const [doc, text] of documents) {
    text.split('\n').forEach((line, index) => {
      const where = `${doc}:${index + 1}`;
      const like = ID_LIKE_HEADING.exec(line);
      if (like === null || FAMILIES[like[1]!.toUpperCase()] === undefined) return;
      const strict = STRICT_HEADING.exec(line);
      if (strict === null) {
        scan.problems.push(`${where}: malformed rule heading "${line}" (write "### G5 — title")`);
        return;
      }
      const id = `${strict[1]}${strict[2]}`;
      const home = FAMILIES[strict[1]!]!;
      const seen = scan.defined.get(id);
      if (home !== doc) scan.problems.push(`${where}: ${id} belongs in ${home}`);
      else if (seen !== undefined) scan.problems.push(`${where}: ${id} is already a heading at ${seen}`);
      else scan.defined.set(id, where);
    });
  }
  return scan;
}

/** A cited document exists: paths from the repository root, bare names at the root or in docs/. */
function documentExists(path: string): boolean {
  if (path.includes('/')) return existsSync(join(ROOT, path));
  return existsSync(join(ROOT, path)) || existsSync(join(ROOT, 'docs', path));
}

const SOURCES = listSources('src');
const TEXTS = new Map(SOURCES.map((file) => [file, readFileSync(join(ROOT, file), 'utf8')]));
const DOCS = new Map(
  DOCUMENTS.map((doc) => [doc, existsSync(join(ROOT, doc)) ? readFileSync(join(ROOT, doc), 'utf8') : '']),
);

describe('rule ids: the checks themselves', () => {
  it('reads citations and leaves look-alikes alone', () => {
    const text = "(K1) 'A2' | 'A3' /^G5/ A10, invariant 6; L4 L7 V8 Z0 A0 A01 0xA1 rule Q3 rule A4";
    const { ids, unknownFamilies } = citedIds(text);
    assert.deepEqual([...ids].sort(), ['A10', 'A2', 'A3', 'A4', 'G5', 'I6', 'K1']);
    assert.deepEqual(unknownFamilies, ['Q3']);
  });

  it('reports malformed, misplaced and repeated headings', () => {
    const rules = ['### A1 — fine', '## A2 — level', '### a3 — case', '### A04 — zero', '### K1: colon'];
    rules.push('### G1 — fine', '### G1 — again', '### I1 — not here', '## K8s objects', '## 1. Numbers');
    const { defined, problems } = scanHeadings(
      new Map([
        ['docs/rules.md', rules.join('\n')],
        ['docs/architecture.md', '### I2 — fine\n### A1 — elsewhere'],
      ]),
    );
    assert.deepEqual([...defined.keys()].sort(), ['A1', 'G1', 'I2']);
    assert.deepEqual(
      problems.map((p) => p.slice(0, p.indexOf(' '))),
      [
        'docs/rules.md:2:',
        'docs/rules.md:3:',
        'docs/rules.md:4:',
        'docs/rules.md:5:',
        'docs/rules.md:7:',
        'docs/rules.md:8:',
        'docs/architecture.md:2:',
      ],
    );
  });
});

describe('rule ids: the source against docs/rules.md and docs/architecture.md', () => {
  const headings = scanHeadings(DOCS);

  it('has one well-formed heading per rule id in the documents', () => {
    assert.deepEqual(headings.problems, []);
    for (const doc of DOCUMENTS) assert.ok(DOCS.get(doc) !== '', `${doc} is missing`);
  });

  it('defines every rule id the source cites', () => {
    const missing: string[] = [];
    const unknown: string[] = [];
    for (const [file, text] of TEXTS) {
      const cited = citedIds(text);
      for (const id of cited.ids) if (!headings.defined.has(id)) missing.push(`${file}: ${id}`);
      for (const id of cited.unknownFamilies) unknown.push(`${file}: rule ${id}`);
    }
    assert.deepEqual(missing, [], `no "### <id> — …" heading in ${DOCUMENTS.join(' or ')}`);
    assert.deepEqual(unknown, [], `unknown rule families; known: ${Object.keys(FAMILIES).join(', ')}`);
  });

  it('cites only documents that exist', () => {
    const stale: string[] = [];
    for (const [file, text] of TEXTS) {
      for (const m of text.matchAll(DOCUMENT_PATH))
        if (!documentExists(m[1]!)) stale.push(`${file}: ${m[1]}`);
    }
    assert.deepEqual(stale, [], 'documents cited in src/ that do not exist');
  });
});
