// One resource's list+watch loop, with client-go reflector semantics, over an injected transport:
// list (paged) → replace the store → watch from the list's resourceVersion with bookmarks. A stream
// that ends is resumed from the last resourceVersion seen (events or bookmarks); `410 Gone` (as an
// HTTP status or an ERROR event) relists; any other failure retries with jittered backoff while the
// store keeps the last good objects. A list that does not end (a continue token handed back twice, or
// more pages or objects than any cluster holds) is such a failure too. Pure: no sockets, no timers of
// its own.
import { backoffDelay, type BackoffPolicy, type Scheduler } from './backoff.ts';
import { type KubeObject, objectKey, resourceVersionOf } from './resources.ts';

export interface ApiError {
  code: 'KUBE_API_UNREACHABLE' | 'KUBE_API_STATUS' | 'KUBE_API_BAD_RESPONSE' | 'KUBE_LIST_CONTINUE_LOOP';
  /** HTTP status (or a Status object's code), null when no answer came. */
  status: number | null;
  message: string;
  /** A 429's or 503's Retry-After: no retry before it (at most 5 minutes). */
  retryAfterMs?: number;
}

export type ApiResult<T> = { ok: true; value: T } | { ok: false; error: ApiError };

export interface ListPage {
  items: KubeObject[];
  resourceVersion: string;
  continue: string | null;
}

export interface WatchEvent {
  type: string;
  object: KubeObject;
}

/** How a watch stream ended: the server closed it, the client's idle timer fired, or it failed. */
export type WatchEnd = { kind: 'closed' } | { kind: 'timeout' } | { kind: 'error'; error: ApiError };

export interface ListWatcher {
  /** One page (`paged`, the default: 500 items at most), or everything at once. */
  list(continueToken: string | null, paged?: boolean): Promise<ApiResult<ListPage>>;
  /** Starts a stream; the handlers are called until `stop()`; `end` at most once. */
  watch(resourceVersion: string, handlers: WatchHandlers): { stop(): void };
}

export interface WatchHandlers {
  /** The server accepted the watch (HTTP 200). */
  open(): void;
  event(event: WatchEvent): void;
  end(end: WatchEnd): void;
}

export interface ReflectorStatus {
  /** The first complete list has been stored. */
  synced: boolean;
  /** A list or a watch stream is currently working (false during an outage). */
  connected: boolean;
  resourceVersion: string;
  lists: number;
  watches: number;
  lastError: ApiError | null;
}

export interface Reflector {
  start(): void;
  stop(): void;
  items(): KubeObject[];
  get(key: string): KubeObject | undefined;
  status(): ReflectorStatus;
}

export interface ReflectorOptions {
  name: string;
  transport: ListWatcher;
  scheduler: Scheduler;
  backoff: BackoffPolicy;
  /** After every change of the store (a relist counts as one). */
  onChange: () => void;
  /** When a connected reflector loses the API server (the store is unchanged: no onChange). */
  onDisconnect?: () => void;
  /** A line for the operator: relists, outages, recoveries. */
  log?: (line: string) => void;
}

/** A reflector's mutable state, shared by the list and watch steps below. */
interface State {
  options: ReflectorOptions;
  log: (line: string) => void;
  store: Map<string, KubeObject>;
  resourceVersion: string;
  synced: boolean;
  connected: boolean;
  stopped: boolean;
  failures: number;
  /** Bumped by every list, watch and stop: callbacks of an older step are ignored. */
  generation: number;
  timer: unknown;
  stream: { stop(): void } | null;
  lastError: ApiError | null;
  lists: number;
  watches: number;
  /** Short streams (under SHORT_WATCH_MS, no event) in a row. */
  emptyCloses: number;
}

/** client-go's "very short watch": closed within a second without an event is a failure, not a timeout. */
const SHORT_WATCH_MS = 1000;

function retry(s: State, what: () => void, error: ApiError): void {
  if (s.connected || s.lastError === null) {
    const said = error.message.startsWith(error.code) ? error.message : `${error.code}: ${error.message}`;
    s.log(`${s.options.name}: ${said}; keeping the last good objects, retrying with backoff`);
  }
  const wasConnected = s.connected;
  s.connected = false;
  if (wasConnected) s.options.onDisconnect?.();
  s.lastError = error;
  const backoff = backoffDelay(s.options.backoff, s.failures, s.options.scheduler.random);
  const delay = Math.max(backoff, error.retryAfterMs ?? 0);
  s.failures++;
  s.timer = s.options.scheduler.setTimeout(() => {
    s.timer = null;
    what();
  }, delay);
}

