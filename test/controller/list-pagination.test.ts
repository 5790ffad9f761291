// Paged LISTs (continue tokens) against an API server that does not end them. The controller runs
// behind a paging proxy in front of the fake API server (test/fixtures/fake-apiserver.ts): a list whose
// pages hand back one continue token again and again is given up after its second page as
// KUBE_LIST_CONTINUE_LOOP, said once, retried through the reflector's backoff (never a list that runs,
// and grows, for ever), not ready meanwhile, and synced once the server pages properly; an ordinary
// list of three pages syncs every item. Then the reflector alone, over a transport that answers at
// once: the bounds on pages and objects, a token repeated further back, and a full list that hands out
// tokens and then expires them. Every wait is on a signal (a log line, a request, a scheduled retry);
// the deadlines are safety nets.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import type { Scheduler } from '../../src/controller/backoff.ts';
import {
  type ApiResult,
  createReflector,
  type ListPage,
  MAX_LIST_ITEMS,
  MAX_LIST_PAGES,
} from '../../src/controller/reflector.ts';
import type { KubeObject } from '../../src/controller/resources.ts';
import type { FakeApiServer, Obj } from '../fixtures/fake-apiserver.ts';
import { createWaiters, healthz, ingress, startApiProxy, waitForHost, webCluster } from './harness.ts';

const INGRESSES = '/apis/networking.k8s.io/v1/ingresses';

/** How the proxy pages the Ingresses: properly (offsets), or every page handing back `again`. */
type Paging = 'pages' | 'same-token';

/** One LIST of Ingresses the proxy saw (paged or not), and what it answered. */
interface ListRequest {
  continueToken: string | null;
  limit: string | null;
  status: number;
  at: number;
}

/** Pages past this in one list are a runaway (the controller before the fix): answered 500 to end it. */
const RUNAWAY_PAGES = 50;

/** `pageSize` Ingresses from the fake API server's full list, paged as `paging` says. */
async function ingressPage(
  api: FakeApiServer,
  authorization: string,
  token: string | null,
  paging: Paging,
  pageSize: number,
): Promise<{ status: number; body: Obj }> {
  const response = await fetch(`${api.url}${INGRESSES}`, { headers: { authorization } });
  const full = (await response.json()) as Obj;
  if (response.status !== 200) return { status: response.status, body: full };
  const offset = paging === 'pages' && token !== null ? Number(token) : 0;
  if (!Number.isInteger(offset)) {
    // Not one of this server's tokens (`again`, from before it paged properly): expired, as the API says.
    const message = 'The provided continue parameter is too old';
    return {
      status: 410,
      body: { kind: 'Status', status: 'Failure', reason: 'Expired', code: 410, message },
    };
  }
  const end = offset + pageSize;
  const items = full.items as Obj[];
  const next = paging === 'same-token' ? 'again' : end < items.length ? String(end) : undefined;
  const metadata = { ...full.metadata, ...(next !== undefined ? { continue: next } : {}) };
  return { status: 200, body: { ...full, metadata, items: items.slice(offset, end) } };
}

/**
 * A proxy in front of `api` that answers paged LISTs of Ingresses itself (`pageSize` a page, as
 * `paging` says) and passes everything else through; it records every LIST of Ingresses.
 */
async function startPagingProxy(api: FakeApiServer, pageSize: number) {
  const lists: ListRequest[] = [];
  const waiters = createWaiters();
  const proxy = {
    paging: 'pages' as Paging,
    lists,
    kubeconfig: '',
    close: async () => {},
    /** The LISTs grouped by list: each starts with a request without a continue token. */
    attempts(): ListRequest[][] {
      const out: ListRequest[][] = [];
      for (const r of lists) {
        if (r.continueToken === null || out.length === 0) out.push([]);
        out.at(-1)!.push(r);
      }
      return out;
    },
    /** Resolves when `check()` holds, checked now and after every LIST answered. */
    async waitUntil(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
      await waiters.until(
        () => (check() ? true : undefined),
        timeoutMs,
        () => `${what}: not within ${timeoutMs} ms; lists: ${JSON.stringify(lists)}`,
      );
    },
  };
  const answer = async (url: URL, req: IncomingMessage, res: ServerResponse) => {
    const entry: ListRequest = {
      continueToken: url.searchParams.get('continue'),
      limit: url.searchParams.get('limit'),
      status: 0,
      at: Date.now(),
    };
    lists.push(entry);
    const attempt = proxy.attempts().at(-1)!;
    let reply: { status: number; body: Obj };
    if (proxy.paging === 'same-token' && attempt.length > RUNAWAY_PAGES)
      reply = {
        status: 500,
        body: { kind: 'Status', code: 500, message: `runaway: ${attempt.length} pages` },
      };
    else {
      const auth = req.headers.authorization ?? '';
      reply = await ingressPage(api, auth, entry.continueToken, proxy.paging, pageSize);
    }
    entry.status = reply.status;
    res.writeHead(reply.status, { 'content-type': 'application/json' }).end(JSON.stringify(reply.body));
    waiters.signal();
  };
  const relay = await startApiProxy(api, (req, res, url) => {
    if (req.method !== 'GET' || url.pathname !== INGRESSES || url.searchParams.has('watch')) return false;
    if (url.searchParams.has('limit')) {
      req.resume();
      answer(url, req, res).catch(() => res.destroy());
      return true;
    }
    lists.push({ continueToken: null, limit: null, status: 200, at: Date.now() }); // a full list: relayed
    return false;
  });
  proxy.kubeconfig = relay.kubeconfig;
  proxy.close = relay.close;
  return proxy;
}

