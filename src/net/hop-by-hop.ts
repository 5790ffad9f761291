// The hop-by-hop fields of RFC 9110 7.6.1, in one place for both directions: the request to the
// backend (src/gateway/upstream-headers.ts), the response to the client (server-filters.ts), the
// mirror's copy (mirror.ts), and the header ConfigMaps that must not set them (src/k8s/header-settings.ts).
// Pure.

/** Hop-by-hop fields (RFC 9110 7.6.1): one connection's business, never passed on in either direction. */
export const HOP_BY_HOP_FIELDS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
]);
