// Builds netplumb-spawner (netplumb-spawner.c) through the one C build (../c-build.ts): statically
// linked, the daemon's image runs it as is.
import path from 'node:path';
import { buildStaticC, cSource } from '../c-build.js';

/** The helper's C source, from the source tree or from dist/. */
export function spawnerSource(): string {
  return cSource(path.join('spawner', 'netplumb-spawner.c'));
}

/** Compiles the helper to `out` (atomically) unless `out` is newer than the source. `CC` picks the compiler. */
export async function buildSpawner(
  out: string,
  opts: { cc?: string; force?: boolean } = {},
): Promise<{ file: string }> {
  return buildStaticC(spawnerSource(), out, opts);
}
