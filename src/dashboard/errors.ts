// The codes the dashboard's API answers with (`{ "error": { "code", "message" } }`, docs/dashboard.md).
// src/errors.ts merges this table into the registry behind docs/errors.md.
import type { CodeTable } from '../error-table.ts';

export const DASHBOARD_CODES = {
  DASHBOARD_UNAUTHORIZED: {
    kind: 'error',
    summary: 'the dashboard has a token and the request did not carry it (401)',
    fix: 'send Authorization: Bearer <token>; in the browser open the page with #token=<token> once',
  },
  DASHBOARD_HOST_REFUSED: {
    kind: 'error',
    summary:
      'a dashboard without a token answers only requests whose Host is an IP address or localhost (421), so another site cannot read it through DNS rebinding',
    fix: 'open it by address (http://127.0.0.1:PORT/), or give the dashboard a token to use a name',
  },
  DASHBOARD_CROSS_SITE: {
    kind: 'error',
    summary:
      "an API request another site's page made (Sec-Fetch-Site cross-site or same-site, or an Origin that is not the dashboard's) (403): it could hold the live streams or read nothing else",
    fix: 'open the dashboard itself (its own pages call the API); tools such as curl send neither header',
  },
  DASHBOARD_METHOD_NOT_ALLOWED: {
    kind: 'error',
    summary: 'the dashboard is read-only: only GET and HEAD (405)',
    fix: 'use GET',
  },
  DASHBOARD_NOT_FOUND: {
    kind: 'error',
    summary: 'no such page, API or decision (a decision leaves the ring buffer as new ones arrive) (404)',
    fix: 'see docs/dashboard.md for the API; list /api/decisions for the ids kept',
  },
  DASHBOARD_BAD_QUERY: {
    kind: 'error',
    summary: 'a query parameter of the API is not what it takes (400)',
    fix: 'see docs/dashboard.md for each parameter',
  },
  DASHBOARD_UNAVAILABLE: {
    kind: 'error',
    summary:
      'this process has no data for that page: the Chain page needs a model (keepip up), the Load balancer page a running LB',
    fix: 'run keepip up with --dashboard for the Chain and Load balancer pages',
  },
  DASHBOARD_CHAIN_FAILED: {
    kind: 'error',
    summary:
      "the doctor could not build the chain for the Chain page (422); the message names the doctor's code",
    fix: 'check the load balancer named in the manifests (keepip doctor -f gives the same answer)',
  },
  DASHBOARD_TOO_MANY_STREAMS: {
    kind: 'error',
    summary: 'the live stream has as many listeners as it serves (503)',
    fix: 'close other dashboard tabs',
  },
} as const satisfies CodeTable;

export type DashboardCode = keyof typeof DASHBOARD_CODES;
