// The buffers a request head is read into (client-header-buffer-size, large-client-header-buffers):
// ingress-nginx's defaults, one fact for both protocols. They bound an HTTP/1 line and head
// (src/gateway/client-timeouts.ts) and an HTTP/2 field and header list (src/k8s/http2-settings.ts,
// as nginx ≥ 1.19.7). Pure.

/** ingress-nginx's large-client-header-buffers default, "4 8k". */
export const LARGE_CLIENT_HEADER_BUFFERS: Readonly<{ count: number; sizeBytes: number }> = Object.freeze({
  count: 4,
  sizeBytes: 8 * 1024,
});

/** ingress-nginx's client-header-buffer-size default, 1k. */
export const CLIENT_HEADER_BUFFER_BYTES = 1024;
