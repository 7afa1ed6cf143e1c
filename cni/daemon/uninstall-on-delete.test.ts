// `netplumb cni-daemon --uninstall-on-delete`: the whole command in-process against an API server
// that behaves as kube-apiserver does when `kubectl delete -k deployments/` runs: the ServiceAccount
// (its token) and the RBAC objects go in the same second as the DaemonSet, so new requests get 401
// or 403 while a watch opened before keeps delivering events. Then SIGTERM, as the kubelet sends it.
import { createServer } from 'node:http';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cniDaemonCommand } from './command.js';
import { install } from './install.js';
import { decideUninstall } from './uninstall-on-delete.js';

const NS = 'netplumb';
const DS = 'netplumb-cni-daemon';
const DS_PATH = `/apis/apps/v1/namespaces/${NS}/daemonsets`;

interface FakeApi {
  url: string;
  /** HTTP status every NEW request gets (200: served). Open watches are not re-checked, as upstream. */
  auth: number;
  ds: Record<string, unknown> | undefined;
  dsWatchers: ServerResponse[];
  /** Deletes the DaemonSet (background propagation: gone at once, DELETED on the watches). */
  deleteDs(): void;
  /** Foreground deletion: deletionTimestamp set, MODIFIED on the watches. */
  markDeleting(): void;
  close(): Promise<void>;
}

const dsObject = (): Record<string, unknown> => ({
  apiVersion: 'apps/v1',
  kind: 'DaemonSet',
  metadata: { namespace: NS, name: DS, resourceVersion: '7' },
});

function answerStatus(res: ServerResponse, code: number): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code }));
}

function holdWatch(res: ServerResponse, into?: ServerResponse[]): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.flushHeaders();
  into?.push(res);
}

function list(res: ServerResponse, items: unknown[]): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: '7' }, items }));
}

async function startApi(): Promise<FakeApi> {
  const open: ServerResponse[] = [];
  const api: FakeApi = {
    url: '',
    auth: 200,
    ds: dsObject(),
    dsWatchers: [],
    deleteDs() {
      const last = api.ds;
      api.ds = undefined;
      for (const w of api.dsWatchers) w.write(`${JSON.stringify({ type: 'DELETED', object: last })}\n`);
    },
    markDeleting() {
      const ds = dsObject();
      ds['metadata'] = { ...(ds['metadata'] as object), deletionTimestamp: '2026-12-01T23:33:38Z' };
      api.ds = ds;
      for (const w of api.dsWatchers) w.write(`${JSON.stringify({ type: 'MODIFIED', object: ds })}\n`);
    },
    close: () => Promise.resolve(),
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (api.auth !== 200) {
      answerStatus(res, api.auth);
      return;
    }
    const watch = url.searchParams.get('watch') === 'true';
    if (url.pathname === DS_PATH) {
      // RBAC resourceNames: a list/watch is allowed only with the metadata.name field selector.
      if (url.searchParams.get('fieldSelector') !== `metadata.name=${DS}`) {
        answerStatus(res, 403);
        return;
      }
      if (watch) {
        holdWatch(res, api.dsWatchers);
        return;
      }
      list(res, api.ds === undefined ? [] : [api.ds]);
      return;
    }
    if (url.pathname === `${DS_PATH}/${DS}`) {
      if (api.ds === undefined) {
        answerStatus(res, 404);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(api.ds));
      return;
    }
    if (url.pathname === '/api/v1/pods' || url.pathname.endsWith('/network-attachment-definitions')) {
      if (watch) {
        holdWatch(res, open);
        return;
      }
      list(res, []);
      return;
    }
    answerStatus(res, 404);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  api.url = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  api.close = async () => {
    for (const w of [...open, ...api.dsWatchers]) w.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return api;
}

let tmp: string;
let api: FakeApi;
let confDir: string;
let binDir: string;

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'np-uninstall-'));
  api = await startApi();
  confDir = path.join(tmp, 'net.d');
  binDir = path.join(tmp, 'bin');
  await mkdir(confDir);
  await writeFile(
    path.join(confDir, '10-cluster.conflist'),
    JSON.stringify({ cniVersion: '0.4.0', name: 'cluster', plugins: [{ type: 'bridge', bridge: 'npu0' }] }),
  );
  const src = path.join(tmp, 'netplumb-shim.src');
  await writeFile(src, '#!/bin/sh\n');
  await install(binDir, [{ name: 'netplumb-shim', source: src }]);
});

afterEach(async () => {
  await api.close();
  await rm(tmp, { recursive: true, force: true });
});

