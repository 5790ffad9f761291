// The dashboard's HTTP server: the pages (one shared shell, page.html, around each page's body;
// plain HTML/CSS/JS from ./assets, read once at start, no build step, no CDN) under a strict
// Content-Security-Policy, the JSON API, and the live stream of decisions (Server-Sent Events, fed
// by the decision log's timer, never by a request). Read-only:
// GET and HEAD only. With a token, every /api request needs `Authorization: Bearer <token>`; without
// one, only requests whose Host is an IP address or localhost are answered (no DNS rebinding).
import { createHash, timingSafeEqual } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import http from '../node-http.ts';
import type { AddressInfo } from 'node:net';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type HostPort, formatHostPort, parseHostPort } from '../net/host-port.ts';
import { canonicalIp } from '../net/ip.ts';
import { type ApiAnswer, answerApi, apiError, matches, parseFilter, type DecisionFilter } from './api.ts';
import type { DecisionLog, DecisionRecord } from '../gateway/decision-log.ts';
import { summarize } from './decision-view.ts';
import type { DashboardSources } from './sources.ts';

export interface DashboardOptions {
  listen: HostPort;
  /** Bearer token for /api; null or absent: none (then only IP-literal or localhost Host headers). */
  token?: string | null;
  decisions: DecisionLog;
  sources: DashboardSources;
  /** Live streams served at once (default 16). */
  maxStreams?: number;
}

export interface RunningDashboard {
  readonly address: AddressInfo;
  /** http://ADDR:PORT/ */
  readonly url: string;
  close(): Promise<void>;
}

export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** The pages: their title and the name of their script (`<name>.js`) and body (`<name>.main.html`). */
const PAGES: Record<string, { name: string; title: string }> = {
  '/decisions': { name: 'decisions', title: 'Decisions' },
  '/routes': { name: 'routes', title: 'Routes' },
  '/chain': { name: 'chain', title: 'Chain' },
  '/lb': { name: 'lb', title: 'Load balancer' },
};
const HOME = '/decisions';

interface Asset {
  body: Buffer;
  type: string;
}

interface Assets {
  /** Scripts, styles and images under /assets/. */
  files: Map<string, Asset>;
  /** Whole pages by URL path: the shared shell (page.html) around each page's own body. */
  pages: Map<string, Asset>;
}

function renderPage(shell: string, page: { name: string; title: string }, main: string): Asset {
  const fields: Record<string, string> = { title: page.title, page: page.name, main };
  const html = shell.replace(/\{\{(title|page|main)\}\}/g, (_all, key: string) => fields[key] as string);
  return { body: Buffer.from(html), type: TYPES['.html'] as string };
}

function loadAssets(): Assets {
  const dir = fileURLToPath(new URL('./assets/', import.meta.url));
  const files = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type !== undefined && !name.endsWith('.html')) {
      files.set(name, { body: readFileSync(`${dir}${name}`), type });
    }
  }
  const shell = readFileSync(`${dir}page.html`, 'utf8');
  const pages = new Map<string, Asset>();
  for (const [path, page] of Object.entries(PAGES)) {
    pages.set(path, renderPage(shell, page, readFileSync(`${dir}${page.name}.main.html`, 'utf8')));
  }
  pages.set('/', pages.get(HOME) as Asset);
  return { files, pages };
}

function tokenMatcher(token: string | null): (header: string | undefined) => boolean {
  if (token === null) return () => true;
  const expected = createHash('sha256').update(token).digest();
  return (header) => {
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
    if (!match) return false;
    return timingSafeEqual(createHash('sha256').update(match[1]!).digest(), expected);
  };
}

/** Host is an IP literal (with or without port) or localhost: no name a rebinding attacker controls. */
export function hostIsAddress(host: string | undefined): boolean {
  if (host === undefined) return false;
  const parsed = parseHostPort(host);
  const name = parsed.ok ? parsed.value.host : host.replace(/^\[(.*)\]$/, '$1');
  return name.toLowerCase() === 'localhost' || canonicalIp(name) !== null;
}

function send(res: ServerResponse, status: number, type: string, body: Buffer | string, head: boolean): void {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': type,
    'content-length': bytes.length,
    'cache-control': 'no-store',
  });
  res.end(head ? undefined : bytes);
}

function sendJson(res: ServerResponse, answer: ApiAnswer, head: boolean): void {
  send(
    res,
    answer.status,
    'application/json; charset=utf-8',
    `${JSON.stringify(answer.body, null, 1)}\n`,
    head,
  );
}

interface Context {
  log: DecisionLog;
  sources: DashboardSources;
  authorized: (header: string | undefined) => boolean;
  hasToken: boolean;
  maxStreams: number;
  streams: Set<ServerResponse>;
  assets: Assets;
  version: string;
}

