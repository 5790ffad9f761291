// The access log (--access-log FILE, or a worker's inherited stdout and stderr): one or many processes
// append to one destination, and no line may be cut into another's. Each batch of whole lines (those
// of one event-loop turn) leaves in as few write(2) calls as atomicity allows:
//   - a regular file takes a write whole: opened with O_APPEND (--access-log), the kernel appends each
//     write at the end under the file's lock; inherited (stdout redirected to a file), the shared
//     offset is updated under the same lock. One write per batch, made at once (as nginx writes its
//     access log): the page cache takes it. A write through the thread pool costs a futex and an
//     eventfd wake-up per batch: 4-11 % more CPU per request in two paired runs on a busy machine.
//   - a pipe (stdout read by a collector) takes a write whole only up to PIPE_BUF (4096 bytes on
//     Linux), so batches are cut at line ends into chunks of at most that size. A single line longer
//     than PIPE_BUF is written alone and may interleave on a pipe (never on a file). A pipe may be
//     full, so its writes go through the thread pool (fs.write), one at a time, never blocking the
//     event loop.
import { closeSync, fstatSync, openSync, write, writeSync } from 'node:fs';
import type { LineSink, ReopenResult } from './line-sink.ts';

/** POSIX PIPE_BUF on Linux: writes up to this size to a pipe are never interleaved with others. */
export const PIPE_BUF = 4096;
const MAX_PENDING_CHARS = 16 * 1024 * 1024;
const NEWLINE = 0x0a;

export type LogTarget = { path: string } | { fd: number };

export function createFileLineSink(target: LogTarget): LineSink {
  if ('fd' in target) return sinkOn(target.fd, false);
  const { path } = target;
  const sink = sinkOn(openSync(path, 'a'), true);
  sink.reopen = async (): Promise<ReopenResult> => {
    // What was queued before goes to the file it was written for (nginx flushes, then reopens).
    await sink.flush();
    let next: number;
    try {
      next = openSync(path, 'a');
    } catch (error) {
      return { ok: false, code: 'ACCESS_LOG_REOPEN_FAILED', message: (error as Error).message };
    }
    const old = sink.replaceFd(next);
    closeSync(old ?? next);
    return { ok: true };
  };
  return sink;
}

/** A sink writing to `fd` (closed with the sink when it `owns` it). */
function sinkOn(initialFd: number, owns: boolean): LineSink & { replaceFd(next: number): number | null } {
  let fd = initialFd;
  let whole = fstatSync(fd).isFile();
  let pending: string[] = [];
  let pendingChars = 0;
  let scheduled = false;
  let writing = false;
  let broken = false;
  let closed = false;
  let dropped = 0;
  const idle: (() => void)[] = [];

  const settle = (): void => {
    for (const resolve of idle.splice(0)) resolve();
  };

  const pump = (): void => {
    scheduled = false;
    if (writing) return;
    if (pending.length === 0 || broken) {
      settle();
      return;
    }
    const bytes = Buffer.from(`${pending.join('\n')}\n`, 'utf8');
    pending = [];
    pendingChars = 0;
    writing = true;
    writeFrom(bytes, 0);
  };

  /** Writes bytes[offset..] in chunks that keep lines whole, then pumps again. */
  const writeFrom = (bytes: Buffer, offset: number): void => {
    if (offset >= bytes.length || broken) {
      writing = false;
      pump();
      return;
    }
    if (whole) {
      writeWhole(bytes, offset);
      return;
    }
    const end = chunkEnd(bytes, offset);
    write(fd, bytes, offset, end - offset, null, (error, written) => {
      if (error) {
        // A full non-blocking pipe: try the same chunk again shortly. Anything else: the destination
        // is gone, and a broken log must not take the worker down; lines are counted as dropped.
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') {
          setTimeout(() => writeFrom(bytes, offset), 2);
          return;
        }
        broken = true;
        writeFrom(bytes, bytes.length);
        return;
      }
      writeFrom(bytes, offset + written);
    });
  };

  /** A regular file: written at once, as nginx writes its access log (the page cache takes it). */
  const writeWhole = (bytes: Buffer, offset: number): void => {
    if (!writeAll(fd, bytes, offset)) broken = true;
    writing = false;
    settle();
  };

  return {
    write(line) {
      if (closed || broken || pendingChars > MAX_PENDING_CHARS) {
        dropped += 1;
        return;
      }
      pending.push(line);
      pendingChars += line.length + 1;
      if (!scheduled) {
        scheduled = true;
        setImmediate(pump);
      }
    },
    flush() {
      return new Promise<void>((resolve) => {
        idle.push(resolve);
        if (!writing) pump();
      });
    },
    async close() {
      await this.flush();
      closed = true;
      if (owns) closeSync(fd);
    },
    /** Writes go to `next` (a file that broke is written again); the old fd, null once closed. */
    replaceFd(next) {
      if (closed) return null;
      const old = fd;
      [fd, whole, broken] = [next, fstatSync(next).isFile(), false];
      return old;
    },
    get dropped() {
      return dropped;
    },
  };
}

/** Writes bytes[offset..] to a file with blocking writes; false when the file refused them. */
function writeAll(fd: number, bytes: Buffer, offset: number): boolean {
  try {
    for (let at = offset; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
    return true;
  } catch {
    return false;
  }
}

/** Where the chunk starting at `offset` ends: after the last line end within PIPE_BUF bytes. */
export function chunkEnd(bytes: Buffer, offset: number): number {
  if (bytes.length - offset <= PIPE_BUF) return bytes.length;
  const cut = bytes.lastIndexOf(NEWLINE, offset + PIPE_BUF - 1);
  if (cut >= offset) return cut + 1;
  // One line longer than PIPE_BUF: it goes alone, as one write.
  const next = bytes.indexOf(NEWLINE, offset);
  return next < 0 ? bytes.length : next + 1;
}
