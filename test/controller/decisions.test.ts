// The controller's pure decisions: flags as ingress-nginx takes them, which Ingresses are ours,
// the status addresses, events, the admission verdict and the tcp-services plan.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { reviewAdmission, verdictFor } from '../../src/controller/admission.ts';
import { eventName, ingressEvents } from '../../src/controller/events.ts';
import { expandEnv, FLAGS, parseControllerFlags, parseGoDuration } from '../../src/controller/flags.ts';
import { reservedPorts } from '../../src/controller/serving.ts';
import {
  type ClusterObjects,
  isOurIngress,
  ourIngresses,
  type SnapshotOptions,
} from '../../src/controller/snapshot.ts';
import { desiredStatus, nodeAddress, serviceAddresses } from '../../src/controller/status.ts';
import { planTcpServices } from '../../src/controller/tcp-services.ts';
import { buildClusterTopology } from '../../src/controller/snapshot.ts';

const classOptions = {
  ingressClass: 'nginx',
  controllerClass: 'k8s.io/ingress-nginx',
  watchIngressWithoutClass: false,
  ingressClassByName: false,
};
const options: SnapshotOptions = {
  ...classOptions,
  configMap: null,
  defaultSslCertificate: null,
  defaultBackendService: null,
  annotationsPrefix: 'nginx.ingress.kubernetes.io',
};
const nginxClass = { metadata: { name: 'nginx' }, spec: { controller: 'k8s.io/ingress-nginx' } };
const empty: ClusterObjects = {
  ingresses: [],
  ingressClasses: [nginxClass],
  services: [],
  endpointSlices: [],
  secrets: [],
  configMaps: [],
  namespaces: null,
};

function ing(name: string, annotations: Record<string, string> = {}, spec: Record<string, unknown> = {}) {
  return {
    metadata: { namespace: 'default', name, annotations, uid: `uid-${name}`, resourceVersion: '1' },
    spec: {
      ingressClassName: 'nginx',
      rules: [
        {
          host: `${name}.example.com`,
          http: {
            paths: [
              { path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } },
            ],
          },
        },
      ],
      ...spec,
    },
  };
}

