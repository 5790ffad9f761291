// Reading manifest files: files and directories (recursively), multi-document YAML, JSON, and List
// objects flattened. Each object remembers where it came from so every later issue can name the file,
// the document and the field. This is the I/O edge; parseManifestText is pure.
import { open, readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { LineCounter, parseAllDocuments } from 'yaml';
import { firstDuplicateKey } from '../config/yaml-keys.ts';
import type { ConfigIssue, Origin } from '../config/model.ts';
import { formatFieldPath, type PathSegment } from './field-path.ts';
import type { ManifestObject } from './objects.ts';
import { isRecord } from './reader.ts';

// The object type lives with the views (pure modules use it); re-exported for loadManifests' callers.
export type { ManifestObject } from './objects.ts';

export interface LoadResult {
  objects: ManifestObject[];
  /** Errors (bad YAML, missing fields, unreadable files) and infos; every one names file and document. */
  issues: ConfigIssue[];
}

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);
/** Manifests are configuration, not data: a cap keeps a wrong path from eating the heap. */
export const MAX_MANIFEST_BYTES = 32 * 1024 * 1024;
/** YAML aliases can expand exponentially ("billion laughs"); real manifests use few or none. */
const MAX_ALIAS_COUNT = 100;
/** Lists inside lists are legal but rare; the cap keeps a hostile file from recursing forever. */
const MAX_LIST_DEPTH = 8;

/**
 * A file's text, or null once it passes `max` bytes: the size stat gives is not enough (a device
 * such as /dev/zero has none and never ends).
 */
