// Issue 16's device-plugin goals, on the plugin as its own process: built to JavaScript file by
// file (as dist/ ships it), run with the DaemonSet's NODE_OPTIONS against the fake kubelet.
// - RSS at rest: VmRSS from /proc after start, registration and the Allocates, idle (rescans on);
//   CPU at rest: utime+stime over one whole cycle of rescan ticks before it.
// - Allocate p99 against a bare grpc-js DevicePlugin server in a process of its own, started with
//   the same flags, answering the same request with the plugin's own response (same bytes, so the
//   same payload size); the kubelet dials the plugin as kubelets < 1.26 do (authority = socket
//   path, through the authority front) and the bare server as grpc-js does. Interleaved per round.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { AllocateResponse, DevicePluginClient } from '../proto/gen/deviceplugin/v1beta1/api.js';
import type { AllocateRequest } from '../proto/gen/deviceplugin/v1beta1/api.js';
import { FULL_RESCAN_EVERY } from '../device-plugin/rescan-probe.js';
import { startFakeKubelet } from '../sim/kubelet.js';
import { buildJs } from './cni-pod-support.js';
import type { WrittenNode } from '../sim/simulated-node.js';
import type { Reporter } from './types.js';

export interface ProcessGoalsInput {
  readonly dir: string;
  readonly node: WrittenNode;
  /** On tmpfs when there is one (/var/run is tmpfs in production). */
  readonly devinfoRoot: string;
  readonly config: unknown;
  readonly resource: string;
}

const RSS_GOAL_MIB = 48;
const ROUNDS = 2_000;
const WARMUP = 200;
/**
 * Idle time over which CPU at rest is measured, before RSS is read: one whole cycle of rescan ticks
 * (every 10 s by default; a probe each, and a full rediscovery every FULL_RESCAN_EVERY-th).
 */
const REST_MS = FULL_RESCAN_EVERY * 10_000;

function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

/** The node flags of deployments/device-plugin.yaml's command (NETPLUMB_BENCH_DP_FLAGS overrides them). */
async function daemonSetNodeFlags(root: string): Promise<string[]> {
  const override = process.env['NETPLUMB_BENCH_DP_FLAGS'];
  if (override !== undefined) return override.split(' ').filter((f) => f !== '');
  const yaml = await readFile(path.join(root, 'deployments', 'device-plugin.yaml'), 'utf8');
  const command = /\n\s+command:\n((?:\s+- .*\n)+)/.exec(yaml)?.[1] ?? '';
  return [...command.matchAll(/- (--\S+)/g)].map((m) => m[1] ?? '');
}

// A DevicePlugin server with nothing behind it: grpc-js and the generated codec only.
const BARE_SERVER = `
import * as grpc from '@grpc/grpc-js';
import { AllocateResponse, DevicePluginService } from './proto/gen/deviceplugin/v1beta1/api.js';
const [sock, b64] = process.argv.slice(2);
const response = AllocateResponse.decode(Buffer.from(b64, 'base64'));
const server = new grpc.Server();
server.addService(DevicePluginService, {
  getDevicePluginOptions: (_c, cb) => cb(null, { preStartRequired: false, getPreferredAllocationAvailable: true }),
  listAndWatch: (call) => call.write({ devices: [] }),
  getPreferredAllocation: (_c, cb) => cb(null, { containerResponses: [] }),
  allocate: (_c, cb) => cb(null, response),
  preStartContainer: (_c, cb) => cb(null, {}),
});
server.bindAsync('unix:' + sock, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
  process.stdout.write('ready\\n');
});
`;

function started(child: ChildProcess, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (b: Buffer) => {
      if (b.toString().includes('ready')) resolve();
    });
    child.once('exit', (code) => {
      reject(new Error(`bench: ${what} exited with ${String(code)}`));
    });
  });
}

async function procStatus(pid: number): Promise<Record<string, number>> {
  const text = await readFile(`/proc/${String(pid)}/status`, 'utf8');
  const out: Record<string, number> = {};
  for (const k of ['VmRSS', 'VmHWM', 'RssAnon', 'RssFile'])
    out[k] = Number(new RegExp(`${k}:\\s+(\\d+)`).exec(text)?.[1] ?? NaN) / 1024;
  return out;
}

/** utime + stime of a process, in ms (clock ticks of 10 ms). */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${String(pid)}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

