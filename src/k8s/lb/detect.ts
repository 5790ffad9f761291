// Which provider a LoadBalancer Service asks for, first match wins: the AWS family (its class, type
// or any aws-load-balancer-* annotation), a provider named by spec.loadBalancerClass, a provider
// whose annotations it carries (in HOSTED_PROVIDERS order), else generic.
import type { ConfigIssue, LbProvider } from '../../config/model.ts';
import type { ServiceView } from '../objects.ts';
import { awsSettings, recogniseAws } from './aws.ts';
import { azure } from './azure.ts';
import { digitalocean } from './digitalocean.ts';
import { generic } from './generic.ts';
import { gke } from './gke.ts';
import { hetzner } from './hetzner.ts';
import { linode } from './linode.ts';
import { metallb } from './metallb.ts';
import { openstack } from './openstack.ts';
import { oracle } from './oracle.ts';
import {
  type HostedProvider,
  hostedSettings,
  type LbContext,
  lbContext,
  type ProviderSettings,
  warn,
} from './provider.ts';
import { scaleway } from './scaleway.ts';

/** Every provider but AWS and generic, in the order their annotations are recognised. */
export const HOSTED_PROVIDERS: readonly HostedProvider[] = [
  digitalocean,
  hetzner,
  linode,
  scaleway,
  openstack,
  oracle,
  azure,
  gke,
  metallb,
];

export interface ProviderChoice {
  provider: LbProvider;
  /** True for NLBs made by the AWS Load Balancer Controller (type external/nlb-ip or the class). */
  awsController: boolean;
  /** Reads the provider's annotations into its settings (reporting bad values). */
  settings(ctx: LbContext): ProviderSettings;
}

export function detectProvider(svc: ServiceView, issues: ConfigIssue[] = []): ProviderChoice {
  const ctx = lbContext(svc, issues);
  const annotated = HOSTED_PROVIDERS.filter((p) => hasAnnotationOf(ctx, p));
  const aws = recogniseAws(ctx);
  const choice: ProviderChoice =
    aws !== null
      ? { ...aws, settings: (c) => awsSettings(c, aws) }
      : hosted(HOSTED_PROVIDERS.find((p) => byClass(svc, p)) ?? annotated[0] ?? generic);
  const others = annotated.map((p) => p.name).filter((name) => name !== choice.provider);
  if (others.length > 0) {
    warn(
      ctx,
      'CONFLICTING_LB_ANNOTATIONS',
      null,
      `annotations of several load balancer providers (${[choice.provider, ...others].join(', ')}); modelled as ${choice.provider}`,
    );
  }
  return choice;
}

function hosted(provider: HostedProvider): ProviderChoice {
  return { provider: provider.name, awsController: false, settings: (ctx) => hostedSettings(ctx, provider) };
}

function hasAnnotationOf(ctx: LbContext, provider: HostedProvider): boolean {
  return Object.keys(ctx.annotations).some((k) => provider.annotationPrefixes.some((p) => k.startsWith(p)));
}

function byClass(svc: ServiceView, provider: HostedProvider): boolean {
  return svc.loadBalancerClass !== null && provider.recognisesClass?.(svc.loadBalancerClass) === true;
}