describe('flags', () => {
  it('takes --flag=value and --flag value, booleans bare or with a value, last one wins', () => {
    const p = parseControllerFlags(
      [
        '--http-port',
        '8080',
        '--https-port=8443',
        '--update-status',
        'false',
        '--watch-ingress-without-class',
        '--http-port=81',
      ],
      {},
    );
    assert.equal(p.ok, true);
    if (p.ok !== true) return;
    assert.equal(p.options.httpPort, 81);
    assert.equal(p.options.httpsPort, 8443);
    assert.equal(p.options.updateStatus, false);
    assert.equal(p.options.watchIngressWithoutClass, true);
  });

  it('mutually exclusive flags are a usage error, as ingress-nginx refuses to start with both', () => {
    const both = parseControllerFlags(['--publish-service=ns/svc', '--publish-status-address=1.1.0.0'], {});
    assert.equal(both.ok, false);
    assert.match(
      !both.ok ? both.error : '',
      /--publish-service and --publish-status-address are mutually exclusive/,
    );
    const scoped = parseControllerFlags(['--watch-namespace=a', '--watch-namespace-selector=team=a'], {});
    assert.equal(scoped.ok, false);
    assert.match(
      !scoped.ok ? scoped.error : '',
      /--watch-namespace and --watch-namespace-selector are mutually exclusive/,
    );
    // An empty value is "not set", as ingress-nginx compares with "".
    assert.equal(
      parseControllerFlags(['--publish-service=ns/svc', '--publish-status-address='], {}).ok,
      true,
    );
  });

  it('--annotations-prefix: the default, a custom DNS subdomain, anything else a usage error', () => {
    const def = parseControllerFlags([], {});
    assert.ok(def.ok === true);
    assert.equal(def.options.annotationsPrefix, 'nginx.ingress.kubernetes.io');
    const custom = parseControllerFlags(['--annotations-prefix=custom.example.com'], {});
    assert.ok(custom.ok === true);
    assert.equal(custom.options.annotationsPrefix, 'custom.example.com');
    assert.ok(!custom.warnings.some((w) => w.includes('annotations-prefix')), 'no "no effect" warning');
    const bad = parseControllerFlags(['--annotations-prefix', 'Not/A Prefix'], {});
    assert.ok(bad.ok === false);
    assert.match(bad.error, /--annotations-prefix: .* is not a DNS subdomain/);
  });

  it('the request metrics flags: labels from the Pod, buckets, status classes, exclusions, usage errors', () => {
    const def = parseControllerFlags([], { POD_NAMESPACE: 'ingress-nginx', POD_NAME: 'ctl-0' });
    assert.ok(def.ok === true);
    assert.deepEqual(
      [def.options.requestMetrics.controllerNamespace, def.options.requestMetrics.controllerPod],
      ['ingress-nginx', 'ctl-0'],
    );
    assert.equal(def.options.requestMetrics.controllerClass, 'k8s.io/ingress-nginx');
    assert.deepEqual(
      def.options.requestMetrics.timeBuckets,
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    );
    assert.equal(def.options.requestMetrics.perHost, true);
    const set = parseControllerFlags(
      [
        '--metrics-per-host=false',
        '--report-status-classes',
        '--time-buckets=0.1,0.5,2',
        '--size-buckets=100,1000',
        '--exclude-socket-metrics=nginx_ingress_controller_bytes_sent,request_size',
      ],
      {},
    );
    assert.ok(set.ok === true);
    const m = set.options.requestMetrics;
    assert.deepEqual(
      [m.perHost, m.statusClasses, m.timeBuckets, m.sizeBuckets, m.exclude],
      [false, true, [0.1, 0.5, 2], [100, 1000], ['nginx_ingress_controller_bytes_sent', 'request_size']],
    );
    assert.ok(
      !set.warnings.some((w) => /metrics-per-host|time-buckets|exclude-socket/.test(w)),
      'no "no effect" warning',
    );
    const unordered = parseControllerFlags(['--time-buckets=1,0.5'], {});
    assert.ok(unordered.ok === false);
    assert.match(
      unordered.error,
      /--time-buckets: "1,0.5" is not a comma-separated list of increasing numbers/,
    );
    const pair = parseControllerFlags(['--metrics-per-host=false', '--metrics-per-undefined-host'], {});
    assert.ok(pair.ok === false);
    assert.match(pair.error, /--metrics-per-undefined-host=true must be passed with --metrics-per-host=true/);
  });

  it("has ingress-nginx's defaults", () => {
    const p = parseControllerFlags([], {});
    assert.ok(p.ok === true);
    const o = p.options;
    assert.deepEqual(
      [
        o.ingressClass,
        o.controllerClass,
        o.electionId,
        o.httpPort,
        o.httpsPort,
        o.healthzPort,
        o.updateStatus,
        o.updateStatusOnShutdown,
        o.enableMetrics,
        o.bindAddress,
      ],
      // pkg/flags/flags.go: election-id "ingress-controller-leader", enable-metrics false (the chart
      // passes both: <fullname>-leader and controller.metrics.enabled).
      [
        'nginx',
        'k8s.io/ingress-nginx',
        'ingress-controller-leader',
        80,
        443,
        10254,
        true,
        true,
        false,
        '0.0.0.0',
      ],
    );
    assert.equal(o.podNamespace, 'default');
  });

  it('expands $(POD_NAMESPACE) and $POD_NAME, reads them from the environment', () => {
    const env = { POD_NAMESPACE: 'edge', POD_NAME: 'ctl-1' };
    assert.equal(
      expandEnv('$(POD_NAMESPACE)/ingress-nginx-controller', env),
      'edge/ingress-nginx-controller',
    );
    const p = parseControllerFlags(['--publish-service=$(POD_NAMESPACE)/ingress-nginx-controller'], env);
    assert.ok(p.ok === true);
    assert.equal(p.options.publishService, 'edge/ingress-nginx-controller');
    assert.equal(p.options.podNamespace, 'edge');
    assert.equal(p.options.podName, 'ctl-1');
  });

  it('warns about each unimplemented ingress-nginx flag by name, and refuses unknown flags and bad values', () => {
    const p = parseControllerFlags(
      ['--ssl-passthrough-proxy-port=1442', '--sync-period=10m', '--maxmind-license-key', 'x'],
      {},
    );
    assert.ok(p.ok === true);
    assert.equal(p.warnings.length, 3);
    assert.match(p.warnings[0]!, /--ssl-passthrough-proxy-port .*no internal proxy port/);
    // --enable-ssl-passthrough is implemented: no warning, and the option is on.
    const passthrough = parseControllerFlags(['--enable-ssl-passthrough'], {});
    assert.ok(passthrough.ok === true);
    assert.deepEqual(passthrough.warnings, []);
    assert.equal(passthrough.options.enableSslPassthrough, true);
    assert.equal(parseControllerFlags(['--bogus'], {}).ok, false);
    assert.equal(parseControllerFlags(['positional'], {}).ok, false);
    assert.equal(parseControllerFlags(['--http-port=x'], {}).ok, false);
    assert.equal(parseControllerFlags(['--configmap=noslash'], {}).ok, false);
    assert.equal(
      parseControllerFlags(['--validating-webhook=:8443'], {}).ok,
      false,
      'needs certificate and key',
    );
    assert.equal(parseControllerFlags(['--sync-period=soon'], {}).ok, false);
  });

  it('names every flag once', () => {
    assert.equal(new Set(FLAGS.map((f) => f.name)).size, FLAGS.length);
    assert.equal(parseGoDuration('1m30s'), 90_000);
    assert.equal(parseGoDuration('500ms'), 500);
    assert.equal(parseGoDuration('5'), null);
  });
});

