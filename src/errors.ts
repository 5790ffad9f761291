// Every stable code keepip reports, in one registry: what it means and what the user does about it.
// Each module keeps its codes beside the code that emits them, in its own errors.ts (a table
// `{ CODE: { kind, summary, fix } }` and the union of its codes); this file only merges those tables,
// module by module, so that docs/errors.md and the tests (test/errors.test.ts) hold the whole product
// to one list. The PROXY protocol codes come from the codec's own two tables (messages and fixes).
import { CONTROLLER_CODES, type ControllerCode } from './controller/errors.ts';
import { DASHBOARD_CODES, type DashboardCode } from './dashboard/errors.ts';
import { DEPLOY_CODES, type DeployCode } from './deploy/errors.ts';
import { DOCTOR_CODES, type DoctorCode } from './doctor/errors.ts';
import type { CodeInfo, CodeTable } from './error-table.ts';
import { GATEWAY_CODES, type GatewayCode } from './gateway/errors.ts';
import { K8S_CODES, type K8sCode } from './k8s/errors.ts';
import { LB_CODES, type LbCode } from './lb/errors.ts';
import { NET_CODES, type NetCode } from './net/errors.ts';
import { PP_ERROR_FIXES, PP_ERROR_MESSAGES, type PpErrorCode } from './proxy-protocol/errors.ts';
import { UP_CODES, type UpCode } from './up/errors.ts';
import { WHOAMI_CODES, type WhoamiCode } from './whoami/errors.ts';
import { WORKERS_CODES, type WorkersCode } from './workers/errors.ts';

export type { ErrorKind } from './error-table.ts';

export type ErrorModule =
  | 'proxy-protocol'
  | 'net'
  | 'k8s'
  | 'controller'
  | 'gateway'
  | 'lb'
  | 'doctor'
  | 'up'
  | 'whoami'
  | 'deploy'
  | 'dashboard'
  | 'workers';

/** Each module's heading in docs/errors.md, in the order the registry lists the modules. */
export const ERROR_MODULES: { readonly [M in ErrorModule]: string } = {
  'proxy-protocol': 'PROXY protocol codec (`src/proxy-protocol/`, `keepip pp`, every PROXY-aware listener)',
  net: 'Addresses, CIDR sets and client-IP resolution (`src/net/`)',
  k8s: 'Manifests and their translation (`src/k8s/`): configuration issues',
  controller:
    'Kubernetes controller (`src/controller/`, `keepip controller`): the API server, the admission webhook, TCP/UDP services',
  gateway: 'Gateway (`src/gateway/`, `keepip gateway`): routes, configuration snapshots, upstream outcomes',
  lb: 'Load balancer (`src/lb/`, `keepip lb`)',
  doctor: 'Doctor (`src/doctor/`, `keepip doctor`): errors, probe outcomes and finding ids',
  up: 'The whole chain (`src/up/`, `keepip up`)',
  whoami: 'Echo backend (`src/whoami/`, `keepip whoami`)',
  deploy: 'Install manifests (`src/deploy/`, `keepip manifests`): reading ingress-nginx Helm values',
  dashboard: 'Dashboard (`src/dashboard/`, `--dashboard`): its JSON API',
  workers:
    'Worker processes (`src/workers/`, `--workers` of `keepip gateway`, `keepip lb`, `keepip controller`)',
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
  | ControllerCode
  | GatewayCode
  | LbCode
  | DoctorCode
  | UpCode
  | WhoamiCode
  | DeployCode
  | DashboardCode
  | WorkersCode;

type RegistryEntry = ErrorEntry & { readonly code: ErrorCode };

/** The codec's two tables, its messages and its fixes, as registry entries. */
function ppEntries(): RegistryEntry[] {
  return (Object.keys(PP_ERROR_MESSAGES) as PpErrorCode[]).map((code) => ({
    code,
    module: 'proxy-protocol',
    summary: PP_ERROR_MESSAGES[code],
    ...PP_ERROR_FIXES[code],
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
  ...entries('controller', CONTROLLER_CODES),
  ...entries('gateway', GATEWAY_CODES),
  ...entries('lb', LB_CODES),
  ...entries('doctor', DOCTOR_CODES),
  ...entries('up', UP_CODES),
  ...entries('whoami', WHOAMI_CODES),
  ...entries('deploy', DEPLOY_CODES),
  ...entries('dashboard', DASHBOARD_CODES),
  ...entries('workers', WORKERS_CODES),
];

const BY_CODE = new Map<string, RegistryEntry>(ERROR_REGISTRY.map((e) => [e.code, e]));

export function isErrorCode(value: string): value is ErrorCode {
  return BY_CODE.has(value);
}

/** The registry entry of a code; undefined for a string that is not a registered code. */
export function describeErrorCode(code: string): RegistryEntry | undefined {
  return BY_CODE.get(code);
}
