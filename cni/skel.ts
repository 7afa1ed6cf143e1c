// The plugin side of the spec: turns an in-process CniRequest (env + stdin) into a CniResponse
// (exit code + stdout), the way Go's skel does for an executable. Errors become the spec's error
// JSON on stdout with exit code 1; VERSION is answered here; results are printed in the config's
// cniVersion. `runPluginMain` wires a plugin to process.env/stdin/stdout for an executable.
import { readSync, writeSync } from 'node:fs';
import { isatty } from 'node:tty';
import { aboutOutsideCniCall, highestVersion, versionAnswer } from './about.js';
import { CniError, CniErrorCode } from './errors.js';
import { CniCommand, parseCniEnv } from './env.js';
import type { CniArg, CniEnv } from './env.js';
import { isJsonObject } from '../lib/json.js';
import type { JsonObject } from '../lib/json.js';
import { parseJsonObject } from './network-config.js';
import { decodeResult, encodeResult, printJson } from './result.js';
import type { CniResult } from './result.js';
import { DEFAULT_CONFIG_VERSION, versionAtLeast } from './version.js';

export interface CniRequest {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdin: string;
}

export interface CniResponse {
  readonly exitCode: number;
  readonly stdout: string;
}

export type CniPluginFn = (req: CniRequest) => Promise<CniResponse>;

/** What every verb handler gets. */
export interface CallBase {
  /** The config's `cniVersion` (validated against supportedVersions). */
  readonly cniVersion: string;
  /** stdin, parsed; raw JSON, nothing dropped. */
  readonly config: JsonObject;
  readonly stdin: string;
  readonly args: readonly CniArg[];
  readonly path: readonly string[];
  /** The whole request environment (for plugins that forward it, e.g. to IPAM). */
  readonly env: Readonly<Record<string, string | undefined>>;
}

export interface DelCall extends CallBase {
  readonly containerId: string;
  readonly ifname: string;
  readonly netns: string | undefined;
  /** `prevResult` from the config, decoded (0.4.0+ runtimes send the ADD result on DEL). */
  readonly prevResult: CniResult | undefined;
}

export interface AddCall extends DelCall {
  readonly netns: string;
}

export type CheckCall = AddCall;

export interface Attachment {
  readonly containerId: string;
  readonly ifname: string;
}

export interface GcCall extends CallBase {
  /** `cni.dev/valid-attachments` (or the 1.1.0 tag's `cni.dev/attachments`). */
  readonly validAttachments: readonly Attachment[];
}

export type StatusCall = CallBase;

export interface PluginDefinition {
  readonly supportedVersions: readonly string[];
  add(call: AddCall): Promise<CniResult>;
  del(call: DelCall): Promise<void>;
  check(call: CheckCall): Promise<void>;
  /** Absent: always ready. */
  status?(call: StatusCall): Promise<void>;
  /** Absent: nothing to collect. */
  gc?(call: GcCall): Promise<void>;
}

function ok(stdout = ''): CniResponse {
  return { exitCode: 0, stdout };
}

function fail(err: CniError, cniVersion: string): CniResponse {
  return { exitCode: 1, stdout: printJson(err.toJson(cniVersion)) };
}

function readAttachments(config: JsonObject): Attachment[] {
  const raw = config['cni.dev/valid-attachments'] ?? config['cni.dev/attachments'];
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    throw new CniError(CniErrorCode.DecodingFailure, '"cni.dev/valid-attachments" must be a list');
  }
  return raw.map((a, i) => {
    if (!isJsonObject(a) || typeof a['containerID'] !== 'string' || typeof a['ifname'] !== 'string') {
      throw new CniError(
        CniErrorCode.DecodingFailure,
        `"cni.dev/valid-attachments"[${i}] must be {"containerID": string, "ifname": string}`,
      );
    }
    return { containerId: a['containerID'], ifname: a['ifname'] };
  });
}

