// What a request carries once the access stage (stage.ts) ran: Exchange.access. Its own module so that
// the pipeline's shapes (exchange.ts) need nothing of the stage.

export interface AccessState {
  /** Frees the limit-connections slot; called once when the request ends. */
  release: (() => void) | null;
  /** Headers to set (or, with '', remove) on the upstream request. */
  upstreamHeaders: Record<string, string> | null;
  /** Set-Cookie of the auth service's answer, for the client. */
  cookies: string[] | null;
  alwaysSetCookie: boolean;
}

/** ingress-nginx's `add_header Set-Cookie $auth_cookie` (without `always`): the statuses it applies to. */
export const COOKIE_STATUSES: ReadonlySet<number> = new Set([
  200, 201, 204, 206, 301, 302, 303, 304, 307, 308,
]);
