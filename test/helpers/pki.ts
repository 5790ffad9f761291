// Certificates for tests, made by openssl in a temp dir that is gone when `makePki` returns. One place for
// the openssl recipe (P-256 keys, self-signed roots, certificates signed by a root or an intermediate,
// fixed validity dates, extensions, revocation and CRLs), which test files used to spell out each for itself.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinary, runCommand } from './process.ts';

export interface CertificateSpec<N extends string = string> {
  name: N;
  /** The certificate that signs this one (listed before it); absent: self-signed (`openssl req -x509`, a CA). */
  issuer?: NoInfer<N>;
  /** `-subj`; default `/CN=<name>`. */
  subject?: string;
  /** Valid from now for this many days; default 2. */
  days?: number;
  /**
   * Fixed validity instead of `days`, as [notBefore, notAfter] in YYYYMMDDHHMMSSZ (say, already expired).
   * Signed with `openssl ca` then, as a revoked one is, whose policy keeps only the subject's CN.
   */
  dates?: readonly [notBefore: string, notAfter: string];
  /**
   * Extension lines (`name=value\n`): all the extensions of a signed certificate (none by default: X.509
   * v1); added (`-addext`) to openssl's defaults for a self-signed one.
   */
  extensions?: string;
  /** Revoked by its issuer: listed in the issuer's CRL (name the issuer in `crls`). */
  revoked?: boolean;
}

export interface Pem {
  key: string;
  cert: string;
}

export interface Pki<N extends string, C extends string> {
  certs: Record<N, Pem>;
  /** Each certificate followed by its issuers' up to, not including, the self-signed root. */
  chains: Record<N, string>;
  /** The CRL of each CA named in `crls`. */
  crls: Record<C, string>;
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** Makes `certificates` in order, then the CRLs of the CAs named in `crls`; PEM by name. */
export async function makePki<const N extends string, const C extends N = never>(spec: {
  certificates: readonly CertificateSpec<N>[];
  crls?: readonly C[];
}): Promise<Pki<N, C>> {
  const dir = mkdtempSync(join(tmpdir(), 'keepip-pki-'));
  try {
    const openssl = opensslIn(dir);
    const issuerOf = new Map<string, string | undefined>();
    for (const c of spec.certificates) {
      assert.ok(c.issuer === undefined || issuerOf.has(c.issuer), `${c.name}: ${c.issuer} comes first`);
      await openssl.make(c);
      issuerOf.set(c.name, c.issuer);
    }
    for (const ca of spec.crls ?? []) await openssl.crl(ca);
    const read = (file: string) => readFileSync(join(dir, file), 'utf8');
    const chain = (name: string): string => {
      let pem = read(`${name}.crt`);
      let up = issuerOf.get(name);
      while (up !== undefined && issuerOf.get(up) !== undefined) {
        pem += read(`${up}.crt`);
        up = issuerOf.get(up);
      }
      return pem;
    };
    const byName = <K extends string, V>(names: readonly K[], value: (name: K) => V) =>
      Object.fromEntries(names.map((name) => [name, value(name)])) as Record<K, V>;
    const names = spec.certificates.map((c) => c.name);
    return {
      certs: byName(names, (name) => ({ key: read(`${name}.key`), cert: read(`${name}.crt`) })),
      chains: byName(names, chain),
      crls: byName(spec.crls ?? [], (name) => read(`${name}.crl`)),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * openssl in `dir`, `<name>.key` and `<name>.crt` for each certificate. Signing is `openssl x509 -req`,
 * except where `openssl ca` and its database (one per issuer) are needed: fixed dates, revocation, CRLs.
 */
function opensslIn(dir: string) {
  const bin = requireBinary('openssl');
  const run = async (...args: string[]) => {
    const out = await runCommand(bin, args);
    assert.equal(out.code, 0, `openssl ${args.join(' ')}: ${out.stderr}`);
  };
  const f = (file: string) => join(dir, file);
  /** `openssl ca` as `issuer`, its database made on first use. */
  const ca = (issuer: string) => {
    const [config, index, serial] = [f(`${issuer}.ca.cnf`), f(`${issuer}.index`), f(`${issuer}.serial`)];
    if (!existsSync(config)) {
      writeFileSync(index, '');
      writeFileSync(serial, '1000\n');
      writeFileSync(
        config,
        `[ca]\ndefault_ca=d\n[d]\ndatabase=${index}\nnew_certs_dir=${dir}\nserial=${serial}\n` +
          'default_md=sha256\npolicy=p\nunique_subject=no\n[p]\ncommonName=supplied\n',
      );
    }
    return ['ca', '-batch', '-config', config, '-cert', f(`${issuer}.crt`), '-keyfile', f(`${issuer}.key`)];
  };
  return {
    async make(c: CertificateSpec): Promise<void> {
      const path = (type: string) => f(`${c.name}.${type}`);
      const request = [...EC_KEY, '-keyout', path('key'), '-subj', c.subject ?? `/CN=${c.name}`];
      const days = ['-days', String(c.days ?? 2)];
      if (c.issuer === undefined) {
        assert.ok(c.dates === undefined && !c.revoked, `${c.name}: self-signed, so no dates, no revocation`);
        const lines = (c.extensions ?? '').split('\n').filter(Boolean);
        const addext = lines.flatMap((line) => ['-addext', line]);
        return run('req', '-x509', ...request, '-out', path('crt'), ...days, ...addext);
      }
      await run('req', ...request, '-out', path('csr'));
      if (c.extensions !== undefined) writeFileSync(path('ext'), c.extensions);
      const extfile = c.extensions === undefined ? [] : ['-extfile', path('ext')];
      const io = ['-in', path('csr'), '-out', path('crt'), ...extfile];
      const signer = ['-CA', f(`${c.issuer}.crt`), '-CAkey', f(`${c.issuer}.key`)];
      if (c.dates === undefined && !c.revoked)
        return run('x509', '-req', ...io, ...signer, '-CAcreateserial', ...days);
      const validity = c.dates === undefined ? days : ['-startdate', c.dates[0], '-enddate', c.dates[1]];
      await run(...ca(c.issuer), '-notext', ...io, ...validity);
      if (c.revoked) await run(...ca(c.issuer), '-revoke', path('crt'));
    },
    crl: (issuer: string) => run(...ca(issuer), '-gencrl', '-crldays', '2', '-out', f(`${issuer}.crl`)),
  };
}