/** `healthy`: a list, an event or a lasting stream, after which backoff starts over (an accepted watch alone is not). */
function recovered(s: State, healthy = true): void {
  if (!s.connected && s.lastError !== null)
    s.log(`${s.options.name}: connected again at resourceVersion ${s.resourceVersion}`);
  s.connected = true;
  s.lastError = null;
  if (healthy) s.failures = 0;
}

/**
 * The most one list may take before it is given up as a loop. kube-client asks for 500 objects a
 * page, so 10,000 pages are 5,000,000 objects of one resource: far more than any cluster stores
 * (Kubernetes' own limits for a cluster: 150,000 Pods). An API server, or a proxy in front of it, that
 * hands out continue tokens past that would keep the list going, and growing, for ever.
 */
export const MAX_LIST_PAGES = 10_000;
/** The same bound counted in objects, for a server that ignores `limit` and sends huge pages. */
export const MAX_LIST_ITEMS = 5_000_000;

/**
 * Why a list that `page` (its `pageNumber`th, after `itemsSoFar` objects) would go on with must stop
 * instead, or null. `tokens`: the continue tokens this list was given, each with the page that gave it.
 */
function endlessList(
  tokens: ReadonlyMap<string, number>,
  pageNumber: number,
  itemsSoFar: number,
  page: ListPage,
): ApiError | null {
  const next = page.continue;
  const more = next !== null && next !== '';
  const earlier = more ? tokens.get(next) : undefined;
  let why: string | null = null;
  if (earlier !== undefined)
    why = `page ${pageNumber} of the list handed back the continue token of page ${earlier}`;
  else if (itemsSoFar + page.items.length > MAX_LIST_ITEMS)
    why = `the list went past ${MAX_LIST_ITEMS} objects (page ${pageNumber})`;
  else if (more && pageNumber >= MAX_LIST_PAGES) why = `the list went on past ${MAX_LIST_PAGES} pages`;
  if (why === null) return null;
  const code = 'KUBE_LIST_CONTINUE_LOOP';
  return {
    code,
    status: 200,
    message: `${code}: ${why} (an API server, or a proxy in front of it, that pages without end); the list is given up`,
  };
}

async function runList(s: State, paged = true): Promise<void> {
  const mine = ++s.generation;
  const items: KubeObject[] = [];
  const tokens = new Map<string, number>();
  let pages = 0;
  let token: string | null = null;
  let page: ListPage;
  do {
    const result = await s.options.transport.list(token, paged);
    if (s.stopped || mine !== s.generation) return;
    if (!result.ok && paged && token !== null && result.error.status === 410) {
      // The continue token expired between pages: one full list at once, as client-go's pager does.
      // (Only from a paged list: a full list that hands out tokens and then expires them is retried
      // with backoff below, not listed again at once for ever.)
      s.log(`${s.options.name}: the list's continue token expired (410 Gone); listing everything at once`);
      void runList(s, false);
      return;
    }
    if (!result.ok) {
      retry(s, () => void runList(s), result.error);
      return;
    }
    page = result.value;
    pages++;
    const loop = endlessList(tokens, pages, items.length, page);
    if (loop !== null) {
      retry(s, () => void runList(s), loop);
      return;
    }
    // One by one: spreading a page of over 100,000 objects into push() overflows the call stack.
    for (const item of page.items) items.push(item);
    token = page.continue;
    if (token !== null && token !== '') tokens.set(token, pages);
  } while (token !== null && token !== '');
  s.lists++;
  s.store = new Map(items.map((item) => [objectKey(item), item]));
  s.resourceVersion = page.resourceVersion;
  s.synced = true;
  // A list alone does not start backoff over: a watch that then fails at once (410 on every attempt)
  // would relist at the first step's pace for ever; an event or a lasting stream resets it.
  recovered(s, false);
  s.options.onChange();
  runWatch(s, true);
}

/** One stream's own facts: when it started, whether it delivered anything, whether the server said 410. */
interface StreamFacts {
  startedMs: number;
  /** The server accepted the watch (HTTP 200). */
  opened: boolean;
  received: boolean;
  expired: boolean;
}

