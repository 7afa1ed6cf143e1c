// Test and bench helpers for netplumb webhook: an in-memory NAD watch (the WatchSource port), a
// certificate directory laid out as kubelet mounts a Secret (`..data` symlink swapped atomically),
// and an HTTPS client that trusts a given CA.
import { mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import type { RequestOptions } from 'node:https';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { NadInfo } from '../../cni/meta/kube.js';
import type { WatchHandlers, WatchSource } from '../../cni/daemon/kube-cache.js';
import type { CertBundle } from '../../webhook/certs.js';
import { PROJECT_ROOT } from './bin.js';

export interface MemoryNadWatch extends WatchSource<NadInfo> {
  add(nad: NadInfo): void;
  remove(namespace: string, name: string): void;
}

/** A NAD watch fed by the test; it reports synced at start. */
export function memoryNadWatch(initial: readonly NadInfo[] = []): MemoryNadWatch {
  let handlers: WatchHandlers<NadInfo> | undefined;
  const pending = [...initial];
  return {
    start(h) {
      handlers = h;
      for (const n of pending) h.upsert(n);
      h.synced();
    },
    stop: () => Promise.resolve(),
    add(nad) {
      if (handlers) handlers.upsert(nad);
      else pending.push(nad);
    },
    remove(namespace, name) {
      handlers?.remove({ namespace, name, config: '', annotations: {} });
    },
  } satisfies MemoryNadWatch;
}

let generation = 0;

/** Writes tls.crt/tls.key/ca.crt the way kubelet updates a Secret volume. Returns the file paths. */
export async function writeSecretDir(
  dir: string,
  bundle: CertBundle,
): Promise<{ certFile: string; keyFile: string }> {
  const version = `..${Date.now()}_${process.pid}_${++generation}`;
  await mkdir(path.join(dir, version), { recursive: true });
  await writeFile(path.join(dir, version, 'tls.crt'), bundle.cert);
  await writeFile(path.join(dir, version, 'tls.key'), bundle.key, { mode: 0o600 });
  await writeFile(path.join(dir, version, 'ca.crt'), bundle.caCert);
  const tmp = path.join(dir, `..data_tmp${generation}`);
  await symlink(version, tmp);
  await rename(tmp, path.join(dir, '..data'));
  for (const f of ['tls.crt', 'tls.key', 'ca.crt']) {
    await symlink(path.join('..data', f), path.join(dir, f)).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    });
  }
  return { certFile: path.join(dir, 'tls.crt'), keyFile: path.join(dir, 'tls.key') };
}

export interface HttpsAnswer {
  readonly status: number;
  readonly body: string;
}

/** One HTTPS request to 127.0.0.1:`port`, trusting `ca`, presenting `servername` (SNI + check). */
export function httpsRequest(
  port: number,
  opts: {
    ca: string;
    servername: string;
    method?: string;
    path?: string;
    body?: string;
    tls?: Pick<RequestOptions, 'maxVersion' | 'minVersion' | 'ciphers'>;
    agent?: RequestOptions['agent'];
  },
): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? (opts.body === undefined ? 'GET' : 'POST'),
        path: opts.path ?? '/mutate',
        ca: opts.ca,
        servername: opts.servername,
        headers: { 'content-type': 'application/json' },
        ...(opts.agent !== undefined ? { agent: opts.agent } : { agent: false }),
        ...opts.tls,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

interface RbacDoc {
  kind: string;
  metadata: { name: string };
  rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
  roleRef?: { kind: string; name: string };
  subjects?: { name: string }[];
}

/** `group/resource:verb` for everything deployments/webhook.yaml grants `serviceAccount`. */
export async function webhookGrants(serviceAccount: string): Promise<Set<string>> {
  const file = path.join(PROJECT_ROOT, 'deployments', 'webhook.yaml');
  const docs = parseAllDocuments(await readFile(file, 'utf8')).map((d) => d.toJS() as RbacDoc);
  const bound = docs.filter(
    (b) =>
      (b.kind === 'RoleBinding' || b.kind === 'ClusterRoleBinding') &&
      b.subjects?.some((s) => s.name === serviceAccount) === true,
  );
  const out = new Set<string>();
  for (const b of bound) {
    const role = docs.find((r) => r.kind === b.roleRef?.kind && r.metadata.name === b.roleRef.name);
    for (const rule of role?.rules ?? []) {
      for (const g of rule.apiGroups)
        for (const r of rule.resources) for (const v of rule.verbs) out.add(`${g}/${r}:${v}`);
    }
  }
  return out;
}

/** The permission (`group/resource:verb`) an API request needs; `watch` for ?watch=true lists. */
export function permissionOf(method: string, url: string): string {
  const [p = '', query = ''] = url.split('?');
  const parts = p.split('/').filter((s) => s !== '');
  const core = parts[0] === 'api';
  const group = core ? '' : (parts[1] ?? '');
  const rest = parts.slice(core ? 2 : 3);
  if (rest[0] === 'namespaces' && rest.length > 2) rest.splice(0, 2);
  const resource = rest[0] ?? '';
  const item = rest.length > 1;
  const verb =
    method === 'GET'
      ? item
        ? 'get'
        : new URLSearchParams(query).get('watch') === 'true'
          ? 'watch'
          : 'list'
      : method === 'PUT'
        ? 'update'
        : method === 'POST'
          ? 'create'
          : method.toLowerCase();
  return `${group}/${resource}:${verb}`;
}
