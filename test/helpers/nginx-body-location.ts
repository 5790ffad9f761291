// ingress-nginx's location as its template renders the directives that touch request bodies and the
// head a backend gets (nginx.tmpl: client_max_body_size from proxy-body-size, proxy_http_version 1.1,
// `Connection $connection_upgrade`, the proxy headers), for the request-body differentials (HTTP/1.1 and
// HTTP/2 clients); `extra` adds the location's own lines (proxy_request_buffering, allow/deny).

/** The location `path` with `client_max_body_size limit` and `extra`. */
export function nginxBodyLocation(path: string, extra: string, limit: number): string {
  return `
    location ${path} {
      set $best_http_host $http_host;
      client_max_body_size ${limit};
      ${extra}
      proxy_set_header Host $best_http_host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Host $best_http_host;
      proxy_set_header Proxy "";
      proxy_connect_timeout 5s;
      proxy_send_timeout 60s;
      proxy_read_timeout 60s;
      proxy_buffering off;
      proxy_buffer_size 4k;
      proxy_buffers 4 4k;
      proxy_http_version 1.1;
      proxy_next_upstream error timeout;
      proxy_next_upstream_tries 3;
      proxy_pass http://upstream_balancer;
    }`;
}
