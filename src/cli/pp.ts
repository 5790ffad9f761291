// `keepip pp decode|encode`: look inside PROXY protocol headers and craft them for tests.
import {
  alpnTlv,
  authorityTlv,
  awsVpcEndpointIdTlv,
  azureLinkIdTlv,
  type EncodeSpec,
  type Endpoint,
  gcpConnectionIdTlv,
  headerToJson,
  netnsTlv,
  noopTlv,
  type ProxyTransportProtocol,
  parseCompleteProxyHeader,
  type Tlv,
  tryEncodeProxyHeader,
  uniqueIdTlv,
} from '../proxy-protocol/index.ts';
import { parseHostPort } from '../net/host-port.ts';
import { parseCommandArgs, usageError } from './args.ts';
import type { Command } from './main.ts';

const HELP = `Usage: keepip pp decode <HEX | ->
       keepip pp encode [options]

decode  Parse one PROXY protocol v1/v2 header from HEX, or from stdin with "-" (hex text or raw
        bytes). Prints one JSON object: version, command, protocol (TCP4 TCP6 UDP4 UDP6
        UNIX_STREAM UNIX_DGRAM UNSPEC UNKNOWN), source and destination ({"address","port"},
        {"path"} for UNIX, null for LOCAL/UNSPEC/UNKNOWN), headerLength (bytes the header takes;
        anything after it is application data), tlvs and the decoded TLV fields.
        Exit 0 for a valid header; 1 with {"error":{"code","message"}} for an invalid or
        incomplete one; 2 for bad usage.

encode  Build a header and print it as hex (or raw bytes with --raw).
  --version 1|2            protocol version (default 2)
  --command PROXY|LOCAL    default PROXY (v1 writes LOCAL as "PROXY UNKNOWN")
  --protocol NAME          TCP4 TCP6 UDP4 UDP6 UNIX_STREAM UNIX_DGRAM UNSPEC UNKNOWN
                           (default: from --source, or UNSPEC for LOCAL)
  --source ADDR:PORT       client address ([v6]:port for IPv6); or --source-path PATH (UNIX)
  --destination ADDR:PORT  address the client connected to; or --destination-path PATH
  --authority HOST         AUTHORITY TLV (0x02)
  --alpn PROTO             ALPN TLV (0x01)
  --unique-id TEXT         UNIQUE_ID TLV (0x05, at most 128 bytes)
  --netns NAME             NETNS TLV (0x30)
  --aws-vpce ID            AWS TLV (0xEA) with the VPC endpoint id
  --azure-link-id N        Azure Private Link TLV (0xEE) with LINKID N
  --gcp-connection-id N    GCP Private Service Connect TLV (0xE0) with connection id N
  --noop N                 NOOP TLV (0x04) of N zero bytes
  --tlv TYPE:HEX           any TLV, e.g. --tlv 0xe3:cafe (repeatable, written in order)
  --crc32c                 add a CRC32C TLV (0x03) and fill it in
  --unchecked              write TLVs even when the result would be refused (for negative tests)
  --raw                    write the raw bytes instead of hex

  -h, --help               this help

Examples:
  keepip pp encode --source 203.0.113.7:40000 --destination 10.0.0.1:443 --authority example.com --crc32c
  keepip pp decode 0d0a0d0a000d0a515549540a211100147f0000017f000001002a05390200053132333435
  printf 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\\r\\n' | keepip pp decode -
`;

const USAGE = { command: 'pp', help: HELP };

