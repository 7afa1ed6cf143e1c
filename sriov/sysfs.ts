// Reading a sysfs tree (the real /sys or a simulated node's `sys/`). Reads are synchronous on
// purpose: sysfs attributes are in-memory and a sync read costs a few microseconds, where a
// promise round trip through the libuv pool costs ten times that; callers yield to the event loop
// between devices (see `yieldEvery`) so a large node never blocks it for long.
import { closeSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import path from 'node:path';

export const DEFAULT_SYSFS_ROOT = '/sys';

/** `--sysfs-root` wins, then NETPLUMB_SYSFS_ROOT, then /sys. */
export function resolveSysfsRoot(flagValue?: string, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = flagValue ?? env.NETPLUMB_SYSFS_ROOT;
  return chosen !== undefined && chosen !== '' ? path.resolve(chosen) : DEFAULT_SYSFS_ROOT;
}

function errnoCode(err: unknown): string {
  if (err instanceof Error && 'code' in err && typeof err.code === 'string') return err.code;
  return 'EIO';
}

/**
 * A sysfs root plus the warnings met while reading it. Every method returns null instead of
 * throwing; `warn*` variants record a warning naming the path when a value was expected.
 */
export class SysfsReader {
  readonly warnings: string[] = [];

  constructor(readonly root: string) {}

  path(...parts: string[]): string {
    return path.join(this.root, ...parts);
  }

  warn(message: string): void {
    this.warnings.push(message);
  }

  /** Trimmed file contents, or null (missing or unreadable). */
  text(file: string): string | null {
    try {
      return this.readSmall(file);
    } catch {
      return null;
    }
  }

  /** Like text(), but a missing or unreadable file is a warning. */
  expectText(file: string): string | null {
    try {
      return this.readSmall(file);
    } catch (err) {
      this.warn(`${file}: unreadable (${errnoCode(err)})`);
      return null;
    }
  }

  // sysfs attributes fit in a page; open/read/close into one reused buffer is about twice as
  // fast as readFileSync (no fstat, no per-call allocation).
  private readonly buf = Buffer.allocUnsafe(8192);

  private readSmall(file: string): string {
    const fd = openSync(file, 'r');
    try {
      let len = 0;
      for (;;) {
        const want = this.buf.length - len;
        const n = readSync(fd, this.buf, len, want, null);
        len += n;
        // A short read is end of file (sysfs hands over the whole attribute in one read).
        if (n < want || len === this.buf.length) break;
      }
      return this.buf.toString('latin1', 0, len).trim();
    } finally {
      closeSync(fd);
    }
  }

  /** Raw symlink target, or null. */
  link(file: string): string | null {
    try {
      return readlinkSync(file);
    } catch {
      return null;
    }
  }

  expectLink(file: string): string | null {
    try {
      return readlinkSync(file);
    } catch (err) {
      this.warn(`${file}: not a readable symlink (${errnoCode(err)})`);
      return null;
    }
  }

  /** Directory entries (following symlinks), or null. */
  dir(dirPath: string): string[] | null {
    try {
      return readdirSync(dirPath);
    } catch {
      return null;
    }
  }

  expectDir(dirPath: string, what: string): string[] | null {
    try {
      return readdirSync(dirPath);
    } catch (err) {
      const code = errnoCode(err);
      const why = code === 'ENOENT' && this.link(dirPath) !== null ? 'dangling link' : code;
      this.warn(`${dirPath}: ${what} unreadable (${why})`);
      return null;
    }
  }

  /** Integer attribute; garbage is a warning and yields `fallback`. */
  int(file: string, fallback: number, opts: { readonly required?: boolean } = {}): number {
    const raw = opts.required === true ? this.expectText(file) : this.text(file);
    if (raw === null) return fallback;
    const n = parseIntStrict(raw);
    if (n === null) {
      this.warn(`${file}: expected an integer, found "${raw.slice(0, 40)}"`);
      return fallback;
    }
    return n;
  }
}

/** Decimal or 0x-prefixed hex integer; null for anything else. */
export function parseIntStrict(raw: string): number | null {
  const s = raw.trim();
  if (/^-?\d+$/.test(s)) return Number(s);
  if (/^0x[0-9a-f]+$/i.test(s)) return parseInt(s.slice(2), 16);
  return null;
}

/** Lets other work run every `every` calls; used between devices in big scans. */
export function yieldEvery(every: number): () => Promise<void> | undefined {
  let n = 0;
  return () => {
    n++;
    if (n % every !== 0) return undefined;
    return new Promise<void>((resolve) => setImmediate(resolve));
  };
}
