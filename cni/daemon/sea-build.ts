// Builds self-contained host executables (Node.js single-executable applications) for hosts that
// have no Node.js: bin/netplumb-cni.ts bundled by esbuild into one CommonJS script, turned into a
// SEA blob by `node --experimental-sea-config`, injected into a copy of this node binary by postject.
// Node 20's SEA runs CommonJS only, and CommonJS has no top-level await: the entry module's
// statements after its imports are wrapped in an async function at bundle time.
// Each module the entry itself imports dynamically (netplumb-cni: the plugin, which VERSION does not
// need) is bundled apart and stored as a SEA asset with its own V8 code cache, made at build time
// after running the module's top level (so the functions its start-up runs are in the cache too);
// it is read and compiled only when the entry imports it. The executable's main script stays small.
import { NetplumbError } from '../../lib/errors.js';
import type { NetplumbErrorOptions } from '../../lib/errors.js';
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import type { BuildOptions, Plugin } from 'esbuild';

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

// The asset is compiled inside this wrapper, at build time (for the cache) and at run time alike:
// V8 accepts a code cache only for the same source.
const ASSET_HEAD = '(function (exports, require, module) {';
const ASSET_TAIL = '\n})';

/**
 * The statements that compile asset `key` with its code cache and run it as a CommonJS module into
 * `m` (a rejected cache is said on stderr: the asset is then compiled, slower but correct).
 */
function runAsset(key: string): string[] {
  return [
    "const { getAsset } = require('node:sea');",
    "const { Script } = require('node:vm');",
    `const source = ${JSON.stringify(ASSET_HEAD)} + getAsset('${key}.cjs', 'utf8') + ${JSON.stringify(ASSET_TAIL)};`,
    `const script = new Script(source, { filename: '${key}.cjs', cachedData: Buffer.from(getAsset('${key}.cache')) });`,
    `if (script.cachedDataRejected === true) process.stderr.write('netplumb: the code cache of ${key}.cjs was rejected: compiling it\\n');`,
    'const m = { exports: {} };',
    'script.runInThisContext()(m.exports, require, m);',
  ];
}

/** A lazily loaded module of the entry, bundled as a SEA asset. */
interface SeaAsset {
  /** The .ts file the entry imports dynamically, or for a LAZY_PACKAGES asset its package name. */
  readonly file: string;
  /** Asset keys of its bundle and of its code cache. */
  readonly key: string;
  /** A LAZY_PACKAGES asset: the package's own bundle (built from `contents`, without lazyPackages()). */
  readonly contents?: string;
}

/**
 * Modules imported dynamically deeper in the graph that get an asset of their own too: the
 * PodResources client (grpc-js and protobufjs, ~450 KB of the plugin's bundle) is needed only by a
 * pod that asks for a device, so the other calls do not read and deserialize it.
 */
const SEPARATE_ASSETS = ['cni/meta/podresources.ts'];

/**
 * The entry's own dynamic imports of project files (and SEPARATE_ASSETS) become SEA assets: the import resolves to a
 * small module that compiles the asset (with its code cache) and runs it as a CommonJS module.
 */
function assetImports(entryFile: string, assets: SeaAsset[]): Plugin {
  return {
    name: 'netplumb-sea-assets',
    setup(b) {
      b.onResolve({ filter: /^\.\.?\// }, (args) => {
        if (args.kind !== 'dynamic-import') return undefined;
        const file = path.resolve(args.resolveDir, args.path.replace(/\.js$/, '.ts'));
        const fromEntry = path.resolve(args.importer) === path.resolve(entryFile);
        if (!fromEntry && !SEPARATE_ASSETS.some((f) => file.endsWith(`${path.sep}${f}`))) return undefined;
        let asset = assets.find((a) => a.file === file);
        if (asset === undefined) {
          asset = { file, key: `lazy${String(assets.length)}` };
          assets.push(asset);
        }
        return { path: asset.key, namespace: 'netplumb-sea-asset' };
      });
      b.onLoad({ filter: /.*/, namespace: 'netplumb-sea-asset' }, (args) => ({
        loader: 'js',
        contents: [...runAsset(args.path), 'module.exports = m.exports;'].join('\n'),
      }));
    },
  };
}