/** Hex text (whitespace and a leading 0x allowed) as bytes, or null when it is not hex. */
function fromHex(text: string): Buffer | null {
  const clean = text.replace(/\s+/g, '').replace(/^0x/i, '');
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) return null;
  return Buffer.from(clean, 'hex');
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function decode(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs(USAGE, {
    args: argv,
    options: { help: { type: 'boolean', short: 'h' } },
    strict: true,
    allowPositionals: true,
  });
  if (typeof parsed === 'number') return parsed;
  const { positionals } = parsed;
  if (positionals.length !== 1) return usageError(USAGE, 'decode takes exactly one argument: HEX or "-"');
  let input: Buffer;
  if (positionals[0] === '-') {
    const raw = await readStdin();
    // Text that is entirely hex is hex; anything else (a v1 line, v2 binary) is the bytes themselves.
    input = fromHex(raw.toString('latin1')) ?? raw;
    if (raw.length > 0 && raw.toString('latin1').trim() === '') input = raw;
  } else {
    const bytes = fromHex(positionals[0]!);
    if (bytes === null)
      return usageError(USAGE, `"${positionals[0]}" is not hex (use "-" to read raw bytes from stdin)`);
    input = bytes;
  }
  const result = parseCompleteProxyHeader(input);
  if (result.kind === 'header') {
    process.stdout.write(`${JSON.stringify(headerToJson(result.header, result.consumed))}\n`);
    return 0;
  }
  const error = result.kind === 'error' ? result.error : { code: 'PP_INCOMPLETE', message: 'incomplete' };
  process.stdout.write(`${JSON.stringify({ error: { code: error.code, message: error.message } })}\n`);
  return 1;
}

const PROTOCOLS: readonly ProxyTransportProtocol[] = [
  'TCP4',
  'TCP6',
  'UDP4',
  'UDP6',
  'UNIX_STREAM',
  'UNIX_DGRAM',
  'UNSPEC',
  'UNKNOWN',
];

function parseInteger(text: string, max: bigint): bigint | null {
  if (!/^(0x[0-9a-fA-F]+|\d+)$/.test(text)) return null;
  const value = BigInt(text);
  return value <= max ? value : null;
}

function endpoint(
  hostPort: string | undefined,
  path: string | undefined,
  role: string,
): Endpoint | string | undefined {
  if (hostPort !== undefined && path !== undefined) return `give --${role} or --${role}-path, not both`;
  if (path !== undefined) return { path };
  if (hostPort === undefined) return undefined;
  const parsed = parseHostPort(hostPort);
  if (!parsed.ok) return `--${role}: ${parsed.error}`;
  return { address: parsed.value.host, port: parsed.value.port };
}

