// The serving certificate from a mounted Secret (tls.crt + tls.key), reloaded on change without a
// restart: kubelet swaps a Secret volume's `..data` symlink, which fs.watch on the directory sees; a
// slow poll covers filesystems without inotify. A pair that does not load (half-written, key not
// matching) is reported and the previous certificate keeps serving.
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import type { SecureContextOptions } from 'node:tls';
import { ExitCode, NetplumbError } from '../lib/errors.js';

export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
export type TlsVersion = (typeof TLS_VERSIONS)[number];

export interface TlsSettings {
  readonly certFile: string;
  readonly keyFile: string;
  readonly minVersion: TlsVersion;
  /** OpenSSL cipher list (TLS 1.2 suites and TLS 1.3 suite names); undefined: Node's default. */
  readonly ciphers: string | undefined;
}

export class TlsLoadError extends NetplumbError {
  override readonly name = 'TlsLoadError';
  constructor(message: string, cause: unknown) {
    super('webhook-tls-invalid', message, { cause, exitCode: ExitCode.USAGE });
  }
}

/** Reads the pair and checks that it loads (a key that does not match the certificate throws). */
export async function loadTls(s: TlsSettings): Promise<SecureContextOptions> {
  let options: SecureContextOptions;
  try {
    const [cert, key] = await Promise.all([readFile(s.certFile), readFile(s.keyFile)]);
    options = { cert, key, minVersion: s.minVersion, ...(s.ciphers !== undefined && { ciphers: s.ciphers }) };
    createSecureContext(options);
  } catch (err) {
    throw new TlsLoadError(
      `cannot load the serving certificate ${s.certFile} with key ${s.keyFile}: ${(err as Error).message} (mount the Secret made by \`netplumb webhook certs\`)`,
      err,
    );
  }
  return options;
}

export interface TlsWatchDeps {
  readonly settings: TlsSettings;
  readonly current: SecureContextOptions;
  readonly apply: (options: SecureContextOptions) => void;
  readonly onReload: (result: 'success' | 'error', err?: unknown) => void;
  readonly pollMs: number;
  readonly debounceMs?: number;
}

function same(a: SecureContextOptions, b: SecureContextOptions): boolean {
  return (
    Buffer.isBuffer(a.cert) &&
    Buffer.isBuffer(b.cert) &&
    a.cert.equals(b.cert) &&
    Buffer.isBuffer(a.key) &&
    Buffer.isBuffer(b.key) &&
    a.key.equals(b.key)
  );
}

/** Watches the certificate's directory; returns a stop function. */
export function watchTls(deps: TlsWatchDeps): () => void {
  let current = deps.current;
  let timer: NodeJS.Timeout | undefined;
  let running = Promise.resolve();
  const check = (): void => {
    running = running.then(async () => {
      try {
        const next = await loadTls(deps.settings);
        if (same(next, current)) return;
        deps.apply(next);
        current = next;
        deps.onReload('success');
      } catch (err) {
        deps.onReload('error', err);
      }
    });
  };
  const soon = (): void => {
    clearTimeout(timer);
    timer = setTimeout(check, deps.debounceMs ?? 200);
  };
  const dirs = [...new Set([path.dirname(deps.settings.certFile), path.dirname(deps.settings.keyFile)])];
  const watchers: FSWatcher[] = [];
  for (const dir of dirs) {
    try {
      watchers.push(watch(dir, soon).on('error', () => undefined));
    } catch {
      // No inotify here: the poll below still sees the change.
    }
  }
  const poll = setInterval(check, deps.pollMs);
  poll.unref();
  return () => {
    clearTimeout(timer);
    clearInterval(poll);
    for (const w of watchers) w.close();
  };
}