async function until(pred: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 15_000;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts the daemon command; `sigterm()` delivers SIGTERM and resolves when the command returned. */
async function startDaemon(): Promise<{ sigterm(): Promise<void> }> {
  const kubeconfig = path.join(tmp, 'kubeconfig');
  await writeFile(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: api.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user: { token: 'sa-token' } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    }),
  );
  const daemonConfig = path.join(tmp, 'daemon-config.json');
  await writeFile(
    daemonConfig,
    JSON.stringify({
      cniDir: path.join(tmp, 'cache'),
      logFile: path.join(tmp, 'daemon.log'),
      logToStderr: false,
    }),
  );
  const handlers: (() => void)[] = [];
  const sink = { write: () => true };
  const done = cniDaemonCommand({
    env: { POD_NAMESPACE: NS },
    stdout: sink,
    stderr: sink,
    on: (_signal, fn) => handlers.push(fn),
  }).parseAsync(
    [
      `--socket=${path.join(tmp, 'run', 'cni.sock')}`,
      `--cni-conf-dir=${confDir}`,
      `--cni-bin-dir=${binDir}`,
      `--kubeconfig=${kubeconfig}`,
      `--daemon-config=${daemonConfig}`,
      '--node-name=n1',
      '--spawner=none',
      `--sriov-state-dir=${path.join(tmp, 'sriov')}`,
      '--delegate-log-dir=',
      `--uninstall-on-delete=${DS}`,
    ],
    { from: 'user' },
  );
  let failed: Error | undefined;
  done.catch((err: unknown) => {
    failed = err instanceof Error ? err : new Error(`the daemon command failed: ${String(err)}`);
  });
  const up = (p: () => boolean) => () => {
    if (failed !== undefined) throw failed;
    return p();
  };
  await until(
    up(() => existsSync(path.join(confDir, '00-netplumb.conflist'))),
    'the generated config',
  );
  await until(
    up(() => api.dsWatchers.length > 0),
    'the DaemonSet watch',
  );
  return {
    async sigterm() {
      for (const h of handlers) h();
      await done;
    },
  };
}

const installed = (): { conf: boolean; shim: boolean } => ({
  conf: existsSync(path.join(confDir, '00-netplumb.conflist')),
  shim: existsSync(path.join(binDir, 'netplumb-shim')),
});

async function decisionLogged(): Promise<{ uninstall: boolean; reason: string }> {
  const lines = (await readFile(path.join(tmp, 'daemon.log'), 'utf8')).trim().split('\n');
  const line = lines
    .map((l) => JSON.parse(l) as { msg: string })
    .find((l) => l.msg === 'uninstall-on-delete');
  expect(line, 'the decision is logged').toBeDefined();
  return line as unknown as { uninstall: boolean; reason: string };
}

describe('cni-daemon --uninstall-on-delete: uninstall vs restart at SIGTERM', () => {
  it.each([
    [401, 'the ServiceAccount (its token) went first'],
    [403, 'the Role went first'],
  ])(
    'kubectl delete -k (%i at SIGTERM: %s), then the DaemonSet deleted: removes the config and the executables',
    async (status) => {
      const d = await startDaemon();
      api.auth = status;
      api.deleteDs();
      await d.sigterm();
      expect(installed()).toEqual({ conf: false, shim: false });
      expect((await decisionLogged()).uninstall).toBe(true);
    },
  );

  it('a foreground deletion (deletionTimestamp seen on the watch) uninstalls too', async () => {
    const d = await startDaemon();
    api.markDeleting();
    api.auth = 401;
    await d.sigterm();
    expect(installed()).toEqual({ conf: false, shim: false });
  });

  it('a rollout or a deleted pod (the DaemonSet exists) keeps the config and the executables', async () => {
    const d = await startDaemon();
    await d.sigterm();
    expect(installed()).toEqual({ conf: true, shim: true });
    expect(await decisionLogged()).toMatchObject({ uninstall: false });
  });

  it.each([401, 403, 503])(
    'the API refusing or failing (%i) with no deletion seen keeps them (a restart must never strip the node)',
    async (status) => {
      const d = await startDaemon();
      api.auth = status;
      await d.sigterm();
      expect(installed()).toEqual({ conf: true, shim: true });
    },
  );
});

describe('decideUninstall', () => {
  it('uninstalls only on a deletion seen by the watch or the GET', () => {
    for (const watched of [undefined, 'present'] as const) {
      expect(decideUninstall(watched, { kind: 'ok', state: 'present' }).uninstall).toBe(false);
      expect(decideUninstall(watched, { kind: 'ok', state: 'gone' }).uninstall).toBe(true);
      expect(decideUninstall(watched, { kind: 'ok', state: 'deleting' }).uninstall).toBe(true);
      expect(decideUninstall(watched, { kind: 'refused', status: 401 }).uninstall).toBe(false);
      expect(decideUninstall(watched, { kind: 'failed', detail: 'x' }).uninstall).toBe(false);
      expect(decideUninstall(watched, undefined).uninstall).toBe(false);
    }
    for (const watched of ['gone', 'deleting'] as const) {
      expect(decideUninstall(watched, { kind: 'refused', status: 403 }).uninstall).toBe(true);
      expect(decideUninstall(watched, undefined).uninstall).toBe(true);
    }
  });
});
