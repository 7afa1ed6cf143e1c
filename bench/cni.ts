// netplumb-cni's own overhead: ADD+DEL of a pod with 3 macvlan attachments (plus its macvlan cluster
// network: 4 delegates, real netns, veth master, host-local IPAM), measured three ways in one run:
// - baseline: the same 4 delegate configs run directly through the chain runner (exec of the plugins);
// - netplumb-cni in-process (createMetaPlugin, as the daemon runs it) against the fake API server;
// - netplumb-cni as an executable (esbuild bundle, one Node process per ADD and per DEL).
// Overhead = median(meta) − median(baseline).
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
import { createExecRunner } from '../cni/exec.js';
import { createKubeClient } from '../cni/meta/kube-client-node.js';
import { systemClock } from '../cni/meta/kube.js';
import { createMetaPlugin } from '../cni/meta/plugin.js';
import { createPodResourcesClient } from '../cni/meta/podresources.js';
import { parseNetworkConfig } from '../cni/network-config.js';
import type { CniRequest } from '../cni/skel.js';
import { startFakeApiServer } from '../test/fakes/apiserver.js';
import type { Reporter } from './types.js';

const sh = promisify(execFile);
const PLUGINS = '/usr/lib/cni';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ITERATIONS = 15;
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

async function sample(fn: () => Promise<void>): Promise<number[]> {
  for (let i = 0; i < WARMUP; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < ITERATIONS; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
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
    const direct = await sample(async () => {
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
    });

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
    const inProcess = await sample(async () => {
      const cid = `i${n++}`;
      await call({ env: env('ADD', cid), stdin: JSON.stringify(conf) });
      await call({ env: env('DEL', cid), stdin: JSON.stringify(conf) });
    });

    // As an executable: bundle once (node_modules stay external, resolved from the project).
    const outDir = path.join(ROOT, 'node_modules', '.cache', 'netplumb-bench');
    await mkdir(outDir, { recursive: true });
    const exe = path.join(outDir, 'netplumb-cni.mjs');
    await build({
      entryPoints: [path.join(ROOT, 'bin', 'netplumb-cni.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      outfile: exe,
      logLevel: 'error',
    });
    const asExe = await sample(async () => {
      const cid = `x${n++}`;
      for (const command of ['ADD', 'DEL']) {
        const r = await runExe(exe, env(command, cid), JSON.stringify(conf));
        if (r.code !== 0) throw new Error(`netplumb-cni ${command} exited ${r.code}: ${r.stdout}`);
      }
    });

    const base = median(direct);
    report({
      name: 'cni: ADD+DEL 4 delegates direct (baseline)',
      medianMs: base,
      p99Ms: p99(direct),
      samples: direct.length,
    });
    const overheadIn = median(inProcess) - base;
    report({
      name: 'cni: ADD+DEL pod, 3 attachments, in-process',
      medianMs: median(inProcess),
      p99Ms: p99(inProcess),
      samples: inProcess.length,
      extra: { overheadMs: overheadIn, ratio: median(inProcess) / base },
      goal: '≤ 5 ms overhead p50 (daemon mode)',
      goalMet: overheadIn <= 5,
    });
    const overheadExe = median(asExe) - base;
    report({
      name: 'cni: ADD+DEL pod, 3 attachments, executable',
      medianMs: median(asExe),
      p99Ms: p99(asExe),
      samples: asExe.length,
      extra: { overheadMs: overheadExe, ratio: median(asExe) / base, perCallMs: overheadExe / 2 },
    });
  } finally {
    await api.stop();
    await sh('ip', ['netns', 'del', ns]).catch(() => undefined);
    await sh('ip', ['link', 'del', master]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}
