// Live reload for `keepip gateway -f`: watch the manifest files and directories (fs.watch on each
// directory, so editors that save by rename are seen), debounce bursts of events, and run one reload
// at a time (a change during a reload schedules exactly one more). SIGHUP asks for the same reload.
import { type Dirent, type FSWatcher, watch } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';

/** The files the manifest loader reads; other files in a watched directory (logs…) are not config. */
const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

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
  // A steady stream of events must not postpone the reload forever.
  const maxWaitMs = Math.max(debounceMs, 1_000);
  let firstEventAt = 0;
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
    const now = Date.now();
    if (timer !== null) clearTimeout(timer);
    else firstEventAt = now;
    const wait = Math.max(0, Math.min(debounceMs, firstEventAt + maxWaitMs - now));
    timer = setTimeout(() => {
      timer = null;
      void run();
    }, wait);
  };

  // One non-recursive watcher per directory: inotify on a directory sees entries created, changed and
  // replaced by rename, whereas node's recursive mode on Linux loses files that editors replace.
  const watched = new Map<string, FSWatcher>();
  const watchDirectory = (directory: string, only: string | null) => {
    const key = `${directory}\u0000${only ?? ''}`;
    if (watched.has(key)) return;
    try {
      const watcher = watch(directory, { persistent: false }, (_event, file) => {
        if (only !== null) {
          if (file === null || file === only) schedule();
          return;
        }
        if (file === null || MANIFEST_EXTENSIONS.has(extname(file))) schedule();
        // A new subdirectory may hold manifests too, some of them already there when its watcher starts
        // (a folder moved in, a checkout): read once it is watched.
        if (file !== null && extname(file) === '')
          void addTree(join(directory, file)).then((isDirectory) => {
            if (isDirectory) schedule();
          });
      });
      watcher.on('error', () => {
        watcher.close();
        watched.delete(key);
      });
      watched.set(key, watcher);
    } catch (error) {
      options.onError?.(error);
    }
  };
  /** Watches `directory` and the directories below it; false when it is not one (or is gone). */
  const addTree = async (directory: string): Promise<boolean> => {
    if (closed) return false;
    let entries: Dirent[];
    try {
      entries = await readdir(directory, { withFileTypes: true });
    } catch {
      return false;
    }
    watchDirectory(directory, null);
    for (const entry of entries) if (entry.isDirectory()) await addTree(join(directory, entry.name));
    return true;
  };

  for (const path of paths) {
    const absolute = resolve(path);
    let isDirectory = false;
    try {
      isDirectory = (await stat(absolute)).isDirectory();
    } catch {
      // A missing path may appear later; watch its directory for it.
    }
    if (isDirectory) await addTree(absolute);
    else watchDirectory(dirname(absolute), basename(absolute));
  }

  return {
    trigger: schedule,
    close() {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      for (const watcher of watched.values()) watcher.close();
      watched.clear();
    },
  };
}
