// The daemon's adapter of the ProcessSpawner port (cni/exec.ts) over netplumb-spawner, a small
// long-lived C process that starts each delegate with vfork + execve (netplumb-spawner.c). The daemon never
// forks itself per delegate: the helper is started once (restarted on the next call if it dies),
// each call is one framed request on its stdin, and stdout/stderr/exit come back as frames. The
// helper's first frame announces its protocol version; a helper that does not say this client's
// version (a stale build) is refused with an error that says how to rebuild it.
import { NetplumbError } from '../../../lib/errors.js';
import { childProcessModule } from '../../../lib/lazy-builtins.js';
import { fstatSync } from 'node:fs';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { CommandError } from '../../../lib/command.js';
import type { CommandRunner } from '../../../lib/command.js';
import type { PluginLookup, ProcessResult, ProcessSpawner } from '../../exec.js';

const T_STDOUT = 1;
const T_STDERR = 2;
const T_DONE = 3;
const T_SPAWN_ERROR = 4;
const T_HELLO = 5;
/** The frame format this client speaks (netplumb-spawner.c PROTOCOL_VERSION). */
export const PROTOCOL_VERSION = 2;
/** How long a new helper has to announce itself (it does so before reading anything). */
const HELLO_TIMEOUT_MS = 10_000;
/** The Node-side guard beyond the helper's own deadline (the helper kills and reports first). */
const GUARD_MS = 5_000;
/** Largest request the helper accepts (netplumb-spawner.c MAX_REQUEST). */
const MAX_REQUEST = 64 << 20;

/**
 * The helper could not run a plugin (`spawn-failed`, with its errno), is gone (`spawner-gone`) or
 * speaks another protocol than this client (`spawner-mismatch`: a stale build).
 */
export class SpawnerError extends NetplumbError {
  override readonly name = 'SpawnerError';
  /** errno name of a failed spawn (ENOENT, EACCES, ...). */
  readonly errno: string | undefined;
  constructor(code: 'spawn-failed' | 'spawner-gone' | 'spawner-mismatch', message: string, errno?: string) {
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

/** A running helper: a child this process spawned, or one the launcher started (inheritedHelper). */
interface Helper {
  readonly pid: number | undefined;
  readonly stdin: Writable;
  readonly stdout: Readable;
  kill(signal: NodeJS.Signals): void;
  /** Called when the helper cannot be used any more, with why (maybe twice: error, then exit). */
  onGone(cb: (why: string) => void): void;
  /** Resolves once the helper has exited (or closed its replies: it exits then). */
  exited(): Promise<void>;
}

function spawnedHelper(file: string, stderr: 'inherit' | 'ignore'): Helper {
  const child = childProcessModule().spawn(file, [], { stdio: ['pipe', 'pipe', stderr] });
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      resolve();
    });
  });
  return {
    pid: child.pid,
    stdin: child.stdin,
    stdout: child.stdout,
    kill: (signal) => child.kill(signal),
    onGone(cb) {
      child.on('error', (err) => {
        cb(`cannot run: ${err.message}`);
      });
      child.on('exit', (code, signal) => {
        cb(`exited (${signal ?? String(code)})`);
      });
    },
    exited: () => exited,
  };
}

/** The pipes of a helper another process started for this one (the `netplumb-cni` launcher). */
export interface InheritedHelper {
  /** This process's end of the helper's stdin. */
  readonly requestFd: number;
  /** This process's end of the helper's stdout. */
  readonly replyFd: number;
  readonly pid: number;
}

/**
 * The helper the launcher names in `NETPLUMB_SPAWNER_FDS` ("<requests fd>,<replies fd>,<pid>"),
 * or undefined when the value is missing or does not name two pipes.
 */
export function inheritedHelper(value: string | undefined): InheritedHelper | undefined {
  const m = /^(\d{1,7}),(\d{1,7}),(\d{1,10})$/.exec(value ?? '');
  if (m === null) return undefined;
  const [requestFd, replyFd, pid] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (requestFd < 3 || replyFd < 3 || requestFd === replyFd || pid < 2 || pid > 0x3fffffff) return undefined;
  try {
    if (!fstatSync(requestFd).isFIFO() || !fstatSync(replyFd).isFIFO()) return undefined;
  } catch {
    return undefined;
  }
  return { requestFd, replyFd, pid };
}

function adoptedHelper(h: InheritedHelper): Helper {
  const stdin = new Socket({ fd: h.requestFd, readable: false, writable: true });
  const stdout = new Socket({ fd: h.replyFd, readable: true, writable: false });
  const closed = new Promise<void>((resolve) => {
    stdout.once('close', () => {
      resolve();
    });
  });
  return {
    pid: h.pid,
    stdin,
    stdout,
    kill(signal) {
      try {
        process.kill(h.pid, signal);
      } catch {
        // already gone
      }
      stdin.destroy();
      stdout.destroy();
    },
    onGone(cb) {
      stdout.once('error', (err) => {
        cb(`replies failed: ${err.message}`);
      });
      stdout.once('close', () => {
        cb('closed its replies (exited)');
      });
    },
    exited: () => closed,
  };
}

/** The empty request (len 24, id 0) sent right after start; see start(). */
const PROBE: Buffer = Buffer.from(new Uint32Array([24, 0, 0, 0, 0, 0, 0]).buffer);

