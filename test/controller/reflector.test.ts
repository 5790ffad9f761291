// The reflector's decisions with a scripted transport and a manual clock: list then watch from the
// list's version, resume after a close, relist on 410, back off with growing, jittered delays while
// failures last, and keep the stored objects meanwhile.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay, type Scheduler } from '../../src/controller/backoff.ts';
import { createDebouncer } from '../../src/controller/debounce.ts';
import {
  type ApiResult,
  createReflector,
  type ListPage,
  type ListWatcher,
  type WatchHandlers,
} from '../../src/controller/reflector.ts';

function manualScheduler(random = 0.5) {
  let now = 0;
  const timers: { at: number; fn: () => void; id: number }[] = [];
  let next = 1;
  const scheduler: Scheduler = {
    setTimeout: (fn, ms) => {
      const id = next++;
      timers.push({ at: now + ms, fn, id });
      return id;
    },
    clearTimeout: (id) => {
      const i = timers.findIndex((t) => t.id === id);
      if (i >= 0) timers.splice(i, 1);
    },
    random: () => random,
    now: () => now,
  };
  return {
    scheduler,
    delays: () => timers.map((t) => t.at - now),
    /** Moves the clock without running timers (none may be due). */
    advance(ms: number) {
      assert.ok(
        timers.every((t) => t.at > now + ms),
        'no timer due',
      );
      now += ms;
    },
    /** Runs the earliest timer, moving the clock to it. */
    fire() {
      timers.sort((a, b) => a.at - b.at);
      const t = timers.shift();
      assert.ok(t, 'a timer is pending');
      now = t.at;
      t.fn();
    },
  };
}

function scriptedTransport() {
  const lists: ((r: ApiResult<ListPage>) => void)[] = [];
  const listArgs: { token: string | null; paged: boolean }[] = [];
  const watches: { rv: string; handlers: WatchHandlers; stopped: boolean }[] = [];
  const transport: ListWatcher = {
    list: (token, paged = true) => {
      listArgs.push({ token, paged });
      return new Promise((resolve) => lists.push(resolve));
    },
    watch(rv, handlers) {
      const w = { rv, handlers, stopped: false };
      watches.push(w);
      return { stop: () => (w.stopped = true) };
    },
  };
  return { transport, lists, listArgs, watches };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));
const obj = (name: string, rv: string) => ({ metadata: { namespace: 'ns', name, resourceVersion: rv } });
const listOk = (rv: string, ...items: ReturnType<typeof obj>[]): ApiResult<ListPage> => ({
  ok: true,
  value: { items, resourceVersion: rv, continue: null },
});
const down: ApiResult<ListPage> = {
  ok: false,
  error: { code: 'KUBE_API_UNREACHABLE', status: null, message: 'ECONNREFUSED' },
};

