// The fault suite's bench: the real `netplumb cni-daemon` as its own process (so it can be killed
// with -9 and restarted), the real C shim, the fake API server over HTTP, real delegates from
// /usr/lib/cni on a loopback veth master, a simulated SR-IOV node whose VF netdevs are veths, and
// the checks run after every fault: no leaked netns, host links, host-local leases, cache or state
// files, and a live daemon.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { createCommandRunner } from '../../lib/command.js';
import { nodeArgsFor } from '../support/bin.js';

export const run = createCommandRunner({ timeoutMs: 20_000 });

export interface DaemonProcess {
  readonly child: ChildProcess;
  readonly socket: string;
  readonly stderr: () => string;
  kill9(): Promise<void>;
  stop(): Promise<number | null>;
}

/** Waits until `GET /healthz` answers on the socket (or the process exits). */
export async function healthy(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath: socket, path: '/healthz', timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => {
      resolve(false);
    });
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

export async function startDaemon(args: readonly string[], socket: string): Promise<DaemonProcess> {
  const child = spawn(
    process.execPath,
    [...nodeArgsFor('bin/netplumb.ts'), 'cni-daemon', '--socket', socket, ...args],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 4_000_000) err = err.slice(-2_000_000);
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      resolve(code);
    });
  });
  for (let i = 0; i < 300 && child.exitCode === null; i++) {
    if (await healthy(socket)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    socket,
    stderr: () => err,
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

export interface ShimResult {
  readonly code: number | null;
  readonly stdout: string;
}

export function callShim(shim: string, env: Record<string, string>, stdin: string): Promise<ShimResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(shim, [], { env });
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      resolve({ code, stdout });
    });
    p.stdin.end(stdin);
  });
}

/** host-local's reserved IPs under `dataDir` (one file per IP). */
export async function leases(dataDir: string): Promise<string[]> {
  const out: string[] = [];
  for (const net of await readdir(dataDir).catch(() => [] as string[])) {
    for (const f of await readdir(path.join(dataDir, net)).catch(() => [] as string[]))
      if (/^[\d.]+$|:/.test(f) && !f.startsWith('last_reserved')) out.push(`${net}/${f}`);
  }
  return out.sort();
}

export async function netnsNames(prefix: string): Promise<string[]> {
  const { stdout } = await run(['ip', '-j', 'netns', 'list']);
  const list = stdout.trim() === '' ? [] : (JSON.parse(stdout) as { name: string }[]);
  return list.map((n) => n.name).filter((n) => n.startsWith(prefix));
}

export async function hostLinks(): Promise<string[]> {
  const { stdout } = await run(['ip', '-j', 'link', 'show']);
  return (JSON.parse(stdout) as { ifname: string }[]).map((l) => l.ifname).sort();
}

/** Files under `dir`, recursively (relative paths), ignoring lock files. */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) await walk(path.join(d, e.name), r);
      else if (!e.name.endsWith('.lock')) out.push(r);
    }
  };
  await walk(dir, '');
  return out.sort();
}

/** A delegate that sleeps, then runs macvlan (a window to kill the daemon mid-ADD). */
export async function writeSlowMacvlan(binDir: string, seconds: number): Promise<void> {
  await mkdir(binDir, { recursive: true });
  const file = path.join(binDir, 'slow-macvlan');
  await writeFile(
    file,
    `#!/bin/sh\n[ "$CNI_COMMAND" = ADD ] && sleep ${seconds}\nexec /usr/lib/cni/macvlan "$@"\n`,
    {
      mode: 0o755,
    },
  );
}
