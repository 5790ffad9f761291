// PROXY protocol v1: "PROXY SP proto SP src SP dst SP sport SP dport CRLF", at most 107 bytes.
import { DEC, DEC_DOT, formatIPv6, parseIPv4, parseIPv6 } from './address.ts';
import { type PpError, ppError } from './errors.ts';
import type { ParseResult, ProxyHeader } from './types.ts';

/** The longest v1 header, CRLF included. */
export const V1_MAX_LENGTH = 107;

const PREFIX = [0x50, 0x52, 0x4f, 0x58, 0x59, 0x20]; // "PROXY "
const CR = 0x0d;
const LF = 0x0a;
const INCOMPLETE: ParseResult = Object.freeze({ kind: 'incomplete' });

/** Parses a v1 header at the start of `input`; `input[0]` is known to be "P". */
export function parseV1(input: Uint8Array): ParseResult {
  return parseTcp4Line(input) ?? parseV1Reference(input);
}

/**
 * The general v1 parser: every protocol, partial lines, every error. parseV1 tries the one-pass
 * TCP4 scanner first and falls back here for anything else, so this alone decides what is
 * accepted (exported for the test that checks the two agree).
 */
export function parseV1Reference(input: Uint8Array): ParseResult {
  const len = input.length;
  const n = Math.min(len, 6);
  for (let i = 0; i < n; i++) {
    if (input[i] !== PREFIX[i]) {
      return fail(i < 5 ? ppError('PP_NOT_PROXY_PROTOCOL') : ppError('PP_V1_BAD_SIGNATURE'));
    }
  }
  if (len < 6) return INCOMPLETE;
  // The CR may sit at index 105 at the latest, so that CRLF ends at byte 107.
  const limit = Math.min(len, V1_MAX_LENGTH - 1);
  let cr = -1;
  for (let i = 6; i < limit; i++) {
    const c = input[i];
    if (c === CR) {
      cr = i;
      break;
    }
    if (c === LF) return fail(ppError('PP_V1_BAD_LINE_END', `LF without CR at offset ${i}`));
  }
  if (cr < 0) {
    if (len >= V1_MAX_LENGTH - 1) return fail(ppError('PP_V1_TOO_LONG'));
    const partial = checkPartialLine(latin1(input, 6, len));
    return partial === null ? INCOMPLETE : fail(partial);
  }
  const parsed = parseLine(latin1(input, 6, cr));
  if ('code' in parsed) return fail(parsed);
  if (cr + 1 >= len) return INCOMPLETE;
  if (input[cr + 1] !== LF)
    return fail(ppError('PP_V1_BAD_LINE_END', `CR not followed by LF at offset ${cr}`));
  return { kind: 'header', header: parsed, consumed: cr + 2 };
}

function fail(error: PpError): ParseResult {
  return { kind: 'error', error };
}

function latin1(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode.apply(null, bytes.subarray(start, end) as unknown as number[]);
}

/**
 * The common case, a complete "PROXY TCP4 a.b.c.d e.f.g.h p q\r\n", in one pass over the bytes
 * with no intermediate strings (address text comes from the octet table). Returns null for
 * anything else, including valid headers it does not cover (TCP6, UNKNOWN) and every error: the
 * reference parser then decides. One function with a local cursor, because that is what V8
 * optimises best here. The longest TCP4 line is 56 bytes, so the 107-byte limit needs no check.
 */
function parseTcp4Line(input: Uint8Array): ParseResult | null {
  const len = input.length;
  if (
    len < 32 || // "PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n"
    input[1] !== 0x52 ||
    input[2] !== 0x4f ||
    input[3] !== 0x58 ||
    input[4] !== 0x59 ||
    input[5] !== 0x20 ||
    input[6] !== 0x54 ||
    input[7] !== 0x43 ||
    input[8] !== 0x50 ||
    input[9] !== 0x34 ||
    input[10] !== 0x20
  ) {
    return null;
  }
  let i = 11;
  let source = '';
  let destination = '';
  // Two dotted quads, each followed by a space.
  for (let field = 0; field < 2; field++) {
    let text = '';
    for (let octet = 0; octet < 4; octet++) {
      if (i >= len) return null;
      let value = input[i]! - 0x30;
      if (value < 0 || value > 9) return null;
      i++;
      // A zero is a whole octet: "0" is fine, "01" is not (the next byte must then be . or SP).
      if (value !== 0) {
        for (let digits = 1; digits < 3 && i < len; digits++) {
          const d = input[i]! - 0x30;
          if (d < 0 || d > 9) break;
          value = value * 10 + d;
          i++;
        }
        if (value > 255) return null;
      }
      if (i >= len) return null;
      if (octet < 3) {
        if (input[i] !== 0x2e) return null;
        text += DEC_DOT[value]!;
      } else {
        if (input[i] !== 0x20) return null;
        text += DEC[value]!;
      }
      i++;
    }
    if (field === 0) source = text;
    else destination = text;
  }
  // Two ports (0-65535, no leading zero): the first ends at SP, the second at CR.
  let sourcePort = 0;
  let destinationPort = 0;
  for (let field = 0; field < 2; field++) {
    if (i >= len) return null;
    let value = input[i]! - 0x30;
    if (value < 0 || value > 9) return null;
    i++;
    if (value !== 0) {
      for (let digits = 1; digits < 5 && i < len; digits++) {
        const d = input[i]! - 0x30;
        if (d < 0 || d > 9) break;
        value = value * 10 + d;
        i++;
      }
      if (value > 65535) return null;
    }
    if (i >= len || input[i] !== (field === 0 ? 0x20 : CR)) return null;
    i++;
    if (field === 0) sourcePort = value;
    else destinationPort = value;
  }
  if (i >= len || input[i] !== LF) return null;
  return {
    kind: 'header',
    header: {
      version: 1,
      command: 'PROXY',
      protocol: 'TCP4',
      source: { address: source, port: sourcePort },
      destination: { address: destination, port: destinationPort },
      tlvs: [],
    },
    consumed: i + 1,
  };
}

