// The runtime side's port for running one plugin: `PluginRunner.run(type, req)`. The exec adapter
// finds `type` in binDirs + CNI_PATH (PluginLookup, cached in the daemon) and runs it as a child
// process (env, stdin, timeout) through a ProcessSpawner: Node's child_process in the CLI, the
// netplumb-spawner helper in the daemon. The in-process adapter calls CniPluginFn functions (the
// daemon and tests use it for our own plugins).
import { childProcessModule } from '../lib/lazy-builtins.js';
import { access, constants } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { CniError, CniErrorCode } from './errors.js';
import { isJsonObject } from '../lib/json.js';
import type { CniPluginFn, CniRequest, CniResponse } from './skel.js';

export interface PluginOutput extends CniResponse {
  /** What the plugin wrote to stderr (exec adapter only). */
  readonly stderr: string;
}

/** How one child process ended, with everything it wrote. */
export interface ProcessResult {
  /** Exit code, or null when it was killed by a signal. */
  readonly exitCode: number | null;
  readonly signal: number | null;
  /** Killed with SIGKILL because it outlived its timeout. */
  readonly timedOut: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Port: runs one executable (argv = [file, ...args]) with exactly `env`, writes `stdin`, collects stdout and
 * stderr until both are closed, SIGKILLs it at `timeoutMs`. Rejects only when it cannot start (the
 * error's `code` is the errno name, e.g. ENOENT). Adapters: Node's child_process (below) and the
 * daemon's netplumb-spawner helper (cni/daemon/spawner/client.ts), which does not fork the daemon.
 */
export interface ProcessSpawner {
  run(
    file: string,
    env: Readonly<Record<string, string>>,
    stdin: string,
    timeoutMs: number,
    args?: readonly string[],
  ): Promise<ProcessResult>;
}

export interface PluginRunner {
  /** Runs plugin `type`. Rejects only when it cannot run at all (not found, timeout, spawn error). */
  run(type: string, req: CniRequest): Promise<PluginOutput>;
}

export interface ExecRunnerOptions {
  /** Searched before the request's CNI_PATH (Multus `binDir`). */
  readonly binDirs: readonly string[];
  /** Environment the child inherits (its CNI_* variables are replaced by the request's). */
  readonly baseEnv?: Readonly<Record<string, string | undefined>>;
  readonly timeoutMs?: number;
  /** How the plugin process is started (default: Node's child_process). */
  readonly spawner?: ProcessSpawner;
  /** Where plugins are found (default: searched on every call, no cache). */
  readonly lookup?: PluginLookup;
}

export const DEFAULT_PLUGIN_TIMEOUT_MS = 60_000;

/**
 * Finds an executable `type` in `dirs` (the first directory that has it wins); throws CniError
 * naming every directory searched. The directories are checked at once, not one after another: each
 * check is a thread-pool round trip that waits for the event loop, and a busy loop (a thin call
 * loading its API client) would otherwise delay a search of a long PATH by one turn per directory.
 */
export async function findPlugin(type: string, dirs: readonly string[]): Promise<string> {
  if (type === '' || type.includes('/')) {
    throw new CniError(CniErrorCode.InvalidNetworkConfig, `invalid plugin type "${type}"`);
  }
  const files = dirs.map((dir) => path.join(dir, type));
  const found = await Promise.all(
    files.map((file) =>
      access(file, constants.X_OK).then(
        () => true,
        () => false,
      ),
    ),
  );
  const first = files.find((_, i) => found[i] === true);
  if (first !== undefined) return first;
  throw new CniError(
    CniErrorCode.InvalidNetworkConfig,
    `failed to find plugin "${type}" in path [${dirs.join(' ')}] (install it there or fix binDir/CNI_PATH)`,
  );
}

/** Plugin path resolution; `forget` drops a cached answer that turned out stale. */
export interface PluginLookup {
  find(type: string, dirs: readonly string[]): Promise<string>;
  forget(type: string, dirs: readonly string[]): void;
}

const UNCACHED: PluginLookup = { find: findPlugin, forget: () => undefined };

export interface PluginLookupOptions {
  /** A found path is trusted this long before it is searched again (default 60 s). */
  readonly ttlMs?: number;
  /** Monotonic milliseconds (default performance.now). */
  readonly now?: () => number;
  /** Most (type, dirs) answers kept (default 256). */
  readonly maxEntries?: number;
}

/**
 * Caches where each plugin was found, so a daemon does not stat every directory for every delegate
 * call. A plugin removed since is found again at once (the spawn fails, the runner forgets and
 * retries); one installed into an earlier directory is seen within `ttlMs`.
 */
export function createPluginLookup(opts: PluginLookupOptions = {}): PluginLookup {
  const ttl = opts.ttlMs ?? 60_000;
  const now = opts.now ?? (() => performance.now());
  const max = opts.maxEntries ?? 256;
  const cache = new Map<string, { file: string; at: number }>();
  const keyOf = (type: string, dirs: readonly string[]): string => `${type}\0${dirs.join('\0')}`;
  return {
    async find(type, dirs) {
      const key = keyOf(type, dirs);
      const hit = cache.get(key);
      if (hit !== undefined && now() - hit.at < ttl) return hit.file;
      const file = await findPlugin(type, dirs);
      if (cache.size >= max) cache.delete(cache.keys().next().value ?? '');
      cache.set(key, { file, at: now() });
      return file;
    },
    forget(type, dirs) {
      cache.delete(keyOf(type, dirs));
    },
  };
}

/** The inherited part of every child's env: `base` without its CNI_* variables (read once per runner). */
function inheritedEnv(base: Readonly<Record<string, string | undefined>>): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && !k.startsWith('CNI_')) out[k] = v;
  return out;
}

