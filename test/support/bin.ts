// Runs our TypeScript executables as real programs in tests, without a build step:
// `writeDevExecutable(dir, 'sriov', 'bin/netplumb-sriov.ts')` puts an executable named `sriov`
// in `dir` that a CNI runtime (or our own delegate runner) can exec like any plugin.
import { chmod, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const TSX_LOADER = path.join(PROJECT_ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs');

/** argv prefix that runs a TypeScript entry point of this project with Node. */
export function nodeArgsFor(entry: string): string[] {
  return ['--import', TSX_LOADER, path.join(PROJECT_ROOT, entry)];
}

/** Writes an executable shell wrapper `dir/name` that runs `entry` (a .ts file under the project root). */
export async function writeDevExecutable(dir: string, name: string, entry: string): Promise<string> {
  const file = path.join(dir, name);
  const argv = [process.execPath, ...nodeArgsFor(entry)].map((a) => `'${a.replaceAll("'", "'\\''")}'`);
  await writeFile(file, `#!/bin/sh\nexec ${argv.join(' ')} "$@"\n`);
  await chmod(file, 0o755);
  return file;
}
