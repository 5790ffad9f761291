// One resource's list+watch loop, with client-go reflector semantics, over an injected transport:
// list (paged) → replace the store → watch from the list's resourceVersion with bookmarks. A stream
// that ends is resumed from the last resourceVersion seen (events or bookmarks); `410 Gone` (as an
// HTTP status or an ERROR event) relists; any other failure retries with jittered backoff while the
// store keeps the last good objects. Pure: no sockets, no timers of its own.
import { backoffDelay, type BackoffPolicy, type Scheduler } from './backoff.ts';
import { type KubeObject, objectKey, resourceVersionOf } from './resources.ts';

export interface ApiError {
  code: 'KUBE_API_UNREACHABLE' | 'KUBE_API_STATUS' | 'KUBE_API_BAD_RESPONSE';
  /** HTTP status (or a Status object's code), null when no answer came. */
  status: number | null;
  message: string;
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
  list(continueToken: string | null): Promise<ApiResult<ListPage>>;
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
  /** A line for the operator: relists, outages, recoveries. */
  log?: (line: string) => void;
}

const isGone = (error: ApiError) => error.status === 410;

export function createReflector(options: ReflectorOptions): Reflector {
  const { transport, scheduler, name } = options;
  const log = options.log ?? (() => {});
  let store = new Map<string, KubeObject>();
  let resourceVersion = '';
  let synced = false;
  let connected = false;
  let stopped = true;
  let failures = 0;
  let generation = 0;
  let timer: unknown = null;
  let stream: { stop(): void } | null = null;
  let lastError: ApiError | null = null;
  let lists = 0;
  let watches = 0;
  /** Streams in a row that ended without delivering an event. */
  let emptyCloses = 0;

  const retry = (what: () => void, error: ApiError) => {
    if (connected || lastError === null)
      log(`${name}: ${error.message}; keeping the last good objects, retrying with backoff`);
    connected = false;
    lastError = error;
    const delay = backoffDelay(options.backoff, failures, scheduler.random);
    failures++;
    timer = scheduler.setTimeout(() => {
      timer = null;
      what();
    }, delay);
  };

  const recovered = () => {
    if (!connected && lastError !== null)
      log(`${name}: connected again at resourceVersion ${resourceVersion}`);
    connected = true;
    lastError = null;
  };

  const list = async () => {
    const mine = ++generation;
    const items: KubeObject[] = [];
    let token: string | null = null;
    let page: ListPage;
    do {
      const result = await transport.list(token);
      if (stopped || mine !== generation) return;
      if (!result.ok) {
        retry(list, result.error);
        return;
      }
      page = result.value;
      items.push(...page.items);
      token = page.continue;
    } while (token !== null && token !== '');
    lists++;
    store = new Map(items.map((item) => [objectKey(item), item]));
    resourceVersion = page.resourceVersion;
    synced = true;
    failures = 0;
    recovered();
    options.onChange();
    watch(true);
  };

  /** `fromList`: the stream starts at a list's resourceVersion (a 410 then is no reason to hurry). */
  const watch = (fromList = false) => {
    const mine = ++generation;
    let received = false;
    let expired = false;
    watches++;
    const onOpen = () => {
      if (stopped || mine !== generation) return;
      failures = 0;
      recovered();
    };
    const onEvent = (event: WatchEvent) => {
      if (stopped || mine !== generation) return;
      const object = event.object;
      if (event.type === 'ERROR') {
        const code = typeof object.code === 'number' ? object.code : null;
        if (code === 410) expired = true;
        return; // the stream ends next; onEnd decides
      }
      const rv = resourceVersionOf(object);
      if (event.type === 'ADDED' || event.type === 'MODIFIED') store.set(objectKey(object), object);
      else if (event.type === 'DELETED') store.delete(objectKey(object));
      else if (event.type !== 'BOOKMARK') return;
      if (rv !== '') resourceVersion = rv;
      if (!received) {
        received = true;
        failures = 0;
        emptyCloses = 0;
        recovered();
      }
      if (event.type !== 'BOOKMARK') options.onChange();
    };
    const onEnd = (end: WatchEnd) => {
      if (stopped || mine !== generation) return;
      stream = null;
      if (expired || (end.kind === 'error' && isGone(end.error))) {
        log(`${name}: resourceVersion ${resourceVersion} is too old (410 Gone); relisting`);
        // Gone right after a fresh list: the server is in trouble; relist with backoff, not in a loop.
        if (fromList && !received)
          retry(list, { code: 'KUBE_API_STATUS', status: 410, message: 'a fresh list is already too old' });
        else void list();
      } else if (end.kind === 'error') {
        retry(() => watch(), end.error);
      } else if (end.kind === 'timeout' || received || emptyCloses === 0) {
        if (!received) emptyCloses++;
        watch(); // resume from the last resourceVersion at once
      } else {
        // Closed again without a single event: do not spin against a server that hangs up at once.
        emptyCloses++;
        retry(() => watch(), {
          code: 'KUBE_API_BAD_RESPONSE',
          status: null,
          message: 'watch streams close without events',
        });
      }
    };
    stream = transport.watch(resourceVersion, { open: onOpen, event: onEvent, end: onEnd });
  };

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      void list();
    },
    stop() {
      stopped = true;
      generation++;
      if (timer !== null) scheduler.clearTimeout(timer);
      timer = null;
      stream?.stop();
      stream = null;
    },
    items: () => [...store.values()],
    get: (key) => store.get(key),
    status: () => ({ synced, connected, resourceVersion, lists, watches, lastError }),
  };
}
