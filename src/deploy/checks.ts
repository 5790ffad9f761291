// What the rendered objects ask of keepip that it does not do, found by keepip's own tables: flags in
// controller.extraArgs (the controller's flag list) and controller.config keys and values (the
// manifest translation that the gateway runs at start-up). Pure.
import { FLAGS } from '../controller/flags.ts';
import { buildTopology } from '../k8s/translate.ts';
import type { K8sObject, RenderContext } from './context.ts';
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

/** The gateway's verdict on the controller ConfigMap, as warnings keyed by controller.config.<key>. */
export function checkConfig(configMap: K8sObject): DeployProblem[] {
  const { name, namespace = '' } = configMap.metadata;
  const origin = { file: 'values', document: 1, kind: 'ConfigMap', namespace, name };
  const topology = buildTopology([{ apiVersion: 'v1', kind: 'ConfigMap', origin, raw: configMap }], {
    configMap: `${namespace}/${name}`,
  });
  const problems: DeployProblem[] = [];
  for (const issue of topology.issues) {
    if (issue.origin?.kind !== 'ConfigMap' || issue.severity === 'info') continue;
    const dataKey = /data\["([^"]+)"\]/.exec(issue.field ?? '')?.[1];
    const key = dataKey === undefined ? 'controller.config' : `controller.config.${dataKey}`;
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