async function readCapped(file: string, max: number): Promise<string | null> {
  const handle = await open(file, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const { bytesRead, buffer } = await handle.read(Buffer.allocUnsafe(64 * 1024), 0, 64 * 1024, null);
      if (bytesRead === 0) return Buffer.concat(chunks, total).toString('utf8');
      total += bytesRead;
      if (total > max) return null;
      chunks.push(buffer.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
}

export async function loadManifests(paths: readonly string[]): Promise<LoadResult> {
  const result: LoadResult = { objects: [], issues: [] };
  const files: FoundFile[] = [];
  const walk: Walk = { files, directories: new Set(), issues: result.issues };
  for (const path of paths) await collectFiles(path, true, walk);
  // The same file under two names (`d` and `d/./x.yaml`, a link) is read once.
  const seen = new Set<string>();
  for (const { path: file, identity } of files) {
    if (seen.has(identity)) continue;
    seen.add(identity);
    let text: string;
    try {
      const info = await stat(file);
      const capped = info.size > MAX_MANIFEST_BYTES ? null : await readCapped(file, MAX_MANIFEST_BYTES);
      if (capped === null) {
        result.issues.push(
          fileIssue(
            'MANIFEST_TOO_LARGE',
            file,
            `${file}: more than the ${MAX_MANIFEST_BYTES} bytes allowed for a manifest file`,
          ),
        );
        continue;
      }
      text = capped;
    } catch (err) {
      result.issues.push(
        fileIssue('MANIFEST_READ_ERROR', file, `${file}: cannot read: ${(err as Error).message}`),
      );
      continue;
    }
    const parsed = parseManifestText(text, file);
    result.objects.push(...parsed.objects);
    result.issues.push(...parsed.issues);
  }
  return result;
}

interface FoundFile {
  path: string;
  /** Device and inode: one file whatever its name. */
  identity: string;
}

interface Walk {
  files: FoundFile[];
  /** Directories already walked (device and inode): a link back to an ancestor is not walked again. */
  directories: Set<string>;
  issues: ConfigIssue[];
}

async function collectFiles(path: string, explicit: boolean, walk: Walk): Promise<void> {
  const { issues } = walk;
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (err) {
    issues.push(fileIssue('MANIFEST_READ_ERROR', path, `${path}: cannot read: ${(err as Error).message}`));
    return;
  }
  const identity = `${info.dev}:${info.ino}`;
  if (info.isDirectory()) {
    if (walk.directories.has(identity)) return;
    walk.directories.add(identity);
    let entries: string[];
    try {
      entries = await readdir(path);
    } catch (err) {
      issues.push(
        fileIssue('MANIFEST_READ_ERROR', path, `${path}: cannot list directory: ${(err as Error).message}`),
      );
      return;
    }
    // Sorted by code unit so the same directory always yields the same object order.
    entries.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const entry of entries) {
      if (entry.startsWith('.')) continue;
      await collectFiles(join(path, entry), false, walk);
    }
    return;
  }
  // A file named on the command line is read whatever it is (`-f <(kubectl get …)` is a pipe); inside
  // directories only regular manifest files: a FIFO named x.yaml would wait for a writer for ever.
  if (explicit || (info.isFile() && MANIFEST_EXTENSIONS.has(extname(path).toLowerCase())))
    walk.files.push({ path, identity });
}

/** Parses one file's text. `fileName` is only used to name the origin in objects and issues. */
export function parseManifestText(text: string, fileName: string): LoadResult {
  const result: LoadResult = { objects: [], issues: [] };
  let documents: ReturnType<typeof parseAllDocuments>;
  // Duplicate keys are checked by firstDuplicateKey, in one pass (the library's check is quadratic).
  const lineCounter = new LineCounter();
  try {
    documents = parseAllDocuments(text, {
      uniqueKeys: false,
      prettyErrors: true,
      strict: true,
      merge: true,
      lineCounter,
    });
  } catch (err) {
    result.issues.push(fileIssue('MANIFEST_YAML_ERROR', fileName, `${fileName}: ${(err as Error).message}`));
    return result;
  }
  // parseAllDocuments returns an EmptyStream (an array-like with no documents) for empty input.
  const list = Array.isArray(documents) ? documents : [];
  list.forEach((doc, index) => {
    const document = index + 1;
    const where = `${fileName}, document ${document}`;
    if (doc.errors.length > 0) {
      const first = doc.errors[0]!;
      const line = first.linePos?.[0];
      const at = line ? ` (line ${line.line}, column ${line.col})` : '';
      result.issues.push({
        severity: 'error',
        code: 'MANIFEST_YAML_ERROR',
        message: `${where}: invalid YAML${at}: ${firstLine(first.message)}`,
        origin: anonymousOrigin(fileName, document),
      });
      return;
    }
    const duplicate = firstDuplicateKey(doc, lineCounter);
    if (duplicate !== null) {
      result.issues.push({
        severity: 'error',
        code: 'MANIFEST_YAML_ERROR',
        message: `${where}: invalid YAML (line ${duplicate.line}, column ${duplicate.col}): Map keys must be unique (${JSON.stringify(duplicate.key.slice(0, 100))} twice)`,
        origin: anonymousOrigin(fileName, document),
      });
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      result.issues.push({
        severity: 'error',
        code: 'MANIFEST_YAML_ERROR',
        message: `${where}: ${(err as Error).message}`,
        origin: anonymousOrigin(fileName, document),
      });
      return;
    }
    addDocument(value, fileName, document, result);
  });
  return result;
}

/**
 * The objects of documents already parsed (JSON values, one per document), checked as the documents
 * of a manifest file are: the loader's rules without the YAML text.
 */
export function manifestObjectsOf(documents: readonly unknown[], fileName: string): LoadResult {
  const result: LoadResult = { objects: [], issues: [] };
  documents.forEach((value, index) => {
    addDocument(value, fileName, index + 1, result);
  });
  return result;
}

function addDocument(value: unknown, fileName: string, document: number, result: LoadResult): void {
  // An empty document (a trailing `---`, a file of comments) is not an error.
  if (value === null || value === undefined) return;
  addObject(value, fileName, document, [], 0, result);
}

function addObject(
  value: unknown,
  file: string,
  document: number,
  path: PathSegment[],
  depth: number,
  result: LoadResult,
): void {
  const where = `${file}, document ${document}`;
  const at = path.length > 0 ? ` ${formatFieldPath(path)}` : '';
  if (!isRecord(value)) {
    result.issues.push({
      severity: 'error',
      code: 'MANIFEST_NOT_AN_OBJECT',
      message: `${where}${at}: expected a Kubernetes object (a mapping), found ${describe(value)}`,
      origin: anonymousOrigin(file, document),
      ...(path.length > 0 ? { field: formatFieldPath(path) } : {}),
    });
    return;
  }
  const kind = typeof value.kind === 'string' ? value.kind : '';
  const apiVersion = typeof value.apiVersion === 'string' ? value.apiVersion : '';
  const metadata = isRecord(value.metadata) ? value.metadata : null;
  const name = metadata && typeof metadata.name === 'string' ? metadata.name : '';
  const namespace =
    metadata && typeof metadata.namespace === 'string' && metadata.namespace !== ''
      ? metadata.namespace
      : 'default';
  const origin: Origin = { file, document, kind, namespace, name };

  // `kind: List` and every `*List` (ServiceList, ...) carry their objects in `items`.
  if (kind === 'List' || (kind.endsWith('List') && Array.isArray(value.items))) {
    if (!Array.isArray(value.items)) {
      result.issues.push(missing(origin, [...path, 'items'], 'a list of objects'));
      return;
    }
    if (depth >= MAX_LIST_DEPTH) {
      result.issues.push({
        severity: 'error',
        code: 'MANIFEST_LIST_TOO_DEEP',
        message: `${where}${at}: Lists nested more than ${MAX_LIST_DEPTH} deep`,
        origin,
      });
      return;
    }
    value.items.forEach((item, i) => {
      addObject(item, file, document, [...path, 'items', i], depth + 1, result);
    });
    return;
  }

  let complete = true;
  if (typeof value.apiVersion !== 'string' || value.apiVersion === '') {
    result.issues.push(missing(origin, [...path, 'apiVersion'], 'a string such as "v1"'));
    complete = false;
  }
  if (typeof value.kind !== 'string' || value.kind === '') {
    result.issues.push(missing(origin, [...path, 'kind'], 'a string such as "Service"'));
    complete = false;
  }
  if (metadata === null) {
    result.issues.push(missing(origin, [...path, 'metadata'], 'a mapping with a name'));
    complete = false;
  } else if (typeof metadata.name !== 'string' || metadata.name === '') {
    result.issues.push(missing(origin, [...path, 'metadata', 'name'], 'a non-empty string'));
    complete = false;
  } else if (metadata.namespace !== undefined && typeof metadata.namespace !== 'string') {
    result.issues.push({
      severity: 'error',
      code: 'MANIFEST_INVALID_FIELD',
      message: `${where} (${kind || 'object'} "${name}"): field ${formatFieldPath([...path, 'metadata', 'namespace'])} must be a string`,
      origin,
      field: formatFieldPath([...path, 'metadata', 'namespace']),
    });
    complete = false;
  }
  if (!complete) return;
  result.objects.push({ apiVersion, kind, origin, raw: value });
}

function missing(origin: Origin, path: PathSegment[], expected: string): ConfigIssue {
  const field = formatFieldPath(path);
  const what = origin.kind ? `${origin.kind}${origin.name ? ` "${origin.name}"` : ''}` : 'object';
  return {
    severity: 'error',
    code: 'MANIFEST_MISSING_FIELD',
    message: `${origin.file}, document ${origin.document} (${what}): missing or invalid field ${field}, expected ${expected}`,
    origin,
    field,
  };
}

function fileIssue(code: ConfigIssue['code'], file: string, message: string): ConfigIssue {
  return { severity: 'error', code, message, origin: anonymousOrigin(file, 0) };
}

/** The origin of something that is not (yet) a named object: a file, or a document in it. */
function anonymousOrigin(file: string, document: number): Origin {
  return { file, document, kind: '', namespace: '', name: '' };
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'a sequence';
  if (value === null) return 'null';
  return `a ${typeof value}`;
}
