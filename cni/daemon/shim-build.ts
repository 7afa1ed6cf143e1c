// Builds the C launcher (shim/netplumb-shim.c) through the one C build (./c-build.ts): static, so
// the host that runs it needs nothing. Used by `npm run build:shim`, by `netplumb install`, and by
// tests and benchmarks.
import path from 'node:path';
import { buildStaticC, cSource, isStaticBinary } from './c-build.js';

/** The launcher's C source, from the source tree or from dist/. */
export function shimSource(): string {
  return cSource(path.join('shim', 'netplumb-shim.c'));
}

export interface BuiltShim {
  readonly file: string;
  /** Always true for a build made here (a failed static link is an error); checked for a prebuilt file. */
  readonly static: boolean;
}

/** Compiles the launcher to `out` (atomically) unless `out` is newer than the source. */
export async function buildShim(
  out: string,
  opts: { cc?: string; force?: boolean } = {},
): Promise<BuiltShim> {
  const built = await buildStaticC(shimSource(), out, opts);
  return { file: built.file, static: await isStaticBinary(built.file) };
}

/** Whether a prebuilt launcher is static (no PT_INTERP). */
export const isStaticShim = isStaticBinary;
