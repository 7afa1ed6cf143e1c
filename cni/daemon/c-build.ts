// The one build of netplumb's C programs (the CNI launcher `netplumb-shim` and the delegate
// spawner `netplumb-spawner`): the machine's C compiler, one set of flags, statically linked so
// the host or image that runs them needs no libc. A static link that fails is an error: a
// dynamically linked fallback would silently break "needs nothing on the host".
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { NetplumbError } from '../../lib/errors.js';
import type { NetplumbErrorOptions } from '../../lib/errors.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));

/** Every C program is built with exactly these flags (then `-o OUT SOURCE`). */
export const C_FLAGS: readonly string[] = ['-static', '-O2', '-s', '-Wall', '-Wextra', '-Werror'];

export class CBuildError extends NetplumbError {
  override readonly name = 'CBuildError';
  constructor(message: string, options?: NetplumbErrorOptions) {
    super('C_BUILD_FAILED', message, options);
  }
}

/** A C source under cni/daemon/ (`shim/netplumb-shim.c`), from the source tree or from dist/ (which holds no .c files). */
export function cSource(relative: string): string {
  const candidates = [
    path.join(here, relative),
    path.resolve(here, '..', '..', '..', 'cni', 'daemon', relative),
  ];
  const found = candidates.find((c) => existsSync(c));
  if (found === undefined)
    throw new CBuildError(`${relative} not found (looked in ${candidates.join(', ')})`);
  return found;
}

/** A dynamically linked ELF names its loader (PT_INTERP); a static one does not. */
export async function isStaticBinary(file: string): Promise<boolean> {
  const bytes = await readFile(file);
  return !bytes.includes('/ld-linux') && !bytes.includes('/ld-musl');
}

/**
 * Compiles `source` to `out` (atomically, through a unique temp name) unless `out` is newer than
 * the source. `CC` picks the compiler (default `cc`). Fails unless the result is static.
 */
export async function buildStaticC(
  source: string,
  out: string,
  opts: { cc?: string; force?: boolean } = {},
): Promise<{ file: string }> {
  const cc = opts.cc ?? process.env['CC'] ?? 'cc';
  if (opts.force !== true) {
    const [s, o] = await Promise.all([stat(source), stat(out).catch(() => undefined)]);
    if (o !== undefined && o.mtimeMs >= s.mtimeMs) return { file: out };
  }
  await mkdir(path.dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await run(cc, [...C_FLAGS, '-o', tmp, source]);
    if (!(await isStaticBinary(tmp))) throw new Error('the linker produced a dynamically linked binary');
  } catch (err) {
    await rm(tmp, { force: true });
    throw new CBuildError(
      `cannot build ${path.basename(source)} statically with ${cc} ${C_FLAGS.join(' ')}: install a C compiler and a static libc (Debian: gcc libc6-dev) or set CC`,
      { cause: err },
    );
  }
  await rename(tmp, out);
  return { file: out };
}
