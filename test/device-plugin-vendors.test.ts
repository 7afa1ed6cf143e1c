// `netplumb device-plugin` on a simulated node of other vendors (sim/presets-vendors.ts: Broadcom,
// E810, ConnectX-6, an ACC100 accelerator and an uplink carrying the default route), against the
// fake kubelet: what SRIOV-DP serves from the same config.json is served (issue 13 items 1, 2).
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeKubelet } from '../sim/kubelet.js';
import { VENDOR_NODE, writeVendorsNode } from '../sim/presets-vendors.js';
import { nodeArgsFor } from './support/bin.js';
import { freePort } from './support/ports.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function run(args: string[]) {
  const child = spawn(process.execPath, [...nodeArgsFor('bin/netplumb.ts'), 'device-plugin', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const exit = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      resolve(code);
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

async function start(config: unknown, extra: readonly string[] = []) {
  const dir = await mkdtemp(path.join(tmpdir(), 'np-dp-vendors-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const node = await writeVendorsNode(path.join(dir, 'node'));
  const configFile = path.join(dir, 'config.json');
  await writeFile(configFile, JSON.stringify(config));
  const kubeletRoot = path.join(dir, 'kubelet');
  await mkdir(kubeletRoot);
  const kubelet = await startFakeKubelet({ root: kubeletRoot, podResources: false });
  cleanups.push(() => kubelet.stop());
  const devinfo = path.join(dir, 'devinfo');
  const p = run([
    '--config',
    configFile,
    '--simulated-node',
    node.dir,
    '--kubelet-root',
    kubeletRoot,
    '--devinfo-dir',
    devinfo,
    '--rescan-interval',
    '0',
    ...extra,
  ]);
  return { kubelet, devinfo, configFile, ...p };
}

const ids = (l: readonly { ID: string }[]) => l.map((d) => d.ID);

describe('device plugin on Broadcom, E810, ConnectX-6 and ACC100 (issue 13)', () => {
  it('serves class-0x12 accelerator VFs (ACC100) to an accelerator pool, with device nodes and device-info', async () => {
    const s = await start({
      resourceList: [
        { resourceName: 'intel_fec_acc100', deviceType: 'accelerator', selectors: { devices: ['0d5d'] } },
      ],
    });
    const conn = await s.kubelet.waitForPlugin('intel.com/intel_fec_acc100', 60_000);
    expect(ids(conn.latest())).toEqual(['0000:86:02.0', '0000:86:02.1', '0000:86:02.2', '0000:86:02.3']);
    const res = await s.kubelet.allocate('intel.com/intel_fec_acc100', ['0000:86:02.1']);
    const c = res.containerResponses[0];
    expect(c?.envs.PCIDEVICE_INTEL_COM_INTEL_FEC_ACC100).toBe('0000:86:02.1');
    expect(c?.devices.map((d) => d.hostPath)).toEqual([
      '/dev/vfio/vfio',
      expect.stringMatching(/^\/dev\/vfio\/\d+$/),
    ]);
    const files = await readdir(s.devinfo);
    expect(files).toEqual(['intel.com-intel_fec_acc100-0000:86:02.1-device.json']);
    expect(JSON.parse(await readFile(path.join(s.devinfo, files[0] ?? ''), 'utf8'))).toEqual({
      type: 'pci',
      version: '1.1.0',
      pci: { 'pci-address': '0000:86:02.1' },
    });
  }, 90_000);

  it('never offers the uplink that carries the default route, and says so in the log', async () => {
    const s = await start({
      resourceList: [
        { resourceName: 'intel_any', selectors: { vendors: ['8086'] } },
        { resourceName: 'broadcom', selectors: { vendors: ['14e4'] } },
        { resourceName: 'cx6', selectors: { vendors: ['15b3'] } },
      ],
    });
    const intel = await s.kubelet.waitForPlugin('intel.com/intel_any', 60_000);
    // E810 VFs only: eno1 (8086:1521, 0000:01:00.0) matches the vendor but carries the default route.
    expect(ids(intel.latest())).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => `0000:3b:02.${i}`));
    expect(ids(intel.latest())).not.toContain(VENDOR_NODE.uplink);
    const bcm = await s.kubelet.waitForPlugin('intel.com/broadcom', 60_000);
    expect(ids(bcm.latest())).toEqual(['0000:18:02.0', '0000:18:02.1']);
    const cx6 = await s.kubelet.waitForPlugin('intel.com/cx6', 60_000);
    expect(ids(cx6.latest())).toHaveLength(2);
    expect(s.output()).toMatch(
      /"netdev":"eno1","pciAddress":"0000:01:00.0","msg":"excluded from every pool: carries a default route/,
    );
  }, 90_000);
});

describe('pfNames with two entries for one PF (issue 13 item 8)', () => {
  it('uses the first entry only, as SRIOV-DP (2 VFs, not 3), and warns about the second', async () => {
    const port = await freePort();
    const s = await start(
      { resourceList: [{ resourceName: 'e810', selectors: { pfNames: ['ens2f0#0-1', 'ens2f0#5'] } }] },
      ['--metrics-address', `127.0.0.1:${String(port)}`],
    );
    const conn = await s.kubelet.waitForPlugin('intel.com/e810', 60_000);
    expect(ids(conn.latest())).toEqual(['0000:3b:02.0', '0000:3b:02.1']);
    expect(s.output()).toContain(
      '"path":"resourceList[0].selectors[0].pfNames[1]","msg":"ignored: an earlier pfNames entry names the same PF',
    );
    // /metrics comes up just after registration.
    await expect
      .poll(async () => (await fetch(`http://127.0.0.1:${String(port)}/metrics`).catch(() => null))?.text(), {
        timeout: 15_000,
      })
      .toContain('netplumb_dp_config_warnings 1');
  }, 90_000);
});

// SRIOV-DP ignores unknown keys and bad parts of a VF range, skips a pool whose selectors do not
// decode, and serves only devices with a DDP profile to a ddpProfiles pool (issue 13 item 7).
const LENIENT_CONFIG = {
  resourceList: [
    // 2-1 runs backwards: that entry selects no VF of ens2f0, so the pool has no device.
    { resourceName: 'e810_none', selectors: { pfNames: ['ens2f0#2-1'] } },
    // An unknown resource key and a misspelt selector key: served without them.
    { resourceName: 'bcm', SelectorObj: {}, selectors: [{ vendors: ['14e4'], pfName: ['nope'] }] },
    // netplumb cannot read DDP profiles: this pool alone is left out, with an error.
    {
      resourceName: 'x700_gtp',
      selectors: { vendors: ['8086'], ddpProfiles: ['GTPv1-C/U IPv4/IPv6 payload'] },
    },
    // "" is the default prefix; the bad part 9-8 is skipped, 0-1 still selects two VFs.
    {
      resourceName: 'e810',
      resourcePrefix: '',
      selectors: { drivers: ['iavf'], pfNames: ['ens2f0#0-1,9-8'] },
    },
  ],
};

async function metricsText(port: number): Promise<string | undefined> {
  return (await fetch(`http://127.0.0.1:${String(port)}/metrics`).catch(() => null))?.text();
}

describe('a config SRIOV-DP accepts keeps serving (issue 13 item 7)', () => {
  it('serves every pool it can, warns and counts what is ignored, and leaves out only the ddpProfiles pool', async () => {
    const port = await freePort();
    const s = await start(LENIENT_CONFIG, ['--metrics-address', `127.0.0.1:${String(port)}`]);
    const bcm = await s.kubelet.waitForPlugin('intel.com/bcm', 60_000);
    expect(ids(bcm.latest())).toEqual(['0000:18:02.0', '0000:18:02.1']);
    const e810 = await s.kubelet.waitForPlugin('intel.com/e810', 60_000);
    expect(ids(e810.latest())).toEqual(['0000:3b:02.0', '0000:3b:02.1']);
    await expect
      .poll(() => metricsText(port), { timeout: 15_000 })
      .toContain('netplumb_dp_config_warnings 4');
    const metrics = (await metricsText(port)) ?? '';
    expect(metrics).toContain('netplumb_dp_config_pool_errors 1');
    expect(s.kubelet.registrations.map((r) => r.request.resourceName).sort()).toEqual([
      'intel.com/bcm',
      'intel.com/e810',
    ]);
    const out = s.output();
    expect(out).toMatch(
      /"path":"resourceList\[2\]\.selectors\.ddpProfiles","problem":"is an SRIOV-DP selector/,
    );
    expect(out).toContain('"msg":"pool not served');
    expect(out).toContain(
      '"path":"resourceList[1].selectors[0].pfName","problem":"unknown key; did you mean pfNames?"',
    );
    expect(out).toContain(
      '"path":"resourceList[0].selectors.pfNames[0]","problem":"\\"ens2f0#2-1\\": \\"2-1\\" runs backwards',
    );
  }, 90_000);

  it('--strict refuses the same config at start with exit 2, naming every path', async () => {
    const s = await start(LENIENT_CONFIG, ['--strict']);
    expect(await s.exit).toBe(2);
    expect(s.output()).toContain('resourceList[2].selectors.ddpProfiles: is an SRIOV-DP selector');
    expect(s.output()).toContain('resourceList[1].selectors[0].pfName: unknown key; did you mean pfNames?');
    expect(s.kubelet.registrations).toEqual([]);
  }, 90_000);

  it('a SIGHUP reload with a warning-only config keeps every pool and adds the new one', async () => {
    const s = await start({ resourceList: [{ resourceName: 'bcm', selectors: { vendors: ['14e4'] } }] });
    const bcm = await s.kubelet.waitForPlugin('intel.com/bcm', 60_000);
    const configFile = s.configFile;
    // Replaced by rename, as a ConfigMap update does: written in place, the plugin's own watch could
    // read the file between the truncation and the write (> 50 ms apart on a loaded machine) and log
    // "config reload failed" for the empty file.
    await writeFile(
      `${configFile}.next`,
      JSON.stringify({
        resourceList: [
          { resourceName: 'bcm', selectors: { vendors: ['14e4'], vendor: ['x'] } },
          { resourceName: 'e810', excludeTopolgy: true, selectors: { drivers: ['iavf'] } },
        ],
      }),
    );
    await rename(`${configFile}.next`, configFile);
    s.child.kill('SIGHUP');
    const e810 = await s.kubelet.waitForPlugin('intel.com/e810', 60_000);
    expect(ids(e810.latest())).toHaveLength(7);
    expect(bcm.open).toBe(true);
    expect(ids(s.kubelet.plugins.get('intel.com/bcm')?.latest() ?? [])).toEqual([
      '0000:18:02.0',
      '0000:18:02.1',
    ]);
    expect(s.output()).not.toContain('pool removed from config');
    expect(s.output()).not.toContain('config reload failed');
  }, 90_000);
});
