// Every value of the ingress-nginx chart and what `keepip manifests` does with it: rendered as the chart
// renders it, or ignored (with the reason, reported by key when a values file sets it to anything but
// the chart's default). docs/deploy.md lists this table; test/deploy/values-keys.test.ts holds the two
// to each other and to the chart's defaults. A key marked `map` is a map or list the user fills in
// (annotations, resources, …): its sub-keys are the user's own and are not looked up here.

export type KeyStatus = 'rendered' | 'ignored';

export interface KeyInfo {
  readonly status: KeyStatus;
  /** What keepip renders from it, or why it is ignored. */
  readonly note: string;
  /** A user-filled map or list: its sub-keys are not chart keys. */
  readonly map?: true;
}

const r = (note: string): KeyInfo => ({ status: 'rendered', note });
const rm = (note: string): KeyInfo => ({ status: 'rendered', note, map: true });
const ig = (note: string): KeyInfo => ({ status: 'ignored', note });
const igm = (note: string): KeyInfo => ({ status: 'ignored', note, map: true });

const NO_NGINX = 'keepip runs no nginx process';
const IMAGE = 'the image is keepip’s (`--image`)';
const CERTGEN =
  'keepip renders the webhook certificate itself (or with cert-manager); no kube-webhook-certgen Jobs';
const NO_BACKEND = 'keepip answers unmatched requests itself (404); it deploys no default backend';

function serviceKeys(prefix: string, what: string): Record<string, KeyInfo> {
  const keys: Record<string, KeyInfo> = {
    [`${prefix}.labels`]: rm(`labels of the ${what} Service`),
    [`${prefix}.annotations`]: rm(
      `annotations of the ${what} Service (the load balancer's, e.g. aws-load-balancer-*)`,
    ),
    [`${prefix}.type`]: r('spec.type'),
    [`${prefix}.clusterIP`]: r('spec.clusterIP'),
    [`${prefix}.clusterIPs`]: rm('spec.clusterIPs'),
    [`${prefix}.externalIPs`]: rm('spec.externalIPs'),
    [`${prefix}.loadBalancerIP`]: r('spec.loadBalancerIP'),
    [`${prefix}.loadBalancerSourceRanges`]: rm('spec.loadBalancerSourceRanges'),
    [`${prefix}.loadBalancerClass`]: r('spec.loadBalancerClass'),
    [`${prefix}.allocateLoadBalancerNodePorts`]: r('spec.allocateLoadBalancerNodePorts'),
    [`${prefix}.externalTrafficPolicy`]: r('spec.externalTrafficPolicy'),
    [`${prefix}.sessionAffinity`]: r('spec.sessionAffinity'),
    [`${prefix}.healthCheckNodePort`]: r('spec.healthCheckNodePort'),
    [`${prefix}.trafficDistribution`]: r('spec.trafficDistribution'),
    [`${prefix}.ipFamilyPolicy`]: r('spec.ipFamilyPolicy'),
    [`${prefix}.ipFamilies`]: rm('spec.ipFamilies'),
    [`${prefix}.ports.http`]: r('port of the http Service port'),
    [`${prefix}.ports.https`]: r('port of the https Service port'),
    [`${prefix}.targetPorts.http`]: r('targetPort of the http Service port'),
    [`${prefix}.targetPorts.https`]: r('targetPort of the https Service port'),
    [`${prefix}.appProtocol`]: r('appProtocol http/https on the ports'),
    [`${prefix}.nodePorts.http`]: r('nodePort of the http port (NodePort/LoadBalancer)'),
    [`${prefix}.nodePorts.https`]: r('nodePort of the https port (NodePort/LoadBalancer)'),
    [`${prefix}.nodePorts.tcp`]: rm('nodePorts of the `tcp` ports'),
    [`${prefix}.nodePorts.udp`]: rm('nodePorts of the `udp` ports'),
  };
  return keys;
}

/** The internal Service's ports and targetPorts are maps that default to the external ones. */
function internalServiceKeys(): Record<string, KeyInfo> {
  const keys = serviceKeys('controller.service.internal', 'internal');
  for (const key of Object.keys(keys)) {
    if (/\.(ports|targetPorts)\./.test(key)) delete keys[key];
  }
  return {
    ...keys,
    'controller.service.internal.ports': rm('ports of the internal Service (default: the external ones)'),
    'controller.service.internal.targetPorts': rm('targetPorts of the internal Service'),
  };
}

