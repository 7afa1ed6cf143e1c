// Builds and process-reading helpers of bench/cni-pod.ts (no `run`: not a benchmark itself).
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { buildSea } from '../cni/daemon/sea-build.js';
import { buildShim } from '../cni/daemon/shim-build.js';
import { buildLauncher, buildSpawner } from '../cni/daemon/spawner/build.js';

const sh = promisify(execFile);

/** Debian's reference plugins (not /opt/cni/bin, which other tools on a shared machine rewrite). */
export const CNI_BIN = process.env['NETPLUMB_BENCH_CNI_BIN'] ?? '/usr/lib/cni';

export function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

export interface Artifacts {
  readonly shim: string;
  readonly spawner: string;
  readonly thin: string;
  /** The daemon's entry (bin/netplumb.js) in a per-file JavaScript build, as dist/ ships it. */
  readonly daemonEntry: string;
  /** Where that build lives (removed at the end). */
  readonly jsDir: string;
}

const SOURCE_DIRS = ['lib', 'proto', 'sriov', 'device-plugin', 'cni', 'webhook', 'bin'];

/** The product's .ts files transpiled one by one (what `tsc` emits, without its type check); returns bin/netplumb.js. */
export async function buildJs(root: string, out: string): Promise<string> {
  const files: string[] = [];
  for (const dir of SOURCE_DIRS) {
    if (!existsSync(path.join(root, dir))) continue;
    for (const f of await readdir(path.join(root, dir), { recursive: true })) {
      if (f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.d.ts'))
        files.push(path.join(root, dir, f));
    }
  }
  await build({
    entryPoints: files,
    outdir: out,
    outbase: root,
    bundle: false,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'error',
  });
  return path.join(out, 'bin', 'netplumb.js');
}

export async function buildArtifacts(tmp: string): Promise<Artifacts> {
  const root = projectRoot();
  // Inside the project so that the build resolves node_modules like dist/ does.
  const jsDir = path.join(root, 'node_modules', '.cache', `netplumb-bench-${path.basename(tmp)}`);
  await mkdir(jsDir, { recursive: true });
  const [shim, spawner, daemonEntry] = await Promise.all([
    buildShim(path.join(tmp, 'netplumb-shim'), { force: true }),
    buildSpawner(path.join(tmp, 'netplumb-spawner'), { force: true }),
    buildJs(root, jsDir),
  ]);
  // As `netplumb install` lays it out: the launcher netplumb-cni, the Node executable beside it.
  const thin = path.join(tmp, 'netplumb-cni');
  await buildLauncher(thin, { force: true });
  await buildSea({ root, entry: 'bin/netplumb-cni.ts', out: path.join(tmp, 'netplumb-cni-node') });
  return { shim: shim.file, spawner: spawner.file, thin, daemonEntry, jsDir };
}

export async function removeArtifacts(a: Artifacts): Promise<void> {
  await rm(a.jsDir, { recursive: true, force: true });
}

/** A self-signed P-256 certificate for 127.0.0.1 (the fake API server's serving cert and CA). */
export async function makeCert(tmp: string): Promise<{ key: string; cert: string }> {
  const key = path.join(tmp, 'api.key');
  const cert = path.join(tmp, 'api.crt');
  await sh('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ]);
  return { key: await readFile(key, 'utf8'), cert: await readFile(cert, 'utf8') };
}

/**
 * The Node.js flags the DaemonSet starts the daemon with: the NODE_OPTIONS of
 * deployments/cni-daemon.yaml. NETPLUMB_BENCH_DAEMON_FLAGS overrides them (e.g. to profile).
 */
export function daemonNodeFlags(): string[] {
  const override = process.env['NETPLUMB_BENCH_DAEMON_FLAGS'];
  const yaml = readFileSync(path.join(projectRoot(), 'deployments', 'cni-daemon.yaml'), 'utf8');
  const fromYaml = /name: NODE_OPTIONS\s+value:\s*"?([^"\n]*)"?/.exec(yaml)?.[1] ?? '';
  return (override ?? fromYaml).split(' ').filter((f) => f !== '');
}

export const DAEMON_NODE_FLAGS = daemonNodeFlags();

/** The daemon as its own process (its RSS and CPU are its own); `spawner` "none" = child_process. */
export function startDaemon(
  a: Artifacts,
  socket: string,
  kubeconfig: string,
  spawner: string,
  nodeFlags: readonly string[] = DAEMON_NODE_FLAGS,
  entry: string = a.daemonEntry,
): ChildProcess {
  const args = ['cni-daemon', '--socket', socket, '--no-write-config', '--kubeconfig', kubeconfig];
  args.push('--node-name', 'node-a', '--log-level', 'warn', '--spawner', spawner);
  // The flags the DaemonSet runs the daemon with (daemonNodeFlags), unless the caller gives others.
  return spawn(process.execPath, [...nodeFlags, entry, ...args], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

export async function waitFor(socket: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(socket);
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => {
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`daemon socket ${socket} did not come up`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

export async function procRssMiB(pid: number): Promise<{ rss: number; hwm: number }> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(text)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

const CLK_TCK = 100;

/** utime + stime of `pid` in ms (from /proc/<pid>/stat, clock ticks of 10 ms). */
export async function procCpuMs(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8');
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / CLK_TCK;
}
