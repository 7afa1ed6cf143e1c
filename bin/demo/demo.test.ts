import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runDemo } from './demo.js';

describe('netplumb demo (npm start)', () => {
  it('gives the pod its cluster, macvlan and SR-IOV interfaces, VLAN 210 on the VF, network-status; then leaves nothing behind', async () => {
    let out = '';
    const report = await runDemo({ keep: false, out: { write: (s: string) => ((out += s), true) } });
    expect(report.interfaces.map((i) => i.name)).toEqual(['eth0', 'net1', 'fast0']);
    expect(report.interfaces.find((i) => i.name === 'fast0')!.addresses[0]).toMatch(/^10\.56\.210\.\d+\/24$/);
    expect(report.interfaces.find((i) => i.name === 'net1')!.addresses[0]).toMatch(/^10\.10\.\d+\.\d+\/16$/);
    expect(report.vfCalls).toContainEqual(expect.stringMatching(/vf 0 vlan 210 qos 0$/));
    expect(report.networkStatus).toEqual([
      expect.objectContaining({ name: 'cluster', interface: 'eth0', default: true }),
      expect.objectContaining({ name: 'default/macvlan-net', interface: 'net1' }),
      expect.objectContaining({
        name: 'default/sriov-vlan210',
        interface: 'fast0',
        'device-info': { type: 'pci', version: '1.1.0', pci: { 'pci-address': '0000:3b:02.0' } },
      }),
    ]);
    expect(out).toContain('simulated:');
    expect(existsSync(report.dir)).toBe(false);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(report.netns);
  }, 120_000);
});
