// The honest CNI benchmark (`npm run bench -- cni-pod`): one pod with 4 attachments
//   eth0 bridge + host-local (cluster network), net1 macvlan + host-local, net2 macvlan + static,
//   net3 host-device (a veth of its own per pod slot)
// ADD then DEL, in real network namespaces, with Debian's plugins from /usr/lib/cni, against the fake
// API server over HTTPS (pod GET, NAD GETs, status PUT, events; list+watch for the daemon's informers).
// Three ways, interleaved in every round (the order rotates), at concurrency 1 and 16:
//   floor: the same delegate calls made directly (prevResult on DEL, as the meta-plugin sends it);
//   thick: the C shim → the CNI daemon (its own process, as on a node);
//   thin:  netplumb-cni as `netplumb install` lays it out (the C launcher, which starts netplumb-spawner
//          and execs the Node single executable netplumb-cni-node beside it), one per CNI call.
// Every process (delegate, shim, thin executable) is started through netplumb-spawner, a vfork+execve
// helper, as a Go runtime would start it: nobody pays for forking Node.js except what is measured.
// Ratios are per-round pairs (round k of thick / round k of floor). The daemon's RSS (at rest, peak
// under c=16) and its CPU per pod (utime+stime from /proc, daemon and its spawner helper) are reported.
// NETPLUMB_BENCH_ROUNDS overrides the 20 rounds (for quick looks; the README quotes 20).
// NETPLUMB_BENCH_SPAWNER_B=<helper> adds a fourth way, thickB: a second daemon (same build) whose
// delegates start through that helper, interleaved with the others: an A/B of two spawner builds.
// NETPLUMB_BENCH_DAEMON_FLAGS_B="<node flags>" starts that second daemon with other Node.js flags
// (an A/B of V8 tiers: e.g. --jitless against --no-opt); with it alone, B uses the same helper as A.
// NETPLUMB_BENCH_DAEMON_B=<dist/bin/netplumb.js of another build> runs that second daemon from that
// build (`npm run build` of an older commit): an A/B of two daemon builds.
// NETPLUMB_BENCH_THIN_B=<executable> adds thinB: another netplumb-cni build (e.g. dist/sea/netplumb-cni
// of an older commit after `npm run build:sea`: its launcher, or before the launcher its executable),
// interleaved with the others: an A/B of two thin builds.
// NETPLUMB_BENCH_MODES=floor,thin (a comma list) runs only those ways (for quick looks).
import { execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createHelperSpawner } from '../cni/daemon/spawner/client.js';
import type { HelperSpawner } from '../cni/daemon/spawner/client.js';
import { startFakeApiServer } from '../sim/apiserver.js';
import type { FakeApiServer } from '../sim/apiserver.js';
import {
  CNI_BIN,
  DAEMON_NODE_FLAGS,
  buildArtifacts,
  makeCert,
  pct,
  procCpuMs,
  procRssMiB,
  removeArtifacts,
  startDaemon,
  waitFor,
} from './cni-pod-support.js';
import type { Artifacts } from './cni-pod-support.js';
import type { Reporter } from './types.js';

const sh = promisify(execFile);
const SLOTS = 16;
const NS = 'bench';
type Mode = 'floor' | 'thick' | 'thickB' | 'thin' | 'thinB';
const FLAGS_B = process.env['NETPLUMB_BENCH_DAEMON_FLAGS_B']?.split(' ').filter((f) => f !== '');
const SPAWNER_B_ENV = process.env['NETPLUMB_BENCH_SPAWNER_B'];
/** Whether there is a second daemon, thickB. */
const DAEMON_B = process.env['NETPLUMB_BENCH_DAEMON_B'];
const HAS_B = SPAWNER_B_ENV !== undefined || FLAGS_B !== undefined || DAEMON_B !== undefined;
/** The daemon's helper: NETPLUMB_BENCH_SPAWNER, else the one the bench built. */
const spawnerA = (a: Artifacts): string => process.env['NETPLUMB_BENCH_SPAWNER'] ?? a.spawner;
/** The second daemon's helper: NETPLUMB_BENCH_SPAWNER_B, else the first daemon's. */
const spawnerB = (a: Artifacts): string => SPAWNER_B_ENV ?? spawnerA(a);
const THIN_B = process.env['NETPLUMB_BENCH_THIN_B'];
const ONLY = process.env['NETPLUMB_BENCH_MODES']?.split(',');
const MODES: readonly Mode[] = (['floor', 'thick', 'thickB', 'thin', 'thinB'] as const).filter(
  (m) =>
    (m !== 'thickB' || HAS_B) &&
    (m !== 'thinB' || THIN_B !== undefined) &&
    (ONLY === undefined || m === 'floor' || ONLY.includes(m)),
);

