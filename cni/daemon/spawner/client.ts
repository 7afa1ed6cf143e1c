// The daemon's adapter of the ProcessSpawner port (cni/exec.ts) over netplumb-spawner, a small
// long-lived C process that posix_spawns each delegate (netplumb-spawner.c). The daemon never
// forks itself per delegate: the helper is started once (restarted on the next call if it dies),
// each call is one framed request on its stdin, and stdout/stderr/exit come back as frames.
import { NetplumbError } from '../../../lib/errors.js';
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { CommandError } from '../../../lib/command.js';
import type { CommandRunner } from '../../../lib/command.js';
import type { PluginLookup, ProcessResult, ProcessSpawner } from '../../exec.js';

const T_STDOUT = 1;
const T_STDERR = 2;
const T_DONE = 3;
const T_SPAWN_ERROR = 4;
/** The Node-side guard beyond the helper's own deadline (the helper kills and reports first). */
const GUARD_MS = 5_000;
/** Largest request the helper accepts (netplumb-spawner.c MAX_REQUEST). */
const MAX_REQUEST = 64 << 20;

/** The helper could not run a plugin (`spawn-failed`, with its errno) or is gone (`spawner-gone`). */
export class SpawnerError extends NetplumbError {
  override readonly name = 'SpawnerError';
  /** errno name of a failed spawn (ENOENT, EACCES, ...). */
  readonly errno: string | undefined;
  constructor(code: 'spawn-failed' | 'spawner-gone', message: string, errno?: string) {
    super(code, message);
    this.errno = errno;
  }
}

interface Pending {
  readonly out: Buffer[];
  readonly err: Buffer[];
  readonly resolve: (r: ProcessResult) => void;
  readonly reject: (e: Error) => void;
  readonly guard: NodeJS.Timeout;
}

type Helper = ChildProcessByStdio<Writable, Readable, null>;

const ERRNO_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(constants.errno).map(([name, n]) => [n, name]),
);

/** Encodes one request frame (see netplumb-spawner.c); argv = [file, ...args]. */
export function encodeRequest(
  id: number,
  file: string,
  env: Readonly<Record<string, string>>,
  stdin: string,
  timeoutMs: number,
  args: readonly string[] = [],
): Buffer {
  let envText = '';
  for (const k in env) envText += `${k}=${env[k] ?? ''}\0`;
  let argText = '';
  for (const a of args) argText += `${a}\0`;
  const fileLen = Buffer.byteLength(file);
  const envLen = Buffer.byteLength(envText);
  const inLen = Buffer.byteLength(stdin);
  const argLen = Buffer.byteLength(argText);
  const frame = Buffer.allocUnsafe(28 + fileLen + envLen + inLen + argLen);
  frame.writeUInt32LE(frame.length - 4, 0);
  frame.writeUInt32LE(id, 4);
  frame.writeUInt32LE(Math.max(1, Math.min(0xffffffff, Math.ceil(timeoutMs))), 8);
  frame.writeUInt32LE(fileLen, 12);
  frame.writeUInt32LE(envLen, 16);
  frame.writeUInt32LE(inLen, 20);
  frame.writeUInt32LE(argLen, 24);
  let off = 28;
  off += frame.write(file, off);
  off += frame.write(envText, off);
  off += frame.write(stdin, off);
  frame.write(argText, off);
  return frame;
}

export interface SpawnerOptions {
  /** Path of the built netplumb-spawner executable. */
  readonly helper: string;
}

export interface HelperSpawner extends ProcessSpawner {
  /** pid of the running helper (undefined before the first call or after it died). */
  helperPid(): number | undefined;
  /** Closes the helper's stdin: it lets running children finish, then exits. */
  close(): Promise<void>;
}

