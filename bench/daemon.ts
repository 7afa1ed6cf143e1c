// Daemon mode vs thin mode, on this machine, in one run:
// - shim start-up: the C launcher's round trip to the daemon (VERSION) vs starting Node.js, vs
//   exec'ing a Go delegate directly;
// - ADD+DEL of a pod with 3 attachments (three macvlan delegates on a veth master, real netns)
//   via thin netplumb-cni (a Node process per call) vs the C shim → daemon, at concurrency 1 and 16,
//   against the baseline of calling the three delegates directly;
// - the daemon's RSS at rest and its peak under 16 concurrent ADDs (sets the DaemonSet limit).
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildShim } from '../cni/daemon/shim-build.js';
import type { Reporter } from './types.js';

const sh = promisify(execFile);
const CNI_BIN =
  ['/opt/cni/bin', '/usr/lib/cni'].find((d) => existsSync(path.join(d, 'macvlan'))) ?? '/usr/lib/cni';

function root(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

/** argv of our executable: the built JavaScript when present (what a node runs), else tsx. */
function entry(name: 'netplumb' | 'netplumb-cni'): string[] {
  const r = root();
  const built = path.join(r, 'dist', 'bin', `${name}.js`);
  if (existsSync(built)) return [built];
  return [
    '--import',
    path.join(r, 'node_modules', 'tsx', 'dist', 'loader.mjs'),
    path.join(r, 'bin', `${name}.ts`),
  ];
}

/** Thin mode as a host runs it: the single-executable build when present, else node + the entry. */
function thinCommand(): { file: string; args: string[]; label: string } {
  const sea = path.join(root(), 'dist', 'sea', 'netplumb-cni');
  if (existsSync(sea)) return { file: sea, args: [], label: 'SEA executable' };
  const args = entry('netplumb-cni');
  return {
    file: process.execPath,
    args,
    label: args[0]?.endsWith('.js') === true ? 'node dist/' : 'node + tsx',
  };
}

interface Exec {
  code: number | null;
  stdout: string;
  ms: number;
}

function exec(file: string, args: string[], env: Record<string, string>, stdin: string): Promise<Exec> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn(file, args, { env });
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.resume();
    p.on('error', reject);
    p.on('close', (code) => {
      resolve({ code, stdout, ms: performance.now() - t0 });
    });
    p.stdin.on('error', () => undefined);
    p.stdin.end(stdin);
  });
}

function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

async function rssMiB(pid: number): Promise<{ rss: number; hwm: number }> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(text)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

