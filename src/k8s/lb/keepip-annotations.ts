// keepip's own annotations on a LoadBalancer Service (`keepip.dev/*`): what `keepip up` and the
// doctor need that no provider annotation says. Bad values are issues and the default applies.
import { CLIENT_PATHS, type ClientPath } from '../../config/client-path.ts';
import { canonicalIp } from '../../net/ip.ts';
import { type LbContext, warn } from './provider.ts';

export const KEEPIP_ANNOTATION_PREFIX = 'keepip.dev/';
export const LB_SOURCE_ADDRESS_ANNOTATION = 'keepip.dev/lb-source-address';
export const VPC_ENDPOINT_ID_ANNOTATION = 'keepip.dev/vpc-endpoint-id';
export const CLIENT_PATH_ANNOTATION = 'keepip.dev/client-path';
const KEEPIP_ANNOTATIONS = [LB_SOURCE_ADDRESS_ANNOTATION, VPC_ENDPOINT_ID_ANNOTATION, CLIENT_PATH_ANNOTATION];

export interface KeepipAnnotations {
  sourceAddress: string;
  vpcEndpointId: string | null;
  clientPath: ClientPath | null;
}

/** Reads the keepip.dev annotations; `defaultSourceAddress` applies when none (or a bad one) is set. */
export function readKeepipAnnotations(ctx: LbContext, defaultSourceAddress: string): KeepipAnnotations {
  const read = {
    sourceAddress: sourceAddress(ctx, defaultSourceAddress),
    vpcEndpointId: vpcEndpointId(ctx),
    clientPath: clientPath(ctx),
  };
  reportUnknown(ctx);
  return read;
}

function sourceAddress(ctx: LbContext, fallback: string): string {
  const src = ctx.annotations[LB_SOURCE_ADDRESS_ANNOTATION];
  if (src === undefined) return fallback;
  const ip = canonicalIp(src.trim());
  if (ip !== null) return ip;
  warn(
    ctx,
    'INVALID_KEEPIP_ANNOTATION',
    LB_SOURCE_ADDRESS_ANNOTATION,
    `${JSON.stringify(src)} is not an IP address; using ${fallback}`,
    'error',
  );
  return fallback;
}

function vpcEndpointId(ctx: LbContext): string | null {
  const vpce = ctx.annotations[VPC_ENDPOINT_ID_ANNOTATION];
  if (vpce === undefined) return null;
  // The TLV carries the id as ASCII; AWS ids are "vpce-" and hex digits.
  if (/^vpce-[0-9a-z]{1,32}$/.test(vpce.trim())) return vpce.trim();
  warn(
    ctx,
    'INVALID_KEEPIP_ANNOTATION',
    VPC_ENDPOINT_ID_ANNOTATION,
    `${JSON.stringify(vpce)} is not a VPC endpoint id (vpce-…); ignored`,
  );
  return null;
}

function clientPath(ctx: LbContext): ClientPath | null {
  const cp = ctx.annotations[CLIENT_PATH_ANNOTATION];
  if (cp === undefined) return null;
  if ((CLIENT_PATHS as readonly string[]).includes(cp.trim())) return cp.trim() as ClientPath;
  warn(
    ctx,
    'INVALID_KEEPIP_ANNOTATION',
    CLIENT_PATH_ANNOTATION,
    `${JSON.stringify(cp)} is not one of ${CLIENT_PATHS.join(', ')}; ignored`,
  );
  return null;
}

function reportUnknown(ctx: LbContext): void {
  for (const key of Object.keys(ctx.annotations)) {
    if (key.startsWith(KEEPIP_ANNOTATION_PREFIX) && !KEEPIP_ANNOTATIONS.includes(key)) {
      warn(
        ctx,
        'UNKNOWN_KEEPIP_ANNOTATION',
        key,
        `keepip does not know this annotation (known: ${KEEPIP_ANNOTATIONS.join(', ')})`,
      );
    }
  }
}