/**
 * Packages that the bundles importing them statically get as a stand-in: an object with one getter
 * per export that loads the package's own asset (synchronously, as require would) on first access.
 * yaml is ~130 KB of the plugin's ~290 KB bundle, and a call reaches it only for a kubeconfig that
 * kube-rest's own reader leaves to it (cni/meta/kubeconfig-text.ts reads the shape kubectl writes):
 * the other calls neither read its code nor run its module. The value is the code its asset's code
 * cache is warmed with (run at build time against the package's exports, `pkg`).
 */
const LAZY_PACKAGES: Record<string, string> = {
  yaml: `pkg.parse(${JSON.stringify(
    [
      'apiVersion: v1',
      'clusters:',
      "  - {name: c, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}",
      'users: [{name: u, user: {token: "t"}}]',
      'contexts:',
      '- name: x',
      '  context: &ctx',
      '    cluster: c # the only cluster',
      '    user: u',
      'current-context: x',
      'preferences: {}',
      '',
    ].join('\n'),
  )})`,
};

/** The asset key of a LAZY_PACKAGES package. */
const packageKey = (name: string): string => `pkg-${name.replace(/[^a-z0-9]+/gi, '-')}`;

/** The stand-in module of a lazy package (see LAZY_PACKAGES), with a getter for each of `names`. */
function lazyPackageModule(name: string, names: readonly string[]): string {
  const key = packageKey(name);
  return [
    'let loaded;',
    'function load() {',
    '  if (loaded === undefined) {',
    ...runAsset(key).map((line) => `    ${line}`),
    '    loaded = m.exports;',
    '  }',
    '  return loaded;',
    '}',
    `for (const name of ${JSON.stringify(names)}) Object.defineProperty(exports, name, { enumerable: true, get: () => load()[name] });`,
  ].join('\n');
}

/** Imports of a LAZY_PACKAGES package resolve to its stand-in, and the package becomes an asset. */
function lazyPackages(root: string, assets: SeaAsset[]): Plugin {
  const names = Object.keys(LAZY_PACKAGES);
  const filter = new RegExp(`^(${names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})$`);
  return {
    name: 'netplumb-lazy-packages',
    setup(b) {
      b.onResolve({ filter }, (args) => {
        if (!assets.some((a) => a.file === args.path)) {
          assets.push({
            file: args.path,
            key: packageKey(args.path),
            contents: [
              `const pkg = require(${JSON.stringify(args.path)});`,
              'module.exports = { ...pkg,',
              `  warmUpCodeCache() {\n${LAZY_PACKAGES[args.path] ?? ''}\n  },`,
              '};',
            ].join('\n'),
          });
        }
        return { path: args.path, namespace: 'netplumb-lazy-package' };
      });
      b.onLoad({ filter: /.*/, namespace: 'netplumb-lazy-package' }, (args) => {
        const exported = Object.keys(createRequire(path.join(root, 'package.json'))(args.path) as object);
        return { loader: 'js', contents: lazyPackageModule(args.path, exported) };
      });
    },
  };
}

// sonic-boom and thread-stream (pino's file and worker streams) load node:assert for one
// `assert(condition, message)` each; node:assert costs a few ms at every start (its error formatting,
// and it creates process.stderr). The executable's bundles give them this one function instead.
const LIGHT_ASSERT = [
  'module.exports = function assert(value, message) {',
  "  if (!value) throw new Error(message === undefined ? 'assertion failed' : String(message));",
  '};',
].join('\n');

function lightAssert(): Plugin {
  return {
    name: 'netplumb-light-assert',
    setup(b) {
      b.onResolve({ filter: /^(node:)?assert$/ }, (args) =>
        /[\\/]node_modules[\\/](sonic-boom|thread-stream)[\\/]/.test(args.importer)
          ? { path: 'assert', namespace: 'netplumb-light-assert' }
          : undefined,
      );
      b.onLoad({ filter: /.*/, namespace: 'netplumb-light-assert' }, () => ({
        loader: 'js',
        contents: LIGHT_ASSERT,
      }));
    },
  };
}

