// Writes a file so readers see either the old content or the new, never a torn one: a uniquely
// named temp file in the same directory, then rename(2). Used for every cache, state record and
// generated file, and (tempPathFor) for every copy that is renamed into place.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface AtomicWriteOptions {
  /** Mode of the new file (subject to the umask, as with writeFile). */
  readonly mode?: number;
  /** Create the parent directory when it is missing (only then: no mkdir on the hot path). */
  readonly createDir?: boolean;
  /** Mode of a directory createDir creates (subject to the umask, as with mkdir). */
  readonly dirMode?: number;
}

function mkdirOptions(opts: AtomicWriteOptions): { recursive: true; mode?: number } {
  return opts.dirMode === undefined ? { recursive: true } : { recursive: true, mode: opts.dirMode };
}

let written = 0;

/**
 * A temp name next to `file` that no other writer, in this process or another, can pick too: this
 * process's pid and count, and 48 random bits for a writer with the same pid in another pid
 * namespace. Not node:crypto's randomUUID: loading that module is ~3 ms of every start of the thin
 * CNI executable, which writes its cache through here. The name needs no secrecy: the directories
 * are the operator's (root writes them; nobody else can plant a file or a link there), and a stale
 * temp file of a dead process with the same pid and count is overwritten.
 */
export function tempPathFor(file: string): string {
  written = (written + 1) % Number.MAX_SAFE_INTEGER;
  const random = Math.floor(Math.random() * 2 ** 48)
    .toString(36)
    .padStart(10, '0');
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}-${written}-${random}.tmp`);
}

export async function writeFileAtomic(
  file: string,
  data: string,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const tmp = tempPathFor(file);
  const write = (): Promise<void> => writeFile(tmp, data, opts.mode === undefined ? {} : { mode: opts.mode });
  try {
    try {
      await write();
    } catch (err) {
      if (opts.createDir !== true || (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await mkdir(path.dirname(file), mkdirOptions(opts));
      await write();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * writeFileAtomic with blocking calls, for small files on a hot path (a DEL cache, a device-info
 * file: a few KB into the page cache or tmpfs), where the libuv threadpool round trips of the async
 * calls cost more CPU than the write itself.
 */
export function writeFileAtomicSync(file: string, data: string, opts: AtomicWriteOptions = {}): void {
  const tmp = tempPathFor(file);
  const write = (): void => {
    writeFileSync(tmp, data, opts.mode === undefined ? {} : { mode: opts.mode });
  };
  try {
    try {
      write();
    } catch (err) {
      if (opts.createDir !== true || (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      mkdirSync(path.dirname(file), mkdirOptions(opts));
      write();
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
