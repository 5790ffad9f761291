// The seed with one fault hiding another: its NLB sends PROXY v2 that the gateway does not expect
// (every request is a 400 before any header is read), and the gateway believes X-Forwarded-For from
// all of 127/8, which the fix for the first fault would leave forgeable. The doctor reports the
// second under afterFix (src/doctor/follow-fix.ts): `keepip doctor -f` and the dashboard's Chain page.
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SEED_BEFORE = fileURLToPath(new URL('../../examples/seed/before', import.meta.url));

/** A temporary copy of the seed with the hidden fault; the caller removes the directory. */
export async function hiddenFaultManifests(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'keepip-hidden-fault-'));
  await cp(SEED_BEFORE, dir, { recursive: true });
  const file = join(dir, 'ingress-nginx.yaml');
  const text = (await readFile(file, 'utf8'))
    .replace(
      '  allow-snippet-annotations: "false"',
      '  allow-snippet-annotations: "false"\n  use-forwarded-headers: "true"\n  proxy-real-ip-cidr: 127.0.0.0/8',
    )
    .replace(
      '    service.beta.kubernetes.io/aws-load-balancer-type: external',
      '    service.beta.kubernetes.io/aws-load-balancer-type: external\n    service.beta.kubernetes.io/aws-load-balancer-proxy-protocol: "*"',
    );
  await writeFile(file, text);
  return dir;
}

/** What the doctor says of it for 127.0.20.10 at gitea.example.com: the fault, then what its fix reveals. */
export const HIDDEN_FAULT = {
  findings: ['PROXY_PROTOCOL_SENT_NOT_EXPECTED'],
  afterFix: [['FORWARDED_HEADERS_SPOOFABLE', { data: { 'use-forwarded-headers': 'false' } }]],
};
