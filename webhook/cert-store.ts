// Where `netplumb webhook certs` keeps the certificates: a kubernetes.io/tls Secret (tls.crt,
// tls.key, ca.crt) that the webhook's pods mount, and the caBundle of every webhook in the
// MutatingWebhookConfiguration. The port (CertStore) and its two adapters: the API via
// client-node, and plain files for clusters set up by hand.
import { chmod, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { AdmissionregistrationV1Api, CoreV1Api, V1ObjectMeta, V1Secret } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import { writeFileAtomic } from '../lib/atomic-file.js';
import { NetplumbError } from '../lib/errors.js';
import { renewalReason } from './certs.js';
import type { CertBundle, CertRequest } from './certs.js';
import { createCertificates } from './certs.js';

export interface CertStore {
  /** The stored bundle (any part may be absent); undefined when there is none. */
  read(): Promise<Partial<CertBundle> | undefined>;
  write(bundle: CertBundle): Promise<void>;
  /** Sets the CA as caBundle of every webhook; returns how many were set (0: nothing to patch). */
  setCaBundle(caCert: string): Promise<number>;
}

const FILES = { cert: 'tls.crt', key: 'tls.key', caCert: 'ca.crt' } as const;

export class CertStoreError extends NetplumbError {
  override readonly name = 'CertStoreError';
  constructor(message: string, cause: unknown) {
    super('webhook-certs-store', message, { cause });
  }
}

function statusOf(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
}

function fail(what: string, err: unknown): CertStoreError {
  const status = statusOf(err);
  const hint = status === 403 ? ' (the ServiceAccount lacks the RBAC of deployments/webhook.yaml)' : '';
  return new CertStoreError(
    `${what}: ${typeof status === 'number' ? `HTTP ${status}` : (err as Error).message}${hint}`,
    err,
  );
}

export function kubeCertStore(
  kc: KubeConfig,
  where: { namespace: string; secret: string; webhookConfig: string },
): CertStore {
  const core = kc.makeApiClient(CoreV1Api);
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  const name = where.secret;
  const namespace = where.namespace;
  const decode = (v: string | undefined) =>
    v === undefined ? undefined : Buffer.from(v, 'base64').toString();
  return {
    async read() {
      try {
        const s = await core.readNamespacedSecret({ name, namespace });
        const d = s.data ?? {};
        const out: { -readonly [K in keyof CertBundle]?: string } = {};
        for (const [k, file] of Object.entries(FILES) as [keyof CertBundle, string][]) {
          const v = decode(d[file]);
          if (v !== undefined) out[k] = v;
        }
        return out;
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw fail(`read Secret ${namespace}/${name}`, err);
      }
    },
    async write(bundle) {
      const data = Object.fromEntries(
        Object.entries(FILES).map(([k, file]) => [
          file,
          Buffer.from(bundle[k as keyof CertBundle]).toString('base64'),
        ]),
      );
      const body = Object.assign(new V1Secret(), {
        metadata: Object.assign(new V1ObjectMeta(), {
          name,
          namespace,
          labels: { 'app.kubernetes.io/name': 'netplumb-webhook' },
        }),
        type: 'kubernetes.io/tls',
        data,
      });
      try {
        await core.replaceNamespacedSecret({ name, namespace, body });
      } catch (err) {
        if (statusOf(err) !== 404) throw fail(`replace Secret ${namespace}/${name}`, err);
        await core.createNamespacedSecret({ namespace, body }).catch((e: unknown) => {
          throw fail(`create Secret ${namespace}/${name}`, e);
        });
      }
    },
    async setCaBundle(caCert) {
      let config;
      try {
        config = await admission.readMutatingWebhookConfiguration({ name: where.webhookConfig });
      } catch (err) {
        throw fail(`read MutatingWebhookConfiguration ${where.webhookConfig}`, err);
      }
      const caBundle = Buffer.from(caCert).toString('base64');
      for (const w of config.webhooks ?? []) w.clientConfig.caBundle = caBundle;
      try {
        await admission.replaceMutatingWebhookConfiguration({ name: where.webhookConfig, body: config });
      } catch (err) {
        throw fail(`update MutatingWebhookConfiguration ${where.webhookConfig}`, err);
      }
      return config.webhooks?.length ?? 0;
    },
  };
}

/** tls.crt, tls.key (0600) and ca.crt in `dir`; caBundle is not set (printed by the command). */
export function fileCertStore(dir: string): CertStore {
  return {
    async read() {
      const out: { -readonly [K in keyof CertBundle]?: string } = {};
      for (const [k, file] of Object.entries(FILES) as [keyof CertBundle, string][]) {
        const v = await readFile(path.join(dir, file), 'utf8').catch(() => undefined);
        if (v !== undefined) out[k] = v;
      }
      return Object.keys(out).length === 0 ? undefined : out;
    },
    async write(bundle) {
      await mkdir(dir, { recursive: true });
      for (const [k, file] of Object.entries(FILES) as [keyof CertBundle, string][]) {
        await writeFileAtomic(path.join(dir, file), bundle[k], k === 'key' ? { mode: 0o600 } : {});
      }
      await chmod(path.join(dir, FILES.key), 0o600);
    },
    setCaBundle: () => Promise.resolve(0),
  };
}

export interface CertsOutcome {
  readonly renewed: boolean;
  /** Why a new bundle was made; undefined when the stored one was kept. */
  readonly reason: string | undefined;
  readonly webhooksPatched: number;
  readonly caCert: string;
}

/** Keeps a valid stored bundle or makes a new one, then points the webhooks' caBundle at its CA. */
export async function ensureCertificates(
  store: CertStore,
  req: CertRequest,
  renewBeforeDays: number,
): Promise<CertsOutcome> {
  const stored = await store.read();
  const reason = renewalReason(stored ?? {}, req, renewBeforeDays);
  let bundle: CertBundle;
  if (
    reason === undefined &&
    stored?.caCert !== undefined &&
    stored.cert !== undefined &&
    stored.key !== undefined
  ) {
    bundle = { caCert: stored.caCert, cert: stored.cert, key: stored.key };
  } else {
    bundle = createCertificates(req);
    await store.write(bundle);
  }
  const webhooksPatched = await store.setCaBundle(bundle.caCert);
  return { renewed: reason !== undefined, reason, webhooksPatched, caCert: bundle.caCert };
}
