// What the rendered objects ask of keepip that it does not do, found by keepip's own tables: flags in
// controller.extraArgs (the controller's flag list) and controller.config keys and values (the
// manifest translation that the gateway runs at start-up). Pure.
import { FLAGS, parseControllerFlags } from '../controller/flags.ts';
import { buildTopology } from '../k8s/translate.ts';
import { controllerArgs } from './args.ts';
import type { K8sObject, RenderContext } from './context.ts';
import { HEADER_MAPS } from './config-maps.ts';
import type { DeployProblem } from './errors.ts';

export function checkExtraArgs(ctx: RenderContext): DeployProblem[] {
  const problems: DeployProblem[] = [];
  for (const name of Object.keys(ctx.v.map('controller.extraArgs')).sort()) {
    const key = `controller.extraArgs.${name}`;
    const flag = FLAGS.find((f) => f.name === name);
    if (flag === undefined) {
      problems.push({
        severity: 'warning',
        code: 'DEPLOY_UNSUPPORTED_FLAG',
        key,
        message: `${key}: keepip controller has no --${name}; it stops with a usage error`,
      });
    } else if (!flag.implemented) {
      problems.push({
        severity: 'warning',
        code: 'DEPLOY_UNSUPPORTED_FLAG',
        key,
        message: `${key}: accepted without effect: ${flag.note}`,
      });
    }
  }
  return problems;
}

/**
 * keepip controller serves /healthz and /metrics on --healthz-port only (as ingress-nginx): a metrics
 * port or an HTTP probe on another port reaches nothing (the chart's values.yaml asks to keep them
 * equal by hand). Warnings naming the key.
 */
export function checkPorts(ctx: RenderContext): DeployProblem[] {
  const { v } = ctx;
  const flag = v.strings('controller.extraArgs')['healthz-port'];
  const healthz = Number(flag ?? FLAGS.find((f) => f.name === 'healthz-port')!.default);
  const problems: DeployProblem[] = [];
  const warn = (key: string, port: unknown, what: string) =>
    problems.push({
      severity: 'warning',
      code: 'DEPLOY_PORT_MISMATCH',
      key,
      message: `${key}: keepip controller serves /healthz and /metrics on --healthz-port ${healthz}, not ${String(port)}: ${what}`,
    });
  const metricsPort = v.int('controller.metrics.port');
  if (v.bool('controller.metrics.enabled') && metricsPort !== healthz)
    warn('controller.metrics.port', metricsPort, 'the metrics Service and ServiceMonitor reach nothing');
  for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
    const port = v.raw(`controller.${probe}.httpGet.port`);
    if (typeof port === 'number' && port !== healthz)
      warn(
        `controller.${probe}.httpGet.port`,
        port,
        `the ${probe} fails: the pods restart or never get ready`,
      );
  }
  return problems;
}

/** The chart values the chart writes as a flag's value as they are (not a port or a boolean it renders). */
const FLAG_VALUES: Readonly<Record<string, string>> = {
  'election-ttl': 'controller.electionTTL',
  'election-id': 'controller.electionID',
  'healthz-host': 'controller.healthCheckHost',
  'health-check-path': 'controller.healthCheckPath',
  'ingress-class': 'controller.ingressClass',
  'controller-class': 'controller.ingressClassResource.controllerValue',
  'watch-namespace': 'controller.scope.namespace',
  'watch-namespace-selector': 'controller.scope.namespaceSelector',
  'publish-service': 'controller.publishService.pathOverride',
  configmap: 'controller.configMapNamespace',
  'tcp-services-configmap': 'controller.tcp.configMapNamespace',
  'udp-services-configmap': 'controller.udp.configMapNamespace',
};

const flagName = (arg: string): string => /^--?([A-Za-z0-9_-]+)/.exec(arg)?.[1] ?? '';

/**
 * The rendered container arguments as keepip controller parses them at start-up (with the pod's
 * namespace for $(POD_NAMESPACE)): a value it refuses makes every pod exit, so it is an error naming the
 * values key it came from. Unknown flags are checkExtraArgs' warnings and are left out here.
 */