describe('which Ingresses are ours (ingress-nginx class rules)', () => {
  const other = { metadata: { name: 'other' }, spec: { controller: 'example.com/other' } };
  it('by IngressClass controller, by name with --ingress-class-by-name, by legacy annotation, without class only when asked', () => {
    assert.equal(isOurIngress(ing('a'), [nginxClass], classOptions), true);
    assert.equal(
      isOurIngress(ing('a', {}, { ingressClassName: 'other' }), [nginxClass, other], classOptions),
      false,
    );
    assert.equal(isOurIngress(ing('a', {}, { ingressClassName: 'nginx' }), [], classOptions), false);
    assert.equal(
      isOurIngress(ing('a', {}, { ingressClassName: 'nginx' }), [], {
        ...classOptions,
        ingressClassByName: true,
      }),
      true,
    );
    const legacy = {
      metadata: { name: 'l', annotations: { 'kubernetes.io/ingress.class': 'nginx' } },
      spec: {},
    };
    assert.equal(isOurIngress(legacy, [], classOptions), true);
    const none = { metadata: { name: 'n' }, spec: {} };
    assert.equal(isOurIngress(none, [nginxClass], classOptions), false);
    assert.equal(isOurIngress(none, [nginxClass], { ...classOptions, watchIngressWithoutClass: true }), true);
    // An empty or foreign legacy annotation is not "without class" (ingress-nginx's GetIngressClass).
    for (const value of ['', 'other']) {
      const marked = {
        metadata: { name: 'e', annotations: { 'kubernetes.io/ingress.class': value } },
        spec: {},
      };
      assert.equal(
        isOurIngress(marked, [nginxClass], { ...classOptions, watchIngressWithoutClass: true }),
        false,
      );
    }
  });

  it('--watch-namespace-selector keeps only objects of the selected namespaces; --default-backend-service is the catch-all', () => {
    const other = { ...ing('elsewhere'), metadata: { ...ing('elsewhere').metadata, namespace: 'other' } };
    const topology = buildClusterTopology(
      {
        ...empty,
        ingresses: [ing('mine'), other],
        services: [
          { metadata: { namespace: 'default', name: 'fallback' }, spec: { ports: [{ port: 8080 }] } },
        ],
        namespaces: new Set(['default']),
      },
      { ...options, defaultBackendService: 'default/fallback' },
    );
    assert.deepEqual(
      topology.gateway.virtualHosts.map((v) => v.host),
      ['mine.example.com'],
    );
    // Named as ingress-nginx names it ($proxy_upstream_name), on the Service's first port.
    assert.deepEqual(topology.gateway.defaultBackend, {
      service: { namespace: 'default', name: 'fallback' },
      port: 8080,
      upstreamName: 'upstream-default-backend',
    });
  });

  it('--disable-catch-all: an Ingress with spec.defaultBackend is not ours at all, rules or not (disable_catch_all.go)', () => {
    const backend = { service: { name: 'web', port: { number: 80 } } };
    const catchAll = { ...ing('catch-all'), spec: { ingressClassName: 'nginx', defaultBackend: backend } };
    const withRules = ing('foo', {}, { defaultBackend: backend });
    const objects: ClusterObjects = {
      ...empty,
      ingresses: [catchAll, withRules, ing('plain')],
      services: [{ metadata: { namespace: 'default', name: 'fallback' }, spec: { ports: [{ port: 8080 }] } }],
    };
    const served = buildClusterTopology(objects, options);
    assert.deepEqual(served.gateway.virtualHosts.map((v) => v.host).sort(), [
      'foo.example.com',
      'plain.example.com',
    ]);
    assert.equal(served.gateway.defaultBackend?.upstreamName, 'default-web-80');
    const disabled = { ...options, disableCatchAll: true };
    const topology = buildClusterTopology(objects, disabled);
    assert.deepEqual(
      topology.gateway.virtualHosts.map((v) => v.host),
      ['plain.example.com'],
    );
    assert.equal(topology.gateway.defaultBackend, null);
    // Status and events are written for our Ingresses only: the ignored ones get neither.
    assert.deepEqual(
      ourIngresses(objects, disabled).map((i) => i.metadata?.name),
      ['plain'],
    );
    // --default-backend-service still backs the catch-all (no Ingress provides one).
    const fallback = buildClusterTopology(objects, {
      ...disabled,
      defaultBackendService: 'default/fallback',
    });
    assert.equal(fallback.gateway.defaultBackend?.upstreamName, 'upstream-default-backend');
  });

  it('the topology holds only our Ingresses, and only the Secrets they reference', () => {
    const secret = (name: string) => ({
      type: 'kubernetes.io/tls',
      metadata: { namespace: 'default', name },
      data: {},
    });
    const topology = buildClusterTopology(
      {
        ...empty,
        ingresses: [
          ing('mine', {}, { tls: [{ hosts: ['mine.example.com'], secretName: 'used' }] }),
          ing('theirs', {}, { ingressClassName: 'other' }),
        ],
        secrets: [secret('used'), secret('unused')],
      },
      options,
    );
    assert.deepEqual(
      topology.gateway.virtualHosts.map((v) => v.host),
      ['mine.example.com'],
    );
    assert.ok(!topology.issues.some((i) => i.message.includes('unused')));
    assert.ok(topology.issues.some((i) => i.code === 'TLS_SECRET_INVALID' && i.origin?.name === 'used'));
  });
});