const TOP: Record<string, KeyInfo> = {
  'global.image.registry': ig(IMAGE),
  nameOverride: r('the `app.kubernetes.io/name` label and object names, as the chart'),
  fullnameOverride: r('the prefix of every object name, as the chart'),
  namespaceOverride: r('the namespace (else `--namespace`)'),
  commonLabels: rm('labels on every object'),
  revisionHistoryLimit: r('Deployment spec.revisionHistoryLimit'),
  'rbac.create': r('ServiceAccount RBAC: ClusterRole, Role and their bindings'),
  'rbac.scope': r(
    'watched resources in Roles only (needs controller.scope.enabled); the ClusterRole keeps IngressClasses and Nodes',
  ),
  'serviceAccount.create': r('the ServiceAccount'),
  'serviceAccount.name': r('its name'),
  'serviceAccount.automountServiceAccountToken': r('automountServiceAccountToken'),
  'serviceAccount.annotations': rm('its annotations (e.g. eks.amazonaws.com/role-arn)'),
  imagePullSecrets: rm('pod spec.imagePullSecrets'),
  tcp: rm('the tcp-services ConfigMap, its Service and container ports, `--tcp-services-configmap`'),
  udp: rm('the udp-services ConfigMap, its Service and container ports, `--udp-services-configmap`'),
  portNamePrefix: r('prefix of the tcp and udp port names'),
  dhParam: ig('keepip’s TLS uses ECDHE only; no Diffie-Hellman parameters'),
  defaultBackend: igm(NO_BACKEND),
};

const IMAGE_KEYS: Record<string, KeyInfo> = {
  'controller.image.chroot': ig('keepip has no chroot variant'),
  'controller.image.registry': ig(IMAGE),
  'controller.image.repository': ig(IMAGE),
  'controller.image.image': ig(IMAGE),
  'controller.image.tag': ig(IMAGE),
  'controller.image.digest': ig(IMAGE),
  'controller.image.digestChroot': ig(IMAGE),
  'controller.image.pullPolicy': r('imagePullPolicy'),
  'controller.image.runAsNonRoot': r('container securityContext'),
  'controller.image.runAsUser': r('container securityContext (the image’s user is 101)'),
  'controller.image.runAsGroup': r('container securityContext'),
  'controller.image.allowPrivilegeEscalation': r('container securityContext'),
  'controller.image.seccompProfile': rm('container securityContext'),
  'controller.image.readOnlyRootFilesystem': r(
    'always true: keepip writes nothing to its root (the chart’s false is nginx’s); containerSecurityContext replaces it',
  ),
};

