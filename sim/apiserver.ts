// A fake Kubernetes API server over real HTTP, speaking REST the way @kubernetes/client-node uses
// it: GET pods, PUT pods/status (resourceVersion checked → 409), GET network-attachment-definitions.
// Failures are injectable (5xx, 409) and stop() makes it unreachable (connection refused).
// Also lists and watches pods and NADs (as the daemon's informers use them; a status write is a
// MODIFIED event), and serves HTTPS when given a key and certificate (as a real API server).
import { createServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';

export interface FakePodSpec {
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
  readonly annotations?: Record<string, string>;
  readonly containers?: readonly string[];
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly body?: unknown;
}

interface Failure {
  readonly status: number;
  readonly match: RegExp;
  remaining: number;
}

type Obj = Record<string, unknown> & {
  metadata: Record<string, unknown> & { annotations?: Record<string, string> };
};

export interface FakeApiServer {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** TCP (or TLS) connections accepted so far: clients that reuse connections make few. */
  connections(): number;
  /** Events created (POST .../events), in order. */
  readonly events: Obj[];
  addPod(pod: FakePodSpec): void;
  /** The stored pod object (what a GET returns). */
  pod(namespace: string, name: string): Obj | undefined;
  removePod(namespace: string, name: string): void;
  addNad(
    namespace: string,
    name: string,
    config: string | object,
    annotations?: Record<string, string>,
  ): void;
  /** The next `count` requests whose "METHOD path" matches get HTTP `status`. */
  failNext(count: number, status: number, match?: RegExp): void;
  /** The next `count` PUTs of pods/status see a concurrent writer first (→ 409). */
  conflictNext(count: number): void;
  /** Writes a kubeconfig pointing at this server; returns its path. */
  writeKubeconfig(file: string): Promise<string>;
  /** Closes the listener: clients then get connection refused. */
  stop(): Promise<void>;
}

function statusBody(code: number, reason: string, message: string) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? undefined : (JSON.parse(text) as unknown);
}

export interface FakeApiServerOptions {
  /** Serve HTTPS with this PEM key and certificate; the kubeconfig then trusts `cert` as its CA. */
  readonly tls?: { readonly key: string; readonly cert: string };
}

type Watchers = Record<'pods' | 'nads', Set<ServerResponse>>;

function listOrWatch(
  kind: 'pods' | 'nads',
  store: Map<string, Obj>,
  watchers: Watchers,
  url: URL,
  res: ServerResponse,
  rv: number,
): void {
  if (url.searchParams.get('watch') === 'true') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.flushHeaders();
    watchers[kind].add(res);
    res.on('close', () => watchers[kind].delete(res));
    return;
  }
  const items = [...store.values()];
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({ kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: String(rv) }, items }),
  );
}

function emit(watchers: Watchers, kind: 'pods' | 'nads', type: string, object: Obj): void {
  for (const w of watchers[kind]) w.write(`${JSON.stringify({ type, object })}\n`);
}

