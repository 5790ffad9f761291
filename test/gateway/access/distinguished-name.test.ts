// The subject DN keepip prints ($ssl_client_s_dn, ssl-client-subject-dn, what auth-tls-match-cn reads)
// against OpenSSL's own printer, for attributes beyond the usual CN/O/OU: OpenSSL names every attribute
// it knows by its short name, and a table that missed one printed `OID=#hex` where nginx prints
// `mail=x@y` (a match-cn regex or a backend reading the header saw other text).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { ATTRIBUTE_SHORT_NAMES } from '../../../src/gateway/access/attribute-short-names.ts';
import { certificateNames } from '../../../src/gateway/access/distinguished-name.ts';
import { requireBinary } from '../../helpers/process.ts';

const openssl = requireBinary('openssl');
const ARCS =
  /^(2\.5\.4\.\d+|0\.9\.2342\.19200300\.100\.1\.\d+|1\.2\.840\.113549\.1\.9\.\d+|1\.3\.6\.1\.4\.1\.311\.60\.2\.1\.\d+|1\.2\.643\.3\.131\.1\.1|1\.2\.643\.100\.\d+)$/;

/** `openssl list -objects`: `SN = LN, OID` or `SN = OID` per line; OID → short name, for ARCS. */
function opensslShortNames(): Record<string, string> {
  const out: Record<string, string> = {};
  const text = execFileSync(openssl, ['list', '-objects'], { encoding: 'utf8' });
  for (const line of text.split('\n')) {
    const [short, rest] = line.split(' = ');
    const oid = rest?.split(', ').at(-1)?.trim();
    if (short !== undefined && oid !== undefined && ARCS.test(oid)) out[oid] = short;
  }
  return out;
}

describe('subject and issuer DNs as OpenSSL prints them (XN_FLAG_RFC2253)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'keepip-dn-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A self-signed certificate with `subject` (openssl's -subj form); its DER and OpenSSL's RFC 2253 text. */
  function certificate(subject: string): { der: Uint8Array; printed: string } {
    const cert = path.join(dir, 'c.pem');
    execFileSync(
      openssl,
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        path.join(dir, 'k.pem'),
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        subject,
        '-multivalue-rdn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const printed = execFileSync(
      openssl,
      ['x509', '-in', cert, '-noout', '-subject', '-nameopt', 'RFC2253'],
      {
        encoding: 'utf8',
      },
    );
    return {
      der: new X509Certificate(readFileSync(cert)).raw,
      printed: printed.replace(/^subject=/, '').trim(),
    };
  }

  it("knows exactly the short names this machine's OpenSSL has in the attribute arcs", () => {
    const theirs = opensslShortNames();
    assert.ok(Object.keys(theirs).length > 100, 'openssl list -objects gave the attribute arcs');
    for (const [oid, short] of Object.entries(ATTRIBUTE_SHORT_NAMES)) assert.equal(theirs[oid], short, oid);
    // The table is OpenSSL 3.0's (Debian 12, as nginx here); a later OpenSSL may know more names.
    const version = execFileSync(openssl, ['version'], { encoding: 'utf8' });
    if (/^OpenSSL 3\.0\./.test(version))
      assert.deepEqual(
        Object.keys(theirs).filter((oid) => ATTRIBUTE_SHORT_NAMES[oid] === undefined),
        [],
      );
  });

  const subjects = [
    '/CN=admin/O=Example, Inc./OU=ops',
    '/CN=a+mail=x@y/telephoneNumber=+1 555/street=Main St 1/postalCode=12345',
    '/CN=svc/organizationIdentifier=VAT-DE123/INN=7700000000/OGRN=1027700000000/SNILS=12345678901',
    '/CN=svc/houseIdentifier=h, 1/dnsName=svc.example/roomNumber=7/userClass=x;y',
    '/CN=web/jurisdictionC=US/jurisdictionST=Delaware/businessCategory=Private Organization/serialNumber=42',
    '/DC=com/DC=example/UID=jdoe/CN=John Doe/GN=John/SN=Doe/initials=JD/pseudonym=#jd',
  ];
  for (const subject of subjects) {
    it(`prints ${subject} as openssl x509 -nameopt RFC2253 does`, () => {
      const { der, printed } = certificate(subject);
      assert.equal(certificateNames(der)?.subject, printed);
    });
  }
});