/** The fields after "PROXY " up to (not including) CR. */
function parseLine(line: string): ProxyHeader | PpError {
  const fields = line.split(' ');
  const protocol = fields[0]!;
  if (protocol === 'UNKNOWN') {
    // The spec: anything after UNKNOWN up to CRLF is ignored; the socket's endpoints apply.
    return { version: 1, command: 'PROXY', protocol: 'UNKNOWN', source: null, destination: null, tlvs: [] };
  }
  if (protocol !== 'TCP4' && protocol !== 'TCP6') {
    return ppError('PP_V1_BAD_PROTOCOL', `"${printable(protocol)}"`);
  }
  if (fields.length !== 5) return ppError('PP_V1_BAD_FIELD_COUNT', `${fields.length - 1} after ${protocol}`);
  const source = parseAddress(protocol, fields[1]!);
  if (source === null) return ppError('PP_V1_BAD_ADDRESS', `source "${printable(fields[1]!)}"`);
  const destination = parseAddress(protocol, fields[2]!);
  if (destination === null) return ppError('PP_V1_BAD_ADDRESS', `destination "${printable(fields[2]!)}"`);
  const sourcePort = parsePort(fields[3]!);
  if (sourcePort < 0) return ppError('PP_V1_BAD_PORT', `source port "${printable(fields[3]!)}"`);
  const destinationPort = parsePort(fields[4]!);
  if (destinationPort < 0) return ppError('PP_V1_BAD_PORT', `destination port "${printable(fields[4]!)}"`);
  return {
    version: 1,
    command: 'PROXY',
    protocol,
    source: { address: source, port: sourcePort },
    destination: { address: destination, port: destinationPort },
    tlvs: [],
  };
}

/**
 * The address in canonical form, or null: the spec's grammar is net/ip.ts's strict one (no leading
 * zeros, no zone). IPv4 text that passes the strict parse is canonical; IPv6 keeps a mapped form.
 */
function parseAddress(protocol: 'TCP4' | 'TCP6', text: string): string | null {
  if (protocol === 'TCP4') return parseIPv4(text) === null ? null : text;
  const bytes = parseIPv6(text);
  return bytes === null ? null : formatIPv6(bytes, 0);
}

/** 0-65535 in decimal, no sign, no leading zeros; -1 otherwise. */
export function parsePort(text: string): number {
  const len = text.length;
  if (len === 0 || len > 5 || (len > 1 && text.charCodeAt(0) === 0x30)) return -1;
  let value = 0;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    value = value * 10 + (c - 0x30);
  }
  return value > 65535 ? -1 : value;
}

/**
 * A line without its CRLF yet: null when more bytes could still complete a valid header, else
 * the error, so that a sender of garbage is refused at once instead of holding the connection.
 */
function checkPartialLine(partial: string): PpError | null {
  const fields = partial.split(' ');
  const last = fields.length - 1;
  const protocol = fields[0]!;
  if (last === 0) {
    const viable =
      'TCP4'.startsWith(protocol) || 'TCP6'.startsWith(protocol) || 'UNKNOWN'.startsWith(protocol);
    return viable ? null : ppError('PP_V1_BAD_PROTOCOL', `"${printable(protocol)}"`);
  }
  if (protocol === 'UNKNOWN') return null;
  if (protocol !== 'TCP4' && protocol !== 'TCP6')
    return ppError('PP_V1_BAD_PROTOCOL', `"${printable(protocol)}"`);
  if (last > 4) return ppError('PP_V1_BAD_FIELD_COUNT', `more than 4 after ${protocol}`);
  for (let f = 1; f <= last; f++) {
    const text = fields[f]!;
    const complete = f < last;
    if (f <= 2) {
      if (complete ? parseAddress(protocol, text) === null : !viableAddress(protocol, text)) {
        return ppError('PP_V1_BAD_ADDRESS', `"${printable(text)}"`);
      }
    } else if (complete ? parsePort(text) < 0 : !viablePort(text)) {
      return ppError('PP_V1_BAD_PORT', `"${printable(text)}"`);
    }
  }
  return null;
}

/**
 * Whether more bytes could still make `text` an address: a prefix test on a field still being
 * received, not a parse (a complete field goes through parseAddress, i.e. net/ip.ts's parser).
 */
function viableAddress(protocol: 'TCP4' | 'TCP6', text: string): boolean {
  const pattern = protocol === 'TCP4' ? /^[0-9.]{0,15}$/ : /^[0-9A-Fa-f:.]{0,45}$/;
  return pattern.test(text);
}

function viablePort(text: string): boolean {
  return /^(0|[1-9][0-9]{0,4})?$/.test(text);
}

/** Field text for an error message: control and non-ASCII bytes escaped, at most 48 characters. */
function printable(text: string): string {
  const clipped = text.length > 48 ? `${text.slice(0, 48)}...` : text;
  return clipped.replace(/[^\x20-\x7e]|"/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
