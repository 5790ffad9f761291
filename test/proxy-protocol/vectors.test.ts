// The shared reference vectors: verdict, consumed length and addresses for each of them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseCompleteProxyHeader, parseProxyHeader } from '../../src/proxy-protocol/index.ts';
import type { Endpoint, ProxyHeader } from '../../src/proxy-protocol/index.ts';

interface Vector {
  id: number;
  hex: string;
  verdict: 'accept' | 'reject';
  consumed?: number;
  summary?: string;
  error?: string;
  origin: string;
}

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

test('the reference file holds the 49 vectors', () => {
  assert.equal(vectors.length, 49);
});

for (const v of vectors) {
  test(`vector ${v.id} (${v.origin}): ${v.verdict}`, () => {
    const bytes = Buffer.from(v.hex, 'hex');
    const result = parseCompleteProxyHeader(bytes);
    if (v.verdict === 'reject') {
      assert.equal(result.kind, 'error', JSON.stringify(result));
      if (v.error?.startsWith('INCOMPLETE')) {
        assert.equal(result.kind === 'error' && result.error.code, 'PP_INCOMPLETE');
        // As a stream, the same bytes are a header still arriving, not an error.
        assert.equal(parseProxyHeader(bytes).kind, 'incomplete');
      } else {
        assert.notEqual(result.kind === 'error' && result.error.code, 'PP_INCOMPLETE');
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