async function dispatch(def: PluginDefinition, env: CniEnv, req: CniRequest): Promise<CniResponse> {
  const config = parseJsonObject(req.stdin, 'network configuration on stdin');
  const declared = config['cniVersion'];
  const cniVersion = typeof declared === 'string' && declared !== '' ? declared : DEFAULT_CONFIG_VERSION;
  if (!def.supportedVersions.includes(cniVersion)) {
    throw new CniError(
      CniErrorCode.IncompatibleVersion,
      `incompatible CNI versions: config is "${cniVersion}", plugin supports [${def.supportedVersions.join(', ')}]`,
    );
  }
  const base: CallBase = {
    cniVersion,
    config,
    stdin: req.stdin,
    args: env.args,
    path: env.path,
    env: req.env,
  };
  const prevRaw = config['prevResult'];
  const prevResult =
    prevRaw === undefined || prevRaw === null ? undefined : decodeResult(prevRaw, cniVersion);
  const attachment = { ...base, containerId: env.containerId, ifname: env.ifname, prevResult };
  switch (env.command) {
    case CniCommand.Add: {
      const result = await def.add({ ...attachment, netns: env.netns ?? '' });
      return ok(printJson(encodeResult(result, cniVersion)));
    }
    case CniCommand.Del:
      await def.del({ ...attachment, netns: env.netns });
      return ok();
    case CniCommand.Check:
      if (!versionAtLeast(cniVersion, '0.4.0')) {
        throw new CniError(
          CniErrorCode.IncompatibleVersion,
          `config version "${cniVersion}" does not allow CHECK (needs 0.4.0+)`,
        );
      }
      await def.check({ ...attachment, netns: env.netns ?? '' });
      return ok();
    case CniCommand.Status:
      if (!versionAtLeast(cniVersion, '1.1.0')) {
        throw new CniError(
          CniErrorCode.IncompatibleVersion,
          `config version "${cniVersion}" does not allow STATUS (needs 1.1.0)`,
        );
      }
      if (def.status !== undefined) await def.status(base);
      return ok();
    case CniCommand.Gc:
      if (!versionAtLeast(cniVersion, '1.1.0')) {
        throw new CniError(
          CniErrorCode.IncompatibleVersion,
          `config version "${cniVersion}" does not allow GC (needs 1.1.0)`,
        );
      }
      if (def.gc !== undefined) await def.gc({ ...base, validAttachments: readAttachments(config) });
      return ok();
    case CniCommand.Version:
      // handled before dispatch
      return ok();
  }
}

function requestVersion(stdin: string, fallback: string): string {
  try {
    const v: unknown = JSON.parse(stdin);
    if (isJsonObject(v) && typeof v['cniVersion'] === 'string' && v['cniVersion'] !== '')
      return v['cniVersion'];
  } catch {
    // not JSON: the error itself will say so
  }
  return fallback;
}

/**
 * Builds the in-process entry of a plugin. The returned function never rejects: every failure
 * becomes `{exitCode: 1, stdout: <error JSON>}`.
 */
export function createPlugin(def: PluginDefinition): CniPluginFn {
  const newest = highestVersion(def.supportedVersions);
  return async (req) => {
    let env: CniEnv;
    try {
      env = parseCniEnv(req.env);
    } catch (err) {
      return fail(CniError.from(err), requestVersion(req.stdin, newest));
    }
    if (env.command === CniCommand.Version) {
      return ok(versionAnswer(def.supportedVersions));
    }
    try {
      return await dispatch(def, env, req);
    } catch (err) {
      return fail(CniError.from(err), requestVersion(req.stdin, newest));
    }
  };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString('utf8');
}

const errnoCode = (err: unknown): unknown => (err as NodeJS.ErrnoException).code;

/**
 * All of stdin, read from fd 0 with blocking reads: process.stdin would build a stream (and the
 * net/tty machinery behind it) for the runtime's pipe, ~5 ms of every CNI call. A TTY gives ''
 * (nothing is piped in). A non-blocking stdin (EAGAIN) keeps what was read and reads the rest
 * through the stream.
 */
async function readStdin(): Promise<string> {
  if (isatty(0)) return '';
  const chunks: Buffer[] = [];
  for (;;) {
    const buf = Buffer.allocUnsafe(64 * 1024);
    let n: number;
    try {
      n = readSync(0, buf, 0, buf.length, null);
    } catch (err) {
      if (errnoCode(err) !== 'EAGAIN') throw err;
      chunks.push(Buffer.from(await readAll(process.stdin)));
      break;
    }
    if (n === 0) break;
    chunks.push(buf.subarray(0, n));
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Writes all of `text` to fd 1 (blocking, no process.stdout stream); a non-blocking stdout that is full (EAGAIN) gets the rest through the stream. */
async function writeStdout(text: string): Promise<void> {
  const buf = Buffer.from(text);
  let off = 0;
  try {
    while (off < buf.length) off += writeSync(1, buf, off);
  } catch (err) {
    // Any other error: the runtime is no longer reading our answer, and there is nobody to tell.
    if (errnoCode(err) !== 'EAGAIN') return;
    await new Promise<void>((resolve) => {
      process.stdout.write(buf.subarray(off), () => {
        resolve();
      });
    });
  }
}

/** The request of this process: process.env and all of stdin. */
export async function readProcessRequest(): Promise<CniRequest> {
  return { env: process.env, stdin: await readStdin() };
}

/** Prints the response on stdout and sets the exit code. */
export async function writeProcessResponse(res: CniResponse): Promise<void> {
  if (res.stdout !== '') await writeStdout(res.stdout.endsWith('\n') ? res.stdout : `${res.stdout}\n`);
  process.exitCode = res.exitCode;
}

/** Executable entry: env from process.env, stdin, stdout, exit code. */
export async function runPluginMain(plugin: CniPluginFn, executable: string): Promise<void> {
  if (aboutOutsideCniCall(executable, process.argv.slice(2), process.env)) return;
  await writeProcessResponse(await plugin(await readProcessRequest()));
}