/** What to do about a helper that does not speak PROTOCOL_VERSION. */
function rebuildHint(helper: string): string {
  return `rebuild it from this source tree (npm run build:shim writes dist/spawner/netplumb-spawner) or point --spawner at a matching build: ${helper}`;
}

/** The protocol version a hello frame announces; undefined when the frame is not a hello. */
function helloVersion(frame: Buffer): number | undefined {
  const hello = frame.length >= 9 && frame.readUInt32LE(0) === 0 && frame.readUInt8(4) === T_HELLO;
  return hello ? frame.readUInt32LE(5) : undefined;
}

/** The error for a helper whose first frame was not a hello of this client's version. */
export function mismatchError(helper: string, frame: Buffer): SpawnerError {
  const version = helloVersion(frame);
  const what =
    version !== undefined
      ? `speaks protocol ${version}, this daemon needs ${PROTOCOL_VERSION}`
      : `did not announce a protocol version (built before the version handshake; this daemon needs ${PROTOCOL_VERSION})`;
  return new SpawnerError('spawner-mismatch', `netplumb-spawner ${what}: ${rebuildHint(helper)}`);
}

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
  /**
   * The helper's own stderr (its diagnostics; the delegates' stderr comes back in frames): this
   * process's (default), or none. A CNI executable passes 'ignore': its runtime reads its stderr
   * to EOF, so a helper holding it open would delay the answer until the helper has exited too.
   */
  readonly stderr?: 'inherit' | 'ignore';
  /**
   * A helper already running for this process (see inheritedHelper): used first, instead of
   * spawning `helper`. If it dies, the next call spawns `helper` as usual.
   */
  readonly inherited?: InheritedHelper;
}

export interface HelperSpawner extends ProcessSpawner {
  /**
   * Starts the helper now when none runs (otherwise the first call starts it): a process that will
   * run something soon lets the helper start while it does other work.
   */
  start(): void;
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
  /** Requests written before the helper's hello wait here (undefined once it said hello). */
  let beforeHello: Buffer[] | undefined;
  let helloTimer: NodeJS.Timeout | undefined;
  let inherited = opts.inherited;

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

  /** Forgets helper `h` if it is the current one (its calls fail with `err`; the next call starts another). */
  function drop(h: Helper, err: SpawnerError): boolean {
    if (helper !== h) return false;
    helper = undefined;
    beforeHello = undefined;
    clearTimeout(helloTimer);
    failAll(err);
    return true;
  }

  /** A helper that cannot be used: dropped and killed. */
  function refuse(h: Helper, err: SpawnerError): void {
    if (drop(h, err)) h.kill('SIGKILL');
  }

  /** The first frame: the hello of PROTOCOL_VERSION lets the waiting requests go, anything else refuses the helper. */
  function onHello(h: Helper, frame: Buffer): void {
    if (helloVersion(frame) !== PROTOCOL_VERSION) {
      refuse(h, mismatchError(opts.helper, frame));
      return;
    }
    clearTimeout(helloTimer);
    const waiting = beforeHello ?? [];
    beforeHello = undefined;
    if (waiting.length > 0)
      h.stdin.write(waiting.length === 1 ? (waiting[0] as Buffer) : Buffer.concat(waiting));
  }

  function onData(h: Helper, chunk: Buffer): void {
    if (helper !== h) return;
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    let off = 0;
    while (buf.length - off >= 4) {
      const len = buf.readUInt32LE(off);
      if (buf.length - off - 4 < len) break;
      const frame = buf.subarray(off + 4, off + 4 + len);
      off += 4 + len;
      if (beforeHello === undefined) onFrame(frame);
      else {
        onHello(h, frame);
        if (helper !== h) return;
      }
    }
    buf = off === buf.length ? Buffer.alloc(0) : buf.subarray(off);
  }

  function start(): Helper {
    const h =
      inherited !== undefined
        ? adoptedHelper(inherited)
        : spawnedHelper(opts.helper, opts.stderr ?? 'inherit');
    inherited = undefined;
    buf = Buffer.alloc(0);
    beforeHello = [];
    helloTimer = setTimeout(() => {
      refuse(
        h,
        new SpawnerError(
          'spawner-mismatch',
          `netplumb-spawner did not announce its protocol version within ${HELLO_TIMEOUT_MS} ms (a build from before the version handshake, or not netplumb-spawner): ${rebuildHint(opts.helper)}`,
        ),
      );
    }, HELLO_TIMEOUT_MS);
    helloTimer.unref();
    // An empty request with id 0: a helper from before the handshake answers it at once (EINVAL)
    // instead of leaving the client to the timeout; a current one answers it after its hello.
    h.stdin.write(PROBE);
    h.stdout.on('data', (chunk: Buffer) => {
      onData(h, chunk);
    });
    const gone = (why: string): void => {
      drop(h, new SpawnerError('spawner-gone', `netplumb-spawner ${opts.helper} ${why}`));
    };
    h.onGone(gone);
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
        if (beforeHello !== undefined && helper === h) beforeHello.push(frame);
        else h.stdin.write(frame);
      });
    },
    start() {
      helper ??= start();
    },
    helperPid: () => helper?.pid,
    async close() {
      const h = helper;
      if (h === undefined) return;
      const exited = h.exited();
      h.stdin.end();
      await exited;
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
