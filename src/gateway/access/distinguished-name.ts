// A certificate's subject and issuer as nginx's $ssl_client_s_dn / $ssl_client_i_dn print them:
// OpenSSL's X509_NAME_print_ex with XN_FLAG_RFC2253, read from the certificate's DER (Node's own
// `subject` text is already escaped, keeps raw UTF-8, names unknown attributes as text and writes a
// multi-valued RDN as `A=x + B=y`: escaped again it said other things than nginx's, and
// auth-tls-match-cn matched the wrong text). The rules: RDNs last first, separated by `,`, the members
// of one RDN by `+` (also last first); attributes by OpenSSL's short names, an unknown one by its OID
// with its value as `#` and the DER in hex; values converted to UTF-8, then `,+"\<>;` escaped with `\`,
// a leading `#` or space and a trailing space too, control bytes and bytes above 0x7f as `\XX`.
import * as asn1js from 'asn1js';
import { ATTRIBUTE_SHORT_NAMES } from './attribute-short-names.ts';

/** Universal tags of the string types OpenSSL prints as text, with how their bytes are characters. */
const STRING_TYPES: Readonly<Record<number, 'utf8' | 'latin1' | 'ucs2' | 'ucs4'>> = {
  12: 'utf8', // UTF8String
  18: 'latin1', // NumericString
  19: 'latin1', // PrintableString
  20: 'latin1', // T61String, read as Latin-1 by OpenSSL
  22: 'latin1', // IA5String
  26: 'latin1', // VisibleString
  28: 'ucs4', // UniversalString
  30: 'ucs2', // BMPString
};

/** The subject and issuer of a DER certificate in RFC 2253 form; null when it cannot be read. */
export function certificateNames(der: Uint8Array): { subject: string; issuer: string } | null {
  const parsed = asn1js.fromBER(der);
  if (parsed.offset === -1) return null;
  const tbs = (parsed.result as asn1js.Sequence).valueBlock?.value?.[0] as asn1js.Sequence | undefined;
  const fields = tbs?.valueBlock?.value;
  if (fields === undefined) return null;
  // An explicit [0] version comes first in X.509 v2 and v3 certificates.
  const at = fields[0]?.idBlock.tagClass === 3 ? 1 : 0;
  const issuer = fields[at + 2];
  const subject = fields[at + 4];
  if (!(issuer instanceof asn1js.Sequence) || !(subject instanceof asn1js.Sequence)) return null;
  return { subject: rfc2253(subject), issuer: rfc2253(issuer) };
}

function rfc2253(name: asn1js.Sequence): string {
  let out = '';
  const rdns = name.valueBlock.value;
  for (let r = rdns.length - 1; r >= 0; r--) {
    const members = (rdns[r] as asn1js.Set).valueBlock?.value ?? [];
    for (let m = members.length - 1; m >= 0; m--) {
      if (out !== '') out += m === members.length - 1 ? ',' : '+';
      out += attribute(members[m] as asn1js.Sequence);
    }
  }
  return out;
}

function attribute(pair: asn1js.Sequence): string {
  const [type, value] = pair.valueBlock?.value ?? [];
  const oid = type instanceof asn1js.ObjectIdentifier ? type.valueBlock.toString() : '';
  const short = ATTRIBUTE_SHORT_NAMES[oid];
  const kind =
    value !== undefined && value.idBlock.tagClass === 1 ? STRING_TYPES[value.idBlock.tagNumber] : undefined;
  // Unknown attributes, and values that are not strings, are dumped (XN_FLAG_DUMP_UNKNOWN_FIELDS).
  if (short === undefined || kind === undefined || value === undefined)
    return `${short ?? oid}=#${hex(value === undefined ? new Uint8Array() : new Uint8Array(value.toBER()))}`;
  const bytes = (value as asn1js.BaseStringBlock).valueBlock.valueHexView;
  return `${short}=${escapeValue(utf8Of(bytes, kind))}`;
}

function utf8Of(bytes: Uint8Array, kind: 'utf8' | 'latin1' | 'ucs2' | 'ucs4'): Uint8Array {
  if (kind === 'utf8') return bytes;
  if (kind === 'latin1') return Buffer.from(Buffer.from(bytes).toString('latin1'), 'utf8');
  const width = kind === 'ucs2' ? 2 : 4;
  let text = '';
  for (let i = 0; i + width <= bytes.length; i += width) {
    const view = Buffer.from(bytes.subarray(i, i + width));
    const code = width === 2 ? view.readUInt16BE(0) : view.readUInt32BE(0);
    text += code <= 0x10ffff ? String.fromCodePoint(code) : '\ufffd';
  }
  return Buffer.from(text, 'utf8');
}

const SPECIAL = new Set([...',+"\\<>;'].map((c) => c.charCodeAt(0)));

function escapeValue(bytes: Uint8Array): string {
  let out = '';
  bytes.forEach((b, i) => {
    const first = i === 0;
    const last = i === bytes.length - 1;
    if (b < 0x20 || b >= 0x7f) out += `\\${hex(Uint8Array.of(b))}`;
    else if (SPECIAL.has(b) || (first && (b === 0x23 || b === 0x20)) || (last && b === 0x20))
      out += `\\${String.fromCharCode(b)}`;
    else out += String.fromCharCode(b);
  });
  return out;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex').toUpperCase();
}