describe('status addresses', () => {
  it('publish-status-address first (IPs and hostnames), else the publish-service, else the nodes', () => {
    assert.deepEqual(
      desiredStatus({
        publishStatusAddress: ['lb.example.com', '10.0.0.2', '10.0.0.2'],
        publishService: undefined,
        nodeAddresses: ['1.1.1.1'],
      }),
      [{ ip: '10.0.0.2' }, { hostname: 'lb.example.com' }],
    );
    const svc = {
      spec: { type: 'LoadBalancer', externalIPs: ['192.0.2.9'] },
      status: { loadBalancer: { ingress: [{ hostname: 'abc.elb.amazonaws.com' }] } },
    };
    assert.deepEqual(serviceAddresses(svc), [{ ip: '192.0.2.9' }, { hostname: 'abc.elb.amazonaws.com' }]);
    assert.deepEqual(
      desiredStatus({ publishStatusAddress: [], publishService: null, nodeAddresses: ['1.1.1.1'] }),
      [],
    );
    assert.deepEqual(
      desiredStatus({ publishStatusAddress: [], publishService: undefined, nodeAddresses: ['10.0.0.3'] }),
      [{ ip: '10.0.0.3' }],
    );
    const node = {
      status: {
        addresses: [
          { type: 'InternalIP', address: '10.0.0.3' },
          { type: 'ExternalIP', address: '203.0.113.3' },
        ],
      },
    };
    assert.equal(nodeAddress(node, false), '203.0.113.3');
    assert.equal(nodeAddress(node, true), '10.0.0.3');
  });
});

