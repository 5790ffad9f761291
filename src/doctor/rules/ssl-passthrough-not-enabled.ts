// SSL_PASSTHROUGH_NOT_ENABLED: an Ingress asks for ssl-passthrough, but the controller runs without
// --enable-ssl-passthrough, so keepip terminates TLS for the host (G11), as ingress-nginx does.
import { describeWorkload } from '../controllers.ts';
import { describeIngresses } from '../passthrough.ts';
import { passthroughHostsFor, passthroughSubject } from './common.ts';
import type { Rule } from './types.ts';

const ARGS_PATCH = JSON.stringify([
  { op: 'add', path: '/spec/template/spec/containers/0/args/-', value: '--enable-ssl-passthrough' },
]);

export const rule: Rule = {
  id: 'SSL_PASSTHROUGH_NOT_ENABLED',
  severity: 'warning',
  check(_topology, context) {
    const fallback = {
      kind: 'Deployment',
      namespace: context.configMap.namespace,
      name: context.configMap.name,
    };
    return passthroughHostsFor(context, ['not-enabled']).map((h) => {
      const workload = h.flag.workload ?? fallback;
      const controller =
        h.flag.workload === undefined
          ? 'the controller'
          : `the controller ${describeWorkload(h.flag.workload)}`;
      return {
        id: 'SSL_PASSTHROUGH_NOT_ENABLED',
        severity: 'warning' as const,
        hops: ['gateway', 'route', 'backend'],
        message:
          `${describeIngresses(h.ingresses)} set${h.ingresses.length === 1 ? 's' : ''} ssl-passthrough on ${h.host}, but ${controller} runs without --enable-ssl-passthrough (${h.flag.source}). ` +
          `keepip terminates TLS for ${h.host} with its own certificate (the host's TLS Secret, else the default one) and serves it as any host: the backend ${h.location?.backend?.upstreamName ?? ''} gets decrypted HTTP, not the client's TLS, so its own certificate and any client-certificate check it does are bypassed (G11). ingress-nginx ignores the annotation the same way.`,
        fix: {
          summary:
            `Start the controller with --enable-ssl-passthrough. Helm values: controller.extraArgs: {enable-ssl-passthrough: ""} (keepip manifests --values reads it). Or add the argument to the controller container: ` +
            `kubectl -n ${workload.namespace} patch ${workload.kind.toLowerCase()} ${workload.name} --type=json -p '${ARGS_PATCH}' (the controller container's index in place of 0). If TLS should end at keepip, remove the annotation instead.`,
          patches: [],
        },
        ...passthroughSubject(h),
        ...(h.location !== null ? { origin: h.location.ingressOrigin } : {}),
      };
    });
  },
};
