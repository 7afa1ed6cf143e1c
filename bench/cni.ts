// netplumb-cni's own overhead: ADD+DEL of a pod with 3 macvlan attachments (plus its macvlan cluster
// network: 4 delegates, real netns, veth master, host-local IPAM), measured three ways in one run:
// - baseline: the same 4 delegate configs run directly through the chain runner (exec of the plugins);
// - netplumb-cni in-process (createMetaPlugin, as the daemon runs it) against the fake API server;
// - netplumb-cni as an executable (esbuild bundle, one Node process per ADD and per DEL).
// Baseline and in-process runs are interleaved (load drift hits both alike); the overhead is the
// median of the paired differences. The executable's ADD and DEL are timed separately (DEL does not
// load client-node).
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import pino from 'pino';
import { createChainRunner } from '../cni/chain.js';
import type { RuntimeConf } from '../cni/chain.js';
import { createExecRunner, createInProcessRunner } from '../cni/exec.js';
import { createKubeClient } from '../cni/meta/kube-client-node.js';
import { systemClock } from '../lib/clock.js';
import { createMetaPlugin } from '../cni/meta/plugin.js';
import { createPodResourcesClient } from '../cni/meta/podresources.js';
import { parseNetworkConfig } from '../cni/network-config.js';
import { createPlugin } from '../cni/skel.js';
import type { CniRequest } from '../cni/skel.js';
import { startFakeApiServer } from '../sim/apiserver.js';
import type { Reporter } from './types.js';

const sh = promisify(execFile);
const PLUGINS = '/usr/lib/cni';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ITERATIONS = 21;
const WARMUP = 2;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

function p99(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)] ?? 0;
}

async function sample(fn: () => Promise<void>, iterations = ITERATIONS): Promise<number[]> {
  for (let i = 0; i < WARMUP; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

/** Runs a then b, ITERATIONS times (after warm-up); returns both series and the paired b − a. */
async function paired(a: () => Promise<void>, b: () => Promise<void>) {
  for (let i = 0; i < WARMUP; i++) {
    await a();
    await b();
  }
  const as: number[] = [];
  const bs: number[] = [];
  for (let i = 0; i < ITERATIONS; i++) {
    let t = performance.now();
    await a();
    as.push(performance.now() - t);
    t = performance.now();
    await b();
    bs.push(performance.now() - t);
  }
  return { as, bs, diffs: bs.map((x, i) => x - (as[i] ?? 0)) };
}

function runExe(
  file: string,
  env: Record<string, string>,
  stdin: string,
): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file], { env: { ...process.env, ...env } });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout });
    });
    child.stdin.end(stdin);
  });
}