const HOSTS = ['web.example.com', 'shop.example.com', 'blog.example.com'];

/**
 * Call in a describe body: a fake API server with three Ingresses (HOSTS, one Service), a paging proxy
 * in front of it (one Ingress a page, `paging` from the start) and a controller behind the proxy.
 */
function pagedCluster(paging: Paging) {
  return webCluster(['--disable-leader-election', '--update-status=false'], {
    prepare: (api) => {
      api.apply(ingress('shop', 'shop.example.com', 'web'));
      api.apply(ingress('blog', 'blog.example.com', 'web'));
    },
    proxy: async (api) => {
      const proxy = await startPagingProxy(api, 1);
      proxy.paging = paging;
      return proxy;
    },
    awaitServing: false,
  });
}

describe('a LIST whose pages hand back the same continue token (behind a paging proxy)', () => {
  const c = pagedCluster('same-token');

  it('is given up after two pages as KUBE_LIST_CONTINUE_LOOP, said once, retried with backoff; syncs once the server pages properly', async () => {
    const { proxy, ctl } = c;
    const line = await ctl.waitForLine(/^ingresses: .*retrying with backoff/);
    assert.match(
      line,
      /^ingresses: KUBE_LIST_CONTINUE_LOOP: page 2 of the list handed back the continue token of page 1 /,
      `the failed list: ${JSON.stringify(proxy.attempts()[0]?.length)} requests`,
    );
    // Three lists given up in full, each after its second page (two Ingresses held at most), a
    // backoff between them at least as long as the harness's policy (20 ms doubling) promises.
    await proxy.waitUntil(() => proxy.attempts().length >= 4, 'a fourth list');
    const done = proxy.attempts().slice(0, 3);
    for (const attempt of done)
      assert.deepEqual(
        attempt.map((r) => [r.continueToken, r.limit, r.status]),
        [
          [null, '500', 200],
          ['again', '500', 200],
        ],
      );
    for (let i = 1; i < done.length; i++) {
      const gap = done[i]![0]!.at - done[i - 1]!.at(-1)!.at;
      assert.ok(gap >= 20 * 2 ** (i - 1) - 2, `list ${i + 1} came ${gap} ms after list ${i}`);
    }
    assert.equal(ctl.lines.filter((l) => l.includes('KUBE_LIST_CONTINUE_LOOP')).length, 1, 'said once');
    const waiting = await healthz(ctl.running.healthzAddress!.port);
    assert.equal(waiting.status, 500, 'never synced: not ready');

    proxy.paging = 'pages';
    await ctl.waitForLine(/^ingresses: connected again at resourceVersion \d+$/);
    await ctl.running.serving();
    for (const host of HOSTS) await waitForHost(ctl, host);
    assert.equal((await healthz(ctl.running.healthzAddress!.port)).status, 200);
  });
});

describe('an ordinary LIST of three pages (behind a paging proxy)', () => {
  const c = pagedCluster('pages');

  it('follows the continue tokens to the end and serves every Ingress', async () => {
    const { proxy, ctl } = c;
    await ctl.running.serving();
    for (const host of HOSTS) await waitForHost(ctl, host);
    assert.deepEqual(
      proxy.lists.map((r) => [r.continueToken, r.limit, r.status]),
      [
        [null, '500', 200],
        ['1', '500', 200],
        ['2', '500', 200],
      ],
    );
    assert.equal(ctl.lines.filter((l) => l.includes('KUBE_LIST_CONTINUE_LOOP')).length, 0);
  });
});

/** A scheduler whose timers only record: a scheduled retry is the signal, fired by hand. */
function recordingScheduler() {
  const delays: number[] = [];
  let pending: (() => void) | null = null;
  let scheduled: (() => void) | null = null;
  const scheduler: Scheduler = {
    setTimeout: (fn, ms) => {
      delays.push(ms);
      pending = fn;
      scheduled?.();
      return delays.length;
    },
    clearTimeout: () => {
      pending = null;
    },
    random: () => 0,
    now: () => 0,
  };
  return {
    scheduler,
    delays,
    /** Resolves once a retry is scheduled (at once if one is); the deadline is a safety net. */
    retryScheduled(): Promise<void> {
      if (pending !== null) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no retry was scheduled within 20 s')), 20_000);
        scheduled = () => {
          scheduled = null;
          clearTimeout(timer);
          resolve();
        };
      });
    },
    fire() {
      const fn = pending;
      assert.ok(fn, 'a retry is pending');
      pending = null;
      fn();
    },
  };
}

