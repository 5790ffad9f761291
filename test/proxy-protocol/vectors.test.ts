// The shared reference vectors: verdict, consumed length and addresses for each of them, and for
// every rejected vector the exact error code (not only "rejected").
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  PP_ERROR_MESSAGES,
  type PpErrorCode,
  parseCompleteProxyHeader,
  parseProxyHeader,
} from '../../src/proxy-protocol/index.ts';
import type { Endpoint, ProxyHeader } from '../../src/proxy-protocol/index.ts';

interface Vector {
  id: number;
  hex: string;
  verdict: 'accept' | 'reject';
  consumed?: number;
  summary?: string;
  /** The reference's name for the refusal, e.g. "V1_BAD_CRLF" or "INCOMPLETE(need CRLF)". */
  error?: string;
  /** keepip's code for it. */
  code?: string;
  origin: string;
}

/**
 * The reference's refusal names and keepip's codes, one to one: a fixture `code` that disagrees
 * with its reference name is a fixture error, not a parser property.
 */
const CODE_FOR_REFERENCE: Readonly<Record<string, PpErrorCode>> = {
  INCOMPLETE: 'PP_INCOMPLETE',
  NOT_PROXY_PROTOCOL: 'PP_NOT_PROXY_PROTOCOL',
  V1_BAD_SIGNATURE: 'PP_V1_BAD_SIGNATURE',
  V1_BAD_CRLF: 'PP_V1_BAD_LINE_END',
  V1_BAD_PROTO: 'PP_V1_BAD_PROTOCOL',
  V1_BAD_FIELD_COUNT: 'PP_V1_BAD_FIELD_COUNT',
  V1_BAD_ADDR: 'PP_V1_BAD_ADDRESS',
  V1_BAD_PORT: 'PP_V1_BAD_PORT',
  V2_BAD_VERSION: 'PP_V2_BAD_VERSION',
  V2_BAD_COMMAND: 'PP_V2_BAD_COMMAND',
  V2_BAD_FAMILY_OR_TRANSPORT: 'PP_V2_BAD_FAMILY',
  V2_LENGTH_TOO_SMALL_FOR_FAMILY: 'PP_V2_LENGTH_TOO_SMALL',
  TLV_TRUNCATED: 'PP_V2_TLV_TRUNCATED',
  TLV_OVERFLOW: 'PP_V2_TLV_OVERFLOW',
  CRC32C_MISMATCH: 'PP_V2_CRC32C_MISMATCH',
  CRC32C_BAD_LEN: 'PP_V2_CRC32C_BAD_LENGTH',
};

// A copy of the reference vectors (shared/reference/proxy-protocol-vectors.json), kept in the
// repository so a clean checkout tests against them without the workspace around it.
const vectors = JSON.parse(
  readFileSync(new URL('../fixtures/proxy-protocol/vectors.json', import.meta.url), 'utf8'),
) as Vector[];

function endpointText(e: Endpoint | null): string {
  if (e === null) return 'null';
  if ('path' in e) return e.path;
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

/** "TCP4 1.2.3.4:5 -> 6.7.8.9:10" as the summaries write it (when they carry addresses). */
function addressSummary(h: ProxyHeader): string {
  return `${h.protocol} ${endpointText(h.source)} -> ${endpointText(h.destination)}`;
}

test('the reference file holds the 49 vectors, every rejected one with its code', () => {
  assert.equal(vectors.length, 49);
  const rejected = vectors.filter((v) => v.verdict === 'reject');
  assert.equal(rejected.length, 31);
  assert.deepEqual(
    rejected.filter((v) => v.code === undefined).map((v) => v.id),
    [],
  );
});

for (const v of vectors) {
  test(`vector ${v.id} (${v.origin}): ${v.verdict}`, () => {
    const bytes = Buffer.from(v.hex, 'hex');
    const result = parseCompleteProxyHeader(bytes);
    if (v.verdict === 'reject') {
      const reference = (v.error ?? '').split('(')[0]!;
      assert.equal(v.code, CODE_FOR_REFERENCE[reference], `fixture code for ${v.error}`);
      assert.ok(v.code !== undefined && v.code in PP_ERROR_MESSAGES, `unknown code ${v.code}`);
      assert.equal(result.kind, 'error', JSON.stringify(result));
      if (result.kind !== 'error') return;
      assert.equal(result.error.code, v.code, result.error.message);
      const stream = parseProxyHeader(bytes);
      if (v.code === 'PP_INCOMPLETE') {
        // As a stream, the same bytes are a header still arriving, not an error.
        assert.equal(stream.kind, 'incomplete');
      } else {
        // The socket reader refuses them with the same code as the one-shot parse.
        assert.equal(stream.kind === 'error' && stream.error.code, v.code);
      }
      return;
    }
    assert.equal(result.kind, 'header', JSON.stringify(result));
    if (result.kind !== 'header') return;
    assert.equal(result.consumed, v.consumed);
    const h = result.header;
    const summary = v.summary ?? '';
    const addresses = /^(?:PROXY )?(TCP4|TCP6|UDP4|UDP6) (\S+) -> ([^;\s]+)/.exec(summary);
    if (addresses !== null) {
      assert.equal(h.command, 'PROXY');
      assert.equal(addressSummary(h), `${addresses[1]} ${addresses[2]} -> ${addresses[3]}`);
    } else {
      // LOCAL, UNSPEC and UNKNOWN: use the socket's own endpoints.
      assert.match(summary, /real endpoints/);
      assert.equal(h.source, null);
      assert.equal(h.destination, null);
      assert.equal(h.command, summary.startsWith('LOCAL') ? 'LOCAL' : 'PROXY');
    }
    const authority = /AUTHORITY='([^']*)'/.exec(summary);
    assert.equal(h.authority, authority?.[1]);
    const vpce = /AWS_VPCE='([^']*)'/.exec(summary);
    assert.equal(h.awsVpcEndpointId, vpce?.[1]);
    assert.equal(h.crc32c !== undefined, /CRC32C ok/.test(summary));
    const ssl = /SSL\(client=0x([0-9a-f]+),verify=(\d+),(\d+)B sub-TLVs\)/.exec(summary);
    if (ssl !== null) {
      assert.ok(h.ssl);
      assert.equal(h.ssl.client, Number.parseInt(ssl[1]!, 16));
      assert.equal(h.ssl.verify, Number(ssl[2]));
      assert.equal(
        h.ssl.tlvs.reduce((n, t) => n + 3 + t.value.length, 0),
        Number(ssl[3]),
      );
    } else {
      assert.equal(h.ssl, undefined);
    }
    const noop = /NOOP\((\d+)\)/.exec(summary);
    if (noop !== null) {
      assert.ok(h.tlvs.some((t) => t.type === 0x04 && t.value.length === Number(noop[1])));
    }
  });
}
