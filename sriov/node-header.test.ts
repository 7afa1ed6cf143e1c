// The `netplumb inspect` node header on a simulated node written to disk, and on this machine.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { simulatedNode } from '../sim/simulated-node.js';
import { readNodeHeader, renderNodeHeader } from './node-header.js';
import { simulatedHost, systeminformationHost } from './node-info.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('inspect node header', () => {
  it('shows the host and each NUMA node with its CPUs and hugepages', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'np-header-'));
    dirs.push(dir);
    const node = await simulatedNode()
      .pf('0000:af:00.0', { vendor: '8086', device: '1572', driver: 'i40e', netdev: 'ens2f0', numa: 1 })
      .system({
        numaNodes: {
          0: { cpus: 4, memMiB: 8192 },
          1: { cpus: 4, hugepages: { 1048576: { total: 4, free: 2 } } },
        },
        host: { os: 'Debian GNU/Linux 12 (bookworm)', cpuModel: 'Intel Xeon Gold 6338' },
      })
      .write(path.join(dir, 'node'));
    const header = await readNodeHeader(simulatedHost(node.dir), node.sysfsRoot);
    expect(header).toMatchObject({
      os: 'Debian GNU/Linux 12 (bookworm)',
      cpuModel: 'Intel Xeon Gold 6338',
      sockets: 2,
      threads: 8,
      numaNodes: [
        {
          id: 0,
          cpus: '0-3',
          memTotalKiB: 8192 * 1024,
          hugepages: [{ sizeKiB: 2048, total: 1024, free: 1024 }],
        },
        { id: 1, cpus: '4-7', hugepages: [{ sizeKiB: 1048576, total: 4, free: 2 }] },
      ],
    });
    const text = renderNodeHeader(header);
    expect(text).toContain('CPU   Intel Xeon Gold 6338: 2 sockets, 8 cores, 8 threads; memory 24.0 GiB');
    expect(text).toContain('NUMA  node0: CPUs 0-3, 8.0 GiB, 2048kB 1024/1024 free');
    expect(text).toContain('NUMA  node1: CPUs 4-7, 16.0 GiB, 1048576kB 2/4 free');
  });

  it('on this machine, systeminformation gives the kernel that /proc reports', async () => {
    const header = await readNodeHeader(systeminformationHost(), '/sys');
    const { release } = await import('node:os');
    expect(header.kernel).toBe(release());
    expect(header.threads).toBeGreaterThan(0);
    expect(header.numaNodes.length).toBeGreaterThan(0);
  });
});
