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
import { stringify as stringifyYaml } from 'yaml';

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

/** Everything the fake holds; each route below reads and changes it. */
interface FakeState {
  readonly watchers: Watchers;
  readonly pods: Map<string, Obj>;
  readonly nads: Map<string, Obj>;
  readonly requests: RecordedRequest[];
  readonly events: Obj[];
  readonly failures: Failure[];
  conflicts: number;
  rv: number;
}

const key = (ns: string, name: string) => `${ns}/${name}`;

function send(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** PUT pods/status: the stored resourceVersion must match (else 409); spec is kept. */
function putPodStatus(
  s: FakeState,
  pod: Obj,
  ns: string,
  name: string,
  body: unknown,
  res: ServerResponse,
): void {
  if (s.conflicts > 0) {
    s.conflicts--;
    pod.metadata['resourceVersion'] = String(++s.rv);
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
      resourceVersion: String(++s.rv),
    },
    status: incoming['status'] ?? pod['status'],
  };
  s.pods.set(key(ns, name), next);
  emit(s.watchers, 'pods', 'MODIFIED', next);
  send(res, 200, next);
}

const POD_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)(\/status)?$/;
const EVENTS_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/events$/;
const NAD_PATH =
  /^\/apis\/k8s\.cni\.cncf\.io\/v1\/namespaces\/([^/]+)\/network-attachment-definitions\/([^/]+)$/;

/** One pod: GET, or PUT of its status subresource. */
function routePod(
  s: FakeState,
  m: RegExpExecArray,
  method: string,
  body: unknown,
  res: ServerResponse,
): void {
  const [, ns = '', name = '', sub] = m;
  const pod = s.pods.get(key(ns, name));
  if (pod === undefined) {
    send(res, 404, statusBody(404, 'NotFound', `pods "${name}" not found`));
  } else if (method === 'GET' && sub === undefined) {
    send(res, 200, pod);
  } else if (method === 'PUT' && sub === '/status') {
    putPodStatus(s, pod, ns, name, body, res);
  } else {
    send(res, 405, statusBody(405, 'MethodNotAllowed', `${method} not supported by the fake`));
  }
}

function postEvent(s: FakeState, body: unknown, res: ServerResponse): void {
  const created = { ...(body as Obj) };
  created.metadata = { ...created.metadata, name: `event-${++s.rv}`, resourceVersion: String(s.rv) };
  s.events.push(created);
  send(res, 201, created);
}

function getNad(s: FakeState, m: RegExpExecArray, res: ServerResponse): void {
  const [, ns = '', name = ''] = m;
  const nad = s.nads.get(key(ns, name));
  if (nad === undefined) {
    send(
      res,
      404,
      statusBody(404, 'NotFound', `network-attachment-definitions.k8s.cni.cncf.io "${name}" not found`),
    );
    return;
  }
  send(res, 200, nad);
}

async function handle(s: FakeState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = req.method ?? 'GET';
  const url = new URL(req.url ?? '/', 'http://fake');
  const path = url.pathname;
  const body = method === 'PUT' || method === 'POST' || method === 'PATCH' ? await readBody(req) : undefined;
  s.requests.push({ method, path, ...(body !== undefined && { body }) });
  const failure = s.failures.find((f) => f.remaining > 0 && f.match.test(`${method} ${path}`));
  if (failure !== undefined) {
    failure.remaining--;
    send(res, failure.status, statusBody(failure.status, 'InternalError', 'injected failure'));
    return;
  }
  if (method === 'GET' && path === '/api/v1/pods') {
    listOrWatch('pods', s.pods, s.watchers, url, res, s.rv);
    return;
  }
  if (method === 'GET' && path === '/apis/k8s.cni.cncf.io/v1/network-attachment-definitions') {
    listOrWatch('nads', s.nads, s.watchers, url, res, s.rv);
    return;
  }
  const pod = POD_PATH.exec(path);
  if (pod !== null) {
    routePod(s, pod, method, body, res);
    return;
  }
  if (method === 'POST' && EVENTS_PATH.test(path)) {
    postEvent(s, body, res);
    return;
  }
  const nad = NAD_PATH.exec(path);
  if (nad !== null && method === 'GET') {
    getNad(s, nad, res);
    return;
  }
  send(res, 404, statusBody(404, 'NotFound', `the fake has no route for ${method} ${path}`));
}

/** A kubeconfig for this server: trusts its certificate, or skips verification over plain http. */
function kubeconfigDoc(url: string, tls: FakeApiServerOptions['tls']): object {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    // client-node 1.x refuses plain http unless skipTLSVerify is set.
    clusters: [
      {
        name: 'fake',
        cluster:
          tls === undefined
            ? { server: url, 'insecure-skip-tls-verify': true }
            : { server: url, 'certificate-authority-data': Buffer.from(tls.cert).toString('base64') },
      },
    ],
    users: [{ name: 'cni', user: { token: 'fake-token' } }],
    contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'cni' } }],
    'current-context': 'fake',
  };
}

function podObject(s: FakeState, p: FakePodSpec): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      namespace: p.namespace,
      name: p.name,
      uid: p.uid ?? `uid-${p.name}`,
      resourceVersion: String(++s.rv),
      annotations: { ...(p.annotations ?? {}) },
    },
    spec: {
      nodeName: 'node-a',
      containers: (p.containers ?? ['app']).map((name) => ({ name, image: 'busybox' })),
    },
    status: { phase: 'Pending' },
  };
}

function nadObject(
  s: FakeState,
  ns: string,
  name: string,
  config: string | object,
  annotations: Record<string, string>,
): Obj {
  return {
    apiVersion: 'k8s.cni.cncf.io/v1',
    kind: 'NetworkAttachmentDefinition',
    metadata: { namespace: ns, name, uid: `nad-${name}`, resourceVersion: String(++s.rv), annotations },
    spec: config === '' ? {} : { config: typeof config === 'string' ? config : JSON.stringify(config) },
  };
}

export async function startFakeApiServer(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  const s: FakeState = {
    watchers: { pods: new Set(), nads: new Set() },
    pods: new Map(),
    nads: new Map(),
    requests: [],
    events: [],
    failures: [],
    conflicts: 0,
    rv: 1000,
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    handle(s, req, res).catch((err: unknown) => {
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
    requests: s.requests,
    connections: () => connections,
    events: s.events,
    addPod(p) {
      const pod = podObject(s, p);
      s.pods.set(key(p.namespace, p.name), pod);
      emit(s.watchers, 'pods', 'ADDED', pod);
    },
    pod: (ns, name) => s.pods.get(key(ns, name)),
    removePod(ns, name) {
      s.pods.delete(key(ns, name));
    },
    addNad(ns, name, config, annotations = {}) {
      const nad = nadObject(s, ns, name, config, annotations);
      s.nads.set(key(ns, name), nad);
      emit(s.watchers, 'nads', 'ADDED', nad);
    },
    failNext(count, status, match = /.*/) {
      s.failures.push({ status, match, remaining: count });
    },
    conflictNext(count) {
      s.conflicts += count;
    },
    async writeKubeconfig(file) {
      // YAML, as kubectl and Multus write theirs (the thin plugin's parse is then the real one).
      await writeFile(file, stringifyYaml(kubeconfigDoc(url, opts.tls)));
      return file;
    },
    stop() {
      return new Promise<void>((resolve) => {
        for (const w of [...s.watchers.pods, ...s.watchers.nads]) w.destroy();
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      });
    },
  };
}