interface Env {
  readonly id: string;
  readonly tmp: string;
  readonly master: string;
  readonly bridge: string;
  readonly namespaces: string[];
  readonly hostDevs: string[];
}

function delegateConfs(e: Env, slot: number): { ifname: string; conf: Record<string, unknown> }[] {
  const dataDir = path.join(e.tmp, 'ipam');
  return [
    {
      ifname: 'eth0',
      conf: {
        cniVersion: '1.0.0',
        name: 'cluster',
        type: 'bridge',
        bridge: e.bridge,
        ipam: { type: 'host-local', subnet: '10.210.0.0/16', dataDir },
      },
    },
    {
      ifname: 'net1',
      conf: {
        cniVersion: '1.0.0',
        name: 'mv-hl',
        type: 'macvlan',
        master: e.master,
        mode: 'bridge',
        ipam: { type: 'host-local', subnet: '10.211.0.0/16', dataDir },
      },
    },
    {
      ifname: 'net2',
      conf: {
        cniVersion: '1.0.0',
        name: 'mv-static',
        type: 'macvlan',
        master: e.master,
        mode: 'bridge',
        ipam: { type: 'static', addresses: [{ address: '192.168.77.10/24' }] },
      },
    },
    {
      ifname: 'net3',
      conf: { cniVersion: '1.0.0', name: `hostdev-${slot}`, type: 'host-device', device: hostDev(e, slot) },
    },
  ];
}

function hostDev(e: Env, slot: number): string {
  return `npb${e.id}h${slot}`;
}

function cniEnv(e: Env, cmd: string, slot: number, cid: string, ifname: string): Record<string, string> {
  return {
    PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: cmd,
    CNI_CONTAINERID: cid,
    CNI_NETNS: `/run/netns/${e.namespaces[slot] ?? ''}`,
    CNI_IFNAME: ifname,
    CNI_PATH: CNI_BIN,
    CNI_ARGS: `IgnoreUnknown=true;K8S_POD_NAMESPACE=${NS};K8S_POD_NAME=p${slot};K8S_POD_INFRA_CONTAINER_ID=${cid};K8S_POD_UID=uid-p${slot}`,
  };
}

