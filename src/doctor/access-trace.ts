// The doctor's account of a location's limits and auth (issue 17): what runs after the source-range
// verdict, each named by its annotation, so the decision trace says which annotation decided.
import type { LocationModel } from '../config/model.ts';
import type { AccessDecision } from '../net/access-policy.ts';

const P = 'nginx.ingress.kubernetes.io/';

export interface AccessTrace {
  /** Hop details, in the order the gateway runs them. */
  details: string[];
  /** When the location ends the request by itself (a denied location): outcome and what decided. */
  end: { outcome: 'fail-closed-503'; status: 503; decidedBy: string } | null;
  /** Appended to the decision ("; then auth-type basic"), or null when nothing follows the verdict. */
  following: string | null;
}

/** What `location`'s access annotations do for a client resolved to `address`. */
export function traceAccess(location: LocationModel, verdict: AccessDecision, address: string): AccessTrace {
  const access = location.access;
  if (access === undefined) return { details: [], end: null, following: null };
  if (access.denied !== null) {
    return {
      details: [
        `the location is denied by ${access.denied.annotation}: ${access.denied.reason} (503 for everyone)`,
      ],
      end: { outcome: 'fail-closed-503', status: 503, decidedBy: access.denied.annotation },
      following: null,
    };
  }
  const details: string[] = [];
  const following: string[] = [];
  const rl = access.rateLimit;
  if (rl !== null) {
    const parts = [
      rl.rps > 0 ? `limit-rps ${rl.rps} (burst ${rl.rps * rl.burstMultiplier})` : '',
      rl.rpm > 0 ? `limit-rpm ${rl.rpm} (burst ${rl.rpm * rl.burstMultiplier})` : '',
      rl.connections > 0 ? `limit-connections ${rl.connections}` : '',
    ].filter((p) => p !== '');
    details.push(
      `${parts.join(', ')} in zone ${rl.zone}, keyed by ${address}${rl.exempt?.valid ? ` (limit-whitelist ${rl.exempt.raw} exempt)` : ''}`,
    );
    following.push(parts.map((p) => `${P}${p.split(' ')[0]}`).join(', '));
  }
  const any = access.satisfy === 'any';
  if (any && verdict.outcome === 'allow' && verdict.rule === 'allowlist') {
    details.push(`${P}satisfy any: the allowlist admits ${address}; basic and external auth are skipped`);
    following.push(`${P}satisfy any`);
    return { details, end: null, following: following.join('; ') };
  }
  if (access.basicAuth !== null) {
    details.push(
      `${P}auth-type basic (Secret ${access.basicAuth.secret}, realm "${access.basicAuth.realm}"): 401 without valid credentials`,
    );
    following.push(`${P}auth-type basic`);
  }
  const ext = access.externalAuth;
  if (ext !== null) {
    const name = ext.global ? 'ConfigMap global-auth-url' : `${P}auth-url`;
    details.push(
      `${name} ${ext.url}: the auth service decides (it sees X-Real-IP ${address})${ext.signin ? `; 401 becomes a 302 to ${ext.signin}` : ''}`,
    );
    following.push(name);
  }
  if (any && verdict.outcome === 'deny' && verdict.rule === 'allowlist-miss' && following.length > 0)
    details.push(`${P}satisfy any: valid credentials would admit ${address} despite the allowlist`);
  return { details, end: null, following: following.length === 0 ? null : following.join('; ') };
}
