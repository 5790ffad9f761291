// The ValidatingWebhookConfiguration for Ingresses and its certificate: cert-manager Issuers and
// Certificate with CA injection (controller.admissionWebhooks.certManager.enabled, as the chart), or a
// Secret holding the certificate made at render time and the CA in the caBundle. Pure.
import { type K8sObject, meta, type RenderContext } from './context.ts';

const CERT_MANAGER = 'cert-manager.io/v1';

function certManagerObjects(ctx: RenderContext): K8sObject[] {
  const { v, names } = ctx;
  const prefix = 'controller.admissionWebhooks.certManager';
  const out: K8sObject[] = [];
  const issuerRef = v.map(`${prefix}.issuerRef`);
  const limit = (path: string) => {
    const n = v.int(path);
    return n > 0 ? { revisionHistoryLimit: n } : {};
  };
  if (Object.keys(issuerRef).length === 0) {
    const root = `${names.fullname}-root-cert`;
    out.push(
      {
        apiVersion: CERT_MANAGER,
        kind: 'Issuer',
        metadata: meta(ctx, `${names.fullname}-self-signed-issuer`),
        spec: { selfSigned: {} },
      },
      {
        apiVersion: CERT_MANAGER,
        kind: 'Certificate',
        metadata: meta(ctx, root),
        spec: {
          secretName: root,
          duration: v.str(`${prefix}.rootCert.duration`) || '43800h0m0s',
          ...limit(`${prefix}.rootCert.revisionHistoryLimit`),
          issuerRef: { name: `${names.fullname}-self-signed-issuer` },
          commonName: `ca.webhook.${names.fullname}`,
          isCA: true,
          subject: { organizations: [names.fullname] },
        },
      },
      {
        apiVersion: CERT_MANAGER,
        kind: 'Issuer',
        metadata: meta(ctx, `${names.fullname}-root-issuer`),
        spec: { ca: { secretName: root } },
      },
    );
  }
  const service = `${names.controller}-admission`;
  out.push({
    apiVersion: CERT_MANAGER,
    kind: 'Certificate',
    metadata: meta(ctx, names.admission),
    spec: {
      secretName: names.admission,
      duration: v.str(`${prefix}.admissionCert.duration`) || '8760h0m0s',
      ...limit(`${prefix}.admissionCert.revisionHistoryLimit`),
      issuerRef: Object.keys(issuerRef).length > 0 ? issuerRef : { name: `${names.fullname}-root-issuer` },
      dnsNames: [service, `${service}.${names.namespace}`, `${service}.${names.namespace}.svc`],
      subject: { organizations: [`${names.fullname}-admission`] },
    },
  });
  return out;
}

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

function webhookConfiguration(ctx: RenderContext, caBundle: string | null): K8sObject {
  const { v, names } = ctx;
  const prefix = 'controller.admissionWebhooks';
  const annotations: Record<string, string> = {};
  if (caBundle === null)
    annotations['cert-manager.io/inject-ca-from'] = `${names.namespace}/${names.admission}`;
  Object.assign(annotations, v.strings(`${prefix}.annotations`));
  const clientConfig: Record<string, unknown> = {
    service: {
      name: `${names.controller}-admission`,
      namespace: names.namespace,
      port: v.int(`${prefix}.service.servicePort`),
      path: '/networking/v1/ingresses',
    },
  };
  if (caBundle !== null) clientConfig.caBundle = caBundle;
  const webhook: Record<string, unknown> = {
    name: 'validate.nginx.ingress.kubernetes.io',
    matchPolicy: 'Equivalent',
    rules: [
      {
        apiGroups: ['networking.k8s.io'],
        apiVersions: ['v1'],
        operations: ['CREATE', 'UPDATE'],
        resources: ['ingresses'],
      },
    ],
    failurePolicy: v.str(`${prefix}.failurePolicy`) || 'Fail',
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
    clientConfig,
  };
  const timeout = v.int(`${prefix}.timeoutSeconds`);
  if (timeout > 0) webhook.timeoutSeconds = timeout;
  for (const selector of ['namespaceSelector', 'objectSelector']) {
    const value = v.map(`${prefix}.${selector}`);
    if (Object.keys(value).length > 0) webhook[selector] = value;
  }
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: meta(ctx, names.admission, {
      namespaced: false,
      labels: { 'app.kubernetes.io/component': 'admission-webhook', ...v.strings(`${prefix}.labels`) },
      annotations,
    }),
    webhooks: [webhook],
  };
}

export function renderWebhook(ctx: RenderContext): K8sObject[] {
  const { v, names, options } = ctx;
  if (!v.bool('controller.admissionWebhooks.enabled')) return [];
  if (v.bool('controller.admissionWebhooks.certManager.enabled')) {
    return [...certManagerObjects(ctx), webhookConfiguration(ctx, null)];
  }
  const cert = options.webhookCertificate;
  if (cert === undefined) throw new Error('renderWebhook: the webhook certificate was not made');
  const secret: K8sObject = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(ctx, names.admission, { labels: { 'app.kubernetes.io/component': 'admission-webhook' } }),
    type: 'Opaque',
    data: { ca: b64(cert.ca), cert: b64(cert.cert), key: b64(cert.key) },
  };
  return [secret, webhookConfiguration(ctx, b64(cert.ca))];
}
