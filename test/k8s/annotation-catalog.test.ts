// The classification of every ingress-nginx annotation and ConfigMap key (src/k8s/annotation-catalog.ts):
// complete, in agreement with what the readers implement, reported by the right code, and rendered into
// docs/ingress-nginx-compat.md. Regenerate the page's tables:
//   KEEPIP_WRITE_COMPAT_DOC=1 node --test test/k8s/annotation-catalog.test.ts
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  ANNOTATION_CATALOG,
  ANNOTATIONS_IN_CODE_ONLY,
  ANNOTATIONS_IN_TEXT_ONLY,
  CONFIGMAP_CATALOG,
  type CatalogEntry,
  type CatalogStatus,
  editDistance,
  namesWithStatus,
} from '../../src/k8s/annotation-catalog.ts';
import { SUPPORTED_ANNOTATIONS, SUPPORTED_CONFIGMAP_KEYS } from '../../src/k8s/annotations.ts';
import { formatFieldPath } from '../../src/k8s/field-path.ts';
import { configMap, ingress, service, topologyOf } from './helpers.ts';

const DOC = join(import.meta.dirname, '..', '..', 'docs', 'ingress-nginx-compat.md');
const P = 'nginx.ingress.kubernetes.io/';

const names = (catalog: readonly CatalogEntry[]) => catalog.flatMap((e) => e.names);
const sorted = (list: readonly string[]) => [...list].sort();
const cell = (text: string) => text.replaceAll('|', '\\|');

function mark(name: string): string {
  if (ANNOTATIONS_IN_TEXT_ONLY.includes(name)) return `\`${name}\` †`;
  if (ANNOTATIONS_IN_CODE_ONLY.includes(name)) return `\`${name}\` ‡`;
  return `\`${name}\``;
}

function table(
  catalog: readonly CatalogEntry[],
  status: CatalogStatus,
  what: string,
  marks: (name: string) => string,
): string[] {
  const rows = catalog.filter((e) => e.status === status);
  const list = (e: CatalogEntry) => e.names.map(marks).join(', ');
  if (status === 'implemented') {
    const head = what === 'annotation' ? 'values' : 'default';
    return [
      `| ${what} | ${head} | behaviour in keepip |`,
      '|---|---|---|',
      ...rows.map((e) => `| ${list(e)} | ${cell(e.values ?? '')} | ${cell(e.note)} |`),
    ];
  }
  if (status === 'no-effect') {
    return [
      `| ${what} | why nothing observable changes |`,
      '|---|---|',
      ...rows.map((e) => `| ${list(e)} | ${cell(e.note)} |`),
    ];
  }
  return [
    `| ${what} | why | the keepip way |`,
    '|---|---|---|',
    ...rows.map((e) => `| ${list(e)} | ${cell(e.note)} | ${cell(e.instead ?? '—')} |`),
  ];
}

function counts(catalog: readonly CatalogEntry[]): string {
  const n = (s: CatalogStatus) => namesWithStatus(catalog, s).length;
  return `${names(catalog).length}: ${n('implemented')} implemented, ${n('no-effect')} no effect, ${n('refused')} refused`;
}

/** The generated part of docs/ingress-nginx-compat.md: one block per catalog. */
export function renderCatalog(kind: 'annotations' | 'configmap'): string {
  const annotations = kind === 'annotations';
  const catalog = annotations ? ANNOTATION_CATALOG : CONFIGMAP_CATALOG;
  const what = annotations ? 'annotation' : 'key';
  const marks = annotations ? mark : (name: string) => `\`${name}\``;
  const lines = [
    `<!-- Generated from src/k8s/annotation-catalog.ts (${counts(catalog)}).`,
    '     Regenerate: KEEPIP_WRITE_COMPAT_DOC=1 node --test test/k8s/annotation-catalog.test.ts -->',
    '',
    `**Implemented** (${namesWithStatus(catalog, 'implemented').length})`,
    '',
    ...table(catalog, 'implemented', what, marks),
    '',
    `**No effect** (${namesWithStatus(catalog, 'no-effect').length}): accepted with an info \`${annotations ? 'ANNOTATION_NO_EFFECT' : 'CONFIGMAP_KEY_NO_EFFECT'}\` naming why`,
    '',
    ...table(catalog, 'no-effect', what, marks),
    '',
    `**Refused** (${namesWithStatus(catalog, 'refused').length}): a warning \`${annotations ? 'ANNOTATION_REFUSED' : 'CONFIGMAP_KEY_REFUSED'}\` with the reason; the ${annotations ? 'Ingress' : 'configuration'} is served without it`,
    '',
    ...table(catalog, 'refused', what, marks),
  ];
  if (annotations) {
    lines.push(
      '',
      "† documented in the text of ingress-nginx's annotations page, not in its table; ‡ read by ingress-nginx's annotation parsers, not documented. The others are the 117 of its table.",
    );
  }
  return lines.join('\n');
}