describe('publish-service addresses by Service type (ingress-nginx statusAddressFromService)', () => {
  it('ClusterIP: the cluster IP; NodePort: its externalIPs, else the cluster IP; LoadBalancer: status and externalIPs', () => {
    assert.deepEqual(serviceAddresses({ spec: { type: 'ClusterIP', clusterIP: '10.96.0.10' } }), [
      { ip: '10.96.0.10' },
    ]);
    // type defaults to ClusterIP; a headless Service has no address to publish.
    assert.deepEqual(serviceAddresses({ spec: { clusterIP: '10.96.0.11' } }), [{ ip: '10.96.0.11' }]);
    assert.deepEqual(serviceAddresses({ spec: { type: 'ClusterIP', clusterIP: 'None' } }), []);
    assert.deepEqual(serviceAddresses({ spec: { type: 'NodePort', clusterIP: '10.96.0.12' } }), [
      { ip: '10.96.0.12' },
    ]);
    assert.deepEqual(
      serviceAddresses({ spec: { type: 'NodePort', clusterIP: '10.96.0.12', externalIPs: ['192.0.2.7'] } }),
      [{ ip: '192.0.2.7' }],
    );
    // A LoadBalancer still waiting for its address publishes nothing (not its cluster IP).
    assert.deepEqual(serviceAddresses({ spec: { type: 'LoadBalancer', clusterIP: '10.96.0.13' } }), []);
  });
});

describe('events', () => {
  it('Sync plus a Warning naming the annotation; names are stable per (object, reason, message)', () => {
    const bad = ing('bad', { 'nginx.ingress.kubernetes.io/denylist-source-range': 'nope' });
    const topology = buildClusterTopology({ ...empty, ingresses: [bad] }, options);
    const events = ingressEvents(bad, topology.issues, true);
    assert.deepEqual(
      events.map((e) => [e.type, e.reason]),
      [
        ['Normal', 'Sync'],
        ['Warning', 'AnnotationParsingFailed'],
      ],
    );
    assert.match(events[1]!.message, /denylist-source-range/);
    assert.equal(eventName(events[0]!), eventName({ ...events[0]! }));
    assert.notEqual(eventName(events[0]!), eventName(events[1]!));
    assert.deepEqual(ingressEvents(bad, [], false), []);
  });

  it('a refused annotation (ModSecurity) is a Warning naming it and the reason', () => {
    const modsecurity = ing('modsec', { 'nginx.ingress.kubernetes.io/enable-modsecurity': 'true' });
    const topology = buildClusterTopology({ ...empty, ingresses: [modsecurity] }, options);
    const warnings = ingressEvents(modsecurity, topology.issues, false);
    assert.deepEqual(
      warnings.map((e) => [e.type, e.reason]),
      [['Warning', 'AnnotationRefused']],
    );
    assert.match(warnings[0]!.message, /enable-modsecurity.*\[ANNOTATION_REFUSED\]/);
  });

  it('a snippet (Critical) over the default risk level: a Warning on the Ingress, which is not served', () => {
    const snippet = ing('snip', { 'nginx.ingress.kubernetes.io/configuration-snippet': 'deny all;' });
    const topology = buildClusterTopology({ ...empty, ingresses: [snippet] }, options);
    const warnings = ingressEvents(snippet, topology.issues, false);
    assert.deepEqual(
      warnings.map((e) => [e.type, e.reason]),
      [['Warning', 'RiskyAnnotations']],
    );
    assert.match(warnings[0]!.message, /configuration-snippet.*Critical.*High.*\[ANNOTATION_TOO_RISKY\]/);
    assert.equal(topology.gateway.virtualHosts.length, 0);
  });
});

