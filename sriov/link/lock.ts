// A per-VF lock that works across processes (the plugin run as an executable) and inside one
// process (the daemon running it in-process): an O_EXCL lock file holding the owner's pid and
// process start time. A lock whose owner is dead (or whose pid now names another process) is
// stale and is broken — under a second O_EXCL "breaker" file so two waiters never both break it.
import { NetplumbError } from '../../lib/errors.js';
import type { NetplumbErrorOptions } from '../../lib/errors.js';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { type Clock, systemClock } from '../../lib/clock.js';

export const LockErrorCode = { TIMEOUT: 'VF_LOCK_TIMEOUT' } as const;

export class LockError extends NetplumbError {
  override readonly name = 'LockError';
  constructor(message: string, options?: NetplumbErrorOptions) {
    super(LockErrorCode.TIMEOUT, message, options);
  }
}

export interface HeldLock {
  readonly file: string;
  release(): Promise<void>;
}

export interface LockOptions {
  readonly clock?: Clock;
  /** Default 60 s, like sriov-cni's flock timeout. */
  readonly timeoutMs?: number;
  /** Owner identity written into the file; defaults to this process. */
  readonly pid?: number;
}

/** Start time of a process (clock ticks since boot, /proc/<pid>/stat field 22), null when it is gone. */
async function processStartTime(pid: number): Promise<string | null> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

async function ownerAlive(content: string): Promise<boolean> {
  const [pidText, start] = content.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const now = await processStartTime(pid);
  return now !== null && (start === undefined || start === '0' || start === now);
}

async function tryCreate(file: string, content: string): Promise<boolean> {
  try {
    const handle = await open(file, 'wx', 0o600);
    try {
      await handle.writeFile(content);
    } finally {
      await handle.close();
    }
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

async function readIfExists(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return null;
  }
}

// Breaks `file` if it still holds `staleContent`. The breaker file serialises breakers; a breaker
// left by a crashed breaker is itself removed after 10 s.
async function breakStale(file: string, staleContent: string, clock: Clock): Promise<void> {
  const breaker = `${file}.break`;
  if (!(await tryCreate(breaker, String(process.pid)))) {
    const info = await stat(breaker).catch(() => null);
    if (info !== null && clock.now() - info.mtimeMs > 10_000) await rm(breaker, { force: true });
    return;
  }
  try {
    if ((await readIfExists(file)) === staleContent) await rm(file, { force: true });
  } finally {
    await rm(breaker, { force: true });
  }
}

/**
 * Takes the lock `<dir>/<name>.lock`, waiting (polling with backoff) up to `timeoutMs`.
 * Throws LockError on timeout, naming the holder.
 */
export async function acquireLock(dir: string, name: string, options: LockOptions = {}): Promise<HeldLock> {
  const clock = options.clock ?? systemClock;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const pid = options.pid ?? process.pid;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${name}.lock`);
  const start = await processStartTime(pid);
  // The token makes the content unique per acquisition, so release never removes someone else's lock.
  const content = `${pid} ${start ?? '0'} ${randomBytes(6).toString('hex')}\n`;
  const deadline = clock.now() + timeoutMs;
  let delay = 5;
  for (;;) {
    if (await tryCreate(file, content)) {
      return {
        file,
        async release() {
          if ((await readIfExists(file)) === content) await rm(file, { force: true });
        },
      };
    }
    const holder = await readIfExists(file);
    if (holder !== null && !(await ownerAlive(holder))) {
      await breakStale(file, holder, clock);
      continue;
    }
    if (clock.now() >= deadline) {
      throw new LockError(
        `timed out after ${timeoutMs} ms waiting for ${file} (held by pid ${holder?.split(' ')[0] ?? '?'})`,
      );
    }
    await clock.sleep(delay);
    delay = Math.min(delay * 2, 100);
  }
}