const CONTROLLER: Record<string, KeyInfo> = {
  'controller.name': r('object name suffix (`<fullname>-controller`)'),
  'controller.enableAnnotationValidations': r('`--enable-annotation-validation=false` when false'),
  'controller.containerName': r('the container name'),
  'controller.containerPort': rm('container ports, one per key (http, https)'),
  'controller.config': rm('the controller ConfigMap data (keys keepip does not implement are reported)'),
  'controller.configAnnotations': rm('annotations of the controller ConfigMap'),
  'controller.proxySetHeaders': rm(
    'the ConfigMap `<fullname>-custom-proxy-headers`, named by the controller ConfigMap key proxy-set-headers',
  ),
  'controller.addHeaders': rm(
    'the ConfigMap `<fullname>-custom-add-headers`, named by the controller ConfigMap key add-headers',
  ),
  'controller.dnsConfig': rm('pod dnsConfig'),
  'controller.hostAliases': rm('pod hostAliases'),
  'controller.hostname': rm('pod hostname'),
  'controller.dnsPolicy': r('pod dnsPolicy'),
  'controller.runtimeClassName': r('pod runtimeClassName'),
  'controller.reportNodeInternalIp': r('`--report-node-internal-ip-address` (with hostNetwork)'),
  'controller.watchIngressWithoutClass': r('`--watch-ingress-without-class=true`'),
  'controller.ingressClassByName': r('`--ingress-class-by-name=true`'),
  'controller.enableTopologyAwareRouting': r('`--enable-topology-aware-routing=true`'),
  'controller.disableLeaderElection': r('`--disable-leader-election=true`'),
  'controller.electionTTL': r('`--election-ttl`'),
  'controller.allowSnippetAnnotations': ig('keepip never runs snippets'),
  'controller.hostNetwork': r('pod hostNetwork'),
  'controller.hostPort.enabled': r('hostPort on the http/https/tcp/udp container ports'),
  'controller.hostPort.ports.http': r('hostPort of `http`'),
  'controller.hostPort.ports.https': r('hostPort of `https`'),
  'controller.networkPolicy.enabled': ig('keepip renders no NetworkPolicy'),
  'controller.electionID': r('`--election-id` and the Lease name in the Role'),
  'controller.ingressClassResource.name': r('the IngressClass name'),
  'controller.ingressClassResource.enabled': r('whether the IngressClass is rendered'),
  'controller.ingressClassResource.default': r('`ingressclass.kubernetes.io/is-default-class`'),
  'controller.ingressClassResource.annotations': rm('IngressClass annotations'),
  'controller.ingressClassResource.controllerValue': r(
    'IngressClass spec.controller and `--controller-class`',
  ),
  'controller.ingressClassResource.aliases': rm('one more IngressClass per alias'),
  'controller.ingressClassResource.parameters': rm('IngressClass spec.parameters'),
  'controller.ingressClass': r('`--ingress-class`'),
  'controller.podLabels': rm('pod labels'),
  'controller.podSecurityContext': rm('pod securityContext'),
  'controller.sysctls': rm('pod securityContext.sysctls'),
  'controller.containerSecurityContext': rm(
    'container securityContext (replaces the controller.image.* one)',
  ),
  'controller.publishService.enabled': r('`--publish-service`'),
  'controller.publishService.pathOverride': r('`--publish-service` value'),
  'controller.scope.enabled': r('`--watch-namespace`'),
  'controller.scope.namespace': r('`--watch-namespace` value (default: the release namespace)'),
  'controller.scope.namespaceSelector': r('`--watch-namespace-selector`'),
  'controller.configMapNamespace': r('namespace in `--configmap`'),
  'controller.tcp.configMapNamespace': r('namespace in `--tcp-services-configmap`'),
  'controller.tcp.annotations': rm('annotations of the tcp-services ConfigMap'),
  'controller.udp.configMapNamespace': r('namespace in `--udp-services-configmap`'),
  'controller.udp.annotations': rm('annotations of the udp-services ConfigMap'),
  'controller.maxmindLicenseKey': ig('keepip has no GeoIP'),
  'controller.extraArgs': rm('more controller flags (flags keepip does not implement are reported)'),
  'controller.extraEnvs': rm('more container env'),
  'controller.kind': r('Deployment or DaemonSet (Both is not supported)'),
  'controller.annotations': rm('Deployment/DaemonSet and PodDisruptionBudget annotations'),
  'controller.labels': rm('labels of the controller’s objects'),
  'controller.updateStrategy': rm('Deployment strategy / DaemonSet updateStrategy'),
  'controller.progressDeadlineSeconds': r('Deployment progressDeadlineSeconds'),
  'controller.minReadySeconds': r('minReadySeconds'),
  'controller.tolerations': rm('pod tolerations'),
  'controller.affinity': rm('pod affinity'),
  'controller.topologySpreadConstraints': rm('pod topologySpreadConstraints'),
  'controller.terminationGracePeriodSeconds': r(
    'pod terminationGracePeriodSeconds (keepip drains within it)',
  ),
  'controller.nodeSelector': rm('pod nodeSelector'),
  'controller.livenessProbe': rm('livenessProbe (keepip serves /healthz on the healthz port)'),
  'controller.readinessProbe': rm('readinessProbe (ready after the first complete sync)'),
  'controller.startupProbe': rm('startupProbe'),
  'controller.healthCheckPath': r('`--health-check-path`'),
  'controller.healthCheckHost': r('`--healthz-host`'),
  'controller.podAnnotations': rm('pod annotations'),
  'controller.replicaCount': r('Deployment replicas'),
  'controller.minAvailable': r('PodDisruptionBudget minAvailable (with more than one replica)'),
  'controller.maxUnavailable': r('PodDisruptionBudget maxUnavailable'),
  'controller.unhealthyPodEvictionPolicy': r('PodDisruptionBudget unhealthyPodEvictionPolicy'),
  'controller.resources': rm('container resources'),
  'controller.resizePolicy': rm('container resizePolicy'),
  'controller.autoscaling.enabled': r('a HorizontalPodAutoscaler (autoscaling/v2)'),
  'controller.autoscaling.annotations': rm('its annotations'),
  'controller.autoscaling.minReplicas': r('minReplicas'),
  'controller.autoscaling.maxReplicas': r('maxReplicas'),
  'controller.autoscaling.targetCPUUtilizationPercentage': r('cpu Utilization target'),
  'controller.autoscaling.targetMemoryUtilizationPercentage': r('memory Utilization target'),
  'controller.autoscaling.behavior': rm('behavior'),
  'controller.autoscalingTemplate': rm('more HPA metrics'),
  'controller.keda': igm('keepip renders no KEDA ScaledObject; use controller.autoscaling'),
  'controller.enableMimalloc': ig('no nginx, no mimalloc preload'),
  'controller.customTemplate.configMapName': ig(`${NO_NGINX}: no nginx.tmpl`),
  'controller.customTemplate.configMapKey': ig(`${NO_NGINX}: no nginx.tmpl`),
  'controller.shareProcessNamespace': r('pod shareProcessNamespace'),
  'controller.extraContainers': rm('more containers'),
  'controller.extraVolumeMounts': rm('more volumeMounts'),
  'controller.extraVolumes': rm('more volumes'),
  'controller.extraInitContainers': rm('initContainers'),
  'controller.extraModules': igm(`${NO_NGINX}: no nginx modules`),
  'controller.lifecycle': igm('keepip drains on SIGTERM itself (no /wait-shutdown, no shell in the image)'),
  'controller.priorityClassName': r('pod priorityClassName'),
};

