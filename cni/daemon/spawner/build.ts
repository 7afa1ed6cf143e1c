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

/** The thin plugin's launcher's C source (netplumb-cni-launcher.c, installed as netplumb-cni). */
export function launcherSource(): string {
  return cSource(path.join('spawner', 'netplumb-cni-launcher.c'));
}

/**
 * Compiles the launcher that is installed as `netplumb-cni`: it starts netplumb-spawner, then
 * execs the Node single executable `netplumb-cni-node` beside it with the helper's pipes.
 */
export async function buildLauncher(
  out: string,
  opts: { cc?: string; force?: boolean } = {},
): Promise<{ file: string }> {
  return buildStaticC(launcherSource(), out, opts);
}