type Answer = (token: string | null, paged: boolean) => ApiResult<ListPage>;

/**
 * A reflector over a transport that answers every list at once with `answer`; past `cap` lists in a
 * row it answers 500 (a runaway list ends, so the test fails on its count instead of hanging).
 */
function answeredReflector(answer: Answer, cap = 1000) {
  const clock = recordingScheduler();
  const calls: { token: string | null; paged: boolean }[] = [];
  const lines: string[] = [];
  let watches = 0;
  const reflector = createReflector({
    name: 'x',
    transport: {
      list: async (token, paged = true) => {
        calls.push({ token, paged });
        if (calls.length > cap)
          return { ok: false, error: { code: 'KUBE_API_STATUS', status: 500, message: 'runaway' } };
        return answer(token, paged);
      },
      watch: () => {
        watches++;
        return { stop: () => {} };
      },
    },
    scheduler: clock.scheduler,
    backoff: { initialMs: 100, maxMs: 1000 },
    onChange: () => {},
    log: (line) => lines.push(line),
  });
  reflector.start();
  return { clock, calls, lines, reflector, watches: () => watches };
}

const obj = (name: string): KubeObject => ({ metadata: { namespace: 'ns', name, resourceVersion: '1' } });
const page = (items: KubeObject[], next: string | null): ApiResult<ListPage> => ({
  ok: true,
  value: { items, resourceVersion: '7', continue: next },
});

describe('reflector: lists that do not end', () => {
  it(`a fresh continue token on every page: given up after ${MAX_LIST_PAGES} pages, retried with backoff, synced once the list ends`, async () => {
    let endless = true;
    const r = answeredReflector(
      (token) => page([obj(`o${token ?? 0}`)], endless ? `t${Number(token?.slice(1) ?? 0) + 1}` : null),
      MAX_LIST_PAGES + 10,
    );
    await r.clock.retryScheduled();
    assert.equal(r.calls.length, MAX_LIST_PAGES);
    const status = r.reflector.status();
    assert.equal(status.lastError?.code, 'KUBE_LIST_CONTINUE_LOOP');
    assert.equal(status.synced, false);
    assert.equal(r.watches(), 0);
    assert.deepEqual(r.clock.delays, [100]);
    assert.deepEqual(r.lines, [
      `x: KUBE_LIST_CONTINUE_LOOP: the list went on past ${MAX_LIST_PAGES} pages (an API server, or a proxy in front of it, that pages without end); the list is given up; keeping the last good objects, retrying with backoff`,
    ]);
    endless = false;
    r.clock.fire();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(r.reflector.status().synced, true);
    assert.equal(r.watches(), 1);
  });

  it(`pages that ignore the limit: given up past ${MAX_LIST_ITEMS} objects`, async () => {
    const huge = new Array<KubeObject>(1_000_000).fill(obj('same'));
    const r = answeredReflector((token) => page(huge, `t${Number(token?.slice(1) ?? 0) + 1}`), 100);
    await r.clock.retryScheduled();
    assert.equal(r.calls.length, MAX_LIST_ITEMS / huge.length + 1);
    assert.match(r.reflector.status().lastError!.message, /went past 5000000 objects \(page 6\)/);
    assert.equal(r.reflector.status().synced, false);
  });

  it('a token handed back further on (a, b, a): given up at once, and the backoff grows list after list', async () => {
    const next: Record<string, string> = { start: 'a', a: 'b', b: 'a' };
    const r = answeredReflector((token) => page([obj(token ?? 'start')], next[token ?? 'start']!));
    for (let i = 0; i < 3; i++) {
      await r.clock.retryScheduled();
      assert.equal(r.calls.length, 3 * (i + 1));
      if (i < 2) r.clock.fire();
    }
    assert.match(
      r.reflector.status().lastError!.message,
      /page 3 of the list handed back the continue token of page 1/,
    );
    assert.deepEqual(r.clock.delays, [100, 200, 400]);
    assert.equal(r.lines.length, 1, 'said once');
  });

  it('a full list (after an expired token) that hands out a token and expires it too: backoff, not a loop', async () => {
    const gone: ApiResult<ListPage> = {
      ok: false,
      error: { code: 'KUBE_API_STATUS', status: 410, message: 'continue too old' },
    };
    let broken = true;
    const r = answeredReflector((token, paged) => {
      if (!broken) return page([obj('a')], null);
      return token === null ? page([obj('a')], paged ? 'c1' : 'c2') : gone;
    });
    await r.clock.retryScheduled();
    assert.deepEqual(r.calls, [
      { token: null, paged: true },
      { token: 'c1', paged: true },
      { token: null, paged: false },
      { token: 'c2', paged: false },
    ]);
    assert.equal(r.reflector.status().lastError?.status, 410);
    broken = false;
    r.clock.fire();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(r.calls.at(-1), { token: null, paged: true }, 'the retry pages again');
    assert.equal(r.reflector.status().synced, true);
  });
});