describe('reflector', () => {
  it('lists, watches from the list version, applies events, resumes from the last version after a close', async () => {
    const clock = manualScheduler();
    const t = scriptedTransport();
    let changes = 0;
    const r = createReflector({
      name: 'x',
      transport: t.transport,
      scheduler: clock.scheduler,
      backoff: { initialMs: 100, maxMs: 1000 },
      onChange: () => changes++,
    });
    r.start();
    t.lists[0]!(listOk('10', obj('a', '9')));
    await tick();
    assert.equal(r.status().synced, true);
    assert.equal(t.watches[0]!.rv, '10');
    t.watches[0]!.handlers.event({ type: 'ADDED', object: obj('b', '11') });
    t.watches[0]!.handlers.event({ type: 'DELETED', object: obj('a', '12') });
    t.watches[0]!.handlers.event({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '15' } } });
    assert.deepEqual(
      r.items().map((o) => o.metadata?.name),
      ['b'],
    );
    assert.equal(changes, 3);
    t.watches[0]!.handlers.end({ kind: 'closed' });
    assert.equal(t.watches[1]!.rv, '15', 'resumed from the bookmark, no relist');
    assert.equal(t.lists.length, 1);
  });

  it('relists on a 410 ERROR event and replaces the store', async () => {
    const clock = manualScheduler();
    const t = scriptedTransport();
    const r = createReflector({
      name: 'x',
      transport: t.transport,
      scheduler: clock.scheduler,
      backoff: { initialMs: 100, maxMs: 1000 },
      onChange: () => {},
    });
    r.start();
    t.lists[0]!(listOk('10', obj('a', '9')));
    await tick();
    t.watches[0]!.handlers.event({ type: 'ADDED', object: obj('b', '11') });
    t.watches[0]!.handlers.event({ type: 'ERROR', object: { kind: 'Status', code: 410 } });
    t.watches[0]!.handlers.end({ kind: 'closed' });
    assert.equal(t.lists.length, 2);
    t.lists[1]!(listOk('20', obj('c', '19')));
    await tick();
    assert.deepEqual(
      r.items().map((o) => o.metadata?.name),
      ['c'],
    );
    assert.equal(t.watches[1]!.rv, '20');
  });

  it('backs off with growing jittered delays during an outage and keeps the objects', async () => {
    const { clock, t, r } = startReflector();
    t.lists[0]!(listOk('10', obj('a', '9')));
    await tick();
    const failure = {
      kind: 'error' as const,
      error: { code: 'KUBE_API_UNREACHABLE' as const, status: null, message: 'ECONNREFUSED' },
    };
    const seen: number[] = [];
    for (let i = 0; i < 4; i++) {
      t.watches[i]!.handlers.end(failure);
      seen.push(clock.delays()[0]!);
      clock.fire();
    }
    assert.deepEqual(seen, [150, 300, 400, 400]);
    assert.equal(r.status().connected, false);
    assert.deepEqual(
      r.items().map((o) => o.metadata?.name),
      ['a'],
    );
    t.watches[4]!.handlers.open();
    assert.equal(r.status().connected, true);
    assert.equal(t.watches[4]!.rv, '10');
  });

  it('retries a failed first list with backoff; not synced until it works', async () => {
    const clock = manualScheduler(0);
    const t = scriptedTransport();
    const r = createReflector({
      name: 'x',
      transport: t.transport,
      scheduler: clock.scheduler,
      backoff: { initialMs: 100, maxMs: 400 },
      onChange: () => {},
    });
    r.start();
    t.lists[0]!(down);
    await tick();
    assert.equal(r.status().synced, false);
    assert.deepEqual(clock.delays(), [100]);
    clock.fire();
    t.lists[1]!(listOk('5'));
    await tick();
    assert.equal(r.status().synced, true);
  });

  it('backoffDelay is initial * 2^n times [1, 2), at most max', () => {
    const policy = { initialMs: 800, maxMs: 30_000 };
    assert.equal(
      backoffDelay(policy, 0, () => 0),
      800,
    );
    assert.equal(
      backoffDelay(policy, 3, () => 0.999),
      Math.round(6400 * 1.999),
    );
    assert.equal(
      backoffDelay(policy, 10, () => 0),
      30_000,
    );
  });
});

/** A started reflector over a scripted transport and a manual clock (backoff 100 ms, at most 400). */
function startReflector(lines: string[] = []) {
  const clock = manualScheduler(0.5);
  const t = scriptedTransport();
  const r = createReflector({
    name: 'x',
    transport: t.transport,
    scheduler: clock.scheduler,
    backoff: { initialMs: 100, maxMs: 400 },
    onChange: () => {},
    log: (line) => lines.push(line),
  });
  r.start();
  return { clock, t, r };
}

describe('reflector: paged lists', () => {
  const page = (
    rv: string,
    next: string | null,
    ...items: ReturnType<typeof obj>[]
  ): ApiResult<ListPage> => ({
    ok: true,
    value: { items, resourceVersion: rv, continue: next },
  });

  it('a paged relist replaces the store only after its last page: never a mixed view', async () => {
    const { t, r } = startReflector();
    t.lists[0]!(listOk('10', obj('a', '9')));
    await tick();
    t.watches[0]!.handlers.event({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '12' } } });
    t.watches[0]!.handlers.end({
      kind: 'error',
      error: { code: 'KUBE_API_STATUS', status: 410, message: 'gone' },
    });
    t.lists[1]!(page('20', 'c1', obj('b', '19')));
    await tick();
    assert.deepEqual(
      r.items().map((o) => o.metadata?.name),
      ['a'],
    );
    assert.deepEqual(t.listArgs[2], { token: 'c1', paged: true });
    t.lists[2]!(page('20', null, obj('c', '18')));
    await tick();
    assert.deepEqual(
      r.items().map((o) => o.metadata?.name),
      ['b', 'c'],
    );
    assert.equal(t.watches[1]!.rv, '20');
  });

  it('an expired continue token (410 on a later page) falls back to one full list at once, as client-go', async () => {
    const lines: string[] = [];
    const { clock, t, r } = startReflector(lines);
    t.lists[0]!(page('10', 'c1', obj('a', '9')));
    await tick();
    t.lists[1]!({ ok: false, error: { code: 'KUBE_API_STATUS', status: 410, message: 'continue too old' } });
    await tick();
    assert.deepEqual(clock.delays(), [], 'no backoff');
    assert.deepEqual(t.listArgs[2], { token: null, paged: false });
    t.lists[2]!(page('30', null, obj('a', '29'), obj('b', '28')));
    await tick();
    assert.equal(r.status().synced, true);
    assert.deepEqual(
      r.items().map((o) => o.metadata?.name),
      ['a', 'b'],
    );
    assert.equal(t.watches[0]!.rv, '30');
    assert.deepEqual(lines, ["x: the list's continue token expired (410 Gone); listing everything at once"]);
  });
});

