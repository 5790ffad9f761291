// Every stable code keepip reports, in one registry: what it means and what the user does about it.
// Each module keeps its codes beside the code that emits them, in its own errors.ts (a table
// `{ CODE: { kind, summary, fix } }` and the union of its codes); this file only merges those tables,
// module by module, so that docs/errors.md and the tests (test/errors.test.ts) hold the whole product
// to one list. The PROXY protocol codes come from the codec's own table (PP_ERROR_MESSAGES).
import { DOCTOR_CODES, type DoctorCode } from './doctor/errors.ts';
import type { CodeInfo, CodeTable, ErrorKind } from './error-table.ts';
import { GATEWAY_CODES, type GatewayCode } from './gateway/errors.ts';
import { K8S_CODES, type K8sCode } from './k8s/errors.ts';
import { LB_CODES, type LbCode } from './lb/errors.ts';
import { NET_CODES, type NetCode } from './net/errors.ts';
import { PP_ERROR_MESSAGES, type PpErrorCode } from './proxy-protocol/errors.ts';
import { UP_CODES, type UpCode } from './up/errors.ts';
import { WHOAMI_CODES, type WhoamiCode } from './whoami/errors.ts';

export type { ErrorKind } from './error-table.ts';

export type ErrorModule = 'proxy-protocol' | 'net' | 'k8s' | 'gateway' | 'lb' | 'doctor' | 'up' | 'whoami';

/** Each module's heading in docs/errors.md, in the order the registry lists the modules. */
export const ERROR_MODULES: { readonly [M in ErrorModule]: string } = {
  'proxy-protocol': 'PROXY protocol codec (`src/proxy-protocol/`, `keepip pp`, every PROXY-aware listener)',
  net: 'Addresses, CIDR sets and client-IP resolution (`src/net/`)',
  k8s: 'Manifests and their translation (`src/k8s/`): configuration issues',
  gateway: 'Gateway (`src/gateway/`, `keepip gateway`): routes, configuration snapshots, upstream outcomes',
  lb: 'Load balancer (`src/lb/`, `keepip lb`)',
  doctor: 'Doctor (`src/doctor/`, `keepip doctor`): errors, probe outcomes and finding ids',
  up: 'The whole chain (`src/up/`, `keepip up`)',
  whoami: 'Echo backend (`src/whoami/`, `keepip whoami`)',
};

/** A registry row: a module's table entry with its code and module. */
export interface ErrorEntry extends CodeInfo {
  readonly code: string;
  readonly module: ErrorModule;
}

export type ErrorCode =
  | PpErrorCode
  | NetCode
  | K8sCode
  | GatewayCode
  | LbCode
  | DoctorCode
  | UpCode
  | WhoamiCode;

type RegistryEntry = ErrorEntry & { readonly code: ErrorCode };

interface PpFix {
  readonly kind: ErrorKind;
  readonly fix: string;
}

const PEER_FIX =
  "a broken sender: check the load balancer's PROXY settings, and that nothing else reaches a PROXY listener";
const ENCODE_FIX = 'fix the header spec passed to encodeProxyHeader or `keepip pp encode`';