async function setUpNetwork(e: Env): Promise<void> {
  await sh('ip', ['link', 'add', e.master, 'type', 'veth', 'peer', 'name', `${e.master}p`]);
  await sh('ip', ['link', 'set', e.master, 'up']);
  for (let i = 0; i < SLOTS; i++) {
    const ns = `npb${e.id}-${i}`;
    await sh('ip', ['netns', 'add', ns]);
    e.namespaces.push(ns);
    const dev = hostDev(e, i);
    await sh('ip', ['link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev}p`]);
    e.hostDevs.push(dev);
  }
}

async function tearDownNetwork(e: Env): Promise<void> {
  for (const ns of e.namespaces) await sh('ip', ['netns', 'del', ns]).catch(() => undefined);
  for (const dev of [...e.hostDevs, e.master, e.bridge])
    await sh('ip', ['link', 'del', dev]).catch(() => undefined);
}

function setUpApi(api: FakeApiServer, e: Env): void {
  const [, mvHl, mvStatic] = delegateConfs(e, 0);
  api.addNad(NS, 'mv-hl', mvHl?.conf ?? {});
  api.addNad(NS, 'mv-static', mvStatic?.conf ?? {});
  for (let i = 0; i < SLOTS; i++) {
    api.addNad(NS, `hostdev-${i}`, delegateConfs(e, i)[3]?.conf ?? {});
    api.addPod({
      namespace: NS,
      name: `p${i}`,
      uid: `uid-p${i}`,
      annotations: { 'k8s.v1.cni.cncf.io/networks': `mv-hl,mv-static,hostdev-${i}` },
    });
  }
}

interface Runner {
  readonly spawner: HelperSpawner;
  readonly env: Env;
  readonly art: Artifacts;
  readonly thickConf: string;
  /** The thick conf of the second daemon (NETPLUMB_BENCH_SPAWNER_B), '' without one. */
  readonly thickConfB: string;
  readonly thinConf: string;
}

async function call(r: Runner, file: string, env: Record<string, string>, stdin: string): Promise<string> {
  const out = await r.spawner.run(file, env, stdin, 120_000);
  if (out.exitCode !== 0) {
    throw new Error(
      `${path.basename(file)} ${env['CNI_COMMAND'] ?? ''} ${env['CNI_IFNAME'] ?? ''} failed (exit ${String(out.exitCode)}): ${out.stdout} ${out.stderr}`,
    );
  }
  return out.stdout;
}

async function floorPod(r: Runner, slot: number, cid: string): Promise<void> {
  const confs = delegateConfs(r.env, slot);
  const results: unknown[] = [];
  for (const { ifname, conf } of confs) {
    const file = path.join(CNI_BIN, String(conf['type']));
    const out = await call(r, file, cniEnv(r.env, 'ADD', slot, cid, ifname), JSON.stringify(conf));
    results.push(JSON.parse(out));
  }
  for (const [i, { ifname, conf }] of [...confs.entries()].reverse()) {
    const file = path.join(CNI_BIN, String(conf['type']));
    const stdin = JSON.stringify({ ...conf, prevResult: results[i] });
    await call(r, file, cniEnv(r.env, 'DEL', slot, cid, ifname), stdin);
  }
}

/** The ways that run the thin executable (one process per CNI call). */
const isThin = (mode: Mode): boolean => mode === 'thin' || mode === 'thinB';

async function metaPod(r: Runner, mode: Exclude<Mode, 'floor'>, slot: number, cid: string): Promise<void> {
  const file = mode === 'thin' ? r.art.thin : mode === 'thinB' ? (THIN_B ?? '') : r.art.shim;
  const conf = isThin(mode) ? r.thinConf : mode === 'thick' ? r.thickConf : r.thickConfB;
  for (const cmd of ['ADD', 'DEL']) await call(r, file, cniEnv(r.env, cmd, slot, cid, 'eth0'), conf);
}

let seq = 0;
async function pod(r: Runner, mode: Mode, slot: number): Promise<number> {
  const cid = `b${r.env.id}${mode}${String(++seq)}`;
  const t0 = performance.now();
  if (mode === 'floor') await floorPod(r, slot, cid);
  else await metaPod(r, mode, slot, cid);
  return performance.now() - t0;
}

async function batch(r: Runner, mode: Mode, c: number): Promise<number[]> {
  return Promise.all(Array.from({ length: c }, (_, i) => pod(r, mode, i)));
}

interface Samples {
  /** Per round: the pods' ADD+DEL ms. */
  readonly rounds: Record<Mode, number[][]>;
}

interface DaemonWatch {
  pid: number;
  /** The spawner helper's /proc comm (its file name, cut to 15 characters). */
  helperComm: string;
  cpuMs: number;
  helperCpuMs: number;
  pods: number;
  peakMiB: number;
}

async function helperPids(pid: number, helperComm: string): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  const pids = text
    .trim()
    .split(/\s+/)
    .filter((x) => x !== '')
    .map(Number);
  const out: number[] = [];
  for (const p of pids) {
    const comm = await readFile(`/proc/${p}/comm`, 'utf8').catch(() => '');
    if (comm.trim() === helperComm) out.push(p);
  }
  return out;
}

async function cpuOf(pids: readonly number[]): Promise<number> {
  let sum = 0;
  for (const p of pids) sum += await procCpuMs(p).catch(() => 0);
  return sum;
}

/** The daemon of each thick mode, watched. */
type Watches = Partial<Record<Mode, DaemonWatch>>;

/** Runs one thick batch while sampling the daemon's RSS and CPU. */
async function thickBatch(r: Runner, mode: Mode, c: number, w: DaemonWatch): Promise<number[]> {
  const helpers = await helperPids(w.pid, w.helperComm);
  const cpu0 = await procCpuMs(w.pid);
  const h0 = await cpuOf(helpers);
  const state = { sampling: true };
  const sampler = (async () => {
    while (state.sampling) {
      w.peakMiB = Math.max(w.peakMiB, (await procRssMiB(w.pid)).rss);
      await new Promise((res) => setTimeout(res, 20));
    }
  })();
  try {
    return await batch(r, mode, c);
  } finally {
    state.sampling = false;
    await sampler;
    const helpersAfter = helpers.length > 0 ? helpers : await helperPids(w.pid, w.helperComm);
    w.cpuMs += (await procCpuMs(w.pid)) - cpu0;
    w.helperCpuMs += (await cpuOf(helpersAfter)) - (helpers.length > 0 ? h0 : 0);
    w.pods += c;
  }
}

async function rounds(r: Runner, n: number, c: number, ws: Watches, thinN = n): Promise<Samples> {
  const s: Samples = { rounds: { floor: [], thick: [], thickB: [], thin: [], thinB: [] } };
  for (let k = 0; k < n; k++) {
    const at = k % MODES.length;
    const order = [...MODES.slice(at), ...MODES.slice(0, at)];
    for (const mode of order) {
      if (isThin(mode) && k >= thinN) continue;
      const w = ws[mode];
      s.rounds[mode].push(w !== undefined ? await thickBatch(r, mode, c, w) : await batch(r, mode, c));
    }
  }
  return s;
}

function median(xs: readonly number[]): number {
  return pct(xs, 50);
}

const GOALS: Record<string, { c1?: number; c16?: number }> = {
  thick: { c1: 1.15, c16: 1.25 },
  thickB: { c1: 1.15, c16: 1.25 },
  thin: { c1: 2.0 },
  thinB: { c1: 2.0 },
};

function reportSamples(report: Reporter, c: number, s: Samples): void {
  const floorMed = s.rounds.floor.map(median);
  for (const mode of MODES) {
    const all = s.rounds[mode].flat();
    const ratios = s.rounds[mode].map((xs, k) => median(xs) / (floorMed[k] ?? NaN));
    const goal = c === 1 ? GOALS[mode]?.c1 : GOALS[mode]?.c16;
    const ratio = median(ratios);
    report({
      name: `cni-pod ADD+DEL 4 attachments, c=${c}: ${mode}`,
      medianMs: median(all),
      p99Ms: pct(all, 99),
      samples: all.length,
      ...(goal !== undefined && { goal: `≤ ${goal}× floor`, goalMet: ratio <= goal }),
      extra: {
        p90Ms: pct(all, 90),
        rounds: s.rounds[mode].length,
        ...(mode !== 'floor' && {
          ratioMedian: `${ratio.toFixed(2)}x`,
          ratioP90: `${pct(ratios, 90).toFixed(2)}x`,
        }),
      },
    });
  }
}

async function versionMs(r: Runner, file: string, conf: string, n: number): Promise<number[]> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await call(r, file, { CNI_COMMAND: 'VERSION' }, conf);
    xs.push(performance.now() - t0);
  }
  return xs;
}

