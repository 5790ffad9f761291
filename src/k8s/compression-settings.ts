// The controller ConfigMap keys for compressing responses, as ingress-nginx writes them into nginx:
// use-gzip (gzip on, with gzip_proxied any, gzip_vary on, gzip_http_version 1.1), gzip-level,
// gzip-min-length, gzip-types, gzip-disable, and the brotli module's enable-brotli, brotli-level,
// brotli-min-length, brotli-types. Defaults are ingress-nginx's (both off). Bad values keep the
// default with a warning, as every other key; an unusable gzip-disable pattern is left out.
import type { CompressionCodecModel, CompressionModel, GatewaySettings } from '../config/model.ts';
import { readMapKey } from '../config/nginx-map.ts';
import { configMapSource, readBool, readWhole, type ScalarSource } from './scalar-readers.ts';

export const COMPRESSION_CONFIGMAP_KEYS: readonly string[] = [
  'use-gzip',
  'gzip-level',
  'gzip-min-length',
  'gzip-types',
  'gzip-disable',
  'enable-brotli',
  'brotli-level',
  'brotli-min-length',
  'brotli-types',
];

/** ingress-nginx's gzip-types default. */
export const DEFAULT_GZIP_TYPES =
  'application/atom+xml application/javascript application/x-javascript application/json application/rss+xml application/vnd.ms-fontobject application/x-font-ttf application/x-web-app-manifest+json application/xhtml+xml application/xml font/opentype image/svg+xml image/x-icon text/css text/javascript text/plain text/x-component';
/** ingress-nginx's brotli-types default. */
export const DEFAULT_BROTLI_TYPES = `application/xml+rss ${DEFAULT_GZIP_TYPES}`;

/** nginx's gzip_disable "msie6": MSIE 4 to 6 (nginx leaves out "MSIE 6.0; ... SV1", which we do not). */
const MSIE6 = '~*MSIE [4-6]\\.';

export interface CompressionSink {
  invalid(key: string, value: string, expected: string, kept: string): void;
}

/** gzip_types / brotli_types: MIME types, lower case; `*` is any. */
function types(data: Readonly<Record<string, string>>, key: string, fallback: string): string[] {
  const text = data[key]?.trim();
  return (text === undefined || text === '' ? fallback : text).toLowerCase().split(/\s+/);
}

/** gzip_disable: regular expressions on the User-Agent (case-insensitive), or "msie6". */
function disablePatterns(text: string | undefined, sink: CompressionSink): string[] {
  const out: string[] = [];
  for (const word of (text ?? '').trim().split(/\s+/)) {
    if (word === '') continue;
    const entry = word.toLowerCase() === 'msie6' ? MSIE6 : `~*${word}`;
    if (readMapKey(entry).ok) out.push(entry);
    else
      sink.invalid(
        'gzip-disable',
        word,
        'a regular expression on the User-Agent, or msie6',
        'to compress for it',
      );
  }
  return out;
}

function codec(
  source: ScalarSource,
  data: Readonly<Record<string, string>>,
  names: { level: string; minLength: string; types: string },
  defaults: { level: number; maxLevel: number; minLength: number; types: string },
): CompressionCodecModel {
  const level = readWhole(source, names.level, defaults.level, {
    max: defaults.maxLevel,
    min: defaults.maxLevel === 9 ? 1 : 0,
    expected: `a level from ${defaults.maxLevel === 9 ? 1 : 0} to ${defaults.maxLevel}`,
    kept: String(defaults.level),
  });
  const minLength = readWhole(source, names.minLength, defaults.minLength, {
    max: 2 ** 31 - 1,
    expected: 'a number of bytes',
    kept: String(defaults.minLength),
  });
  return { level, minLength, types: types(data, names.types, defaults.types) };
}

/** Reads the compression keys of the controller ConfigMap into `settings.compression` (when one is on). */
export function applyCompressionSettings(
  data: Readonly<Record<string, string>>,
  settings: GatewaySettings,
  sink: CompressionSink,
): void {
  const source = configMapSource(data, (...report) => sink.invalid(...report), { blankIsAbsent: true });
  const useGzip = readBool(source, 'use-gzip', false);
  const useBrotli = readBool(source, 'enable-brotli', false);
  if (!useGzip && !useBrotli) return;
  const model: CompressionModel = { gzip: null, brotli: null, disable: [] };
  if (useGzip) {
    const names = { level: 'gzip-level', minLength: 'gzip-min-length', types: 'gzip-types' };
    model.gzip = codec(source, data, names, {
      level: 1,
      maxLevel: 9,
      minLength: 256,
      types: DEFAULT_GZIP_TYPES,
    });
    model.disable = disablePatterns(data['gzip-disable'], sink);
  }
  if (useBrotli) {
    const names = { level: 'brotli-level', minLength: 'brotli-min-length', types: 'brotli-types' };
    model.brotli = codec(source, data, names, {
      level: 4,
      maxLevel: 11,
      minLength: 20,
      types: DEFAULT_BROTLI_TYPES,
    });
  }
  settings.compression = model;
}