export async function run(report: Reporter): Promise<void> {
  const id = Math.random().toString(36).slice(2, 8);
  const ns = `np-cni-b${id}`;
  const master = `npcb${id}`;
  const dir = await mkdtemp(path.join(tmpdir(), 'np-cni-bench-'));
  const api = await startFakeApiServer();
  await sh('ip', ['netns', 'add', ns]);
  try {
    await sh('ip', ['link', 'add', master, 'type', 'veth', 'peer', 'name', `${master}p`]);
    await sh('ip', ['link', 'set', master, 'up']);
    const dataDir = path.join(dir, 'ipam');
    const mk = (subnet: string) => ({
      cniVersion: '1.0.0',
      type: 'macvlan',
      master,
      mode: 'bridge',
      ipam: { type: 'host-local', subnet, dataDir },
    });
    const clusterFile = path.join(dir, 'cluster.conflist');
    await writeFile(
      clusterFile,
      JSON.stringify({ cniVersion: '1.0.0', name: 'cluster', plugins: [mk('10.80.0.0/16')] }),
    );
    for (const n of ['a', 'b', 'c'])
      api.addNad('default', `mv-${n}`, mk(`10.8${n.charCodeAt(0) - 96}.0.0/16`));
    api.addPod({
      namespace: 'default',
      name: 'bench',
      annotations: { 'k8s.v1.cni.cncf.io/networks': 'mv-a,mv-b,mv-c' },
    });
    const conf = {
      cniVersion: '1.0.0',
      name: 'netplumb-cni-network',
      type: 'netplumb',
      kubeconfig: await api.writeKubeconfig(path.join(dir, 'kubeconfig')),
      clusterNetwork: clusterFile,
      confDir: path.join(dir, 'net.d'),
      cniDir: path.join(dir, 'cache'),
      binDir: PLUGINS,
      devinfoDir: path.join(dir, 'devinfo'),
    };
    const env = (command: string, cid: string) => ({
      CNI_COMMAND: command,
      CNI_CONTAINERID: cid,
      CNI_NETNS: `/run/netns/${ns}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: PLUGINS,
      CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=bench;K8S_POD_UID=uid-bench',
    });
    let n = 0;

    // Baseline: the 4 delegates, directly.
    const chain = createChainRunner(createExecRunner({ binDirs: [PLUGINS], baseEnv: process.env }));
    const lists = [
      parseNetworkConfig({ cniVersion: '1.0.0', name: 'cluster', plugins: [mk('10.80.0.0/16')] }, 'bench'),
      ...['a', 'b', 'c'].map((x) =>
        parseNetworkConfig({ ...mk(`10.8${x.charCodeAt(0) - 96}.0.0/16`), name: `mv-${x}` }, 'bench'),
      ),
    ];
    const direct = async () => {
      const cid = `d${n++}`;
      const rts: RuntimeConf[] = lists.map((_, i) => ({
        containerId: cid,
        netns: `/run/netns/${ns}`,
        ifname: i === 0 ? 'eth0' : `net${i}`,
        args: [],
        capabilityArgs: {},
        path: [PLUGINS],
      }));
      const results = [];
      for (const [i, l] of lists.entries()) results.push(await chain.add(l, rts[i]!));
      for (let i = lists.length - 1; i >= 0; i--) await chain.del(lists[i]!, rts[i]!, results[i]);
    };

    // In-process, as the daemon runs it.
    const plugin = createMetaPlugin({
      logger: pino({ level: 'silent' }),
      clock: systemClock,
      kubeFor: (c) => (c.kubeconfig === undefined ? undefined : createKubeClient(c.kubeconfig)),
      podResourcesFor: (s) => createPodResourcesClient(s),
      runnerFor: (c) => createExecRunner({ binDirs: [c.binDir], baseEnv: process.env }),
    });
    const call = async (req: CniRequest) => {
      const res = await plugin(req);
      if (res.exitCode !== 0)
        throw new Error(`netplumb-cni ${req.env['CNI_COMMAND'] ?? ''} failed: ${res.stdout}`);
    };
    const inProc = await paired(direct, async () => {
      const cid = `i${n++}`;
      await call({ env: env('ADD', cid), stdin: JSON.stringify(conf) });
      await call({ env: env('DEL', cid), stdin: JSON.stringify(conf) });
    });

    // The meta-plugin alone: the same pod, its 4 delegates replaced by in-process no-ops.
    const noop = createPlugin({
      supportedVersions: ['1.0.0'],
      add: (c) =>
        Promise.resolve({ interfaces: [{ name: c.ifname, sandbox: c.netns }], ips: [], routes: [], dns: {} }),
      del: () => Promise.resolve(),
      check: () => Promise.resolve(),
    });
    const bare = createMetaPlugin({
      logger: pino({ level: 'silent' }),
      clock: systemClock,
      kubeFor: (c) => (c.kubeconfig === undefined ? undefined : createKubeClient(c.kubeconfig)),
      podResourcesFor: (s) => createPodResourcesClient(s),
      runnerFor: () => createInProcessRunner({ macvlan: noop }),
    });
    const alone = await sample(async () => {
      const cid = `o${n++}`;
      for (const command of ['ADD', 'DEL']) {
        const res = await bare({ env: env(command, cid), stdin: JSON.stringify(conf) });
        if (res.exitCode !== 0) throw new Error(`netplumb-cni ${command} failed: ${res.stdout}`);
      }
    }, 101);

    // As an executable: bundle once (node_modules stay external, resolved from the project).
    const outDir = path.join(ROOT, 'node_modules', '.cache', 'netplumb-bench');
    await mkdir(outDir, { recursive: true });
    // Code splitting keeps the executable's dynamic imports (client-node, grpc-js) lazy, as in dist/.
    await build({
      entryPoints: [path.join(ROOT, 'bin', 'netplumb-cni.ts')],
      bundle: true,
      splitting: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      outdir: outDir,
      outExtension: { '.js': '.mjs' },
      logLevel: 'error',
    });
    const exe = path.join(outDir, 'netplumb-cni.mjs');
    const exeAdd: number[] = [];
    const exeDel: number[] = [];
    const asExe = await sample(async () => {
      const cid = `x${n++}`;
      for (const [command, into] of [
        ['ADD', exeAdd],
        ['DEL', exeDel],
      ] as const) {
        const t = performance.now();
        const r = await runExe(exe, env(command, cid), JSON.stringify(conf));
        into.push(performance.now() - t);
        if (r.code !== 0) throw new Error(`netplumb-cni ${command} exited ${r.code}: ${r.stdout}`);
      }
    });
    exeAdd.splice(0, WARMUP);
    exeDel.splice(0, WARMUP);

    const base = median(inProc.as);
    report({
      name: 'cni: ADD+DEL 4 delegates direct (baseline)',
      medianMs: base,
      p99Ms: p99(inProc.as),
      samples: inProc.as.length,
    });
    const overheadIn = median(inProc.diffs);
    report({
      name: 'cni: ADD+DEL pod, 3 attachments, in-process',
      medianMs: median(inProc.bs),
      p99Ms: p99(inProc.bs),
      samples: inProc.bs.length,
      // Paired difference; on a loaded machine it is within the delegates' own noise. The
      // no-op row below is the meta-plugin's cost; the ≤ 5 ms goal is the daemon's (bench/daemon).
      extra: { overheadMs: overheadIn, ratio: median(inProc.bs) / base },
    });
    report({
      name: 'cni: ADD+DEL pod, 3 attachments, no-op delegates',
      medianMs: median(alone),
      p99Ms: p99(alone),
      samples: alone.length,
      extra: { note: 'meta-plugin alone: 8 API calls (pod, 3 NADs, status, 3 events), 5 cache writes' },
    });
    report({
      name: 'cni: ADD+DEL pod, 3 attachments, executable',
      medianMs: median(asExe),
      p99Ms: p99(asExe),
      samples: asExe.length,
      extra: {
        overheadMs: median(asExe) - base,
        ratio: median(asExe) / base,
        addMs: median(exeAdd),
        delMs: median(exeDel),
      },
    });
  } finally {
    await api.stop();
    await sh('ip', ['netns', 'del', ns]).catch(() => undefined);
    await sh('ip', ['link', 'del', master]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}
