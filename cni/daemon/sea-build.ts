// Builds self-contained host executables (Node.js single-executable applications) for hosts that
// have no Node.js: bin/netplumb-cni.ts bundled by esbuild into one CommonJS script, turned into a
// SEA blob by `node --experimental-sea-config`, injected into a copy of this node binary by postject.
// Node 20's SEA runs CommonJS only, and CommonJS has no top-level await: the entry module's
// statements after its imports are wrapped in an async function at bundle time.
import { NetplumbError } from '../../lib/errors.js';
import type { NetplumbErrorOptions } from '../../lib/errors.js';
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import type { Plugin } from 'esbuild';

const run = promisify(execFile);
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

export class SeaBuildError extends NetplumbError {
  override readonly name = 'SeaBuildError';
  constructor(message: string, options?: NetplumbErrorOptions) {
    super('SEA_BUILD_FAILED', message, options);
  }
}

/**
 * Moves everything after the import block of `source` into an async IIFE, so a composition root
 * written with top-level await bundles as CommonJS. Exported for its test.
 */
export function wrapTopLevelAwait(source: string): string {
  const importRe = /^import[\s\S]*?from\s+['"][^'"]+['"];?\s*$|^import\s+['"][^'"]+['"];?\s*$/gm;
  let end = 0;
  for (const m of source.matchAll(importRe)) end = m.index + m[0].length;
  const head = source.slice(0, end);
  const body = source.slice(end);
  if (/^export\s/m.test(body))
    throw new SeaBuildError('the SEA entry must not export anything after its imports');
  return `${head}\nvoid (async () => {\n${body}\n})().catch((err: unknown) => {\n  process.stderr.write(String(err instanceof Error ? (err.stack ?? err.message) : err) + '\\n');\n  process.exitCode = 1;\n});\n`;
}

function wrapEntry(entryFile: string): Plugin {
  return {
    name: 'netplumb-wrap-tla',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, async (args) => {
        if (path.resolve(args.path) !== path.resolve(entryFile)) return undefined;
        return { contents: wrapTopLevelAwait(await readFile(args.path, 'utf8')), loader: 'ts' };
      });
    },
  };
}

export interface SeaOptions {
  /** Project root (holds node_modules/postject). */
  readonly root: string;
  /** TypeScript entry, e.g. bin/netplumb-cni.ts. */
  readonly entry: string;
  readonly out: string;
}

/** Builds one SEA executable at `out` (atomically). Returns its size in bytes. */
export async function buildSea(o: SeaOptions): Promise<number> {
  const work = `${o.out}.work`;
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  try {
    const bundle = path.join(work, 'main.cjs');
    await build({
      entryPoints: [path.join(o.root, o.entry)],
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      outfile: bundle,
      plugins: [wrapEntry(path.join(o.root, o.entry))],
      logLevel: 'error',
      // A smaller script to read and deserialize at each start (VERSION: 2.3 -> 1.2 MB). Names kept:
      // pino's error serializer logs err.constructor.name.
      minify: true,
      keepNames: true,
      // import.meta.url is only used to find files next to the sources; a SEA has none.
      define: { 'import.meta.url': '"file:///netplumb-sea/main.cjs"' },
    });
    const blob = path.join(work, 'sea.blob');
    const config = path.join(work, 'sea-config.json');
    await writeFile(
      config,
      JSON.stringify({
        main: bundle,
        output: blob,
        disableExperimentalSEAWarning: true,
        // V8's code cache of the bundle, made at build time: the executable skips compiling it at
        // each start (the CNI runtime starts one per call).
        useCodeCache: true,
      }),
    );
    await run(process.execPath, ['--experimental-sea-config', config]);
    const exe = path.join(work, 'exe');
    await copyFile(process.execPath, exe);
    await chmod(exe, 0o755);
    await run(process.execPath, [
      path.join(o.root, 'node_modules', 'postject', 'dist', 'cli.js'),
      exe,
      'NODE_SEA_BLOB',
      blob,
      '--sentinel-fuse',
      SEA_FUSE,
    ]);
    await mkdir(path.dirname(o.out), { recursive: true });
    await rename(exe, o.out);
    return (await readFile(o.out)).length;
  } catch (err) {
    throw new SeaBuildError(
      `cannot build the single-executable ${o.out} from ${o.entry}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
