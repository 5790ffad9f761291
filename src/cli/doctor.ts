// `keepip doctor`: explain, hop by hop, where the client IP is lost and which manifest change fixes it;
// `--probe` confirms it against a running chain whose backend is keepip whoami.
import type { Topology } from '../config/model.ts';
import { CLIENT_PATHS, isClientPath } from '../config/client-path.ts';
import { diagnose, type DiagnoseOptions } from '../doctor/diagnose.ts';
import { addAfterFix } from '../doctor/follow-fix.ts';
import { type ProbeResult, runProbes } from '../doctor/probe.ts';
import { type DoctorInputOptions, type DoctorInputs, doctorInputs } from '../doctor/inputs.ts';
import { explainProbe, type ProbeExplanation } from '../doctor/probe-explain.ts';
import { renderJson, renderText } from '../doctor/report.ts';
import { loadManifests, type ManifestObject } from '../k8s/index.ts';
import { canonicalIp } from '../net/ip.ts';
import { parseCommandArgs, usageError } from './args.ts';
import type { Command } from './main.ts';

const HELP = `Usage: keepip doctor -f <file|dir>... [--client IP] [--host H] [--path P] [options]
       keepip doctor --probe URL [--from IP]... [-f <file|dir>...] [--host H] [--json]

Builds the chain the manifests describe (load balancer, kube-proxy hop, gateway, Ingress rules,
backend) and explains which address each hop sees, where the client IP is lost, and the exact
manifest change that fixes it.

  -f, --file PATH        manifest file or directory (repeatable)
  --client IP            simulate one request from this client: the address at each hop, the outcome
                         (allowed, denied 403, rejected 400, connection closed, fail-closed 503,
                         unreachable, 404) and the rule that decided it. Without it: an audit of every
                         allow/deny list, and every finding
  --host H, --path P     the request's host and path (default: the first host with an access list, /)
  --scheme http|https    the request's scheme (default http)
  --via PATH             how the client reaches the LB: ${CLIENT_PATHS.join(' | ')}
                         (default: the LB Service's keepip.dev/client-path annotation, else direct)
  --forwarded-for LIST   an X-Forwarded-For value the client sends itself (spoofing check)
  --proxy-header-for IP  the client starts its connection with a PROXY header of its own claiming IP
                         (spoofing check: believed when nothing in front writes one)
  --lb NS/NAME           the LoadBalancer Service to diagnose (default: the controller's)
  --ingress-class NAME   default nginx
  --configmap NS/NAME    the controller's ConfigMap (default: the --configmap of the controller behind
                         the LB in the manifests, else ingress-nginx/ingress-nginx-controller)
  --tcp-services-configmap NS/NAME, --udp-services-configmap NS/NAME
                         the controller's tcp-/udp-services (default: its args in the manifests); the
                         doctor checks each entry's PROXY setting and LB port against the LB
  --enable-ssl-passthrough
                         the controller runs with --enable-ssl-passthrough (default: as the controller's
                         Deployment/DaemonSet args in the manifests say; without one, unknown: the
                         doctor simulates it off and tells the other case in a finding)
  --probe URL            send live requests through a running chain whose backend is keepip whoami
  --from IP              local source address for --probe (repeatable; e.g. 127.0.20.10)
  --json                 machine-readable output (schema in docs/doctor.md)
  -h, --help             this help

Exit codes: 0 the client passes (with --client) / no error findings (without) / every probe reached
the backend with its own address; 1 otherwise; 2 usage error.
`;

const USAGE = { command: 'doctor', help: HELP };

/** The manifests as the doctor reads them (doctor/inputs.ts); a message when they cannot be read. */
async function loadTopology(
  files: readonly string[],
  options: DoctorInputOptions,
): Promise<
  ({ ok: true; objects: readonly ManifestObject[] } & DoctorInputs) | { ok: false; message: string }
