// Object names and labels, as the chart's _helpers.tpl derives them from the release name and values,
// so a migrated install keeps its names (ingress-nginx-controller, ingress-nginx-leader, …). Pure.
import type { ValuesReader } from './read.ts';

export const CHART_NAME = 'ingress-nginx';

export interface Names {
  namespace: string;
  release: string;
  /** `app.kubernetes.io/name`. */
  name: string;
  /** `<release>-ingress-nginx`, or the release when it already contains the name. */
  fullname: string;
  /** `<fullname>-controller`. */
  controller: string;
  admission: string;
  serviceAccount: string;
  /** The Lease keepip controller uses (extraArgs' --election-id, else controller.electionID, else the chart's). */
  electionId: string;
  /** Labels on every object. */
  labels: Record<string, string>;
  /** The selector of the controller pods. */
  selector: Record<string, string>;
}

/** Helm's `trunc 63 | trimSuffix "-"`. */
export function dnsName(name: string): string {
  return name.slice(0, 63).replace(/-$/, '');
}

export function deriveNames(
  v: ValuesReader,
  options: { release: string; namespace: string; version: string },
): Names {
  const name = dnsName(v.str('nameOverride') || CHART_NAME);
  const override = v.str('fullnameOverride');
  const fullname = dnsName(
    override || (options.release.includes(name) ? options.release : `${options.release}-${name}`),
  );
  const selector = { 'app.kubernetes.io/name': name, 'app.kubernetes.io/instance': options.release };
  const serviceAccount = v.bool('serviceAccount.create')
    ? v.str('serviceAccount.name') || fullname
    : v.str('serviceAccount.name') || 'default';
  return {
    namespace: dnsName(v.str('namespaceOverride') || options.namespace),
    release: options.release,
    name,
    fullname,
    controller: dnsName(`${fullname}-${v.str('controller.name')}`),
    admission: dnsName(`${fullname}-${v.str('controller.admissionWebhooks.name')}`),
    serviceAccount,
    // An --election-id in extraArgs comes after the chart's and wins (pflag keeps the last): the Role
    // must name that Lease.
    electionId:
      v.strings('controller.extraArgs')['election-id'] ||
      v.str('controller.electionID') ||
      `${fullname}-leader`,
    labels: {
      ...selector,
      'app.kubernetes.io/version': options.version,
      'app.kubernetes.io/part-of': name,
      'app.kubernetes.io/managed-by': 'keepip',
      ...v.strings('commonLabels'),
    },
    selector,
  };
}