function childEnv(
  inherited: Readonly<Record<string, string>>,
  req: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const out: Record<string, string> = { ...inherited };
  for (const k in req) {
    const v = req[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** The ProcessSpawner over Node's child_process (forks this process: fine for a short-lived CLI). */
export const childProcessSpawner: ProcessSpawner = {
  run(file, env, stdin, timeoutMs, args = []) {
    return new Promise<ProcessResult>((resolve, reject) => {
      const child = childProcessModule().spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const errOut: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => errOut.push(c));
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({
          exitCode: code,
          signal: signal === null ? null : osConstants.signals[signal],
          timedOut,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(errOut).toString('utf8'),
        });
      });
      // A plugin that exits without reading stdin makes the write fail with EPIPE: its exit code tells.
      child.stdin.on('error', () => undefined);
      child.stdin.end(stdin);
    });
  },
};

/** A spawn that failed because the file is gone or not executable: worth one more lookup. */
function isStalePath(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown } | undefined;
  return ['ENOENT', 'EACCES', 'ENOTDIR'].some((c) => e?.code === c || e?.errno === c);
}

export function createExecRunner(opts: ExecRunnerOptions): PluginRunner {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PLUGIN_TIMEOUT_MS;
  // Snapshot: the runner is long-lived in the daemon, and enumerating process.env per call is slow.
  const inherited = inheritedEnv(opts.baseEnv ?? {});
  const spawner = opts.spawner ?? childProcessSpawner;
  const lookup = opts.lookup ?? UNCACHED;
  async function start(file: string, req: CniRequest): Promise<ProcessResult> {
    try {
      return await spawner.run(file, childEnv(inherited, req.env), req.stdin, timeoutMs);
    } catch (err) {
      throw new CniError(CniErrorCode.Internal, `failed to run plugin ${file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  return {
    async run(type, req) {
      const cniPath = (req.env['CNI_PATH'] ?? '').split(':').filter((p) => p !== '');
      const dirs = [...opts.binDirs, ...cniPath];
      let file = await lookup.find(type, dirs);
      let result: ProcessResult;
      try {
        result = await start(file, req);
      } catch (err) {
        if (lookup === UNCACHED || !isStalePath((err as Error).cause)) throw err;
        lookup.forget(type, dirs);
        file = await lookup.find(type, dirs);
        result = await start(file, req);
      }
      if (result.timedOut) {
        throw new CniError(
          CniErrorCode.Internal,
          `plugin ${file} timed out after ${timeoutMs} ms and was killed`,
          { details: result.stderr },
        );
      }
      return {
        exitCode: result.exitCode ?? (result.signal === null ? 1 : 128),
        stdout: result.stdout,
        stderr: result.stderr,
      };
    },
  };
}

/** Runs plugins in this process; types not in `plugins` go to `fallback` (e.g. the exec runner). */
export function createInProcessRunner(
  plugins: Readonly<Record<string, CniPluginFn>>,
  fallback?: PluginRunner,
): PluginRunner {
  return {
    async run(type, req) {
      const fn = plugins[type];
      if (fn !== undefined) return { ...(await fn(req)), stderr: '' };
      if (fallback !== undefined) return fallback.run(type, req);
      throw new CniError(CniErrorCode.InvalidNetworkConfig, `no in-process plugin "${type}"`);
    },
  };
}

/**
 * Interprets a plugin's output: exit 0 → stdout; otherwise the error JSON it printed (stdout, or
 * stderr for plugins that follow the spec prose) becomes a CniError with the plugin's code.
 */
export function checkPluginOutput(type: string, out: PluginOutput): string {
  if (out.exitCode === 0) return out.stdout;
  for (const text of [out.stdout, out.stderr]) {
    try {
      const v: unknown = JSON.parse(text);
      if (isJsonObject(v) && typeof v['code'] === 'number' && typeof v['msg'] === 'string') {
        const details = typeof v['details'] === 'string' ? v['details'] : undefined;
        return throwPluginError(type, v['code'], v['msg'], details);
      }
    } catch (err) {
      if (err instanceof CniError) throw err;
    }
  }
  const text = (out.stderr.trim() || out.stdout.trim() || 'no output').slice(0, 2000);
  throw new CniError(CniErrorCode.Internal, `plugin type="${type}" failed (exit ${out.exitCode}): ${text}`);
}

function throwPluginError(type: string, code: number, msg: string, details: string | undefined): never {
  throw new CniError(code, `plugin type="${type}" failed (${code}): ${msg}`, { details });
}