function applyEvent(s: State, event: WatchEvent, facts: StreamFacts): void {
  const object = event.object;
  if (event.type === 'ERROR') {
    if (object.code === 410) facts.expired = true;
    return; // the stream ends next; streamEnded decides
  }
  const rv = resourceVersionOf(object);
  if (event.type === 'ADDED' || event.type === 'MODIFIED') s.store.set(objectKey(object), object);
  else if (event.type === 'DELETED') s.store.delete(objectKey(object));
  else if (event.type !== 'BOOKMARK') return;
  if (rv !== '') s.resourceVersion = rv;
  if (!facts.received) {
    facts.received = true;
    s.emptyCloses = 0;
    recovered(s);
  }
  if (event.type !== 'BOOKMARK') s.options.onChange();
}

function streamEnded(s: State, end: WatchEnd, facts: StreamFacts, fromList: boolean): void {
  s.stream = null;
  // A stream that delivered events or lasted (a server timeout, a client idle timeout, an LB that
  // drops idle connections after seconds or minutes) was working: resume at once, backoff starts over.
  const lasting =
    facts.received || (facts.opened && s.options.scheduler.now() - facts.startedMs >= SHORT_WATCH_MS);
  if (lasting) {
    s.failures = 0;
    s.emptyCloses = 0;
  }
  if (facts.expired || (end.kind === 'error' && end.error.status === 410)) {
    s.log(`${s.options.name}: resourceVersion ${s.resourceVersion} is too old (410 Gone); relisting`);
    // Gone right after a fresh list: the server is in trouble; relist with backoff, not in a loop.
    if (fromList && !facts.received)
      retry(s, () => void runList(s), {
        code: 'KUBE_API_STATUS',
        status: 410,
        message: 'a fresh list is already too old',
      });
    else void runList(s);
  } else if (end.kind === 'error') {
    retry(s, () => runWatch(s), end.error);
  } else if (end.kind === 'timeout' && !facts.opened && !facts.received) {
    // The client's timer ended a watch the server never answered (a black-holed API server): an outage.
    retry(s, () => runWatch(s), {
      code: 'KUBE_API_UNREACHABLE',
      status: null,
      message: 'a watch got no answer within the request timeout',
    });
  } else if (lasting || s.emptyCloses === 0) {
    if (!lasting) s.emptyCloses++;
    runWatch(s); // resume from the last resourceVersion at once
  } else {
    // Short again without a single event: do not spin against a server that hangs up at once.
    s.emptyCloses++;
    retry(s, () => runWatch(s), {
      code: 'KUBE_API_BAD_RESPONSE',
      status: null,
      message: 'watch streams close without events',
    });
  }
}

/** `fromList`: the stream starts at a list's resourceVersion (a 410 then is no reason to hurry). */
function runWatch(s: State, fromList = false): void {
  const mine = ++s.generation;
  const facts: StreamFacts = {
    startedMs: s.options.scheduler.now(),
    opened: false,
    received: false,
    expired: false,
  };
  const current = () => !s.stopped && mine === s.generation;
  s.watches++;
  s.stream = s.options.transport.watch(s.resourceVersion, {
    open: () => {
      if (!current()) return;
      facts.opened = true;
      recovered(s, false);
    },
    event: (event) => {
      if (current()) applyEvent(s, event, facts);
    },
    end: (end) => {
      if (current()) streamEnded(s, end, facts, fromList);
    },
  });
}

export function createReflector(options: ReflectorOptions): Reflector {
  const s: State = {
    options,
    log: options.log ?? (() => {}),
    store: new Map(),
    resourceVersion: '',
    synced: false,
    connected: false,
    stopped: true,
    failures: 0,
    generation: 0,
    timer: null,
    stream: null,
    lastError: null,
    lists: 0,
    watches: 0,
    emptyCloses: 0,
  };
  return {
    start() {
      if (!s.stopped) return;
      s.stopped = false;
      void runList(s);
    },
    stop() {
      s.stopped = true;
      s.generation++;
      if (s.timer !== null) options.scheduler.clearTimeout(s.timer);
      s.timer = null;
      s.stream?.stop();
      s.stream = null;
    },
    items: () => [...s.store.values()],
    get: (key) => s.store.get(key),
    status: () => ({
      synced: s.synced,
      connected: s.connected,
      resourceVersion: s.resourceVersion,
      lists: s.lists,
      watches: s.watches,
      lastError: s.lastError,
    }),
  };
}
