import { mkdir, mkdtemp, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Clock } from '../lib/clock.js';
import { startFakeKubelet } from '../sim/kubelet.js';
import { removeVf, setLinkState, simulatedNode } from '../sim/simulated-node.js';
import type { WrittenNode } from '../sim/simulated-node.js';
import { discoverNode } from '../sriov/discover.js';
import { fileDefaultRoutes } from '../sriov/link/default-route.js';
import { fileVfState } from '../sriov/vf-state.js';
import { noMetrics } from './metrics.js';
import { createDevicePlugin } from './plugin.js';
import { FULL_RESCAN_EVERY, nodeRescanProbe, sysfsFingerprint } from './rescan-probe.js';

const UP = { operstate: 'up', carrier: true } as const;
const PF = '0000:3b:00.0';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function node(): Promise<{ dir: string; node: WrittenNode }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'np-dp-probe-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const n = await simulatedNode()
    .pf(PF, { netdev: 'ens1f0', vendor: '8086', device: '1572', driver: 'i40e', totalVfs: 4, ...UP })
    .vfs(3, { driver: 'iavf', device: '154c', ...UP })
    .write(path.join(dir, 'node'));
  return { dir, node: n };
}

const VF1 = '0000:3b:02.1';

describe('sysfsFingerprint', () => {
  it('is stable while nothing changes and changes with link state, driver and the device list', async () => {
    const { node: n } = await node();
    const fp = () => sysfsFingerprint(n.sysfsRoot);
    const first = await fp();
    expect(await fp()).toBe(first);
    await setLinkState(n, 'ens1f0v1', { operstate: 'down', carrier: false });
    const down = await fp();
    expect(down).not.toBe(first);
    await setLinkState(n, 'ens1f0v1', UP);
    expect(await fp()).toBe(first);
    // Carrier alone (operstate not "up"): the read discovery makes, so the same change is seen.
    await setLinkState(n, 'ens1f0', { operstate: 'down', carrier: true });
    const adminDown = await fp();
    await setLinkState(n, 'ens1f0', { operstate: 'down', carrier: false });
    expect(await fp()).not.toBe(adminDown);
    await setLinkState(n, 'ens1f0', UP);
    // A VF rebound to another driver, as the kernel shows it (both ends of the binding change).
    const drivers = path.join(n.sysfsRoot, 'bus', 'pci', 'drivers');
    const driverLink = path.join(n.sysfsRoot, 'bus', 'pci', 'devices', VF1, 'driver');
    await unlink(driverLink);
    await unlink(path.join(drivers, 'iavf', VF1));
    const unbound = await fp();
    expect(unbound).not.toBe(first);
    await symlink('../../../../bus/pci/drivers/vfio-pci', driverLink);
    await mkdir(path.join(drivers, 'vfio-pci'), { recursive: true });
    await symlink(`../../../../devices/pci0000:3b/${VF1}`, path.join(drivers, 'vfio-pci', VF1));
    expect(await fp()).not.toBe(unbound);
    await removeVf(n, '0000:3b:02.2');
    expect(await fp()).not.toContain('0000:3b:02.2');
  });
});

describe('nodeRescanProbe', () => {
  it('changes with a VF setting held by the PF (links.json) and with the default routes', async () => {
    const { node: n } = await node();
    const routes = path.join(n.dir, 'routes.json');
    const probe = nodeRescanProbe({
      sysfsRoot: n.sysfsRoot,
      vfState: fileVfState(n.linksFile),
      defaultRoutes: fileDefaultRoutes(routes),
    });
    const first = await probe();
    expect(await probe()).toBe(first);
    const links = JSON.parse(await readFile(n.linksFile, 'utf8')) as {
      ifname: string;
      vfinfo_list?: { link_state?: string }[];
    }[];
    const pf = links.find((l) => l.ifname === 'ens1f0');
    const vf = pf?.vfinfo_list?.[1];
    if (vf === undefined) throw new Error('test: no vfinfo_list[1] in links.json');
    vf.link_state = 'disable';
    await writeFile(n.linksFile, JSON.stringify(links));
    const disabled = await probe();
    expect(disabled).not.toBe(first);
    await writeFile(routes, JSON.stringify([{ dst: 'default', dev: 'ens1f0v2' }]));
    expect(await probe()).not.toBe(disabled);
  });
});