function between(doc: string, kind: string): { start: number; end: number } {
  const open = `<!-- BEGIN ${kind} -->\n`;
  const close = `\n<!-- END ${kind} -->`;
  const start = doc.indexOf(open);
  const end = doc.indexOf(close);
  assert.ok(
    start >= 0 && end > start,
    `docs/ingress-nginx-compat.md has no ${open.trim()} … ${close.trim()} block`,
  );
  return { start: start + open.length, end };
}

describe('annotation catalog', () => {
  it('lists every ingress-nginx annotation once: the 117 of its table, 13 from its text, 8 from its code', () => {
    const all = names(ANNOTATION_CATALOG);
    assert.equal(new Set(all).size, all.length, 'a name is listed twice');
    assert.equal(all.length, 138);
    for (const n of [...ANNOTATIONS_IN_TEXT_ONLY, ...ANNOTATIONS_IN_CODE_ONLY]) assert.ok(all.includes(n), n);
    assert.equal(all.length - ANNOTATIONS_IN_TEXT_ONLY.length - ANNOTATIONS_IN_CODE_ONLY.length, 117);
  });

  it('lists every documented ConfigMap key once', () => {
    const all = names(CONFIGMAP_CATALOG);
    assert.equal(new Set(all).size, all.length, 'a key is listed twice');
    assert.equal(all.length, 211);
  });

  it('implemented means read: the catalog and the readers agree', () => {
    assert.deepEqual(
      sorted(namesWithStatus(ANNOTATION_CATALOG, 'implemented')),
      sorted(SUPPORTED_ANNOTATIONS),
    );
    assert.deepEqual(
      sorted(namesWithStatus(CONFIGMAP_CATALOG, 'implemented')),
      sorted(SUPPORTED_CONFIGMAP_KEYS),
    );
  });

  it('every entry says why, and every refusal is a reason', () => {
    for (const e of [...ANNOTATION_CATALOG, ...CONFIGMAP_CATALOG]) {
      assert.ok(e.note.trim().length > 10, `${e.names[0]}: a note`);
      assert.ok(!e.note.includes('\n'), `${e.names[0]}: one line`);
      if (e.status === 'implemented') assert.ok(e.values !== undefined, `${e.names[0]}: values`);
      else assert.equal(e.values, undefined, `${e.names[0]}: values only for implemented entries`);
    }
  });

  it('no ingress-nginx annotation is unknown: each is read, or reported by its classification', () => {
    const annotations: Record<string, string> = {};
    for (const name of names(ANNOTATION_CATALOG)) annotations[P + name] = 'x';
    // At the Critical level no annotation keeps the Ingress from being served (annotation-risk.ts).
    const critical = configMap({ 'annotations-risk-level': 'Critical' });
    const t = topologyOf(critical + ingress({ name: 'all', annotations }) + service('svc'));
    const field = (n: string) => `metadata.annotations["${P}${n}"]`;
    const byCode = (code: string) => t.issues.filter((i) => i.code === code).map((i) => i.field);
    assert.deepEqual(byCode('UNSUPPORTED_ANNOTATION'), []);
    assert.deepEqual(
      sorted(byCode('ANNOTATION_NO_EFFECT') as string[]),
      sorted(namesWithStatus(ANNOTATION_CATALOG, 'no-effect').map(field)),
    );
    assert.deepEqual(
      sorted(byCode('ANNOTATION_REFUSED') as string[]),
      sorted(namesWithStatus(ANNOTATION_CATALOG, 'refused').map(field)),
    );
    for (const i of t.issues.filter((x) => x.code === 'ANNOTATION_NO_EFFECT'))
      assert.equal(i.severity, 'info');
    for (const i of t.issues.filter((x) => x.code === 'ANNOTATION_REFUSED'))
      assert.equal(i.severity, 'warning');
    const snippet = t.issues.find((i) => i.field === field('configuration-snippet'))!;
    assert.match(snippet.message, /refused: keepip never runs nginx configuration text.*The keepip way: /);
    const buffer = t.issues.find((i) => i.field === field('proxy-buffer-size'))!;
    assert.match(buffer.message, /accepted, no effect: nginx's response buffers/);
  });

  it('no ingress-nginx ConfigMap key is unknown', () => {
    const data: Record<string, string> = {};
    for (const name of names(CONFIGMAP_CATALOG)) data[name] = 'x';
    const t = topologyOf(configMap(data));
    assert.deepEqual(
      t.issues.filter((i) => i.code === 'UNSUPPORTED_CONFIGMAP_KEY').map((i) => i.field),
      [],
    );
    const refused = t.issues.filter((i) => i.code === 'CONFIGMAP_KEY_REFUSED').map((i) => i.field);
    // allow-snippet-annotations is read; any value but "false" is refused.
    assert.deepEqual(
      sorted(refused as string[]),
      sorted(
        [...namesWithStatus(CONFIGMAP_CATALOG, 'refused'), 'allow-snippet-annotations'].map((k) =>
          formatFieldPath(['data', k]),
        ),
      ),
    );
    assert.equal(
      t.issues.filter((i) => i.code === 'CONFIGMAP_KEY_NO_EFFECT').length,
      namesWithStatus(CONFIGMAP_CATALOG, 'no-effect').length,
    );
    assert.deepEqual(
      sorted(t.gateway.settings.unsupportedKeys),
      sorted([...namesWithStatus(CONFIGMAP_CATALOG, 'refused'), 'allow-snippet-annotations']),
    );
  });

  it('a name ingress-nginx does not have either is UNSUPPORTED, with the nearest known name', () => {
    const t = topologyOf(
      ingress({
        name: 'typos',
        annotations: { [`${P}enable-cor`]: 'true', [`${P}rewrite-targt`]: '/', [`${P}zzzzzz`]: '1' },
      }) +
        service('svc') +
        configMap({ 'use-proxy-protocl': 'true' }),
    );
    const unknown = t.issues.filter((i) => i.code === 'UNSUPPORTED_ANNOTATION');
    assert.equal(unknown.length, 3);
    assert.match(
      unknown[0]!.message,
      /"nginx.ingress.kubernetes.io\/enable-cor" is not an ingress-nginx name; ignored; did you mean "enable-cors"\?/,
    );
    assert.match(unknown[1]!.message, /did you mean "rewrite-target"\?/);
    assert.doesNotMatch(unknown[2]!.message, /did you mean/);
    const key = t.issues.find((i) => i.code === 'UNSUPPORTED_CONFIGMAP_KEY')!;
    assert.match(key.message, /did you mean "use-proxy-protocol"\?/);
  });

  it('edit distance', () => {
    assert.equal(editDistance('kitten', 'sitting', 5), 3);
    assert.equal(editDistance('same', 'same', 0), 0);
    assert.equal(editDistance('a', 'abcdef', 2), 3);
  });

  it('docs/ingress-nginx-compat.md shows the catalog as generated', () => {
    let doc = readFileSync(DOC, 'utf8');
    for (const kind of ['annotations', 'configmap'] as const) {
      const { start, end } = between(doc, kind);
      const expected = renderCatalog(kind);
      if (process.env.KEEPIP_WRITE_COMPAT_DOC === '1') doc = doc.slice(0, start) + expected + doc.slice(end);
      const range = between(doc, kind);
      assert.equal(
        doc.slice(range.start, range.end),
        expected,
        `the ${kind} tables of docs/ingress-nginx-compat.md are stale: KEEPIP_WRITE_COMPAT_DOC=1 node --test test/k8s/annotation-catalog.test.ts`,
      );
    }
    if (process.env.KEEPIP_WRITE_COMPAT_DOC === '1') writeFileSync(DOC, doc);
  });
});
