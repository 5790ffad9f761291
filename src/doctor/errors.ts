// The codes src/doctor/ reports: its errors, probe outcomes and finding ids (each finding id is the id
// of a rule in src/doctor/rules/; test/errors.test.ts holds the two lists equal). src/errors.ts merges
// this table into the registry behind docs/errors.md.
import type { CodeTable } from '../error-table.ts';

export const DOCTOR_CODES = {
  DOCTOR_UNKNOWN_LB: {
    kind: 'error',
    summary: '--lb names no LoadBalancer Service in the manifests',
    fix: 'use one of the names the message lists',
  },
  DOCTOR_BAD_TRUSTED_CIDRS: {
    kind: 'error',
    summary: 'proxy-real-ip-cidr cannot be parsed, so the chain cannot be modelled',
    fix: 'fix proxy-real-ip-cidr in the controller ConfigMap',
  },
  DOCTOR_PATCH_TARGET_MISSING: {
    kind: 'error',
    summary: 'a fix patch targets a Service or Ingress that is not in the manifests',
    fix: 'run the doctor over all manifests of the chain',
  },
  CLOSED_WITHOUT_RESPONSE: {
    kind: 'outcome',
    summary: '--probe: the connection was closed without any answer (a gateway waiting for a PROXY header)',
    fix: 'see PROXY_PROTOCOL_EXPECTED_NOT_SENT and PEER_NOT_TRUSTED',
  },
  UNEXPECTED_UPGRADE: {
    kind: 'outcome',
    summary: '--probe: the target answered 101 Switching Protocols to a plain GET (it is not keepip whoami)',
    fix: 'point --probe at a chain whose backend is keepip whoami',
  },
  RESPONSE_TOO_LARGE: {
    kind: 'outcome',
    summary:
      "--probe: the answer's body passed 1 MiB (a whoami answer is a few hundred bytes); the probe stopped reading",
    fix: 'point --probe at a chain whose backend is keepip whoami',
  },
  CLIENT_IP_LOST_AT_LB: {
    kind: 'finding',
    summary: 'the load balancer connects from its own address and sends no PROXY header: backends see the LB',
    fix: 'PROXY protocol end to end (LB annotation + use-proxy-protocol + proxy-real-ip-cidr)',
  },
  ACCESS_KEYED_ON_SHARED_ADDRESS: {
    kind: 'finding',
    summary:
      "rate or connection limits (or satisfy any, limit-whitelist, the auth service's X-Real-IP) key on an address that is the load balancer's or a node's: every client shares one bucket",
    fix: 'PROXY protocol end to end (LB annotation + use-proxy-protocol + proxy-real-ip-cidr), so limits key on each client',
  },
  CLIENT_VIA_TRANSIT_GATEWAY: {
    kind: 'finding',
    summary:
      'clients arrive via transit gateway, VPN or PrivateLink, where client IP preservation cannot work',
    fix: 'PROXY protocol end to end',
  },
  CLIENT_IP_LOST_AT_KUBE_PROXY: {
    kind: 'finding',
    summary: 'instance targets with externalTrafficPolicy: Cluster SNAT the client to a node address',
    fix: 'externalTrafficPolicy: Local on the controller Service',
  },
  PROXY_PROTOCOL_SENT_NOT_EXPECTED: {
    kind: 'finding',
    summary: 'the load balancer sends PROXY headers but use-proxy-protocol is off: every request gets 400',
    fix: 'use-proxy-protocol: "true" with proxy-real-ip-cidr set to the peers',
  },
  PROXY_PROTOCOL_EXPECTED_NOT_SENT: {
    kind: 'finding',
    summary: 'use-proxy-protocol is on but the load balancer sends no header: connections are closed',
    fix: 'turn on the LB\'s PROXY protocol, or use-proxy-protocol: "false"',
  },
  PEER_NOT_TRUSTED: {
    kind: 'finding',
    summary:
      'PROXY on both ends, but the peer the header arrives from is outside proxy-real-ip-cidr: connections are closed',
    fix: 'add the real peers (LB subnets, or nodes after SNAT) to proxy-real-ip-cidr',
  },
  PROXY_PROTOCOL_TRUSTS_EVERYONE: {
    kind: 'finding',
    summary:
      'use-proxy-protocol with proxy-real-ip-cidr containing a /0: anyone reaching the gateway forges the client',
    fix: "set proxy-real-ip-cidr to the chain's peers",
  },
  FORWARDED_HEADERS_SPOOFABLE: {
    kind: 'finding',
    summary: 'use-forwarded-headers/enable-real-ip let a client outside every list forge its address',
    fix: 'turn them off and use PROXY protocol behind an L4 load balancer',
  },
  HEALTH_CHECK_CANNOT_SPEAK_PROXY: {
    kind: 'finding',
    summary:
      'health checks reach a port that does not speak PROXY (healthCheckNodePort, or an HTTP check off the traffic port)',
    fix: 'AWS: TCP check on traffic-port; or externalTrafficPolicy: Cluster with the nodes trusted',
  },
  IN_CLUSTER_BYPASS: {
    kind: 'finding',
    summary:
      'in-cluster callers skip the load balancer (status holds only an IP) and send no PROXY header: closed',
    fix: 'status ipMode: Proxy on the LoadBalancer Service',
  },
  HAIRPIN_TIMEOUT: {
    kind: 'finding',
    summary:
      'internal AWS NLB with preservation on: a target calling its own NLB can be routed to itself and time out',
    fix: 'preservation off plus PROXY protocol end to end',
  },
  SSL_PASSTHROUGH_NOT_ENABLED: {
    kind: 'finding',
    summary:
      'an Ingress sets ssl-passthrough but the controller runs without --enable-ssl-passthrough: keepip terminates TLS for the host (G11)',
    fix: 'add --enable-ssl-passthrough to the controller args (Helm controller.extraArgs), or remove the annotation',
  },
  SSL_PASSTHROUGH_FLAG_UNKNOWN: {
    kind: 'finding',
    summary:
      'an Ingress sets ssl-passthrough and the manifests do not say whether the controller runs with --enable-ssl-passthrough: the default (off) is simulated, the passthrough case told',
    fix: 'run the doctor with --enable-ssl-passthrough, or give it the controller Deployment',
  },
  SSL_PASSTHROUGH_BACKEND_SEES_GATEWAY: {
    kind: 'finding',
    summary:
      'TLS to a passthrough host reaches its backend unread: the backend sees the gateway pod, not the client (G10); keepip checks the "/" path\'s lists at connection time',
    fix: 'address rules on the "/" path\'s Ingress; terminate TLS in keepip if the backend needs the client address',
  },
  TCP_SERVICE_PROXY_PROTOCOL_MISMATCH: {
    kind: 'finding',
    summary:
      "a tcp-services entry disagrees with the LB's PROXY switch (every port): without :PROXY its backend gets the header as data (sshd refuses it); with :PROXY behind an LB that sends none, every connection is refused",
    fix: ':PROXY on the entry, or PROXY end to end (without an LB switch: the entry without :PROXY)',
  },
  TCP_SERVICE_CLIENT_NOT_BELIEVED: {
    kind: 'finding',
    summary:
      "a tcp-services entry with :PROXY:PROXY while enable-real-ip is off: the load balancer's header is read but its client not believed (as ingress-nginx's stream block), so the backend's PROXY header names the load balancer",
    fix: 'enable-real-ip: "true" in the controller ConfigMap, with proxy-real-ip-cidr the load balancer\'s addresses',
  },
  STREAM_SERVICE_NOT_EXPOSED: {
    kind: 'finding',
    summary:
      'a tcp-services or udp-services port has no port on the LB Service: clients outside the cluster cannot reach it',
    fix: 'a port on the LB Service to the entry port',
  },
} as const satisfies CodeTable;

export type DoctorCode = keyof typeof DOCTOR_CODES;