const STREAM_HEADERS = {
  ...SECURITY_HEADERS,
  'content-type': 'text/event-stream',
  'cache-control': 'no-store',
};
/** Kept records sent first on a new stream: the latest that match. */
const STREAM_BACKLOG = 200;

/**
 * GET /api/decisions/stream: the kept records that match, then each new batch from the log's timer.
 * HEAD: the head a GET gets, and no stream.
 */
function serveStream(
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  query: URLSearchParams,
  head: boolean,
) {
  const { log, streams } = ctx;
  const filter = parseFilter(query);
  if ('body' in filter) return sendJson(res, filter, head);
  if (head) return res.writeHead(200, STREAM_HEADERS).end();
  if (streams.size >= ctx.maxStreams)
    return sendJson(res, apiError(503, 'DASHBOARD_TOO_MANY_STREAMS', 'too many live streams'), false);
  res.writeHead(200, STREAM_HEADERS);
  streams.add(res);
  let lagging = false;
  const write = (records: DecisionRecord[]) => {
    const shown = records.filter((r) => matches(r, filter as DecisionFilter));
    if (shown.length === 0 || lagging) return;
    const text = shown
      .map((r) => `id: ${r.id}\nevent: decision\ndata: ${JSON.stringify(summarize(r))}\n\n`)
      .join('');
    // A slow reader loses batches rather than making the process buffer without bound.
    if (!res.write(text)) {
      lagging = true;
      res.once('drain', () => {
        lagging = false;
      });
    }
  };
  res.write('retry: 2000\n\n');
  write(
    log
      .records()
      .filter((r) => matches(r, filter))
      .slice(-STREAM_BACKLOG),
  );
  const unsubscribe = log.subscribe(write);
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  heartbeat.unref();
  const end = () => {
    clearInterval(heartbeat);
    unsubscribe();
    streams.delete(res);
  };
  req.on('close', end);
  res.on('close', end);
}

/**
 * A request another site's page made: a browser says so in Sec-Fetch-Site, or in an Origin that is not
 * the Host asked for. Refused on the API, so that no page the operator has open elsewhere holds the
 * live streams (a dashboard without a token answers any page on an IP-literal Host).
 */
function crossSite(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return true;
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== (req.headers.host ?? '').toLowerCase();
  } catch {
    return true;
  }
}

/** One request: method and Host checks, then the API (cross-site refused, token next) or a static page. */
function handle(ctx: Context, req: IncomingMessage, res: ServerResponse) {
  const head = req.method === 'HEAD';
  if (req.method !== 'GET' && !head) {
    res.setHeader('allow', 'GET, HEAD');
    return sendJson(res, apiError(405, 'DASHBOARD_METHOD_NOT_ALLOWED', 'the dashboard is read-only'), head);
  }
  if (!ctx.hasToken && !hostIsAddress(req.headers.host))
    return sendJson(
      res,
      apiError(421, 'DASHBOARD_HOST_REFUSED', 'open the dashboard by IP address or localhost'),
      head,
    );
  const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
  const path = url.pathname;
  if (path === '/api' || path.startsWith('/api/')) {
    if (crossSite(req))
      return sendJson(
        res,
        apiError(403, 'DASHBOARD_CROSS_SITE', "the dashboard's API answers its own pages only"),
        head,
      );
    if (!ctx.authorized(req.headers.authorization)) {
      res.setHeader('www-authenticate', 'Bearer realm="keepip dashboard"');
      return sendJson(
        res,
        apiError(401, 'DASHBOARD_UNAUTHORIZED', 'this dashboard needs its bearer token'),
        head,
      );
    }
    if (path === '/api/decisions/stream') return serveStream(ctx, req, res, url.searchParams, head);
    return sendJson(res, answerApi(path, url.searchParams, ctx.log, ctx.sources, ctx.version), head);
  }
  const asset = path.startsWith('/assets/')
    ? ctx.assets.files.get(path.slice('/assets/'.length))
    : ctx.assets.pages.get(path);
  if (asset === undefined) return sendJson(res, apiError(404, 'DASHBOARD_NOT_FOUND', 'no such page'), head);
  send(res, 200, asset.type, asset.body, head);
}

export async function startDashboard(options: DashboardOptions): Promise<RunningDashboard> {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  const ctx: Context = {
    log: options.decisions,
    sources: options.sources,
    authorized: tokenMatcher(options.token ?? null),
    hasToken: (options.token ?? null) !== null,
    maxStreams: options.maxStreams ?? 16,
    streams: new Set<ServerResponse>(),
    assets: loadAssets(),
    version: pkg.version,
  };
  const { streams } = ctx;
  options.decisions.setBehind(options.sources.behind ?? null);
  const server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, (req, res) => {
    try {
      handle(ctx, req, res);
    } catch (error) {
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n', false);
      else res.destroy(error as Error);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listen.port, options.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  let closing: Promise<void> | null = null;
  return {
    address,
    url: `http://${formatHostPort(address.address, address.port)}/`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const res of streams) res.end();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