/** A clock whose interval the test fires by hand. */
function manualClock(): Clock & { tick(): void } {
  const intervals: (() => void)[] = [];
  return {
    now: () => Date.now(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    setTimeout: (fn, ms) => {
      const t = setTimeout(fn, ms);
      return () => {
        clearTimeout(t);
      };
    },
    setInterval: (fn) => {
      intervals.push(fn);
      return () => {
        intervals.splice(intervals.indexOf(fn), 1);
      };
    },
    tick: () => {
      for (const fn of intervals) fn();
    },
  };
}

/** A plugin with one `netdev` pool (iavf VFs) on a fake kubelet, ticking every 10 s on `clock`. */
async function startProbedPlugin(
  dir: string,
  clock: Clock & { tick(): void },
  deps: Pick<Parameters<typeof createDevicePlugin>[0], 'discover' | 'rescanProbe'>,
): Promise<ReturnType<typeof createDevicePlugin>> {
  const kubelet = await startFakeKubelet({ root: path.join(dir, 'kubelet'), podResources: false });
  cleanups.push(() => kubelet.stop());
  const configFile = path.join(dir, 'config.json');
  await writeFile(
    configFile,
    JSON.stringify({ resourceList: [{ resourceName: 'netdev', selectors: [{ drivers: ['iavf'] }] }] }),
  );
  const plugin = createDevicePlugin({
    configFile,
    resourcePrefix: 'intel.com',
    ...deps,
    kubeletRoot: kubelet.root,
    registration: 'legacy',
    devinfoDir: path.join(dir, 'devinfo'),
    cdiDir: null,
    host: { vhostNet: false },
    log: pino({ level: 'silent' }),
    metrics: noMetrics(),
    rescanIntervalMs: 10_000,
    clock,
  });
  await plugin.start();
  cleanups.push(() => plugin.stop());
  await kubelet.waitForPlugin('intel.com/netdev');
  return plugin;
}

describe('rescan ticks with a probe', () => {
  it('skip rediscovery while the fingerprint is unchanged, rediscover on a change and every FULL_RESCAN_EVERY-th tick', async () => {
    const { dir, node: n } = await node();
    let discoveries = 0;
    let fingerprint = 'a';
    const clock = manualClock();
    const plugin = await startProbedPlugin(dir, clock, {
      discover: () => {
        discoveries += 1;
        return discoverNode({ sysfsRoot: n.sysfsRoot, vfState: fileVfState(n.linksFile) });
      },
      rescanProbe: () => Promise.resolve(fingerprint),
    });
    expect(discoveries).toBe(1);
    const tick = async () => {
      clock.tick();
      await plugin.settled();
    };
    // The start-up rebuild took no probe: the first tick rediscovers and records one.
    await tick();
    expect(discoveries).toBe(2);
    await tick();
    await tick();
    expect(discoveries).toBe(2);
    fingerprint = 'b';
    await tick();
    expect(discoveries).toBe(3);
    await tick(); // tick 5
    expect(discoveries).toBe(3);
    await tick(); // tick 6: the full rescan
    expect(discoveries).toBe(4);
    // An explicit rescan (SIGHUP, a link event) always rediscovers and leaves no probe behind.
    await plugin.rescan();
    expect(discoveries).toBe(5);
    await tick();
    expect(discoveries).toBe(6);
    expect(FULL_RESCAN_EVERY).toBe(6);
  });

  it('a VF link going down still turns Unhealthy at the next tick', async () => {
    const { dir, node: n } = await node();
    const vfState = fileVfState(n.linksFile);
    const clock = manualClock();
    const plugin = await startProbedPlugin(dir, clock, {
      discover: () => discoverNode({ sysfsRoot: n.sysfsRoot, vfState }),
      rescanProbe: nodeRescanProbe({ sysfsRoot: n.sysfsRoot, vfState }),
    });
    const health = () =>
      plugin
        .servers()[0]
        ?.devices()
        .find((d) => d.ID === VF1)?.health;
    clock.tick();
    await plugin.settled();
    clock.tick();
    await plugin.settled();
    expect(health()).toBe('Healthy');
    // sysfs only (links.json keeps its operstate): the kernel's view that discovery reads.
    const sysfsOnly = { sysfsRoot: n.sysfsRoot };
    await setLinkState(sysfsOnly, 'ens1f0v1', { operstate: 'down', carrier: false });
    clock.tick();
    await plugin.settled();
    expect(health()).toBe('Unhealthy');
    await setLinkState(sysfsOnly, 'ens1f0v1', UP);
    clock.tick();
    await plugin.settled();
    expect(health()).toBe('Healthy');
  });
});