export function checkControllerArgs(ctx: RenderContext): DeployProblem[] {
  const known = controllerArgs(ctx)
    .slice(1)
    .filter((arg) => FLAGS.some((f) => f.name === flagName(arg)));
  const env = { POD_NAMESPACE: ctx.names.namespace, POD_NAME: `${ctx.names.controller}-0` };
  const whole = parseControllerFlags(known, env);
  if (whole.ok !== false) return [];
  const extra = ctx.v.map('controller.extraArgs');
  const problem = (key: string, error: string): DeployProblem => ({
    severity: 'error',
    code: 'DEPLOY_CONTROLLER_ARGS_INVALID',
    key,
    message: `${key}: keepip controller would exit at start-up: ${error}`,
  });
  // One flag at a time names the value at fault (with the webhook's certificate and key, which
  // --validating-webhook needs); what fails only together is reported as a whole.
  const companions = known.filter((arg) => /^validating-webhook-(certificate|key)$/.test(flagName(arg)));
  const out: DeployProblem[] = [];
  for (const arg of known) {
    const alone = parseControllerFlags([...companions, arg], env);
    if (alone.ok !== false) continue;
    const name = flagName(arg);
    const key = name in extra ? `controller.extraArgs.${name}` : (FLAG_VALUES[name] ?? 'controller');
    out.push(problem(key, alone.error));
  }
  return out.length > 0 ? out : [problem('controller.extraArgs', whole.error)];
}

/**
 * The gateway's verdict on the controller ConfigMap (the first of `configMaps`, read beside the others:
 * the header maps it names), as warnings keyed by controller.config.<key>: refused and unknown keys,
 * invalid values, and keys accepted without effect; those of a header map the chart named are keyed
 * by its values key (controller.addHeaders, controller.proxySetHeaders).
 */
export function checkConfig(configMaps: readonly K8sObject[]): DeployProblem[] {
  const controller = configMaps[0]!;
  const { name, namespace = '' } = controller.metadata;
  const objects = configMaps.map((raw, i) => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    origin: { file: 'values', document: i + 1, kind: 'ConfigMap', namespace, name: raw.metadata.name },
    raw,
  }));
  const topology = buildTopology(objects, { configMap: `${namespace}/${name}` });
  const data = (controller.data ?? {}) as Record<string, string>;
  const valuesKeyOf = (dataKey: string | undefined): string => {
    const map = HEADER_MAPS.find((m) => m.key === dataKey);
    const generated = map !== undefined && data[map.key] === `${namespace}/${configMapName(configMaps, map)}`;
    if (generated) return map.values;
    return dataKey === undefined ? 'controller.config' : `controller.config.${dataKey}`;
  };
  const problems: DeployProblem[] = [];
  for (const issue of topology.issues) {
    // A key the values set that keepip accepts without effect is only information to the gateway;
    // here it is a value the user asked for and will not get, so it is named too.
    const noEffect = issue.code === 'CONFIGMAP_KEY_NO_EFFECT';
    if (issue.origin?.kind !== 'ConfigMap' || (issue.severity === 'info' && !noEffect)) continue;
    const key = valuesKeyOf(/data\["([^"]+)"\]/.exec(issue.field ?? '')?.[1]);
    // The translation's message starts with where (file, document, object, field): the key says it here.
    const field = issue.field ?? '';
    const at = field === '' ? -1 : issue.message.indexOf(`${field}: `);
    const text = at === -1 ? issue.message : issue.message.slice(at + field.length + 2);
    problems.push({
      severity: 'warning',
      code: 'DEPLOY_CONFIG_WARNING',
      key,
      message: `${key}: ${issue.code}: ${text}`,
    });
  }
  return problems;
}

/** The name of the ConfigMap rendered for `map` (`<fullname>-<suffix>`), or null when none was. */
function configMapName(configMaps: readonly K8sObject[], map: (typeof HEADER_MAPS)[number]): string | null {
  return configMaps.find((cm) => cm.metadata.name.endsWith(`-${map.suffix}`))?.metadata.name ?? null;
}
