// `--daemon-config FILE`: Multus keys for the generated config, checked at start (a wrong type
// would otherwise fail every later CNI call with code 7), and the daemon's own logging from it
// (`logFile`, `logLevel`, `logToStderr`, as Multus's daemon reads them).
import { pino } from 'pino';
import type { DestinationStream, Level, Logger } from 'pino';
import type { JsonObject } from '../../lib/json.js';
import { metaConfProblems } from '../meta/config.js';

/** Type problems of the daemon config's Multus keys (`cniDir: expected string, received number`). */
export function daemonConfigProblems(raw: JsonObject): string[] {
  // The daemon sets these itself; a placeholder lets the meta-plugin schema check the rest.
  return metaConfProblems({ ...raw, type: 'netplumb', name: 'daemon', cniVersion: '1.0.0' });
}

// Multus's level names, and pino's own.
const LEVELS: Readonly<Record<string, Level>> = {
  debug: 'debug',
  verbose: 'info',
  info: 'info',
  warn: 'warn',
  warning: 'warn',
  error: 'error',
  panic: 'fatal',
  fatal: 'fatal',
  trace: 'trace',
};

/**
 * The daemon's logger: stderr (unless `logToStderr: false`) and the config's `logFile` (an operator
 * file; its directory is created). `--log-level` wins over `logLevel`. One `service` key per line;
 * parts of the daemon add their own `component`.
 */
export function daemonLogger(flagLevel: string | undefined, config: JsonObject | undefined): Logger {
  const fromConfig = typeof config?.['logLevel'] === 'string' ? LEVELS[config['logLevel']] : undefined;
  const level = flagLevel ?? fromConfig ?? 'info';
  const streams: DestinationStream[] = [];
  if (config?.['logToStderr'] !== false) streams.push(pino.destination({ fd: 2, sync: true }));
  const file = config?.['logFile'];
  if (typeof file === 'string' && file !== '') {
    streams.push(pino.destination({ dest: file, append: true, mkdir: true, sync: true }));
  }
  const base = { service: 'netplumb-cni-daemon' };
  if (streams.length === 0) return pino({ level: 'silent', base });
  return pino({ level, base }, pino.multistream(streams.map((stream) => ({ stream, level }))));
}
