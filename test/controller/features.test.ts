// TLS from Secrets (and --default-ssl-certificate), a fail-closed source range (503 and a Warning
// Event naming the annotation), deduplicated Events, the validating webhook (AdmissionReview v1 over
// TLS with the doctor's message), and the status cleared on shutdown with --update-status-on-shutdown.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Obj } from '../fixtures/fake-apiserver.ts';
import {
  get,
  ingress,
  ingressReview,
  peerCertificate,
  postWebhook,
  tlsSecret,
  waitForHost,
  webCluster,
  webhookFlags,
} from './harness.ts';

const review = (object: Obj, uid = 'uid-1'): Obj =>
  ingressReview(object, { uid, name: object.metadata.name });

async function postReview(port: number, body: Obj): Promise<Obj> {
  return JSON.parse((await postWebhook(port, JSON.stringify(body))).body);
}

describe('TLS, fail-closed ranges, events, admission, status on shutdown', () => {
  let webSecret: Obj;
  const cluster = webCluster(
    async () => [
      '--election-ttl=2s',
      '--publish-status-address=192.0.2.10,lb.example.com',
      '--default-ssl-certificate=default/fallback',
      '--enable-metrics=true',
      ...(await webhookFlags()),
    ],
    {
      prepare: async (api) => {
        webSecret = await tlsSecret('web-tls', 'web.example.com');
        api.apply(webSecret);
        api.apply(await tlsSecret('fallback', 'keepip-test-default'));
        api.apply(
          ingress('web', 'web.example.com', 'web', {
            tls: [{ hosts: ['web.example.com'], secretName: 'web-tls' }],
          }),
        );
      },
    },
  );

  it('serves the certificate of the Ingress TLS Secret, and the default one for other names', async () => {
    const { httpsPort } = cluster;
    assert.equal(await peerCertificate(httpsPort, 'web.example.com'), 'web.example.com');
    assert.equal(await peerCertificate(httpsPort, 'other.example.com'), 'keepip-test-default');
    assert.equal((await get(httpsPort, 'web.example.com', '/s', true)).body, 'web /s\n');
  });

  it("exports ingress-nginx's certificate metrics (the chart's expiry alert) and leader_election_status", async () => {
    const { ctl } = cluster;
    await ctl.waitFor(() => ctl.running.leading(), 'leading');
    const text = await (await fetch(`http://127.0.0.1:${ctl.running.healthzAddress!.port}/metrics`)).text();
    const cert = new X509Certificate(Buffer.from(webSecret.data['tls.crt'], 'base64').toString('utf8'));
    const serial = BigInt(`0x${cert.serialNumber}`).toString();
    const labels = `namespace="default",class="k8s.io/ingress-nginx",host="web.example.com",secret_name="web-tls",identifier="-${serial}"`;
    assert.ok(
      text.includes(
        `nginx_ingress_controller_ssl_expire_time_seconds{${labels}} ${Math.floor(Date.parse(cert.validTo) / 1000)}`,
      ),
      text,
    );
    assert.match(
      text,
      new RegExp(
        `nginx_ingress_controller_ssl_certificate_info\\{${labels.replace(/[./]/g, '\\$&')},issuer_organization="",issuer_common_name="web\\.example\\.com",serial_number="${serial}",public_key_algorithm="ECDSA"\\} 1`,
      ),
    );
    assert.match(
      text,
      /nginx_ingress_controller_leader_election_status\{controller_namespace="ingress-nginx",controller_class="k8s\.io\/ingress-nginx",controller_pod="[^"]*",name="ingress-controller-leader"\} 1/,
    );
  });

  it('picks up a rotated Secret', async () => {
    const { api, ctl, httpsPort } = cluster;
    // Another name that still covers the host (a certificate that does not name it is not served).
    const rotated = await tlsSecret('web-tls', '*.example.com');
    const certPem = Buffer.from(rotated.data['tls.crt'], 'base64').toString('utf8');
    api.apply(rotated);
    // The snapshot being served carries the new certificate once the watch event has been applied.
    await ctl.waitFor(
      () =>
        ctl.running
          .gateway()
          ?.snapshot()
          .topology.gateway.virtualHosts.some((v) => v.tls?.certPem === certPem) === true,
      'the rotated certificate is served',
    );
    assert.equal(await peerCertificate(httpsPort, 'web.example.com'), '*.example.com');
  });

  it('picks up a renewed --default-ssl-certificate Secret, and serves the generated one while it is gone', async () => {
    const { api, ctl, httpsPort } = cluster;
    // cert-manager renews the default certificate in place: the next handshakes get the new one.
    const renewed = await tlsSecret('fallback', 'keepip-renewed-default');
    const certPem = Buffer.from(renewed.data['tls.crt'], 'base64').toString('utf8');
    ctl.mark();
    api.apply(renewed);
    const served = () => ctl.running.gateway()?.snapshot().topology.gateway.defaultCertificate?.certPem;
    await ctl.waitFor(() => served() === certPem, 'the renewed default certificate is served');
    assert.equal(await peerCertificate(httpsPort, 'other.example.com'), 'keepip-renewed-default');
    assert.equal(await peerCertificate(httpsPort, 'web.example.com'), '*.example.com');
    await ctl.waitForLine(/^reloaded: config v\d+/);
    // As ingress-nginx: without the Secret, the generated (fake) certificate; back when it returns.
    api.remove('Secret', 'default', 'fallback');
    await ctl.waitFor(() => served() === undefined, 'the default certificate Secret is gone');
    assert.equal(
      await peerCertificate(httpsPort, 'other.example.com'),
      'Kubernetes Ingress Controller Fake Certificate',
    );
    api.apply(renewed);
    await ctl.waitFor(() => served() === certPem, 'the default certificate Secret is back');
    assert.equal(await peerCertificate(httpsPort, 'other.example.com'), 'keepip-renewed-default');
  });

  it('an invalid allowlist fails closed with 503 and a Warning Event naming the annotation', async () => {
    const { api, ctl, httpPort } = cluster;
    ctl.mark();
    api.apply(
      ingress('locked', 'locked.example.com', 'web', {
        annotations: { 'nginx.ingress.kubernetes.io/whitelist-source-range': '10.0.0.0/8, not-an-ip' },
      }),
    );
    await waitForHost(ctl, 'locked.example.com');
    assert.equal((await get(httpPort, 'locked.example.com')).status, 503);
    const event = await api.waitUntil(() =>
      api.list('Event').find((e) => e.involvedObject.name === 'locked' && e.type === 'Warning'),
    );
    assert.equal(event.reason, 'AnnotationParsingFailed');
    assert.match(event.message, /whitelist-source-range/);
    assert.match(event.message, /INVALID_SOURCE_RANGE/);
  });

  it('an IPv4-mapped allowlist entry is served as ingress-nginx reads it (every IPv4 client) with a Warning Event naming the range', async () => {
    const { api, ctl, httpPort } = cluster;
    ctl.mark();
    api.apply(
      ingress('mapped', 'mapped.example.com', 'web', {
        annotations: { 'nginx.ingress.kubernetes.io/allowlist-source-range': '::ffff:0:0/96' },
      }),
    );
    await waitForHost(ctl, 'mapped.example.com');
    assert.equal((await get(httpPort, 'mapped.example.com')).status, 200);
    const event = await api.waitUntil(() =>
      api.list('Event').find((e) => e.involvedObject.name === 'mapped' && e.type === 'Warning'),
    );
    assert.equal(event.reason, 'MappedSourceRange');
    assert.match(event.message, /SOURCE_RANGE_MAPPED_ENTRY/);
    assert.match(event.message, /0\.0\.0\.0\/0: every IPv4 client/);
  });

  it('an Ingress with a snippet (Critical, over the default annotations-risk-level) is not served: 404, a Warning Event, no status address', async () => {
    const { api, ctl, httpPort } = cluster;
    ctl.mark();
    api.apply(
      ingress('snippet', 'snippet.example.com', 'web', {
        annotations: { 'nginx.ingress.kubernetes.io/server-snippet': 'allow 10.0.0.0/8; deny all;' },
      }),
    );
    api.apply(ingress('beside', 'beside.example.com', 'web'));
    await waitForHost(ctl, 'beside.example.com');
    assert.equal((await get(httpPort, 'snippet.example.com')).status, 404);
    const event = await api.waitUntil(() =>
      api.list('Event').find((e) => e.involvedObject.name === 'snippet' && e.type === 'Warning'),
    );
    assert.equal(event.reason, 'RiskyAnnotations');
    assert.match(event.message, /server-snippet.*ANNOTATION_TOO_RISKY/);
    // Every snapshot with `beside` has `snippet` too: once beside has its address, snippet was skipped.
    await api.waitUntil(
      () => api.get('Ingress', 'default', 'beside')?.status?.loadBalancer?.ingress?.length === 2,
    );
    assert.equal(api.get('Ingress', 'default', 'snippet')?.status?.loadBalancer?.ingress, undefined);
  });

  it('writes one Sync Event per Ingress and raises its count on the next change', async () => {
    const { api } = cluster;
    const sync = await api.waitUntil(() =>
      api.list('Event').find((e) => e.involvedObject.name === 'web' && e.reason === 'Sync'),
    );
    assert.equal(sync.count, 1);
    assert.equal(sync.message, 'Scheduled for sync');
    const web = api.get('Ingress', 'default', 'web')!;
    api.apply({ ...web, metadata: { ...web.metadata, annotations: { 'example.com/touched': 'yes' } } });
    const bumped = await api.waitUntil(() => {
      const e = api.get('Event', 'default', sync.metadata.name);
      return e && e.count === 2 ? e : undefined;
    });
    assert.equal(bumped.count, 2);
    assert.equal(
      api.list('Event').filter((e) => e.involvedObject.name === 'web' && e.reason === 'Sync').length,
      1,
    );
  });

  it('writes the publish-status-address status', async () => {
    const { api } = cluster;
    await api.waitUntil(
      () => api.get('Ingress', 'default', 'web')?.status?.loadBalancer?.ingress?.length === 2,
    );
    assert.deepEqual(api.get('Ingress', 'default', 'web')!.status.loadBalancer.ingress, [
      { ip: '192.0.2.10' },
      { hostname: 'lb.example.com' },
    ]);
  });

  it('the webhook refuses what would fail closed, with the doctor message, and allows the rest', async () => {
    const { api, ctl } = cluster;
    const port = ctl.running.webhookAddress!.port;
    const bad = ingress('bad', 'bad.example.com', 'web', {
      annotations: { 'nginx.ingress.kubernetes.io/allowlist-source-range': '300.1.1.1/8' },
    });
    const refused = await postReview(port, review(bad, 'u-bad'));
    assert.equal(refused.kind, 'AdmissionReview');
    assert.equal(refused.response.uid, 'u-bad');
    assert.equal(refused.response.allowed, false);
    assert.match(
      refused.response.status.message,
      /^error INVALID_SOURCE_RANGE: cluster \(Ingress default\/bad\) metadata\.annotations\["nginx\.ingress\.kubernetes\.io\/allowlist-source-range"\]/,
    );
    const rewrite = ingress('rw', 'rw.example.com', 'web', {
      annotations: { 'nginx.ingress.kubernetes.io/rewrite-target': '/$1;evil' },
    });
    const refusedRewrite = await postReview(port, review(rewrite, 'u-rw'));
    assert.equal(refusedRewrite.response.allowed, false);
    assert.match(refusedRewrite.response.status.message, /rewrite-target/);
    const good = ingress('good', 'good.example.com', 'web', {
      annotations: { 'nginx.ingress.kubernetes.io/ssl-redirect': 'yes' },
    });
    const allowed = await postReview(port, review(good, 'u-good'));
    assert.equal(allowed.response.allowed, true);
    assert.match(allowed.response.warnings[0], /^warning INVALID_ANNOTATION_VALUE: .*ssl-redirect/);
    const otherClass = { ...bad, spec: { ...bad.spec, ingressClassName: 'other' } };
    assert.equal((await postReview(port, review(otherClass, 'u-other'))).response.allowed, true);
    // ingress-nginx's admission metrics: a check per Ingress of ours (not the other class's), and the
    // last passing check's figures (the Ingresses in the cluster and good, translated together).
    const translated = api.list('Ingress').length + 1;
    const text = await (await fetch(`http://127.0.0.1:${ctl.running.healthzAddress!.port}/metrics`)).text();
    const of = (ns: string, name: string) =>
      `{controller_namespace="ingress-nginx",controller_class="k8s.io/ingress-nginx",controller_pod="",namespace="${ns}",ingress="${name}"}`;
    assert.ok(text.includes(`nginx_ingress_controller_check_errors${of('default', 'bad')} 1`), text);
    assert.ok(text.includes(`nginx_ingress_controller_check_errors${of('default', 'rw')} 1`), text);
    assert.ok(text.includes(`nginx_ingress_controller_check_success${of('default', 'good')} 1`), text);
    assert.ok(!/check_(success|errors)\{[^}]*ingress="bad"\} 2/.test(text), 'the other class is not checked');
    for (const gauge of ['tested_ingresses', 'render_ingresses'])
      assert.ok(
        new RegExp(`^nginx_ingress_controller_admission_${gauge}\\{[^}]*\\} ${translated}$`, 'm').test(text),
        gauge,
      );
    const size = Number(/^nginx_ingress_controller_admission_config_size\{[^}]*\} (\d+)$/m.exec(text)?.[1]);
    assert.ok(size > 200, `config size ${size}`);
    const roundtrip = Number(
      /^nginx_ingress_controller_admission_roundtrip_duration\{[^}]*\} (\S+)$/m.exec(text)?.[1],
    );
    assert.ok(roundtrip > 0 && roundtrip < 30, `roundtrip ${roundtrip}`);
    assert.ok(
      ctl.lines.some((l) =>
        /^admission: Ingress default\/good allowed \(\d+ Ingresses translated in /.test(l),
      ),
    );
    assert.ok(ctl.lines.some((l) => /^admission: Ingress default\/bad denied \(/.test(l)));
  });

  it('the only controller keeps a status of two addresses on shutdown, for the next leader (as ingress-nginx)', async () => {
    const { api, ctl } = cluster;
    await ctl.close();
    assert.ok(ctl.lines.includes('released the Lease'));
    assert.ok(ctl.lines.includes('the status has 2 addresses: kept on shutdown for the next leader'));
    assert.deepEqual(api.get('Ingress', 'default', 'web')!.status.loadBalancer.ingress, [
      { ip: '192.0.2.10' },
      { hostname: 'lb.example.com' },
    ]);
  });
});

