// The codes `keepip manifests` reports (src/deploy/). src/errors.ts merges this table into the registry
// behind docs/errors.md.
import type { CodeTable } from '../error-table.ts';

export const DEPLOY_CODES = {
  DEPLOY_VALUES_READ_ERROR: {
    kind: 'error',
    summary: 'the values file cannot be read',
    fix: 'check the path given to --values and its permissions',
  },
  DEPLOY_VALUES_YAML_ERROR: {
    kind: 'error',
    summary: 'the values file is not valid YAML, or not a map at the top',
    fix: 'fix the YAML at the line and column named (helm get values RELEASE -o yaml writes a valid one)',
  },
  DEPLOY_VALUES_INVALID: {
    kind: 'error',
    summary: 'a chart value has the wrong type or an impossible value (e.g. replicaCount: "two")',
    fix: 'write the value as the ingress-nginx chart expects it (docs/deploy.md lists every key)',
  },
  DEPLOY_VALUES_TEMPLATE: {
    kind: 'error',
    summary:
      "a value the chart renders through tpl holds a template keepip does not evaluate (it evaluates the release name and namespace and the chart's name helpers)",
    fix: 'write the value out as Helm rendered it (helm get manifest RELEASE shows it)',
  },
  DEPLOY_VALUES_IGNORED: {
    kind: 'issue',
    summary: 'a chart value is set but keepip renders nothing from it (no nginx, no default backend, …)',
    fix: 'read the reason in the warning; remove the key, or keep it knowing it has no effect',
  },
  DEPLOY_VALUES_UNKNOWN_KEY: {
    kind: 'issue',
    summary: 'a key that is not a value of the ingress-nginx chart (a typo, or a newer chart)',
    fix: 'check its spelling against docs/deploy.md; unknown keys are ignored',
  },
  DEPLOY_UNSUPPORTED_FLAG: {
    kind: 'issue',
    summary:
      'controller.extraArgs names a flag keepip controller accepts but does not implement, or does not know',
    fix: 'see docs/controller.md for the flag; an unknown flag stops the controller, so remove it',
  },
  DEPLOY_CONTROLLER_ARGS_INVALID: {
    kind: 'error',
    summary:
      'keepip controller refuses a flag value rendered from the values (controller.extraArgs, controller.electionTTL, …): every pod would exit at start-up',
    fix: 'write the value as the flag takes it (docs/controller.md lists each flag and its type)',
  },
  DEPLOY_PORT_MISMATCH: {
    kind: 'issue',
    summary:
      'controller.metrics.port or an HTTP probe port is not the port keepip controller serves /metrics and /healthz on (--healthz-port, 10254)',
    fix: 'give controller.metrics.port and the probes the --healthz-port, or set controller.extraArgs.healthz-port to theirs',
  },
  DEPLOY_CONFIG_WARNING: {
    kind: 'issue',
    summary:
      'the gateway warns about a controller.config key or value (not implemented, accepted without effect, invalid, or trusting every peer)',
    fix: 'read the gateway issue code in the warning; docs/ingress-nginx-compat.md lists the keys keepip implements',
  },
  DEPLOY_NAME_TOO_LONG: {
    kind: 'error',
    summary:
      'a rendered Service name is over 63 characters (the release or fullnameOverride plus -controller-admission, -internal, -metrics)',
    fix: 'render with a shorter --release, or set fullnameOverride (and nameOverride) to shorter names',
  },
  DEPLOY_WEBHOOK_CERT_ERROR: {
    kind: 'error',
    summary: 'the admission webhook certificate files given cannot be read or do not match',
    fix: 'keep ca.crt, tls.crt and tls.key (PEM) together in --webhook-certs DIR, the certificate naming the webhook Service',
  },
} as const satisfies CodeTable;

export type DeployCode = keyof typeof DEPLOY_CODES;

/** A problem found while rendering: errors stop the rendering, warnings are printed on stderr. */
export interface DeployProblem {
  severity: 'error' | 'warning';
  code: DeployCode;
  /** The dotted values key it is about ('' when none). */
  key: string;
  message: string;
}
