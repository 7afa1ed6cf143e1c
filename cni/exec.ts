// The runtime side's port for running one plugin: `PluginRunner.run(type, req)`. The exec adapter
// finds `type` in binDirs + CNI_PATH and runs it as a child process (env, stdin, timeout); the
// in-process adapter calls CniPluginFn functions (the daemon and tests use it for our own plugins).
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { CniError, CniErrorCode } from './errors.js';
import { isJsonObject } from '../lib/json.js';
import type { CniPluginFn, CniRequest, CniResponse } from './skel.js';

export interface PluginOutput extends CniResponse {
  /** What the plugin wrote to stderr (exec adapter only). */
  readonly stderr: string;
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
}

export const DEFAULT_PLUGIN_TIMEOUT_MS = 60_000;

/** Finds an executable `type` in `dirs`; throws CniError naming every directory searched. */
export async function findPlugin(type: string, dirs: readonly string[]): Promise<string> {
  if (type === '' || type.includes('/')) {
    throw new CniError(CniErrorCode.InvalidNetworkConfig, `invalid plugin type "${type}"`);
  }
  for (const dir of dirs) {
    const file = path.join(dir, type);
    try {
      await access(file, constants.X_OK);
      return file;
    } catch {
      // try the next directory
    }
  }
  throw new CniError(
    CniErrorCode.InvalidNetworkConfig,
    `failed to find plugin "${type}" in path [${dirs.join(' ')}] (install it there or fix binDir/CNI_PATH)`,
  );
}

function childEnv(
  base: Readonly<Record<string, string | undefined>>,
  req: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && !k.startsWith('CNI_')) out[k] = v;
  for (const [k, v] of Object.entries(req)) if (v !== undefined) out[k] = v;
  return out;
}

export function createExecRunner(opts: ExecRunnerOptions): PluginRunner {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PLUGIN_TIMEOUT_MS;
  const baseEnv = opts.baseEnv ?? {};
  return {
    async run(type, req) {
      const cniPath = (req.env['CNI_PATH'] ?? '').split(':').filter((p) => p !== '');
      const file = await findPlugin(type, [...opts.binDirs, ...cniPath]);
      return new Promise<PluginOutput>((resolve, reject) => {
        const child = spawn(file, [], { env: childEnv(baseEnv, req.env), stdio: ['pipe', 'pipe', 'pipe'] });
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
          reject(
            new CniError(CniErrorCode.Internal, `failed to run plugin ${file}: ${err.message}`, {
              cause: err,
            }),
          );
        });
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          const stderr = Buffer.concat(errOut).toString('utf8');
          if (timedOut) {
            reject(
              new CniError(
                CniErrorCode.Internal,
                `plugin ${file} timed out after ${timeoutMs} ms and was killed`,
                {
                  details: stderr,
                },
              ),
            );
            return;
          }
          resolve({
            exitCode: code ?? (signal === null ? 1 : 128),
            stdout: Buffer.concat(out).toString('utf8'),
            stderr,
          });
        });
        // A plugin that exits without reading stdin makes the write fail with EPIPE: its exit code tells.
        child.stdin.on('error', () => undefined);
        child.stdin.end(req.stdin);
      });
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
