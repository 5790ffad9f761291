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
  const parsed = parseTcp4Fast(input, 6, cr) ?? parseLine(latin1(input, 6, cr));
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

let scanEnd = 0;

/** A strict dotted quad at input[i..end); its text, with scanEnd just after it, or null. */
function scanIPv4(input: Uint8Array, i: number, end: number): string | null {
  let out = '';
  for (let octet = 0; octet < 4; octet++) {
    let value = 0;
    let digits = 0;
    while (i < end) {
      const c = input[i]!;
      if (c < 0x30 || c > 0x39) break;
      if (digits > 0 && value === 0) return null;
      value = value * 10 + (c - 0x30);
      if (++digits > 3) return null;
      i++;
    }
    if (digits === 0 || value > 255) return null;
    if (octet < 3) {
      if (input[i] !== 0x2e) return null;
      i++;
      out += DEC_DOT[value]!;
    } else {
      out += DEC[value]!;
    }
  }
  scanEnd = i;
  return out;
}

/** A port at input[i..end) as parsePort accepts it, with scanEnd just after it, or -1. */
function scanPort(input: Uint8Array, i: number, end: number): number {
  const start = i;
  let value = 0;
  while (i < end) {
    const c = input[i]!;
    if (c < 0x30 || c > 0x39) break;
    value = value * 10 + (c - 0x30);
    i++;
  }
  const digits = i - start;
  if (digits === 0 || digits > 5 || value > 65535 || (digits > 1 && input[start] === 0x30)) return -1;
  scanEnd = i;
  return value;
}

/**
 * The common case, "TCP4 a.b.c.d e.f.g.h p q", straight from the bytes. Returns null for anything
 * else, and the string parser below (the reference) then decides, errors included.
 */
function parseTcp4Fast(input: Uint8Array, start: number, end: number): ProxyHeader | null {
  if (end - start < 20) return null;
  if (input[start] !== 0x54 || input[start + 1] !== 0x43 || input[start + 2] !== 0x50) return null;
  if (input[start + 3] !== 0x34 || input[start + 4] !== 0x20) return null;
  const source = scanIPv4(input, start + 5, end);
  if (source === null || input[scanEnd] !== 0x20) return null;
  const destination = scanIPv4(input, scanEnd + 1, end);
  if (destination === null || input[scanEnd] !== 0x20) return null;
  const sourcePort = scanPort(input, scanEnd + 1, end);
  if (sourcePort < 0 || input[scanEnd] !== 0x20) return null;
  const destinationPort = scanPort(input, scanEnd + 1, end);
  if (destinationPort < 0 || scanEnd !== end) return null;
  return {
    version: 1,
    command: 'PROXY',
    protocol: 'TCP4',
    source: { address: source, port: sourcePort },
    destination: { address: destination, port: destinationPort },
    tlvs: [],
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

/** The address in canonical form, or null. IPv4 text that passes the strict parse is canonical. */
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
