// What `logFile`/`logLevel` from a network config (a NAD, written by namespace users) may do.
//   - `logLevel` picks the level of that call's log lines (sriov-cni's names; anything else = info).
//   - `logFile` is honoured only inside one directory the operator chose (`logDir`; none = ignored).
//     A relative name is taken inside it; a path that resolves outside it, through a symlink, into a
//     missing directory, or that cannot be opened is refused with one warning on the default log,
//     and the call's lines go to the default log instead. The CNI call itself never fails for it.
//   - No file descriptor is kept between lines (each line is appended with open/write/close), so
//     any number of distinct `logFile` values costs no memory and no fds.
import { closeSync, constants, openSync, realpathSync, writeSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';

const LEVELS: Readonly<Record<string, string>> = {
  panic: 'fatal',
  error: 'error',
  warning: 'warn',
  info: 'info',
  debug: 'debug',
};

/** Default directory for `logFile` values from network configs. */
export const DEFAULT_DELEGATE_LOG_DIR = '/var/log/netplumb';

export type LogFileDecision =
  { readonly ok: true; readonly file: string } | { readonly ok: false; readonly reason: string };

function inside(dir: string, p: string): boolean {
  return p === dir || p.startsWith(`${dir}${path.sep}`);
}

/** Where a config's `logFile` may be written, or why not. Pure apart from realpath. */
export function resolveLogFile(logDir: string | null, logFile: string): LogFileDecision {
  if (logDir === null || logDir === '')
    return {
      ok: false,
      reason: 'logFile from a network config is disabled on this node (no log directory set)',
    };
  const root = path.resolve(logDir);
  const file = path.resolve(root, logFile);
  if (!inside(root, file) || file === root)
    return {
      ok: false,
      reason: `logFile ${logFile} is outside the log directory ${root}; give a file name inside it`,
    };
  let realRoot: string;
  let realParent: string;
  try {
    realRoot = realpathSync(root);
    realParent = realpathSync(path.dirname(file));
  } catch (err) {
    return { ok: false, reason: `logFile ${logFile}: ${(err as Error).message}` };
  }
  if (!inside(realRoot, realParent))
    return { ok: false, reason: `logFile ${logFile} leaves the log directory ${root} through a symlink` };
  return { ok: true, file: path.join(realParent, path.basename(file)) };
}

const FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;

/** Appends each line with open/write/close; the first failure is reported once, later lines are dropped. */
function appendingDestination(file: string, onError: (err: Error) => void): DestinationStream {
  let failed = false;
  return {
    write(line: string): void {
      if (failed) return;
      try {
        const fd = openSync(file, FLAGS, 0o600);
        try {
          writeSync(fd, line);
        } finally {
          closeSync(fd);
        }
      } catch (err) {
        failed = true;
        onError(err as Error);
      }
    },
  };
}

export interface DelegateLoggerOptions {
  readonly logLevel: string;
  readonly logFile: string | null;
}

/**
 * Loggers for one call each, honouring the config's `logLevel` and (inside `logDir`) `logFile`.
 * The default-destination loggers are cached per level (at most five); file loggers are not cached.
 */
export function createDelegateLoggers(opts: {
  readonly logDir: string | null;
  readonly fallback: DestinationStream;
  readonly base: Readonly<Record<string, unknown>>;
}): (o: DelegateLoggerOptions) => Logger {
  const byLevel = new Map<string, Logger>();
  const fallbackFor = (level: string): Logger => {
    let log = byLevel.get(level);
    if (log === undefined) {
      log = pino({ level, base: opts.base }, opts.fallback);
      byLevel.set(level, log);
    }
    return log;
  };
  return (o) => {
    const level = LEVELS[o.logLevel] ?? 'info';
    const fallback = fallbackFor(level);
    if (o.logFile === null) return fallback;
    const decision = resolveLogFile(opts.logDir, o.logFile);
    if (!decision.ok) {
      fallback.warn({ logFile: o.logFile }, `${decision.reason}; logging here instead`);
      return fallback;
    }
    const dest = appendingDestination(decision.file, (err) => {
      fallback.warn(
        { logFile: decision.file, err: err.message },
        'cannot write logFile; its lines are dropped',
      );
    });
    return pino({ level, base: opts.base }, dest);
  };
}