describe('admission verdict', () => {
  it('refuses bad ranges, bad paths, refused backend protocols and snippets with the doctor lines; warns the rest', () => {
    const refused = (i: ReturnType<typeof ing>) => verdictFor(i, empty, options);
    assert.equal(refused(ing('ok')).allowed, true);
    const range = refused(ing('r', { 'nginx.ingress.kubernetes.io/whitelist-source-range': '1.2.3.4/33' }));
    assert.equal(range.allowed, false);
    assert.match(range.message, /^error INVALID_SOURCE_RANGE: cluster \(Ingress default\/r\)/);
    const path = ing('p');
    (path.spec.rules[0]!.http.paths[0] as { path: string }).path = '/a b';
    assert.match(refused(path).message, /INVALID_PATH/);
    assert.match(
      refused(ing('g', { 'nginx.ingress.kubernetes.io/backend-protocol': 'FCGI' })).message,
      /UNSUPPORTED_BACKEND_PROTOCOL/,
    );
    assert.match(
      refused(ing('s', { 'nginx.ingress.kubernetes.io/configuration-snippet': 'deny all;' })).message,
      /configuration-snippet/,
    );
    const warned = refused(ing('w', { 'nginx.ingress.kubernetes.io/ssl-redirect': 'yes' }));
    assert.equal(warned.allowed, true);
    assert.match(warned.warnings[0]!, /^warning INVALID_ANNOTATION_VALUE/);
  });

  it('with a custom --annotations-prefix, refuses annotations under the standard prefix (they would be ignored)', () => {
    const custom = { ...options, annotationsPrefix: 'custom.example.com' };
    const standard = ing('std', {
      'nginx.ingress.kubernetes.io/whitelist-source-range': '10.0.0.0/8',
      'nginx.ingress.kubernetes.io/ssl-redirect': 'false',
    });
    const verdict = verdictFor(standard, empty, custom);
    assert.equal(verdict.allowed, false);
    assert.match(
      verdict.message,
      /^error ADMISSION_ANNOTATION_PREFIX: cluster \(Ingress default\/std\) metadata\.annotations\["nginx\.ingress\.kubernetes\.io\/ssl-redirect"\]: .*--annotations-prefix.*"custom\.example\.com\/ssl-redirect"/,
    );
    assert.equal(verdict.message.split('\n').length, 2);
    assert.equal(
      verdictFor(ing('ok', { 'custom.example.com/ssl-redirect': 'false' }), empty, custom).allowed,
      true,
    );
    // The default prefix: nothing to refuse.
    assert.equal(verdictFor(standard, empty, options).allowed, true);
  });

  it('with --watch-namespace, allows an Ingress of another namespace: another controller serves it', () => {
    const bad = ing('elsewhere', { 'nginx.ingress.kubernetes.io/whitelist-source-range': '1.2.3.4/33' });
    assert.equal(verdictFor(bad, empty, { ...options, watchNamespace: 'default' }).allowed, false);
    assert.deepEqual(verdictFor(bad, empty, { ...options, watchNamespace: 'team-a' }), {
      allowed: true,
      message: '',
      warnings: [],
    });
  });

  it('allows any update of an Ingress being deleted (a finalizer being removed), as ingress-nginx', () => {
    const bad = ing('gone', { 'nginx.ingress.kubernetes.io/whitelist-source-range': '1.2.3.4/33' });
    assert.equal(verdictFor(bad, empty, options).allowed, false);
    const deleting = { ...bad, metadata: { ...bad.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } };
    assert.deepEqual(verdictFor(deleting, empty, options), { allowed: true, message: '', warnings: [] });
  });

  it('--disable-catch-all refuses an Ingress with spec.defaultBackend, as ingress-nginx checkIngress does', () => {
    const backend = { service: { name: 'web', port: { number: 80 } } };
    const disabled = { ...options, disableCatchAll: true };
    const withRules = ing('foo', {}, { defaultBackend: backend });
    assert.equal(verdictFor(withRules, empty, options).allowed, true);
    const verdict = verdictFor(withRules, empty, disabled);
    assert.equal(verdict.allowed, false);
    assert.match(
      verdict.message,
      /^error ADMISSION_CATCH_ALL_DISABLED: cluster \(Ingress default\/foo\) spec\.defaultBackend: .*--disable-catch-all/,
    );
    assert.equal(verdictFor(ing('plain'), empty, disabled).allowed, true);
  });

  it('answers AdmissionReview v1, and refuses what is not one', () => {
    const out = reviewAdmission(
      {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: 'u1', kind: { kind: 'Ingress' }, operation: 'DELETE', object: null },
      },
      empty,
      options,
    );
    assert.ok(out.ok);
    assert.deepEqual(out.response.response, { uid: 'u1', allowed: true });
    const bad = reviewAdmission({ kind: 'Nope' }, empty, options);
    assert.equal(bad.ok, false);
    assert.equal(!bad.ok && bad.code, 'ADMISSION_BAD_REVIEW');
  });
});