const SERVICE: Record<string, KeyInfo> = {
  'controller.service.enabled': r('the controller Services'),
  'controller.service.external.enabled': r('the external Service'),
  'controller.service.external.labels': rm('labels of the external Service'),
  'controller.service.enableHttp': r('the http port'),
  'controller.service.enableHttps': r('the https port'),
  ...serviceKeys('controller.service', 'controller'),
  'controller.service.internal.enabled': r('a second Service `<name>-internal` (with annotations set)'),
  ...internalServiceKeys(),
};

const WEBHOOK: Record<string, KeyInfo> = {
  'controller.admissionWebhooks.name': r('webhook object name suffix'),
  'controller.admissionWebhooks.annotations': rm('ValidatingWebhookConfiguration annotations'),
  'controller.admissionWebhooks.enabled': r('`--validating-webhook`, its Service and configuration'),
  'controller.admissionWebhooks.extraEnvs': igm(CERTGEN),
  'controller.admissionWebhooks.failurePolicy': r('failurePolicy'),
  'controller.admissionWebhooks.timeoutSeconds': r('timeoutSeconds'),
  'controller.admissionWebhooks.port': r('`--validating-webhook=:<port>` and the `webhook` container port'),
  'controller.admissionWebhooks.certificate': r('`--validating-webhook-certificate`'),
  'controller.admissionWebhooks.key': r('`--validating-webhook-key`'),
  'controller.admissionWebhooks.namespaceSelector': rm('namespaceSelector'),
  'controller.admissionWebhooks.objectSelector': rm('objectSelector'),
  'controller.admissionWebhooks.labels': rm('labels of the ValidatingWebhookConfiguration'),
  'controller.admissionWebhooks.service.annotations': rm('webhook Service annotations'),
  'controller.admissionWebhooks.service.clusterIP': r('webhook Service clusterIP'),
  'controller.admissionWebhooks.service.externalIPs': rm('webhook Service externalIPs'),
  'controller.admissionWebhooks.service.loadBalancerIP': r('webhook Service loadBalancerIP'),
  'controller.admissionWebhooks.service.loadBalancerSourceRanges': rm('webhook Service source ranges'),
  'controller.admissionWebhooks.service.servicePort': r('webhook Service port'),
  'controller.admissionWebhooks.service.type': r('webhook Service type'),
  'controller.admissionWebhooks.createSecretJob': igm(CERTGEN),
  'controller.admissionWebhooks.patchWebhookJob': igm(CERTGEN),
  'controller.admissionWebhooks.patch': igm(CERTGEN),
  'controller.admissionWebhooks.certManager.enabled': r('cert-manager Issuers and Certificate, CA injection'),
  'controller.admissionWebhooks.certManager.issuerRef': rm('an Issuer of your own for the Certificate'),
  'controller.admissionWebhooks.certManager.rootCert.duration': r('root Certificate duration'),
  'controller.admissionWebhooks.certManager.rootCert.revisionHistoryLimit': r('its revisionHistoryLimit'),
  'controller.admissionWebhooks.certManager.admissionCert.duration': r('serving Certificate duration'),
  'controller.admissionWebhooks.certManager.admissionCert.revisionHistoryLimit':
    r('its revisionHistoryLimit'),
};