describe('the webhook before the first complete sync', () => {
  const cluster = webCluster(async () => ['--disable-leader-election', ...(await webhookFlags())], {
    prepare: (api) => {
      api.apply(ingress('web', 'web.example.com', 'web'));
      api.setDown(true);
    },
    awaitServing: false,
  });

  it('refuses an Ingress it cannot check yet (503 ADMISSION_NOT_SYNCED), then reviews it', async () => {
    const { api, ctl } = cluster;
    const port = ctl.running.webhookAddress!.port;
    // The same host and path as the Ingress the controller has not read yet: admitting it unchecked
    // would let it in beside the one that keeps the path.
    const twin = ingress('twin', 'web.example.com', 'web');
    const early = await postReview(port, review(twin, 'u-early'));
    assert.equal(early.response.uid, 'u-early');
    assert.equal(early.response.allowed, false);
    assert.equal(early.response.status.code, 503);
    assert.match(early.response.status.message, /^error ADMISSION_NOT_SYNCED: /);
    // A deletion is never held up.
    const deletion = review(twin, 'u-delete');
    deletion.request.operation = 'DELETE';
    assert.equal((await postReview(port, deletion)).response.allowed, true);
    api.setDown(false);
    await ctl.running.serving();
    const late = await postReview(port, review(twin, 'u-late'));
    assert.equal(late.response.allowed, false);
    assert.match(late.response.status.message, /ADMISSION_PATH_OVERLAP/);
    const other = ingress('other', 'other.example.com', 'web');
    assert.equal((await postReview(port, review(other, 'u-other'))).response.allowed, true);
  });
});