export async function startFakeApiServer(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  const watchers: Watchers = { pods: new Set(), nads: new Set() };
  const pods = new Map<string, Obj>();
  const nads = new Map<string, Obj>();
  const requests: RecordedRequest[] = [];
  const events: Obj[] = [];
  const failures: Failure[] = [];
  let conflicts = 0;
  let rv = 1000;
  const key = (ns: string, name: string) => `${ns}/${name}`;

  function send(res: ServerResponse, code: number, body: unknown) {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname;
    const body =
      method === 'PUT' || method === 'POST' || method === 'PATCH' ? await readBody(req) : undefined;
    requests.push({ method, path, ...(body !== undefined && { body }) });
    const failure = failures.find((f) => f.remaining > 0 && f.match.test(`${method} ${path}`));
    if (failure !== undefined) {
      failure.remaining--;
      send(res, failure.status, statusBody(failure.status, 'InternalError', 'injected failure'));
      return;
    }
    if (method === 'GET' && path === '/api/v1/pods') {
      listOrWatch('pods', pods, watchers, url, res, rv);
      return;
    }
    if (method === 'GET' && path === '/apis/k8s.cni.cncf.io/v1/network-attachment-definitions') {
      listOrWatch('nads', nads, watchers, url, res, rv);
      return;
    }
    let m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)(\/status)?$/.exec(path);
    if (m !== null) {
      const [, ns = '', name = '', sub] = m;
      const pod = pods.get(key(ns, name));
      if (pod === undefined) {
        send(res, 404, statusBody(404, 'NotFound', `pods "${name}" not found`));
        return;
      }
      if (method === 'GET' && sub === undefined) {
        send(res, 200, pod);
        return;
      }
      if (method === 'PUT' && sub === '/status') {
        if (conflicts > 0) {
          conflicts--;
          pod.metadata['resourceVersion'] = String(++rv);
        }
        const incoming = body as Obj;
        if (incoming.metadata['resourceVersion'] !== pod.metadata['resourceVersion']) {
          send(
            res,
            409,
            statusBody(
              409,
              'Conflict',
              `Operation cannot be fulfilled on pods "${name}": the object has been modified; please apply your changes to the latest version and try again`,
            ),
          );
          return;
        }
        // pods/status keeps spec; metadata annotations and status come from the body.
        const next: Obj = {
          ...pod,
          metadata: {
            ...pod.metadata,
            annotations: incoming.metadata.annotations ?? {},
            resourceVersion: String(++rv),
          },
          status: incoming['status'] ?? pod['status'],
        };
        pods.set(key(ns, name), next);
        emit(watchers, 'pods', 'MODIFIED', next);
        send(res, 200, next);
        return;
      }
      send(res, 405, statusBody(405, 'MethodNotAllowed', `${method} not supported by the fake`));
      return;
    }
    const ev = /^\/api\/v1\/namespaces\/([^/]+)\/events$/.exec(path);
    if (ev !== null && method === 'POST') {
      const created = { ...(body as Obj) };
      created.metadata = { ...created.metadata, name: `event-${++rv}`, resourceVersion: String(rv) };
      events.push(created);
      send(res, 201, created);
      return;
    }
    m = /^\/apis\/k8s\.cni\.cncf\.io\/v1\/namespaces\/([^/]+)\/network-attachment-definitions\/([^/]+)$/.exec(
      path,
    );
    if (m !== null && method === 'GET') {
      const [, ns = '', name = ''] = m;
      const nad = nads.get(key(ns, name));
      if (nad === undefined) {
        send(
          res,
          404,
          statusBody(404, 'NotFound', `network-attachment-definitions.k8s.cni.cncf.io "${name}" not found`),
        );
        return;
      }
      send(res, 200, nad);
      return;
    }
    send(res, 404, statusBody(404, 'NotFound', `the fake has no route for ${method} ${path}`));
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((err: unknown) => {
      send(res, 500, statusBody(500, 'InternalError', String(err)));
    });
  };
  const server =
    opts.tls === undefined
      ? createServer(onRequest)
      : createTlsServer({ key: opts.tls.key, cert: opts.tls.cert }, onRequest);
  // Idle keep-alive connections stay open like kube-apiserver's (Node's default closes them after
  // 5 s, which a loaded machine exceeds between two requests of one CNI call).
  server.keepAliveTimeout = 120_000;
  let connections = 0;
  server.on(opts.tls === undefined ? 'connection' : 'secureConnection', () => {
    connections++;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const scheme = opts.tls === undefined ? 'http' : 'https';
  const url = `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    requests,
    connections: () => connections,
    events,
    addPod(p) {
      pods.set(key(p.namespace, p.name), {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          namespace: p.namespace,
          name: p.name,
          uid: p.uid ?? `uid-${p.name}`,
          resourceVersion: String(++rv),
          annotations: { ...(p.annotations ?? {}) },
        },
        spec: {
          nodeName: 'node-a',
          containers: (p.containers ?? ['app']).map((name) => ({ name, image: 'busybox' })),
        },
        status: { phase: 'Pending' },
      });
      emit(watchers, 'pods', 'ADDED', pods.get(key(p.namespace, p.name)) as Obj);
    },
    pod: (ns, name) => pods.get(key(ns, name)),
    removePod(ns, name) {
      pods.delete(key(ns, name));
    },
    addNad(ns, name, config, annotations = {}) {
      nads.set(key(ns, name), {
        apiVersion: 'k8s.cni.cncf.io/v1',
        kind: 'NetworkAttachmentDefinition',
        metadata: { namespace: ns, name, uid: `nad-${name}`, resourceVersion: String(++rv), annotations },
        spec: config === '' ? {} : { config: typeof config === 'string' ? config : JSON.stringify(config) },
      });
      emit(watchers, 'nads', 'ADDED', nads.get(key(ns, name)) as Obj);
    },
    failNext(count, status, match = /.*/) {
      failures.push({ status, match, remaining: count });
    },
    conflictNext(count) {
      conflicts += count;
    },
    async writeKubeconfig(file) {
      const doc = {
        apiVersion: 'v1',
        kind: 'Config',
        // client-node 1.x refuses plain http unless skipTLSVerify is set.
        clusters: [
          {
            name: 'fake',
            cluster:
              opts.tls === undefined
                ? { server: url, 'insecure-skip-tls-verify': true }
                : {
                    server: url,
                    'certificate-authority-data': Buffer.from(opts.tls.cert).toString('base64'),
                  },
          },
        ],
        users: [{ name: 'cni', user: { token: 'fake-token' } }],
        contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'cni' } }],
        'current-context': 'fake',
      };
      await writeFile(file, JSON.stringify(doc));
      return file;
    },
    stop() {
      return new Promise<void>((resolve) => {
        for (const w of [...watchers.pods, ...watchers.nads]) w.destroy();
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      });
    },
  };
}