async function reportVersion(report: Reporter, r: Runner): Promise<void> {
  const thin = await versionMs(r, r.art.thin, r.thinConf, 20);
  const node = await versionMs(r, process.execPath, '', 20).catch(() => [NaN]);
  report({
    name: 'netplumb-cni (thin executable) VERSION',
    medianMs: median(thin),
    p99Ms: pct(thin, 99),
    samples: thin.length,
    goal: '≤ 100 ms',
    goalMet: median(thin) <= 100,
    extra: { nodeAloneMs: median(node) },
  });
}

function reportDaemon(
  report: Reporter,
  w: DaemonWatch,
  restMiB: number,
  hwm: number,
  label = '',
  flags: readonly string[] = DAEMON_NODE_FLAGS,
): void {
  // NETPLUMB_BENCH_MODES without this daemon's way: it served no pod, so nothing about it is measured.
  if (w.pods === 0) return;
  const perPod = (w.cpuMs + w.helperCpuMs) / w.pods;
  report({
    name: `daemon${label} CPU per pod (daemon + spawner helper, utime+stime)`,
    medianMs: perPod,
    samples: w.pods,
    goal: '≤ 40 ms',
    goalMet: perPod <= 40,
    extra: { daemonMs: w.cpuMs / Math.max(1, w.pods), helperMs: w.helperCpuMs / Math.max(1, w.pods) },
  });
  report({
    name: `daemon${label} RSS MiB: rest / peak under c=16`,
    medianMs: 0,
    samples: 1,
    goal: '≤ 64 rest, ≤ 96 peak',
    goalMet: restMiB <= 64 && w.peakMiB <= 96,
    extra: { restMiB, peakMiB: w.peakMiB, vmHwmMiB: hwm, nodeFlags: flags.join(' ') || 'none' },
  });
}