const ENCODE_OPTIONS = {
  version: { type: 'string' },
  command: { type: 'string' },
  protocol: { type: 'string' },
  source: { type: 'string' },
  destination: { type: 'string' },
  'source-path': { type: 'string' },
  'destination-path': { type: 'string' },
  authority: { type: 'string' },
  alpn: { type: 'string' },
  'unique-id': { type: 'string' },
  netns: { type: 'string' },
  'aws-vpce': { type: 'string' },
  'azure-link-id': { type: 'string' },
  'gcp-connection-id': { type: 'string' },
  noop: { type: 'string' },
  tlv: { type: 'string', multiple: true },
  crc32c: { type: 'boolean' },
  unchecked: { type: 'boolean' },
  raw: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type EncodeValues = Record<string, string | boolean | string[] | undefined>;

async function encode(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs(USAGE, {
    args: argv,
    options: ENCODE_OPTIONS,
    strict: true,
    allowPositionals: false,
  });
  if (typeof parsed === 'number') return parsed;
  const values: EncodeValues = parsed.values;
  const spec = specFrom(values);
  if (typeof spec === 'string') return usageError(USAGE, spec);
  const result = tryEncodeProxyHeader(spec);
  if (!result.ok) {
    process.stderr.write(`keepip pp encode: ${result.error.code}: ${result.error.message}\n`);
    return 2;
  }
  process.stdout.write(values.raw ? result.value : `${result.value.toString('hex')}\n`);
  return 0;
}

/** The header the options describe, or what is wrong with them. */
function specFrom(values: EncodeValues): EncodeSpec | string {
  const str = (name: string) => values[name] as string | undefined;
  const version = str('version') ?? '2';
  if (version !== '1' && version !== '2') return `--version must be 1 or 2, not "${version}"`;
  const commandName = (str('command') ?? 'PROXY').toUpperCase();
  if (commandName !== 'PROXY' && commandName !== 'LOCAL') return '--command must be PROXY or LOCAL';
  const protocolName = str('protocol')?.toUpperCase();
  if (protocolName !== undefined && !PROTOCOLS.includes(protocolName as ProxyTransportProtocol)) {
    return `--protocol must be one of ${PROTOCOLS.join(' ')}`;
  }
  const source = endpoint(str('source'), str('source-path'), 'source');
  if (typeof source === 'string') return source;
  const destination = endpoint(str('destination'), str('destination-path'), 'destination');
  if (typeof destination === 'string') return destination;
  const tlvs = tlvsFrom(values);
  if (typeof tlvs === 'string') return tlvs;
  return {
    version: version === '1' ? 1 : 2,
    command: commandName,
    ...(protocolName !== undefined ? { protocol: protocolName as ProxyTransportProtocol } : {}),
    ...(source !== undefined ? { source } : {}),
    ...(destination !== undefined ? { destination } : {}),
    ...(tlvs.length > 0 ? { tlvs } : {}),
    ...(values.crc32c ? { crc32c: true } : {}),
    ...(values.unchecked ? { validate: false } : {}),
  };
}

/** The TLVs in the order they are written: the named ones, then every --tlv as given. */
function tlvsFrom(values: EncodeValues): Tlv[] | string {
  const str = (name: string) => values[name] as string | undefined;
  const tlvs: Tlv[] = [];
  try {
    if (str('alpn') !== undefined) tlvs.push(alpnTlv(str('alpn')!));
    if (str('authority') !== undefined) tlvs.push(authorityTlv(str('authority')!));
    if (str('unique-id') !== undefined) tlvs.push(uniqueIdTlv(str('unique-id')!));
    if (str('netns') !== undefined) tlvs.push(netnsTlv(str('netns')!));
    if (str('aws-vpce') !== undefined) tlvs.push(awsVpcEndpointIdTlv(str('aws-vpce')!));
  } catch (error) {
    return (error as Error).message;
  }
  if (str('azure-link-id') !== undefined) {
    const id = parseInteger(str('azure-link-id')!, 0xffffffffn);
    if (id === null) return '--azure-link-id must be an integer 0-4294967295';
    tlvs.push(azureLinkIdTlv(Number(id)));
  }
  if (str('gcp-connection-id') !== undefined) {
    const id = parseInteger(str('gcp-connection-id')!, 0xffffffffffffffffn);
    if (id === null) return '--gcp-connection-id must be an unsigned 64-bit integer';
    tlvs.push(gcpConnectionIdTlv(id));
  }
  if (str('noop') !== undefined) {
    const n = parseInteger(str('noop')!, 65535n);
    if (n === null) return '--noop must be a byte count 0-65535';
    tlvs.push(noopTlv(Number(n)));
  }
  for (const text of (values.tlv as string[] | undefined) ?? []) {
    const match = /^(0x[0-9a-fA-F]{1,2}|\d{1,3}):([0-9a-fA-F]*)$/.exec(text);
    const type = match ? Number(match[1]) : Number.NaN;
    if (!match || type > 255 || match[2]!.length % 2 !== 0) {
      return `--tlv "${text}" is not TYPE:HEX with TYPE 0-255, e.g. 0xe3:cafe`;
    }
    tlvs.push({ type, value: Buffer.from(match[2]!, 'hex') });
  }
  return tlvs;
}

export const command: Command = {
  summary: 'Decode and encode PROXY protocol v1/v2 headers',
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === '-h' || sub === '--help' || sub === 'help') {
      process.stdout.write(HELP);
      return 0;
    }
    if (sub === 'decode') return decode(rest);
    if (sub === 'encode') return encode(rest);
    return usageError(
      USAGE,
      sub === undefined ? 'missing subcommand: decode or encode' : `unknown subcommand "${sub}"`,
    );
  },
};
