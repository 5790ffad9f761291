// Live reload for `keepip gateway -f`: watch the manifest files and directories (fs.watch on the
// directory, so editors that save by rename are seen), debounce bursts of events, and run one reload
// at a time (a change during a reload schedules exactly one more). SIGHUP asks for the same reload.
import { type FSWatcher, watch } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';

export interface ConfigWatcher {
  /** Runs a reload now (e.g. on SIGHUP), coalesced with any pending one. */
  trigger(): void;
  close(): void;
}

/**
 * Calls `reload` after the files under `paths` change, `debounceMs` after the last event. Reloads
 * never overlap. Errors thrown by `reload` go to `onError`.
 */
export async function watchConfig(
  paths: readonly string[],
  reload: () => Promise<void>,
  options: { debounceMs?: number; onError?: (error: unknown) => void } = {},
): Promise<ConfigWatcher> {
  const debounceMs = options.debounceMs ?? 150;
  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | null = null;
  let running = false;
  let again = false;
  let closed = false;

  const run = async (): Promise<void> => {
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await reload();
    } catch (error) {
      options.onError?.(error);
    } finally {
      running = false;
    }
    if (again) {
      again = false;
      await run();
    }
  };
  const schedule = () => {
    if (closed) return;
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      void run();
    }, debounceMs);
  };

  for (const path of paths) {
    const absolute = resolve(path);
    let isDirectory = false;
    try {
      isDirectory = (await stat(absolute)).isDirectory();
    } catch {
      // A missing path may appear later; watch its directory for it.
    }
    const target = isDirectory ? absolute : dirname(absolute);
    const name = isDirectory ? null : basename(absolute);
    try {
      const watcher = watch(target, { recursive: isDirectory, persistent: false }, (_event, file) => {
        if (name === null || file === null || file === name) schedule();
      });
      watcher.on('error', (error) => options.onError?.(error));
      watchers.push(watcher);
    } catch (error) {
      options.onError?.(error);
    }
  }

  return {
    trigger: schedule,
    close() {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      for (const watcher of watchers) watcher.close();
    },
  };
}
