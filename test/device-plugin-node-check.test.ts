// `netplumb device-plugin --metrics-address` as a real process: /metrics carries the doctor's
// verdicts as netplumb_node_check{check,pf} (0 pass, 1 warn, 2 fail) for the simulated node.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startFakeKubelet } from '../sim/kubelet.js';
import { simulatedNode } from '../sim/simulated-node.js';
import { nodeArgsFor } from './support/bin.js';
import { freePort } from './support/ports.js';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('netplumb device-plugin /metrics', () => {
  it('exposes netplumb_node_check for node-wide and per-PF checks', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'np-dp-nodecheck-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    // vfio-pci not loaded: a failing check the dashboard must show as 2.
    const node = await simulatedNode()
      .pf('0000:3b:00.0', { netdev: 'ens1f0', vendor: '8086', device: '1572', driver: 'i40e', numa: 0 })
      .vfs(2, { driver: 'iavf', device: '154c' })
      .system({ modules: [] })
      .write(path.join(dir, 'node'));
    const config = path.join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({ resourceList: [{ resourceName: 'net', selectors: { drivers: ['iavf'] } }] }),
    );
    const kubeletRoot = path.join(dir, 'kubelet');
    await mkdir(kubeletRoot);
    const kubelet = await startFakeKubelet({ root: kubeletRoot });
    cleanups.push(() => kubelet.stop());
    const port = await freePort();
    const args = ['--config', config, '--simulated-node', node.dir, '--kubelet-root', kubeletRoot];
    const child = spawn(
      process.execPath,
      [
        ...nodeArgsFor('bin/netplumb.ts'),
        'device-plugin',
        ...args,
        '--devinfo-dir',
        path.join(dir, 'devinfo'),
        '--log-level',
        'warn',
        '--rescan-interval',
        '0',
        '--metrics-address',
        `127.0.0.1:${port}`,
      ],
      { stdio: 'ignore' },
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    });
    await kubelet.waitForPlugin('intel.com/net', 60_000);
    const scrape = async (): Promise<string> =>
      (await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => null))?.text() ?? '';
    await expect.poll(scrape, { timeout: 30_000 }).toContain('netplumb_node_check{check="vfio-pci",pf=""} 2');
    const text = await scrape();
    expect(text).toContain('netplumb_node_check{check="iommu",pf=""} 0');
    expect(text).toContain('netplumb_node_check{check="pf-vfs",pf="0000:3b:00.0"} 0');
    expect(text).toContain('netplumb_node_check{check="dp-pools",pf=""} 0');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 120_000); // a process started through tsx: seconds on a loaded machine
});
