// `netplumb device-plugin` as a real process (issue 13 bugs 3 and 6): SIGTERM while the kubelet
// holds a ListAndWatch stream, and an idle plugin with no devices and no rescan timer.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedNode } from '../sim/simulated-node.js';
import { startFakeKubelet } from '../sim/kubelet.js';
import { nodeArgsFor } from './support/bin.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Exit {
  readonly code: number | null;
  readonly output: string;
}

function run(args: string[]) {
  const child = spawn(process.execPath, [...nodeArgsFor('bin/netplumb.ts'), 'device-plugin', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // pino writes the logs to stderr; both streams are kept, in arrival order.
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const exit = new Promise<Exit>((resolve) => {
    child.on('exit', (code) => {
      resolve({ code, output });
    });
  });
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exit;
    }
  });
  return { child, exit, output: () => output };
}

/** The exit, or null if the process is still running after `ms`. */
function exitWithin(exit: Promise<Exit>, ms: number): Promise<Exit | null> {
  return Promise.race([
    exit,
    new Promise<null>((r) => {
      setTimeout(() => {
        r(null);
      }, ms);
    }),
  ]);
}

async function fixture(config: unknown) {
  const dir = await mkdtemp(path.join(tmpdir(), 'np-dp-cli-faults-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const node = await simulatedNode()
    .pf('0000:3b:00.0', {
      netdev: 'ens1f0',
      vendor: '8086',
      device: '1572',
      driver: 'i40e',
      numa: 0,
      operstate: 'up',
      carrier: true,
    })
    .vfs(4, {
      driver: 'iavf',
      device: '154c',
      operstate: 'up',
      carrier: true,
      overrides: { 3: { driver: 'vfio-pci' } },
    })
    .write(path.join(dir, 'node'));
  const configFile = path.join(dir, 'config.json');
  await writeFile(configFile, JSON.stringify(config));
  const kubeletRoot = path.join(dir, 'kubelet');
  await mkdir(kubeletRoot);
  const devinfo = path.join(dir, 'devinfo');
  const cdi = path.join(dir, 'cdi');
  const args = [
    '--config',
    configFile,
    '--simulated-node',
    node.dir,
    '--kubelet-root',
    kubeletRoot,
    '--devinfo-dir',
    devinfo,
    '--cdi',
    '--cdi-dir',
    cdi,
    '--log-level',
    'warn',
    '--rescan-interval',
    '0',
  ];
  return { dir, kubeletRoot, devinfo, cdi, args };
}

/** Resolves once `text` is in the output or the process has exited (a loaded machine starts slowly). */
async function startedOrExited(output: () => string, child: ChildProcess, text: string): Promise<void> {
  const end = Date.now() + 60_000;
  while (!output().includes(text) && child.exitCode === null) {
    if (Date.now() > end) throw new Error(`no "${text}" in the output within 60 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const list = (dir: string) => readdir(dir).catch(() => [] as string[]);

describe('netplumb device-plugin stopping and idling', () => {
  it('stops on SIGTERM while the kubelet holds ListAndWatch streams, removing sockets, device-info and CDI files', async () => {
    const f = await fixture({
      resourceList: [
        { resourceName: 'net', selectors: { drivers: ['iavf'] } },
        { resourceName: 'dpdk', selectors: { drivers: ['vfio-pci'] } },
      ],
    });
    const kubelet = await startFakeKubelet({ root: f.kubeletRoot, podResources: false });
    cleanups.push(() => kubelet.stop());
    const { child, exit } = run(f.args);
    await kubelet.waitForPlugin('intel.com/net', 60_000);
    await kubelet.waitForPlugin('intel.com/dpdk', 60_000);
    await kubelet.allocate('intel.com/net', ['0000:3b:02.0']);
    await kubelet.allocate('intel.com/dpdk', ['0000:3b:02.3']);
    expect(await list(f.devinfo)).toHaveLength(2);
    expect(await list(f.cdi)).toHaveLength(1);
    expect(kubelet.plugins.get('intel.com/net')?.open).toBe(true);
    child.kill('SIGTERM');
    // A hang fails here, not at vitest's timeout. Not a speed check (the goal is 1 s; it took
    // > 20 s): 5 s was tight for a loaded machine, 15 s still catches the bug.
    const done = await exitWithin(exit, 15_000);
    expect(done, 'still running 15 s after SIGTERM').not.toBeNull();
    expect(done?.code).toBe(0);
    expect(await list(path.join(f.kubeletRoot, 'device-plugins'))).toEqual(['kubelet.sock']);
    expect(await list(f.devinfo)).toEqual([]);
    expect(await list(f.cdi)).toEqual([]);
  }, 90_000);

  it('stays up serving nothing with --rescan-interval 0 when no pool has a device, until SIGTERM', async () => {
    const f = await fixture({
      resourceList: [{ resourceName: 'none', selectors: { drivers: ['mlx5_core'] } }],
    });
    // No --metrics-address: an HTTP server would keep the process alive and hide the bug.
    const { child, exit, output } = run(f.args);
    // Started (it logs the empty pool) or already gone.
    await startedOrExited(output, child, 'no device matches this pool');
    // Exited with 13 (a pending top-level await and nothing else to wait for) before the fix.
    expect(await exitWithin(exit, 1_500)).toBeNull();
    child.kill('SIGTERM');
    expect((await exit).code).toBe(0);
  }, 90_000);
});

describe('netplumb device-plugin --check-config (issue 13 item 7, the strict check for CI)', () => {
  it('exits 0 for a valid file and 2 naming the JSON path for an invalid one', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'np-dp-check-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const good = path.join(dir, 'good.json');
    const bad = path.join(dir, 'bad.json');
    await writeFile(
      good,
      JSON.stringify({ resourceList: [{ resourceName: 'net', selectors: { drivers: ['iavf'] } }] }),
    );
    await writeFile(
      bad,
      JSON.stringify({ resourceList: [{ resourceName: 'net', selectors: { driver: ['iavf'] } }] }),
    );
    const ok = run(['--check-config', good]);
    expect((await ok.exit).code).toBe(0);
    expect(ok.output()).toContain('good.json: valid, 1 pool(s)');
    const no = run(['--check-config', bad]);
    expect((await no.exit).code).toBe(2);
    expect(no.output()).toContain('resourceList[0].selectors.driver: unknown key; did you mean drivers?');
  }, 60_000);
});