async function waitSocket(p: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(p);
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => {
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`daemon socket ${p} did not come up`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function run(report: Reporter): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/daemon needs root (network namespaces)');
  const id = randomBytes(2).toString('hex');
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'np-bench-daemon-'));
  const master = `npb${id}m`;
  const namespaces: string[] = [];
  const shim = (await buildShim(path.join(tmp, 'netplumb-shim'))).file;
  const socket = path.join(tmp, 'run', 'cni.sock');
  let daemon: ReturnType<typeof spawn> | undefined;
  try {
    await sh('ip', ['link', 'add', master, 'type', 'veth', 'peer', 'name', `${master}p`]);
    await sh('ip', ['link', 'set', master, 'up']);
    for (let i = 0; i < 16; i++) {
      const ns = `npb${id}-${i}`;
      await sh('ip', ['netns', 'add', ns]);
      namespaces.push(ns);
    }
    const macvlan = (n: number): object => ({
      cniVersion: '1.0.0',
      name: `net${n}`,
      type: 'macvlan',
      master,
      mode: 'bridge',
      ipam: { type: 'host-local', subnet: `10.${100 + n}.0.0/16`, dataDir: path.join(tmp, 'ipam') },
    });
    const meta = {
      cniVersion: '1.0.0',
      name: 'bench',
      type: 'netplumb',
      binDir: CNI_BIN,
      cniDir: path.join(tmp, 'cache'),
      delegates: [macvlan(0), macvlan(1), macvlan(2)],
    };
    const thinConf = JSON.stringify(meta);
    const daemonConf = JSON.stringify({ ...meta, type: 'netplumb-shim', daemonSocket: socket });
    const env = (cmd: string, i: number, k: number): Record<string, string> => ({
      CNI_COMMAND: cmd,
      CNI_CONTAINERID: `b${id}-${i}-${k}`,
      CNI_NETNS: `/run/netns/${namespaces[i]!}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: CNI_BIN,
      CNI_ARGS: `IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=p${i}`,
    });

    // The daemon as its own process, so its RSS is its own.
    await mkdir(path.dirname(socket), { recursive: true });
    daemon = spawn(
      process.execPath,
      [...entry('netplumb'), 'cni-daemon', '--socket', socket, '--no-write-config', '--log-level', 'warn'],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    await waitSocket(socket, 20_000);
    const pid = daemon.pid!;

    // Shim start-up.
    const N = 40;
    const shimMs: number[] = [];
    const nodeMs: number[] = [];
    const directMs: number[] = [];
    const version = { CNI_COMMAND: 'VERSION' };
    for (let i = 0; i < N; i++) {
      shimMs.push((await exec(shim, [], version, daemonConf)).ms);
      nodeMs.push((await exec(process.execPath, ['-e', ''], {}, '')).ms);
      directMs.push((await exec(path.join(CNI_BIN, 'macvlan'), [], version, '{"cniVersion":"1.0.0"}')).ms);
    }
    // The launcher alone: the same shim against a server that answers at once (no daemon work).
    const launcherMs: number[] = [];
    const bare = path.join(tmp, 'bare.sock');
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'x-cni-exit-code': '0', 'content-length': '2' }).end('{}');
      });
    });
    await new Promise<void>((r) => server.listen(bare, r));
    const bareConf = JSON.stringify({ cniVersion: '1.0.0', daemonSocket: bare });
    for (let i = 0; i < N; i++) launcherMs.push((await exec(shim, [], version, bareConf)).ms);
    await new Promise((r) => server.close(r));
    const p50 = (xs: number[]): number => pct(xs, 50);
    report({
      name: 'shim start-up: C launcher alone (spawn → socket → answer)',
      medianMs: p50(launcherMs),
      p99Ms: pct(launcherMs, 99),
      samples: N,
      goal: '≤ 10 ms per call',
      goalMet: p50(launcherMs) <= 10,
      extra: { goExecMs: p50(directMs), nodeStartMs: p50(nodeMs) },
    });
    report({
      name: 'CNI VERSION through C shim → daemon (shim + daemon work)',
      medianMs: p50(shimMs),
      p99Ms: pct(shimMs, 99),
      samples: N,
      extra: {
        nodeStartMs: p50(nodeMs),
        macvlanVersionMs: p50(directMs),
        vsNode: `${(p50(nodeMs) / p50(shimMs)).toFixed(1)}x faster`,
      },
    });

    const rest = await rssMiB(pid);

    // ADD+DEL of a 3-attachment pod.
    const direct = async (i: number, k: number): Promise<number> => {
      const t0 = performance.now();
      for (const cmd of ['ADD', 'DEL']) {
        for (let n = 0; n < 3; n++) {
          const e = { ...env(cmd, i, k), CNI_IFNAME: n === 0 ? 'eth0' : `net${n}` };
          const r = await exec(path.join(CNI_BIN, 'macvlan'), [], e, JSON.stringify(macvlan(n)));
          if (r.code !== 0) throw new Error(`macvlan ${cmd}: ${r.stdout}`);
        }
      }
      return performance.now() - t0;
    };
    const thin = thinCommand();
    const viaThin = async (i: number, k: number): Promise<number> => {
      const t0 = performance.now();
      for (const cmd of ['ADD', 'DEL']) {
        const r = await exec(thin.file, thin.args, env(cmd, i, k), thinConf);
        if (r.code !== 0) throw new Error(`thin ${cmd}: ${r.stdout}`);
      }
      return performance.now() - t0;
    };
    const viaDaemon = async (i: number, k: number): Promise<number> => {
      const t0 = performance.now();
      for (const cmd of ['ADD', 'DEL']) {
        const r = await exec(shim, [], env(cmd, i, k), daemonConf);
        if (r.code !== 0) throw new Error(`daemon ${cmd}: ${r.stdout}`);
      }
      return performance.now() - t0;
    };

    let peak = rest.rss;
    const sampler = setInterval(() => {
      void rssMiB(pid).then((m) => {
        peak = Math.max(peak, m.rss);
      });
    }, 10);
    const results: Record<string, { c1: number[]; c16: number[] }> = {};
    // Thin mode costs a Node start per call: fewer rounds keep the run short.
    for (const [name, fn, rounds1, rounds16] of [
      ['direct delegates (baseline)', direct, 10, 2],
      ['thin netplumb-cni (node per call)', viaThin, 5, 1],
      ['daemon (C shim → daemon)', viaDaemon, 10, 2],
    ] as const) {
      const c1: number[] = [];
      for (let k = 0; k < rounds1; k++) c1.push(await fn(0, k));
      const c16: number[] = [];
      for (let k = 0; k < rounds16; k++) {
        c16.push(...(await Promise.all(Array.from({ length: 16 }, (_, i) => fn(i, 1000 + k)))));
      }
      results[name] = { c1, c16 };
    }
    clearInterval(sampler);
    const base = results['direct delegates (baseline)']!;
    for (const [name, r] of Object.entries(results)) {
      for (const [label, xs, b] of [
        ['concurrency 1', r.c1, base.c1],
        ['concurrency 16', r.c16, base.c16],
      ] as const) {
        report({
          name: `ADD+DEL 3-attachment pod, ${label}: ${name}`,
          medianMs: p50(xs),
          p99Ms: pct(xs, 99),
          samples: xs.length,
          extra: {
            vsDirect: `${(p50(xs) / p50(b)).toFixed(2)}x`,
            ...(name.startsWith('thin') ? { thin: thin.label } : {}),
          },
        });
      }
    }
    const after = await rssMiB(pid);
    report({
      name: 'daemon RSS: at rest / peak under 16 concurrent ADD+DEL',
      medianMs: 0,
      samples: 1,
      extra: { restMiB: rest.rss, peakMiB: Math.max(peak, after.hwm), afterMiB: after.rss },
    });
  } finally {
    daemon?.kill('SIGTERM');
    for (const ns of namespaces) await sh('ip', ['netns', 'del', ns]).catch(() => undefined);
    await sh('ip', ['link', 'del', master]).catch(() => undefined);
    await rm(tmp, { recursive: true, force: true });
  }
}