// pino loads its worker-thread transports' machinery at start: node:module (createRequire),
// node:worker_threads (isMainThread) and thread-stream, ~3 ms of every start of the executable
// (its init 4-5 ms -> 1.3-1.8 ms without them). The executable logs to fds and files only
// (pino.destination, pino.multistream), never through a transport: its bundles get stubs, and a
// transport asked for anyway fails with this message instead of half-working.
const NO_TRANSPORT = 'pino transports are not available in the netplumb-cni executable';
const PINO_STUBS: Record<string, string> = {
  module: `exports.createRequire = () => { throw new Error(${JSON.stringify(NO_TRANSPORT)}); };`,
  worker_threads: 'exports.isMainThread = true;',
  'thread-stream': `module.exports = function ThreadStream() { throw new Error(${JSON.stringify(NO_TRANSPORT)}); };`,
};

function pinoWithoutTransports(): Plugin {
  return {
    name: 'netplumb-pino-without-transports',
    setup(b) {
      b.onResolve({ filter: /^(node:)?(module|worker_threads)$|^thread-stream$/ }, (args) =>
        /[\\/]node_modules[\\/]pino[\\/]/.test(args.importer)
          ? { path: args.path.replace(/^node:/, ''), namespace: 'netplumb-pino-stub' }
          : undefined,
      );
      b.onLoad({ filter: /.*/, namespace: 'netplumb-pino-stub' }, (args) => ({
        loader: 'js',
        contents: PINO_STUBS[args.path] ?? '',
      }));
    },
  };
}

// Run by `node -e` at build time: compiles the asset as the executable will, runs its top level,
// then its warmUpCodeCache export when it has one (a call against fakes: V8 compiles functions on
// their first call, and the cache then holds those a real call runs), then saves the code cache.
const MAKE_CODE_CACHE = `
const fs = require('node:fs');
const { Script } = require('node:vm');
const [head, tail, file, cache, filename] = process.argv.slice(1);
const script = new Script(head + fs.readFileSync(file, 'utf8') + tail, { filename });
const m = { exports: {} };
script.runInThisContext()(m.exports, require, m);
Promise.resolve(typeof m.exports.warmUpCodeCache === 'function' ? m.exports.warmUpCodeCache() : undefined).then(
  () => fs.writeFileSync(cache, script.createCachedData()),
  (err) => {
    process.stderr.write(String(err && err.stack ? err.stack : err) + '\\n');
    process.exitCode = 1;
  },
);
`;

const BUNDLE: BuildOptions = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  logLevel: 'error',
  // Less to read and compile at each start. Names kept: pino's error serializer logs
  // err.constructor.name.
  minify: true,
  keepNames: true,
  // import.meta.url is only used to find files next to the sources; a SEA has none.
  define: { 'import.meta.url': '"file:///netplumb-sea/main.cjs"' },
};

/** Bundles each asset and makes its code cache; returns the sea-config `assets` map. */
async function buildAssets(
  root: string,
  work: string,
  entry: string,
  assets: SeaAsset[],
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  // An asset's bundle may add assets (SEPARATE_ASSETS, LAZY_PACKAGES): the loop reaches them too.
  for (let i = 0; i < assets.length; i++) {
    const a = assets[i] as SeaAsset;
    const js = path.join(work, `${a.key}.cjs`);
    const cache = path.join(work, `${a.key}.cache`);
    await build({
      ...BUNDLE,
      ...(a.contents === undefined
        ? { entryPoints: [a.file] }
        : { stdin: { contents: a.contents, resolveDir: root, loader: 'js' } }),
      outfile: js,
      plugins: [
        assetImports(entry, assets),
        ...(a.contents === undefined ? [lazyPackages(root, assets)] : []),
        lightAssert(),
        pinoWithoutTransports(),
      ],
    });
    await run(process.execPath, ['-e', MAKE_CODE_CACHE, ASSET_HEAD, ASSET_TAIL, js, cache, `${a.key}.cjs`], {
      cwd: work,
    });
    out[`${a.key}.cjs`] = js;
    out[`${a.key}.cache`] = cache;
  }
  return out;
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
    const entry = path.join(o.root, o.entry);
    const assets: SeaAsset[] = [];
    await build({
      ...BUNDLE,
      entryPoints: [entry],
      outfile: bundle,
      plugins: [
        wrapEntry(entry),
        assetImports(entry, assets),
        lazyPackages(o.root, assets),
        lightAssert(),
        pinoWithoutTransports(),
      ],
    });
    const assetFiles = await buildAssets(o.root, work, entry, assets);
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
        assets: assetFiles,
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
