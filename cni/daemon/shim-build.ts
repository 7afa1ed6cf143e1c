// Builds the C launcher (shim/netplumb-shim.c) with the machine's C compiler: static when the libc
// allows it, so the host that runs it needs nothing. Used by `npm run build:shim`, by
// `netplumb install`, and by tests and benchmarks.
import { NetplumbError } from '../../lib/errors.js';
import type { NetplumbErrorOptions } from '../../lib/errors.js';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));

export class ShimBuildError extends NetplumbError {
  override readonly name = 'ShimBuildError';
  constructor(message: string, options?: NetplumbErrorOptions) {
    super('SHIM_BUILD_FAILED', message, options);
  }
}

/** The launcher's C source, from the source tree or from dist/ (which holds no .c files). */
export function shimSource(): string {
  const candidates = [
    path.join(here, 'shim', 'netplumb-shim.c'),
    path.resolve(here, '..', '..', '..', 'cni', 'daemon', 'shim', 'netplumb-shim.c'),
  ];
  const found = candidates.find((c) => existsSync(c));
  if (found === undefined)
    throw new ShimBuildError(`netplumb-shim.c not found (looked in ${candidates.join(', ')})`);
  return found;
}

export interface BuiltShim {
  readonly file: string;
  readonly static: boolean;
}

/**
 * Compiles the launcher to `out` (atomically) unless `out` is newer than the source.
 * `CC` picks the compiler (default `cc`).
 */
export async function buildShim(
  out: string,
  opts: { cc?: string; force?: boolean } = {},
): Promise<BuiltShim> {
  const src = shimSource();
  const cc = opts.cc ?? process.env['CC'] ?? 'cc';
  if (opts.force !== true) {
    const [s, o] = await Promise.all([stat(src), stat(out).catch(() => undefined)]);
    if (o !== undefined && o.mtimeMs >= s.mtimeMs) return { file: out, static: await isStaticShim(out) };
  }
  await mkdir(path.dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  const flags = ['-Os', '-s', '-Wall', '-Wextra', '-o', tmp, src];
  let isStaticBuild = true;
  try {
    await run(cc, ['-static', ...flags]);
  } catch {
    isStaticBuild = false;
    try {
      await run(cc, flags);
    } catch (err) {
      throw new ShimBuildError(
        `cannot compile ${src} with ${cc}: install a C compiler (Debian: gcc libc6-dev) or set CC`,
        {
          cause: err,
        },
      );
    }
  }
  await rename(tmp, out);
  return { file: out, static: isStaticBuild };
}

/** A dynamically linked ELF names its loader (PT_INTERP); a static one does not. */
export async function isStaticShim(file: string): Promise<boolean> {
  const bytes = await readFile(file);
  return !bytes.includes('/ld-linux') && !bytes.includes('/ld-musl');
}
