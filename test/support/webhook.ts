// Test and bench helpers for netplumb webhook: an in-memory NAD watch (the WatchSource port), a
// certificate directory laid out as kubelet mounts a Secret (`..data` symlink swapped atomically),
// and an HTTPS client that trusts a given CA.
import { mkdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { ServerResponse } from 'node:http';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
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

export interface FakeConfigMapApi {
  /** Creates or replaces ConfigMap `namespace/name` (ADDED / MODIFIED to watchers). */
  set(namespace: string, name: string, data: Record<string, string>): void;
  delete(namespace: string, name: string): void;
  /** Every request as `METHOD path?query`. */
  readonly requests: string[];
  /** Watch streams open now. */
  watchers(): number;
  writeKubeconfig(file: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * A plain-HTTP API server that only knows ConfigMaps: namespaced list (with the
 * fieldSelector=metadata.name=X filter) and watch, as the control-switches watch uses them.
 */
export async function startConfigMapApi(): Promise<FakeConfigMapApi> {
  const store = new Map<string, { metadata: Record<string, string>; data: Record<string, string> }>();
  const watchers = new Set<{ res: ServerResponse; namespace: string; name: string | undefined }>();
  const requests: string[] = [];
  let rv = 1;
  const emit = (type: string, object: unknown, namespace: string, name: string): void => {
    for (const w of watchers)
      if (w.namespace === namespace && (w.name === undefined || w.name === name))
        w.res.write(`${JSON.stringify({ type, object })}\n`);
  };
  const server = createServer((req, res) => {
    requests.push(`${req.method ?? ''} ${req.url ?? ''}`);
    const url = new URL(req.url ?? '/', 'http://fake');
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/configmaps$/.exec(url.pathname);
    if (req.method !== 'GET' || m === null) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"kind":"Status","code":404}');
      return;
    }
    const namespace = decodeURIComponent(m[1] ?? '');
    const selector = url.searchParams.get('fieldSelector') ?? '';
    const name = selector.startsWith('metadata.name=') ? selector.slice('metadata.name='.length) : undefined;
    res.writeHead(200, { 'content-type': 'application/json' });
    if (url.searchParams.get('watch') === 'true') {
      res.flushHeaders();
      const w = { res, namespace, name };
      watchers.add(w);
      res.on('close', () => watchers.delete(w));
      return;
    }
    const items = [...store.values()].filter(
      (c) => c.metadata['namespace'] === namespace && (name === undefined || c.metadata['name'] === name),
    );
    res.end(JSON.stringify({ kind: 'ConfigMapList', metadata: { resourceVersion: String(rv) }, items }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    requests,
    watchers: () => watchers.size,
    set(namespace, name, data) {
      const key = `${namespace}/${name}`;
      const type = store.has(key) ? 'MODIFIED' : 'ADDED';
      const cm = { metadata: { namespace, name, resourceVersion: String(++rv) }, data };
      store.set(key, cm);
      emit(type, { kind: 'ConfigMap', apiVersion: 'v1', ...cm }, namespace, name);
    },
    delete(namespace, name) {
      const cm = store.get(`${namespace}/${name}`);
      if (cm === undefined) return;
      store.delete(`${namespace}/${name}`);
      emit(
        'DELETED',
        {
          kind: 'ConfigMap',
          apiVersion: 'v1',
          ...cm,
          metadata: { ...cm.metadata, resourceVersion: String(++rv) },
        },
        namespace,
        name,
      );
    },
    async writeKubeconfig(file) {
      const doc = {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'fake', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'webhook', user: { token: 'fake-token' } }],
        contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'webhook' } }],
        'current-context': 'fake',
      };
      await writeFile(file, JSON.stringify(doc));
      return file;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const w of watchers) w.res.destroy();
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