function allocateOn(client: DevicePluginClient, req: AllocateRequest): Promise<void> {
  return new Promise((resolve, reject) => {
    client.allocate(req, (err) => {
      if (err) reject(err);
      else resolve();
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await gone;
}

export async function runProcessGoals(report: Reporter, input: ProcessGoalsInput): Promise<void> {
  const root = projectRoot();
  const jsDir = path.join(root, 'node_modules', '.cache', `netplumb-dp-bench-${String(process.pid)}`);
  const children: ChildProcess[] = [];
  try {
    await mkdir(jsDir, { recursive: true });
    await buildJs(root, jsDir);
    await writeFile(path.join(jsDir, 'bare-dp-server.mjs'), BARE_SERVER);
    const flags = await daemonSetNodeFlags(root);
    const configFile = path.join(input.dir, 'proc-pcidp', 'config.json');
    await mkdir(path.dirname(configFile), { recursive: true });
    await writeFile(configFile, JSON.stringify(input.config));
    const kubelet = await startFakeKubelet({
      root: path.join(input.dir, 'kubelet-proc'),
      podResources: false,
    });
    // Logs at the default level (info, one line per Allocate) into a pipe, as into a container log.
    const plugin = spawn(
      process.execPath,
      [
        ...flags,
        path.join(jsDir, 'bin', 'netplumb.js'),
        'device-plugin',
        ...['--config', configFile, '--simulated-node', input.node.dir, '--kubelet-root', kubelet.root],
        ...['--devinfo-dir', path.join(input.devinfoRoot, 'devinfo-proc')],
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    children.push(plugin);
    plugin.stderr.resume();
    const conn = await kubelet.waitForPlugin(input.resource, 60_000);
    const ids = conn.latest().map((d) => d.ID);
    const reqFor = (i: number): AllocateRequest => ({
      containerRequests: [{ devicesIds: [ids[i % ids.length] ?? ''] }],
    });
    const sample = await kubelet.allocate(input.resource, [ids[0] ?? '']);
    const bareSock = path.join(input.dir, 'bare-dp.sock');
    const bare = spawn(
      process.execPath,
      [
        ...flags,
        path.join(jsDir, 'bare-dp-server.mjs'),
        bareSock,
        Buffer.from(AllocateResponse.encode(sample).finish()).toString('base64'),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(bare);
    await started(bare, 'bare server');
    const bareClient = new DevicePluginClient(`unix:${bareSock}`, grpc.credentials.createInsecure());
    const viaPlugin: number[] = [];
    const viaBare: number[] = [];
    const one = async (i: number, which: 'plugin' | 'bare'): Promise<void> => {
      const t0 = performance.now();
      await allocateOn(which === 'plugin' ? conn.client : bareClient, reqFor(i));
      if (i >= WARMUP) (which === 'plugin' ? viaPlugin : viaBare).push(performance.now() - t0);
    };
    for (let i = 0; i < WARMUP + ROUNDS; i++) {
      const first = i % 2 === 0 ? 'plugin' : 'bare';
      await one(i, first);
      await one(i, first === 'plugin' ? 'bare' : 'plugin');
    }
    bareClient.close();
    viaPlugin.sort((a, b) => a - b);
    viaBare.sort((a, b) => a - b);
    const p99 = quantile(viaPlugin, 0.99);
    const bareP99 = quantile(viaBare, 0.99);
    report({
      name: 'device-plugin process: Allocate (1 VF, device-info file, kubelet < 1.26 dial)',
      medianMs: quantile(viaPlugin, 0.5),
      p99Ms: p99,
      samples: viaPlugin.length,
      goal: 'p99 ≤ 1.5 × bare grpc-js Allocate p99 (same run, interleaved)',
      goalMet: p99 <= 1.5 * bareP99,
      extra: {
        bareMedianMs: quantile(viaBare, 0.5),
        bareP99Ms: bareP99,
        p99RatioVsBare: p99 / bareP99,
        medianRatioVsBare: quantile(viaPlugin, 0.5) / quantile(viaBare, 0.5),
        responseBytes: AllocateResponse.encode(sample).finish().length,
        nodeFlags: flags.join(' ') || '(none)',
        load1: loadavg()[0] ?? NaN,
      },
    });
    const cpu0 = await cpuMs(plugin.pid ?? 0);
    await new Promise((r) => setTimeout(r, REST_MS));
    const restCpuMsPerS = ((await cpuMs(plugin.pid ?? 0)) - cpu0) / (REST_MS / 1_000);
    const rss: number[] = [];
    let last: Record<string, number> = {};
    for (let i = 0; i < 5; i++) {
      last = await procStatus(plugin.pid ?? 0);
      rss.push(last['VmRSS'] ?? NaN);
      await new Promise((r) => setTimeout(r, 1_000));
    }
    rss.sort((a, b) => a - b);
    const rest = quantile(rss, 0.5);
    report({
      name: 'device-plugin process: RSS at rest (1,024 VFs, 2 pools)',
      medianMs: 0,
      samples: rss.length,
      goal: `VmRSS ≤ ${String(RSS_GOAL_MIB)} MiB`,
      goalMet: rest <= RSS_GOAL_MIB,
      extra: {
        rssMiB: rest,
        rssAnonMiB: last['RssAnon'] ?? NaN,
        rssFileMiB: last['RssFile'] ?? NaN,
        hwmMiB: last['VmHWM'] ?? NaN,
        restCpuMsPerS,
        restWindowS: REST_MS / 1_000,
        allocatesBefore: WARMUP + ROUNDS + 1,
        nodeFlags: flags.join(' ') || '(none)',
        load1: loadavg()[0] ?? NaN,
      },
    });
    await stopChild(plugin);
    await kubelet.stop();
  } finally {
    for (const c of children) await stopChild(c);
    await rm(jsDir, { recursive: true, force: true });
  }
}