// Keyed by PpErrorCode, so the type checker demands a fix for every code the codec defines.
const PP_FIXES: { readonly [C in PpErrorCode]: PpFix } = {
  PP_INCOMPLETE: {
    kind: 'error',
    fix: 'pass the whole header (keepip pp decode reads complete input); on a socket the reader waits for more bytes',
  },
  PP_NOT_PROXY_PROTOCOL: {
    kind: 'error',
    fix: 'the peer sent no PROXY header: enable PROXY protocol on the load balancer, or set use-proxy-protocol: "false"',
  },
  PP_V1_BAD_SIGNATURE: { kind: 'error', fix: PEER_FIX },
  PP_V1_TOO_LONG: { kind: 'error', fix: PEER_FIX },
  PP_V1_BAD_LINE_END: { kind: 'error', fix: PEER_FIX },
  PP_V1_BAD_PROTOCOL: { kind: 'error', fix: PEER_FIX },
  PP_V1_BAD_FIELD_COUNT: { kind: 'error', fix: PEER_FIX },
  PP_V1_BAD_ADDRESS: { kind: 'error', fix: PEER_FIX },
  PP_V1_BAD_PORT: { kind: 'error', fix: PEER_FIX },
  PP_V2_BAD_VERSION: { kind: 'error', fix: PEER_FIX },
  PP_V2_BAD_COMMAND: { kind: 'error', fix: PEER_FIX },
  PP_V2_BAD_FAMILY: { kind: 'error', fix: PEER_FIX },
  PP_V2_LENGTH_TOO_SMALL: { kind: 'error', fix: PEER_FIX },
  PP_V2_TLV_TRUNCATED: { kind: 'error', fix: PEER_FIX },
  PP_V2_TLV_OVERFLOW: { kind: 'error', fix: PEER_FIX },
  PP_V2_CRC32C_BAD_LENGTH: { kind: 'error', fix: PEER_FIX },
  PP_V2_CRC32C_MISMATCH: {
    kind: 'error',
    fix: 'the header was altered on the way or the sender computes CRC32C wrongly: check the hop that sends it',
  },
  PP_V2_CRC32C_DUPLICATE: { kind: 'error', fix: PEER_FIX },
  PP_V2_BAD_AUTHORITY: { kind: 'error', fix: PEER_FIX },
  PP_V2_BAD_NETNS: { kind: 'error', fix: PEER_FIX },
  PP_V2_UNIQUE_ID_TOO_LONG: { kind: 'error', fix: PEER_FIX },
  PP_V2_SSL_TRUNCATED: { kind: 'error', fix: PEER_FIX },
  PP_V2_SSL_TLV_TRUNCATED: { kind: 'error', fix: PEER_FIX },
  PP_V2_SSL_TLV_OVERFLOW: { kind: 'error', fix: PEER_FIX },
  PP_V2_SSL_BAD_TEXT: { kind: 'error', fix: PEER_FIX },
  PP_ENCODE_BAD_SPEC: {
    kind: 'thrown',
    fix: `${ENCODE_FIX}: version 1 or 2, command PROXY or LOCAL, a known protocol`,
  },
  PP_ENCODE_BAD_ADDRESS: { kind: 'thrown', fix: `${ENCODE_FIX}: addresses of the protocol's family` },
  PP_ENCODE_BAD_PORT: { kind: 'thrown', fix: `${ENCODE_FIX}: ports 0-65535` },
  PP_ENCODE_BAD_TLV: { kind: 'thrown', fix: `${ENCODE_FIX}: TLV types 0-255 with values the parser accepts` },
  PP_ENCODE_TOO_LONG: { kind: 'thrown', fix: `${ENCODE_FIX}: fewer or shorter TLVs` },
  PP_ENCODE_UNSUPPORTED: { kind: 'thrown', fix: 'use version 2 for UDP, UNIX sockets, TLVs or CRC32C' },
};

function ppEntries(): RegistryEntry[] {
  return (Object.keys(PP_FIXES) as PpErrorCode[]).map((code) => ({
    code,
    module: 'proxy-protocol',
    kind: PP_FIXES[code].kind,
    summary: PP_ERROR_MESSAGES[code],
    fix: PP_FIXES[code].fix,
  }));
}

/** One module's table as registry entries, in the table's order. */
function entries(module: ErrorModule, table: CodeTable): RegistryEntry[] {
  // ErrorCode is the union of the keys of exactly the tables merged below.
  return Object.entries(table).map(([code, info]) => ({ code: code as ErrorCode, module, ...info }));
}

/** Every code, grouped by module in the order docs/errors.md lists them. */
export const ERROR_REGISTRY: readonly RegistryEntry[] = [
  ...ppEntries(),
  ...entries('net', NET_CODES),
  ...entries('k8s', K8S_CODES),
  ...entries('gateway', GATEWAY_CODES),
  ...entries('lb', LB_CODES),
  ...entries('doctor', DOCTOR_CODES),
  ...entries('up', UP_CODES),
  ...entries('whoami', WHOAMI_CODES),
];

const BY_CODE = new Map<string, RegistryEntry>(ERROR_REGISTRY.map((e) => [e.code, e]));

export function isErrorCode(value: string): value is ErrorCode {
  return BY_CODE.has(value);
}

/** The registry entry of a code; undefined for a string that is not a registered code. */
export function describeErrorCode(code: string): RegistryEntry | undefined {
  return BY_CODE.get(code);
}
