// Keeps <confDir>/00-netplumb.conflist in step with the node's primary network config: writes it
// (temp + rename, 0600) once the readiness indicator exists, rewrites it when the primary changes,
// removes it when the indicator disappears (the cluster network is gone) and on uninstall.
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { readFile, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { JsonObject } from '../../lib/json.js';
import { ConfGenError, GENERATED_CONF, generateConflist, pickPrimary } from './conf-gen.js';
import type { Readiness } from './readiness.js';
import { writeFileAtomic } from '../../lib/atomic-file.js';
import { exists } from '../../lib/fs.js';

export const CONF_CONDITION = 'cni-config';

export interface ConfWriterDeps {
  readonly confDir: string;
  readonly socketPath: string;
  readonly extra?: JsonObject;
  /** Multus `readinessindicatorfile`: no config is written until it exists. */
  readonly readinessIndicator?: string | undefined;
  readonly readiness: Readiness;
  readonly logger: Logger;
  /** Safety-net rescan interval besides fs.watch (which can miss events on some filesystems). */
  readonly pollMs?: number;
}

export interface ConfWriter {
  readonly file: string;
  start(): Promise<void>;
  /** One reconciliation pass (serialised with the watcher's). */
  sync(): Promise<void>;
  stop(): void;
  /** Removes the generated config (uninstall). */
  remove(): Promise<void>;
}

export function createConfWriter(deps: ConfWriterDeps): ConfWriter {
  const file = path.join(deps.confDir, GENERATED_CONF);
  const { readiness, logger } = deps;
  let chain: Promise<void> = Promise.resolve();
  const watchers: FSWatcher[] = [];
  let poll: NodeJS.Timeout | undefined;
  let debounce: NodeJS.Timeout | undefined;
  let lastProblem = '';

  const notReady = (reason: string): void => {
    readiness.set(CONF_CONDITION, false, reason);
    if (reason !== lastProblem) logger.warn({ reason }, 'CNI config not written');
    lastProblem = reason;
  };

  async function removeOwn(): Promise<void> {
    await unlink(file).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    });
  }

  async function pass(): Promise<void> {
    if (deps.readinessIndicator !== undefined && !(await exists(deps.readinessIndicator))) {
      if (await exists(file)) {
        await removeOwn();
        logger.warn(
          { indicator: deps.readinessIndicator },
          'readiness indicator gone: removed the CNI config',
        );
      }
      notReady(`waiting for readiness indicator ${deps.readinessIndicator}`);
      return;
    }
    const primary = pickPrimary(await readdir(deps.confDir));
    if (primary === undefined) {
      notReady(`no primary network config in ${deps.confDir} (install the cluster network first)`);
      return;
    }
    const primaryPath = path.join(deps.confDir, primary);
    let text: string;
    try {
      const generated = generateConflist({
        primaryPath,
        primaryText: await readFile(primaryPath, 'utf8'),
        socketPath: deps.socketPath,
        ...(deps.extra === undefined ? {} : { extra: deps.extra }),
      });
      text = `${JSON.stringify(generated, null, 2)}\n`;
    } catch (err) {
      if (!(err instanceof ConfGenError) && (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      // Keep whatever config is in place: an unreadable primary must not break running pods.
      notReady(err instanceof Error ? err.message : String(err));
      return;
    }
    const current = await readFile(file, 'utf8').catch(() => undefined);
    if (current !== text) {
      await writeFileAtomic(file, text, { mode: 0o600 });
      logger.info({ file, primary: primaryPath }, 'wrote CNI config');
    }
    lastProblem = '';
    readiness.set(CONF_CONDITION, true);
  }

  const sync = (): Promise<void> => {
    const next = chain.then(pass);
    chain = next.catch((err: unknown) => {
      notReady(`cannot write ${file}: ${err instanceof Error ? err.message : String(err)}`);
    });
    return next;
  };

  const kick = (): void => {
    if (debounce) clearTimeout(debounce);
    debounce = setTimeout(() => {
      void sync().catch(() => undefined);
    }, 50);
  };

  return {
    file,
    async start() {
      readiness.set(CONF_CONDITION, false, 'CNI config not written yet');
      const dirs = new Set([deps.confDir]);
      if (deps.readinessIndicator !== undefined) dirs.add(path.dirname(deps.readinessIndicator));
      for (const d of dirs) {
        try {
          watchers.push(watch(d, kick));
        } catch (err) {
          logger.warn({ err, dir: d }, 'cannot watch directory; relying on the periodic rescan');
        }
      }
      poll = setInterval(kick, deps.pollMs ?? 5000);
      poll.unref();
      await sync().catch(() => undefined);
    },
    sync,
    stop() {
      for (const w of watchers.splice(0)) w.close();
      if (poll) clearInterval(poll);
      if (debounce) clearTimeout(debounce);
    },
    async remove() {
      this.stop();
      await chain;
      await removeOwn();
    },
  };
}