describe('reflector: watch streams that end without events', () => {
  const start = async (lines: string[] = []) => {
    const { clock, t, r } = startReflector(lines);
    t.lists[0]!(listOk('10', obj('a', '9')));
    await tick();
    return { clock, t, r };
  };

  it('a server that accepts every watch and hangs up at once: one resume at once, then growing backoff', async () => {
    const { clock, t } = await start();
    t.watches[0]!.handlers.open();
    t.watches[0]!.handlers.end({ kind: 'closed' });
    assert.equal(t.watches.length, 2, 'the first empty close resumes at once');
    const seen: number[] = [];
    for (let i = 1; i < 5; i++) {
      t.watches[i]!.handlers.open();
      t.watches[i]!.handlers.end({ kind: 'closed' });
      seen.push(clock.delays()[0]!);
      clock.fire();
    }
    assert.deepEqual(seen, [150, 300, 400, 400]);
    assert.equal(t.watches[5]!.rv, '10');
  });

  it('a quiet resource whose streams end after seconds or minutes (idle timeout, server timeout, an LB) resumes at once, and is no outage', async () => {
    const lines: string[] = [];
    const { clock, t, r } = await start(lines);
    const ends = [
      { after: 30_000, end: { kind: 'timeout' as const } },
      { after: 300_000, end: { kind: 'closed' as const } },
      { after: 60_000, end: { kind: 'closed' as const } },
      { after: 60_000, end: { kind: 'closed' as const } },
    ];
    ends.forEach(({ after, end }, i) => {
      t.watches[i]!.handlers.open();
      clock.advance(after);
      t.watches[i]!.handlers.end(end);
      assert.equal(t.watches.length, i + 2, `stream ${i} resumed at once`);
    });
    assert.deepEqual(clock.delays(), []);
    assert.equal(r.status().connected, true);
    assert.deepEqual(lines, []);
    assert.equal(t.watches[4]!.rv, '10');
  });

  it('a watch the API server never answers (black-holed) is an outage: backoff, not connected, said once', async () => {
    const lines: string[] = [];
    const { clock, t, r } = await start(lines);
    clock.advance(30_000);
    t.watches[0]!.handlers.end({ kind: 'timeout' });
    assert.equal(r.status().connected, false);
    assert.equal(r.status().lastError?.code, 'KUBE_API_UNREACHABLE');
    assert.deepEqual(clock.delays(), [150]);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /no answer.*retrying with backoff/);
    clock.fire();
    t.watches[1]!.handlers.open();
    assert.equal(r.status().connected, true);
    assert.match(lines[1]!, /connected again at resourceVersion 10/);
  });

  it('an ERROR other than 410 and a DELETED for an object never seen leave the store; the stream resumes, no relist', async () => {
    const { t, r } = await start();
    t.watches[0]!.handlers.open();
    t.watches[0]!.handlers.event({ type: 'DELETED', object: obj('never-seen', '11') });
    t.watches[0]!.handlers.event({ type: 'ERROR', object: { kind: 'Status', code: 500, message: 'etcd' } });
    t.watches[0]!.handlers.end({ kind: 'closed' });
    assert.deepEqual(
      r.items().map((o) => o.metadata?.name),
      ['a'],
    );
    assert.equal(t.lists.length, 1);
    assert.equal(t.watches[1]!.rv, '11');
  });

  it('a short empty stream after a long one resumes at once again', async () => {
    const { clock, t } = await start();
    t.watches[0]!.handlers.open();
    t.watches[0]!.handlers.end({ kind: 'closed' }); // short: resumed at once, counted
    t.watches[1]!.handlers.open();
    clock.advance(60_000);
    t.watches[1]!.handlers.end({ kind: 'closed' }); // long: healthy, the count starts over
    t.watches[2]!.handlers.open();
    t.watches[2]!.handlers.end({ kind: 'closed' });
    assert.equal(t.watches.length, 4);
    assert.deepEqual(clock.delays(), []);
  });
});

describe('debouncer', () => {
  it('turns a burst into one flush after the quiet period, and caps the wait', () => {
    const clock = manualScheduler();
    let flushes = 0;
    const d = createDebouncer({
      quietMs: 100,
      maxDelayMs: 250,
      scheduler: clock.scheduler,
      flush: () => flushes++,
    });
    d.trigger();
    d.trigger();
    assert.deepEqual(clock.delays(), [100]);
    clock.fire();
    assert.equal(flushes, 1);
    // A steady trickle: every 90 ms a new event; the flush still comes 250 ms after the first.
    d.trigger();
    clock.advance(90);
    d.trigger();
    clock.advance(90);
    d.trigger();
    assert.deepEqual(clock.delays(), [70]);
    assert.equal(flushes, 1);
    clock.fire();
    assert.equal(flushes, 2);
  });
});