async function setUp(e: Env): Promise<{ api: FakeApiServer; art: Artifacts; kubeconfig: string }> {
  const [art, tls] = await Promise.all([buildArtifacts(e.tmp), makeCert(e.tmp)]);
  const api = await startFakeApiServer({ tls });
  setUpApi(api, e);
  const kubeconfig = await api.writeKubeconfig(path.join(e.tmp, 'kubeconfig'));
  await setUpNetwork(e);
  return { api, art, kubeconfig };
}

function metaConfs(e: Env, kubeconfig: string, socket: string): { thick: string; thin: string } {
  const meta = {
    cniVersion: '1.0.0',
    name: 'netplumb-bench',
    type: 'netplumb',
    binDir: CNI_BIN,
    cniDir: path.join(e.tmp, 'cache'),
    delegates: [delegateConfs(e, 0)[0]?.conf],
  };
  return {
    thick: JSON.stringify({ ...meta, type: 'netplumb-shim', daemonSocket: socket }),
    thin: JSON.stringify({ ...meta, kubeconfig }),
  };
}

function watch(d: ChildProcess | undefined, helper: string | undefined): DaemonWatch | undefined {
  if (d === undefined || helper === undefined) return undefined;
  const helperComm = path.basename(helper).slice(0, 15);
  return { pid: d.pid ?? 0, helperComm, cpuMs: 0, helperCpuMs: 0, pods: 0, peakMiB: 0 };
}

