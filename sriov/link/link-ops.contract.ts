// The contract every LinkOps implementation passes, on a real netns and a real veth whose host
// end stands for a VF netdev. Imported by each adapter's test file (and usable from the VM suite).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCommandRunner } from '../../lib/command.js';
import { LinkErrorCode } from './link-ops.js';
import type { LinkOps } from './link-ops.js';
import { createTestNetns, createTestVeth, uniqueName } from '../../test/support/netns.js';
import type { TestNetns, TestVeth } from '../../test/support/netns.js';

export function describeLinkOpsContract(adapter: string, makeOps: () => LinkOps, prefix = 'np-slc'): void {
  describe(`LinkOps contract: ${adapter}`, () => {
    let ops: LinkOps;
    let netns: TestNetns;
    let veth: TestVeth;

    beforeEach(async () => {
      ops = makeOps();
      netns = await createTestNetns(prefix);
      veth = await createTestVeth(prefix);
    });
    afterEach(async () => {
      await veth.remove();
      await netns.remove();
    });

    it('reads a link with its MAC, MTU, flags and kind', async () => {
      const link = await ops.get(null, veth.name);
      expect(link).not.toBeNull();
      expect(link?.name).toBe(veth.name);
      expect(link?.mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      expect(link?.mtu).toBe(1500);
      expect(link?.up).toBe(false);
      expect(link?.kind).toBe('veth');
    });

    it('answers null for a link that does not exist', async () => {
      expect(await ops.get(null, uniqueName('np-nx'))).toBeNull();
      expect(await ops.get(netns.path, veth.name)).toBeNull();
    });

    it('moves a link into a netns, renames it there, and moves it back to the host', async () => {
      await ops.move(veth.name, null, netns.path);
      expect(await ops.get(null, veth.name)).toBeNull();
      await ops.rename(netns.path, veth.name, 'net1');
      expect((await ops.get(netns.path, 'net1'))?.kind).toBe('veth');
      await ops.rename(netns.path, 'net1', veth.name);
      await ops.move(veth.name, netns.path, null);
      expect(await ops.get(null, veth.name)).not.toBeNull();
    });

    it('works with a netns given as a path outside /run/netns (nsenter path)', async () => {
      const viaProc = `/proc/self/../${process.pid}/ns/net`;
      // The host netns seen through /proc: a path that is not under /run/netns.
      expect((await ops.get(viaProc, veth.name))?.name).toBe(veth.name);
    });

    it('sets MAC and MTU and brings the link up and down', async () => {
      await ops.move(veth.name, null, netns.path);
      await ops.setMac(netns.path, veth.name, '02:11:22:33:44:55');
      await ops.setMtu(netns.path, veth.name, 1400);
      await ops.setUp(netns.path, veth.name, true);
      const link = await ops.get(netns.path, veth.name);
      expect(link).toMatchObject({ mac: '02:11:22:33:44:55', mtu: 1400, up: true });
      await ops.setUp(netns.path, veth.name, false);
      expect((await ops.get(netns.path, veth.name))?.up).toBe(false);
    });

    it('adds, lists and flushes IPv4 and IPv6 addresses and adds routes', async () => {
      await ops.move(veth.name, null, netns.path);
      await ops.setUp(netns.path, veth.name, true);
      await ops.addAddress(netns.path, veth.name, '10.77.0.5/24');
      await ops.addAddress(netns.path, veth.name, 'fd00:77::5/64');
      const addrs = await ops.addresses(netns.path, veth.name);
      expect(addrs).toContainEqual({ family: 'inet', cidr: '10.77.0.5/24' });
      expect(addrs).toContainEqual({ family: 'inet6', cidr: 'fd00:77::5/64' });
      await ops.addRoute(netns.path, { dst: '10.88.0.0/16', gw: '10.77.0.1', dev: veth.name });
      const routes = await ops.routes(netns.path, veth.name);
      expect(routes).toContainEqual({ dst: '10.88.0.0/16', gw: '10.77.0.1', dev: veth.name });
      await ops.flushAddresses(netns.path, veth.name);
      expect((await ops.addresses(netns.path, veth.name)).filter((a) => a.family === 'inet')).toEqual([]);
    });

    it('adds and deletes altnames', async () => {
      const alt = uniqueName('np-alt');
      await ops.addAltname(null, veth.name, alt);
      expect((await ops.get(null, veth.name))?.altnames).toContain(alt);
      await ops.deleteAltname(null, veth.name, alt);
      expect((await ops.get(null, veth.name))?.altnames).not.toContain(alt);
    });

    it('writes a sysctl inside the netns only', async () => {
      await ops.move(veth.name, null, netns.path);
      const key = `net.ipv4.conf.${veth.name}.arp_notify`;
      await ops.setSysctls(netns.path, { [key]: '1' });
      const { stdout } = await createCommandRunner()(['nsenter', `--net=${netns.path}`, 'sysctl', '-n', key]);
      expect(stdout.trim()).toBe('1');
    });

    it('applies several steps in one round trip, in order, in the given netns', async () => {
      await ops.apply(null, [
        { op: 'up', name: veth.name, up: false },
        { op: 'rename', name: veth.name, newName: 'np-tmp0' },
        { op: 'move', name: 'np-tmp0', to: netns.path },
      ]);
      expect(await ops.get(netns.path, 'np-tmp0')).not.toBeNull();
      await ops.apply(netns.path, [
        { op: 'rename', name: 'np-tmp0', newName: 'net1' },
        { op: 'mac', name: 'net1', mac: '02:00:00:00:77:01' },
        { op: 'mtu', name: 'net1', mtu: 1280 },
        { op: 'up', name: 'net1', up: true },
        { op: 'addAddress', name: 'net1', cidr: '10.66.0.2/24' },
        { op: 'addAddress', name: 'net1', cidr: 'fd00:66::2/64' },
        { op: 'addRoute', route: { dst: '10.67.0.0/16', gw: '10.66.0.1', dev: 'net1' } },
        { op: 'addRoute', route: { dst: 'fd00:67::/64', gw: 'fd00:66::1', dev: 'net1' } },
      ]);
      expect(await ops.get(netns.path, 'net1')).toMatchObject({
        mac: '02:00:00:00:77:01',
        mtu: 1280,
        up: true,
      });
      const routes = await ops.routes(netns.path, 'net1');
      expect(routes).toContainEqual({ dst: '10.67.0.0/16', gw: '10.66.0.1', dev: 'net1' });
      expect(routes).toContainEqual({ dst: 'fd00:67::/64', gw: 'fd00:66::1', dev: 'net1' });
      await ops.apply(netns.path, [
        { op: 'up', name: 'net1', up: false },
        { op: 'flushAddresses', name: 'net1' },
        { op: 'rename', name: 'net1', newName: veth.name },
        { op: 'move', name: veth.name, to: null },
      ]);
      expect(await ops.get(null, veth.name)).not.toBeNull();
    });

    it('stops a batch at the first failing step and reports its code', async () => {
      await expect(
        ops.apply(null, [
          { op: 'mtu', name: veth.name, mtu: 1300 },
          { op: 'rename', name: veth.name, newName: veth.peer },
          { op: 'mtu', name: veth.name, mtu: 1400 },
        ]),
      ).rejects.toMatchObject({ code: LinkErrorCode.EXISTS });
      expect((await ops.get(null, veth.name))?.mtu).toBe(1300);
    });

    it('reports stable error codes: missing link, name clash, dead netns', async () => {
      await expect(ops.rename(null, uniqueName('np-nx'), 'x')).rejects.toMatchObject({
        code: LinkErrorCode.NOT_FOUND,
      });
      await expect(ops.rename(null, veth.name, veth.peer)).rejects.toMatchObject({
        code: LinkErrorCode.EXISTS,
      });
      await expect(ops.setUp('/run/netns/np-no-such-ns', 'lo', true)).rejects.toMatchObject({
        code: LinkErrorCode.NETNS_GONE,
      });
      await expect(ops.setUp('/tmp/np-no-such-ns-path', 'lo', true)).rejects.toMatchObject({
        code: LinkErrorCode.NETNS_GONE,
      });
    });
  });
}