> {
  const loaded = await loadManifests(files);
  const errors = loaded.issues.filter((i) => i.severity === 'error');
  if (errors.length > 0) return { ok: false, message: errors.map((e) => e.message).join('\n') };
  return { ok: true, objects: loaded.objects, ...doctorInputs(loaded.objects, options) };
}

function parse(args: string[]) {
  return parseCommandArgs(USAGE, {
    args,
    strict: true,
    allowPositionals: false,
    options: {
      file: { type: 'string', short: 'f', multiple: true },
      client: { type: 'string' },
      host: { type: 'string' },
      path: { type: 'string' },
      scheme: { type: 'string' },
      via: { type: 'string' },
      'forwarded-for': { type: 'string' },
      'proxy-header-for': { type: 'string' },
      lb: { type: 'string' },
      'ingress-class': { type: 'string' },
      configmap: { type: 'string' },
      'tcp-services-configmap': { type: 'string' },
      'udp-services-configmap': { type: 'string' },
      'enable-ssl-passthrough': { type: 'boolean' },
      probe: { type: 'string' },
      from: { type: 'string', multiple: true },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

export const command: Command = {
  summary: 'Explain, hop by hop, where the client IP is lost and how to fix it',
  async run(argv) {
    const parsed = parse(argv);
    if (typeof parsed === 'number') return parsed;
    const { values } = parsed;
    const files = values.file ?? [];
    if (values.probe === undefined && files.length === 0)
      return usageError(USAGE, 'give manifests with -f, or --probe URL');
    if (values.via !== undefined && !isClientPath(values.via)) {
      return usageError(USAGE, `--via must be one of ${CLIENT_PATHS.join(', ')}`);
    }
    if (values.scheme !== undefined && values.scheme !== 'http' && values.scheme !== 'https') {
      return usageError(USAGE, '--scheme must be http or https');
    }
    let client: string | undefined;
    if (values.client !== undefined) {
      const canonical = canonicalIp(values.client);
      if (canonical === null) return usageError(USAGE, `--client "${values.client}" is not an IP address`);
      client = canonical;
    }
    const claimed = values['proxy-header-for'];
    if (claimed !== undefined && canonicalIp(claimed) === null)
      return usageError(USAGE, `--proxy-header-for "${claimed}" is not an IP address`);
    const from: string[] = [];
    for (const f of values.from ?? []) {
      const canonical = canonicalIp(f);
      if (canonical === null) return usageError(USAGE, `--from "${f}" is not an IP address`);
      from.push(canonical);
    }
    if (values.probe !== undefined) {
      try {
        const url = new URL(values.probe);
        if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
      } catch {
        return usageError(USAGE, `--probe "${values.probe}" is not an http(s) URL`);
      }
    } else if (from.length > 0) {
      return usageError(USAGE, '--from only applies to --probe');
    }

    let loaded: Awaited<ReturnType<typeof loadTopology>> | null = null;
    const inputOptions: DoctorInputOptions = {
      ...(values['ingress-class'] !== undefined ? { ingressClass: values['ingress-class'] } : {}),
      ...(values.configmap !== undefined ? { configMap: values.configmap } : {}),
      ...(values.lb !== undefined ? { loadBalancer: values.lb } : {}),
      ...(values['tcp-services-configmap'] !== undefined
        ? { tcpServices: values['tcp-services-configmap'] }
        : {}),
      ...(values['udp-services-configmap'] !== undefined
        ? { udpServices: values['udp-services-configmap'] }
        : {}),
      enableSslPassthrough: values['enable-ssl-passthrough'] === true,
    };
    if (files.length > 0) {
      loaded = await loadTopology(files, inputOptions);
      if (!loaded.ok) {
        process.stderr.write(`keepip doctor: cannot read the manifests:\n${loaded.message}\n`);
        return 1;
      }
    }
    const base: DiagnoseOptions = {
      ...(values.lb !== undefined ? { loadBalancer: values.lb } : {}),
      ...(loaded?.ok && loaded.loadBalancer !== null ? { defaultLoadBalancer: loaded.loadBalancer } : {}),
      ...(values.via !== undefined && isClientPath(values.via) ? { via: values.via } : {}),
      ...(values.host !== undefined ? { host: values.host } : {}),
      ...(values.path !== undefined ? { path: values.path } : {}),
      ...(values.scheme === 'http' || values.scheme === 'https' ? { scheme: values.scheme } : {}),
      ...(values['forwarded-for'] !== undefined ? { forwardedFor: values['forwarded-for'] } : {}),
      ...(claimed !== undefined ? { proxyHeaderFor: claimed } : {}),
      ...(loaded?.ok ? { sslPassthrough: loaded.passthrough, streamServices: loaded.streamServices } : {}),
    };

    if (values.probe !== undefined) {
      return runProbeMode(
        values.probe,
        from,
        values.host,
        values.json === true,
        loaded?.ok ? loaded.topology : null,
        base,
      );
    }
    if (!loaded?.ok) return usageError(USAGE, 'give manifests with -f');
    const options = { ...base, ...(client !== undefined ? { client } : {}) };
    return runDiagnosis(loaded, inputOptions, options, values.json === true);
  },
};

/** The doctor on the manifests, with what its fix reveals once applied; prints the report. */
function runDiagnosis(
  loaded: { objects: readonly ManifestObject[]; topology: Topology },
  inputOptions: DoctorInputOptions,
  options: DiagnoseOptions,
  json: boolean,
): number {
  const result = diagnose(loaded.topology, options);
  if (!result.ok) {
    process.stderr.write(`keepip doctor: ${result.error.code}: ${result.error.message}\n`);
    return 1;
  }
  const report = addAfterFix(loaded.objects, result.report, inputOptions, options);
  process.stdout.write(json ? renderJson(report) : renderText(report));
  return report.exitCode;
}

async function runProbeMode(
  url: string,
  from: readonly string[],
  host: string | undefined,
  json: boolean,
  topology: Topology | null,
  base: DiagnoseOptions,
): Promise<number> {
  const results = await runProbes({ url, from, ...(host !== undefined ? { host } : {}) });
  const target = new URL(url);
  const rows: { result: ProbeResult; explanation: ProbeExplanation }[] = [];
  for (const result of results) {
    let simulation = null;
    let findings: Parameters<typeof explainProbe>[2] = [];
    if (topology !== null && result.from !== null) {
      const diagnosed = diagnose(topology, {
        ...base,
        client: result.from,
        host: host ?? target.hostname,
        path: `${target.pathname}${target.search}`,
      });
      if (diagnosed.ok) {
        simulation = diagnosed.report.simulation;
        findings = diagnosed.report.findings;
      }
    }
    rows.push({ result, explanation: explainProbe(result, simulation, findings) });
  }
  const ok = rows.every((r) => r.result.matches === true);
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ schema: 'keepip.doctor.probe/v1', url, probes: rows.map((r) => ({ ...r.result, ...r.explanation })), exitCode: ok ? 0 : 1 }, null, 2)}\n`,
    );
  } else {
    process.stdout.write(
      `keepip doctor --probe ${url}: ${ok ? 'every source reached the backend with its own address' : 'the client address is not kept'}\n`,
    );
    for (const { result, explanation } of rows) {
      const saw = result.backendSaw ?? '-';
      process.stdout.write(
        `  from ${(result.from ?? '?').padEnd(15)}  status ${String(result.status ?? '-').padEnd(3)}  backend saw ${saw.padEnd(15)}  ${result.matches === true ? 'same' : result.matches === false ? 'DIFFERENT' : '-'}\n`,
      );
      process.stdout.write(`      ${explanation.text}\n`);
    }
  }
  return ok ? 0 : 1;
}