const METRICS: Record<string, KeyInfo> = {
  'controller.metrics.port': r('the metrics container port (keepip serves /metrics on the healthz port)'),
  'controller.metrics.portName': r('its name'),
  'controller.metrics.enabled': r('`--enable-metrics=true`, the port and the metrics Service'),
  'controller.metrics.service.enabled': r('the metrics Service'),
  'controller.metrics.service.annotations': rm('its annotations'),
  'controller.metrics.service.labels': rm('its labels'),
  'controller.metrics.service.clusterIP': r('its clusterIP'),
  'controller.metrics.service.externalIPs': rm('its externalIPs'),
  'controller.metrics.service.loadBalancerIP': r('its loadBalancerIP'),
  'controller.metrics.service.loadBalancerSourceRanges': rm('its source ranges'),
  'controller.metrics.service.externalTrafficPolicy': r('its externalTrafficPolicy'),
  'controller.metrics.service.servicePort': r('its port'),
  'controller.metrics.service.nodePort': r('its nodePort'),
  'controller.metrics.service.type': r('its type'),
  'controller.metrics.serviceMonitor.enabled': r('a monitoring.coreos.com/v1 ServiceMonitor'),
  'controller.metrics.serviceMonitor.additionalLabels': rm('its labels'),
  'controller.metrics.serviceMonitor.annotations': rm('its annotations'),
  'controller.metrics.serviceMonitor.namespace': r('its namespace'),
  'controller.metrics.serviceMonitor.namespaceSelector': rm('its namespaceSelector'),
  'controller.metrics.serviceMonitor.scrapeInterval': r('endpoint interval'),
  'controller.metrics.serviceMonitor.scrapeTimeout': r('endpoint scrapeTimeout'),
  'controller.metrics.serviceMonitor.honorLabels': r('endpoint honorLabels'),
  'controller.metrics.serviceMonitor.jobLabel': r('jobLabel'),
  'controller.metrics.serviceMonitor.targetLabels': rm('targetLabels'),
  'controller.metrics.serviceMonitor.relabelings': rm('endpoint relabelings'),
  'controller.metrics.serviceMonitor.metricRelabelings': rm('endpoint metricRelabelings'),
  'controller.metrics.serviceMonitor.labelLimit': r('labelLimit'),
  'controller.metrics.serviceMonitor.labelNameLengthLimit': r('labelNameLengthLimit'),
  'controller.metrics.serviceMonitor.labelValueLengthLimit': r('labelValueLengthLimit'),
  'controller.metrics.serviceMonitor.sampleLimit': r('sampleLimit'),
  'controller.metrics.serviceMonitor.targetLimit': r('targetLimit'),
  'controller.metrics.prometheusRule.enabled': r(
    'a monitoring.coreos.com/v1 PrometheusRule (with controller.metrics.enabled): keepip exports the nginx_ingress_controller_* metrics the chart’s example alerts read',
  ),
  'controller.metrics.prometheusRule.additionalLabels': rm('its labels'),
  'controller.metrics.prometheusRule.annotations': rm('its annotations'),
  'controller.metrics.prometheusRule.namespace': r('its namespace'),
  'controller.metrics.prometheusRule.rules': rm('the rules of its one group, as written'),
};

/** Every chart value keepip knows, by dotted path. */
export const VALUES_KEYS: Readonly<Record<string, KeyInfo>> = {
  ...TOP,
  ...IMAGE_KEYS,
  ...CONTROLLER,
  ...SERVICE,
  ...WEBHOOK,
  ...METRICS,
};

/**
 * The table entry that governs a dotted path: the path itself, or the nearest `map` entry above it.
 * `undefined` for a path the chart does not have.
 */
export function keyInfo(path: string): KeyInfo | undefined {
  // Own keys only: `__proto__`, `constructor` or `toString` are unknown keys, not Object.prototype's.
  const at = (key: string) => (Object.hasOwn(VALUES_KEYS, key) ? VALUES_KEYS[key] : undefined);
  const own = at(path);
  if (own !== undefined) return own;
  const parts = path.split('.');
  for (let i = parts.length - 1; i > 0; i--) {
    const above = at(parts.slice(0, i).join('.'));
    if (above !== undefined) return above.map ? above : undefined;
  }
  return undefined;
}