async function measure(
  report: Reporter,
  r: Runner,
  daemon: ChildProcess,
  daemonB: ChildProcess | undefined,
): Promise<void> {
  const n = Number(process.env['NETPLUMB_BENCH_ROUNDS'] ?? 20);
  const w = watch(daemon, spawnerA(r.art)) as DaemonWatch;
  const wB = watch(daemonB, spawnerB(r.art));
  const ws: Watches = { thick: w, ...(wB && { thickB: wB }) };
  const warm: Watches = { thick: { ...w }, ...(wB && { thickB: { ...wB } }) };
  await rounds(r, 1, 1, warm);
  await rounds(r, 1, SLOTS, warm);
  await new Promise((res) => setTimeout(res, 2_000));
  const rest = (await procRssMiB(w.pid)).rss;
  const restB = wB && (await procRssMiB(wB.pid)).rss;
  await reportVersion(report, r);
  const load0 = os.loadavg()[0] ?? 0;
  const c1 = await rounds(r, n, 1, ws);
  // Thin at c=16 starts 16 Node executables at once: NETPLUMB_BENCH_THIN16_ROUNDS may cap its rounds.
  const thin16 = Number(process.env['NETPLUMB_BENCH_THIN16_ROUNDS'] ?? n);
  const c16 = await rounds(r, n, SLOTS, ws, Math.min(n, thin16));
  reportSamples(report, 1, c1);
  reportSamples(report, SLOTS, c16);
  reportDaemon(report, w, rest, (await procRssMiB(w.pid)).hwm);
  if (wB !== undefined && restB !== undefined)
    reportDaemon(
      report,
      wB,
      restB,
      (await procRssMiB(wB.pid)).hwm,
      ` B (${DAEMON_B ?? spawnerB(r.art)})`,
      FLAGS_B,
    );
  report({
    name: 'machine load (1-min average) before / after',
    medianMs: 0,
    samples: 1,
    extra: { before: load0, after: os.loadavg()[0] ?? 0, cores: os.cpus().length },
  });
}

export async function run(report: Reporter): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/cni-pod needs root (network namespaces)');
  const id = randomBytes(2).toString('hex');
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'np-bench-pod-'));
  const e: Env = { id, tmp, master: `npb${id}m`, bridge: `npb${id}br`, namespaces: [], hostDevs: [] };
  let daemon: ChildProcess | undefined;
  let daemonB: ChildProcess | undefined;
  let api: FakeApiServer | undefined;
  let spawner: HelperSpawner | undefined;
  let art: Artifacts | undefined;
  // Ctrl-C or a kill must not leave the daemon, its helper and the netns behind: the signal ends the
  // run and the finally below tears everything down.
  let onSignal = (): void => undefined;
  const interrupted = new Promise<never>((_, reject) => {
    onSignal = () => {
      reject(new Error('bench cni-pod interrupted: cleaning up'));
    };
  });
  interrupted.catch(() => undefined);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const s = await Promise.race([setUp(e), interrupted]);
    api = s.api;
    art = s.art;
    const socket = path.join(tmp, 'run', 'cni.sock');
    await mkdir(path.dirname(socket), { recursive: true });
    daemon = startDaemon(s.art, socket, s.kubeconfig, spawnerA(s.art));
    await waitFor(socket, 30_000);
    const socketB = path.join(tmp, 'run', 'cni-b.sock');
    if (HAS_B) {
      daemonB = startDaemon(s.art, socketB, s.kubeconfig, spawnerB(s.art), FLAGS_B, DAEMON_B);
      await waitFor(socketB, 30_000);
    }
    spawner = createHelperSpawner({ helper: s.art.spawner });
    const confs = metaConfs(e, s.kubeconfig, socket);
    const thickConfB = HAS_B ? metaConfs(e, s.kubeconfig, socketB).thick : '';
    const runner: Runner = {
      spawner,
      env: e,
      art: s.art,
      thickConf: confs.thick,
      thickConfB,
      thinConf: confs.thin,
    };
    await Promise.race([measure(report, runner, daemon, daemonB), interrupted]);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const d of [daemon, daemonB]) {
      if (d === undefined || d.exitCode !== null) continue;
      await new Promise((res) => {
        d.once('exit', res);
        d.kill('SIGTERM');
      });
    }
    await spawner?.close();
    await api?.stop();
    await tearDownNetwork(e);
    if (art !== undefined) await removeArtifacts(art);
    const leftovers = await readdir(tmp).catch(() => []);
    if (leftovers.length >= 0) await rm(tmp, { recursive: true, force: true });
  }
}