describe('tcp-services plan', () => {
  it('reads port: ns/svc:port[:PROXY][:PROXY], resolves ready endpoints, refuses the rest by name', () => {
    const topology = buildClusterTopology(
      {
        ...empty,
        services: [
          {
            metadata: { namespace: 'g', name: 'ssh' },
            spec: { ports: [{ name: 'ssh', port: 22, targetPort: 2222 }] },
          },
        ],
        endpointSlices: [
          {
            metadata: { namespace: 'g', name: 'ssh-1', labels: { 'kubernetes.io/service-name': 'ssh' } },
            addressType: 'IPv4',
            endpoints: [
              { addresses: ['10.1.1.1'] },
              { addresses: ['10.1.1.2'], conditions: { ready: false } },
            ],
            ports: [{ name: 'ssh', port: 2222 }],
          },
        ],
      },
      options,
    );
    const cm = {
      metadata: { namespace: 'i', name: 'tcp' },
      data: {
        '22': 'g/ssh:22:PROXY:PROXY',
        '2222': 'g/ssh:ssh',
        '80': 'g/ssh:22',
        '99': 'bad',
        x: 'g/ssh:22',
      },
    };
    const { plans, problems } = planTcpServices(cm, topology, [80, 443, 10254]);
    assert.deepEqual(
      plans.map((p) => [p.port, p.decode, p.encode, p.targets]),
      [
        [22, true, true, [{ host: '10.1.1.1', port: 2222 }]],
        [2222, false, false, [{ host: '10.1.1.1', port: 2222 }]],
      ],
    );
    assert.equal(problems.length, 3);
    assert.ok(problems.every((p) => p.code === 'TCP_SERVICE_INVALID'));
  });
});

it('tcp-services may not take the webhook or dashboard port either (beside HTTP, HTTPS, health)', () => {
  const parsed = parseControllerFlags(
    [
      '--validating-webhook=:8443',
      '--validating-webhook-certificate=/c',
      '--validating-webhook-key=/k',
      '--dashboard=127.0.0.1:9090',
    ],
    {},
  );
  assert.ok(parsed.ok === true);
  assert.deepEqual(reservedPorts(parsed.options), [80, 443, 10254, 8443, 9090]);
  const bare = parseControllerFlags(['--dashboard=9191', '--http-port=8080'], {});
  assert.ok(bare.ok === true);
  assert.deepEqual(reservedPorts(bare.options), [8080, 443, 10254, 9191]);
});
