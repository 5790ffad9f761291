// The order ingress-nginx writes a server's locations in (getBackendServers): two stable sorts, by the
// Ingress path's bytes, greater first, then by length, longest first. On a regex host nginx tries them
// in that order; on any host, app-root's `if ($uri = /)` lines follow it, so the first location of
// this order with an app-root answers `/`. The key is the path as written: the `^/p/` and `^/p` copies
// of a plain Prefix on a regex host (made after the sort) keep the place of `/p`. Pure.
import type { LocationModel } from './model.ts';

export function ingressNginxOrder(locations: readonly LocationModel[]): LocationModel[] {
  const key = (l: LocationModel) => l.path;
  return [...locations]
    .sort((a, b) => (key(a) > key(b) ? -1 : key(a) < key(b) ? 1 : 0))
    .sort((a, b) => key(b).length - key(a).length);
}
