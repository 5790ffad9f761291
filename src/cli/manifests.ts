// `keepip manifests`: the multi-document YAML that installs keepip, from the values file of an
// ingress-nginx Helm install (`helm get values RELEASE -o yaml`). Warnings name every values key keepip
// does not render; errors (a value of the wrong type) print nothing to apply.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import pkg from '../../package.json' with { type: 'json' };
import { CHART_VERSION } from '../deploy/chart-defaults.ts';
import type { WebhookCertificate } from '../deploy/context.ts';
import type { DeployProblem } from '../deploy/errors.ts';
import { renderManifests } from '../deploy/render.ts';
import { readValuesFile } from '../deploy/values-file.ts';
import { parseCommandArgs } from './args.ts';
import type { Command } from './main.ts';

const HELP = `Usage: keepip manifests [--values FILE] [--namespace NS] [--release NAME] [--image REF]
                        [--webhook-certs DIR]

Prints the objects that install keepip as the ingress-nginx controller: Namespace, ServiceAccount,
RBAC (exactly the calls keepip controller makes), ConfigMaps, Services, the Deployment or DaemonSet
with the chart's controller arguments, PodDisruptionBudget and HorizontalPodAutoscaler when the values
ask, IngressClass, ValidatingWebhookConfiguration with its certificate, ServiceMonitor. Reads the
ingress-nginx chart's values (chart ${CHART_VERSION}); keys keepip does not render are named on stderr.

  --values FILE        the chart values (helm get values RELEASE -o yaml > FILE); '-' reads stdin;
                       none: the chart's defaults
  --namespace NS       namespace of the install (default ingress-nginx; namespaceOverride wins)
  --release NAME       Helm release name the object names derive from (default ingress-nginx, which
                       gives ingress-nginx-controller, ingress-nginx-leader, … as the chart does)
  --image REF          the keepip image (default keepip:${pkg.version}, the name npm run image builds)
  --webhook-certs DIR  keep the admission webhook certificate in DIR (ca.crt, tls.crt, tls.key): used
                       when present, made and written there when absent; without it a new one is made
                       on every run
  -h, --help           this help

The output holds the webhook's private key (a Secret): treat it as a secret. Apply with
  keepip manifests --values values.yaml | kubectl apply -f -
Exit codes: 0 rendered (warnings on stderr), 1 a values error (nothing printed), 2 usage error.
`;

const USAGE = { command: 'manifests', help: HELP };

function parse(args: string[]) {
  return parseCommandArgs(USAGE, {
    args,
    strict: true,
    allowPositionals: false,
    options: {
      values: { type: 'string', short: 'f' },
      namespace: { type: 'string', short: 'n' },
      release: { type: 'string' },
      image: { type: 'string' },
      'webhook-certs': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

const CERT_FILES = { ca: 'ca.crt', cert: 'tls.crt', key: 'tls.key' } as const;

/** The kept certificate in DIR, null when DIR holds none yet, or an error message. */
function readKeptCertificate(dir: string): WebhookCertificate | null | string {
  const present = Object.values(CERT_FILES).filter((f) => existsSync(join(dir, f)));
  if (present.length === 0) return null;
  if (present.length < 3) return `${dir} has ${present.join(', ')} but needs ca.crt, tls.crt and tls.key`;
  try {
    const read = (f: string) => readFileSync(join(dir, f), 'utf8');
    return { ca: read(CERT_FILES.ca), cert: read(CERT_FILES.cert), key: read(CERT_FILES.key) };
  } catch (err) {
    return `${dir}: ${(err as Error).message}`;
  }
}

function writeKeptCertificate(dir: string, c: WebhookCertificate): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, CERT_FILES.ca), c.ca, { mode: 0o644 });
  writeFileSync(join(dir, CERT_FILES.cert), c.cert, { mode: 0o644 });
  writeFileSync(join(dir, CERT_FILES.key), c.key, { mode: 0o600 });
}

function report(problems: readonly DeployProblem[]): void {
  for (const p of problems) process.stderr.write(`keepip manifests: ${p.severity} ${p.code}: ${p.message}\n`);
}

function header(valuesFile: string | undefined): string {
  const source = valuesFile === undefined ? 'the chart defaults' : valuesFile === '-' ? 'stdin' : valuesFile;
  return [
    `# keepip ${pkg.version}: manifests from ${source} (ingress-nginx chart ${CHART_VERSION} values).`,
    '# Holds the admission webhook key when cert-manager is not used: keep it as a secret.',
    '',
  ].join('\n');
}

export const command: Command = {
  summary: 'Print the manifests that install keepip, from ingress-nginx Helm values',
  async run(argv) {
    const parsed = parse(argv);
    if (typeof parsed === 'number') return parsed;
    const { values } = parsed;
    const read =
      values.values === undefined ? { ok: true as const, values: {} } : readValuesFile(values.values);
    if (!read.ok) {
      report([read.problem]);
      return 1;
    }
    const certDir = values['webhook-certs'];
    const kept = certDir === undefined ? null : readKeptCertificate(certDir);
    if (typeof kept === 'string') {
      report([{ severity: 'error', code: 'DEPLOY_WEBHOOK_CERT_ERROR', key: '', message: kept }]);
      return 1;
    }
    const result = await renderManifests(read.values, {
      release: values.release ?? 'ingress-nginx',
      namespace: values.namespace ?? 'ingress-nginx',
      image: values.image ?? `keepip:${pkg.version}`,
      version: pkg.version,
      ...(kept === null ? {} : { webhookCertificate: kept }),
    });
    report(result.problems);
    if (result.problems.some((p) => p.severity === 'error')) return 1;
    if (certDir !== undefined && kept === null && result.webhookCertificate !== undefined) {
      writeKeptCertificate(certDir, result.webhookCertificate);
    }
    const documents = result.objects.map((o) => stringify(o, { lineWidth: 0 }));
    process.stdout.write(`${header(values.values)}---\n${documents.join('---\n')}`);
    return 0;
  },
};
