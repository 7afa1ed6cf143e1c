// Builds netplumb-spawner (netplumb-spawner.c) with the machine's C compiler, statically linked:
// the daemon's image runs it as is. A static link that fails is an error (no dynamic fallback).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { NetplumbError } from '../../../lib/errors.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));

export class SpawnerBuildError extends NetplumbError {
  override readonly name = 'SpawnerBuildError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('spawner-build-failed', message, options);
  }
}

/** The helper's C source, from the source tree or from dist/ (which holds no .c files). */
export function spawnerSource(): string {
  const candidates = [
    path.join(here, 'netplumb-spawner.c'),
    path.resolve(here, '..', '..', '..', '..', 'cni', 'daemon', 'spawner', 'netplumb-spawner.c'),
  ];
  const found = candidates.find((c) => existsSync(c));
  if (found === undefined)
    throw new SpawnerBuildError(`netplumb-spawner.c not found (looked in ${candidates.join(', ')})`);
  return found;
}

/** Compiles the helper to `out` (atomically) unless `out` is newer than the source. `CC` picks the compiler. */
export async function buildSpawner(
  out: string,
  opts: { cc?: string; force?: boolean } = {},
): Promise<{ file: string }> {
  const src = spawnerSource();
  const cc = opts.cc ?? process.env['CC'] ?? 'cc';
  if (opts.force !== true) {
    const [s, o] = await Promise.all([stat(src), stat(out).catch(() => undefined)]);
    if (o !== undefined && o.mtimeMs >= s.mtimeMs) return { file: out };
  }
  await mkdir(path.dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}-${Date.now()}`;
  try {
    await run(cc, ['-static', '-O2', '-s', '-Wall', '-Wextra', '-Werror', '-o', tmp, src]);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new SpawnerBuildError(
      `cannot statically link ${src} with ${cc}: install a C compiler and a static libc (Debian: gcc libc6-dev) or set CC`,
      { cause: err },
    );
  }
  await rename(tmp, out);
  return { file: out };
}