export function createHelperSpawner(opts: SpawnerOptions): HelperSpawner {
  const pending = new Map<number, Pending>();
  let helper: Helper | undefined;
  let nextId = 1;
  let buf: Buffer = Buffer.alloc(0);

  function failAll(err: Error): void {
    for (const [id, p] of pending) {
      clearTimeout(p.guard);
      pending.delete(id);
      p.reject(err);
    }
  }

  function onFrame(frame: Buffer): void {
    const id = frame.readUInt32LE(0);
    const type = frame.readUInt8(4);
    const p = pending.get(id);
    if (p === undefined) return;
    if (type === T_STDOUT) p.out.push(frame.subarray(5));
    else if (type === T_STDERR) p.err.push(frame.subarray(5));
    else if (type === T_SPAWN_ERROR || type === T_DONE) {
      pending.delete(id);
      clearTimeout(p.guard);
      if (type === T_SPAWN_ERROR) {
        const errno = frame.readInt32LE(5);
        const code = ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
        p.reject(new SpawnerError('spawn-failed', `spawn failed: ${code}`, code));
        return;
      }
      const signaled = frame.readUInt8(5) === 1;
      const value = frame.readInt32LE(6);
      p.resolve({
        exitCode: signaled ? null : value,
        signal: signaled ? value : null,
        timedOut: frame.readUInt8(10) === 1,
        stdout: Buffer.concat(p.out).toString('utf8'),
        stderr: Buffer.concat(p.err).toString('utf8'),
      });
    }
  }

  function onData(chunk: Buffer): void {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    let off = 0;
    while (buf.length - off >= 4) {
      const len = buf.readUInt32LE(off);
      if (buf.length - off - 4 < len) break;
      onFrame(buf.subarray(off + 4, off + 4 + len));
      off += 4 + len;
    }
    buf = off === buf.length ? Buffer.alloc(0) : buf.subarray(off);
  }

  function start(): Helper {
    const h = spawn(opts.helper, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    buf = Buffer.alloc(0);
    h.stdout.on('data', onData);
    const gone = (why: string): void => {
      if (helper !== h) return;
      helper = undefined;
      failAll(new SpawnerError('spawner-gone', `netplumb-spawner ${opts.helper} ${why}`));
    };
    h.on('error', (err) => {
      gone(`cannot run: ${err.message}`);
    });
    h.on('exit', (code, signal) => {
      gone(`exited (${signal ?? String(code)})`);
    });
    h.stdin.on('error', () => undefined);
    return h;
  }

  return {
    run(file, env, stdin, timeoutMs, args) {
      helper ??= start();
      const h = helper;
      const id = nextId;
      nextId = nextId >= 0xfffffffe ? 1 : nextId + 1;
      const frame = encodeRequest(id, file, env, stdin, timeoutMs, args);
      if (frame.length - 4 > MAX_REQUEST) {
        return Promise.reject(
          new SpawnerError('spawn-failed', `request of ${frame.length} bytes is too large`, 'E2BIG'),
        );
      }
      return new Promise<ProcessResult>((resolve, reject) => {
        const guard = setTimeout(() => {
          pending.delete(id);
          reject(new SpawnerError('spawner-gone', `netplumb-spawner did not answer within ${timeoutMs} ms`));
        }, timeoutMs + GUARD_MS);
        guard.unref();
        pending.set(id, { out: [], err: [], resolve, reject, guard });
        h.stdin.write(frame);
      });
    },
    helperPid: () => helper?.pid,
    async close() {
      const h = helper;
      if (h === undefined) return;
      await new Promise<void>((resolve) => {
        h.once('exit', () => {
          resolve();
        });
        h.stdin.end();
      });
    },
  };
}

export interface SpawnerCommandOptions {
  /** Directories a bare program name is looked for in (default: this process's PATH). */
  readonly pathDirs?: readonly string[];
  /** Environment of the program (default: this process's, read once). */
  readonly env?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

/**
 * A CommandRunner (lib/command.ts) over the helper: the daemon's own nsenter/ip calls (the pod
 * netns check, default-route moves) start through netplumb-spawner like the delegates, instead of
 * execFile forking the daemon on its event loop. Same contract: CommandError on a non-zero exit.
 */
export function createSpawnerCommandRunner(
  spawner: ProcessSpawner,
  lookup: PluginLookup,
  opts: SpawnerCommandOptions = {},
): CommandRunner {
  const dirs = opts.pathDirs ?? (process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':');
  const env = opts.env ?? definedEnv(process.env);
  const timeout = opts.timeoutMs ?? 30_000;
  return async (argv, input) => {
    const [name, ...args] = argv;
    if (name === undefined) throw new CommandError(argv, null, 'empty argv');
    let file: string;
    try {
      file = name.includes('/') ? name : await lookup.find(name, dirs);
    } catch (err) {
      throw new CommandError(argv, null, (err as Error).message, { cause: err });
    }
    let r: ProcessResult;
    try {
      r = await spawner.run(file, env, input ?? '', timeout, args);
    } catch (err) {
      throw new CommandError(argv, null, (err as Error).message, { cause: err });
    }
    if (r.exitCode !== 0) {
      const why = r.timedOut ? `timed out after ${timeout} ms` : r.stderr;
      throw new CommandError(argv, r.exitCode, why);
    }
    return { stdout: r.stdout, stderr: r.stderr };
  };
}

/** The defined entries of an environment, as a plain object (process.env is slow to enumerate). */
export function definedEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}
