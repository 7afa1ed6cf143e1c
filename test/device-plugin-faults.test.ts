// The device plugin's faults (issues 11 and 13) against the fake kubelet (real gRPC on unix sockets,
// dialing like grpc-go < 1.26) and simulated nodes on disk: the config watcher's scope, Allocate
// refusals, name validation.
import { mkdir, mkdtemp, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { DestinationStream } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../device-plugin/metrics-prom.js';
import { createDevicePlugin } from '../device-plugin/plugin.js';
import type { DevicePlugin } from '../device-plugin/plugin.js';
import { discoverNode } from '../sriov/discover.js';
import { fileVfState } from '../sriov/vf-state.js';
import { startFakeKubelet } from '../sim/kubelet.js';
import type { FakeKubelet } from '../sim/kubelet.js';
import { removeVf, simulatedNode } from '../sim/simulated-node.js';
import type { WrittenNode } from '../sim/simulated-node.js';

const UP = { operstate: 'up', carrier: true } as const;
const PF0 = '0000:3b:00.0';

async function writeNode(dir: string): Promise<WrittenNode> {
  return simulatedNode()
    .pf(PF0, {
      netdev: 'ens1f0',
      vendor: '8086',
      device: '1572',
      driver: 'i40e',
      numa: 0,
      totalVfs: 8,
      ...UP,
    })
    .vfs(4, { driver: 'iavf', device: '154c', ...UP })
    .write(dir);
}

const CONFIG = { resourceList: [{ resourceName: 'netdev', selectors: [{ drivers: ['iavf'] }] }] };
const NETDEV = 'intel.com/netdev';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Log lines as parsed JSON, for counting events such as config loads. */
class LogLines extends Writable {
  readonly lines: { msg?: string }[] = [];
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    for (const l of chunk.toString('utf8').split('\n'))
      if (l !== '') this.lines.push(JSON.parse(l) as { msg?: string });
    cb();
  }
  count(msg: string): number {
    return this.lines.filter((l) => l.msg === msg).length;
  }
}

interface Env {
  dir: string;
  node: WrittenNode;
  kubelet: FakeKubelet;
  plugin: DevicePlugin;
  configFile: string;
}

async function setup(
  o: { configFile?: (dir: string) => Promise<string>; log?: DestinationStream; config?: unknown } = {},
): Promise<Env> {
  const dir = await mkdtemp(path.join(tmpdir(), 'np-dp-faults-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const node = await writeNode(path.join(dir, 'node'));
  const kubelet = await startFakeKubelet({ root: path.join(dir, 'kubelet'), podResources: false });
  cleanups.push(() => kubelet.stop());
  let configFile = path.join(dir, 'pcidp', 'config.json');
  if (o.configFile === undefined) {
    await mkdir(path.dirname(configFile));
    await writeFile(configFile, JSON.stringify(o.config ?? CONFIG));
  } else configFile = await o.configFile(dir);
  const plugin = createDevicePlugin({
    configFile,
    resourcePrefix: 'intel.com',
    discover: () => discoverNode({ sysfsRoot: node.sysfsRoot, vfState: fileVfState(node.linksFile) }),
    kubeletRoot: kubelet.root,
    registration: 'auto',
    devinfoDir: path.join(dir, 'devinfo'),
    cdiDir: null,
    host: { vhostNet: false },
    log: o.log === undefined ? pino({ level: 'silent' }) : pino({ level: 'info' }, o.log),
    metrics: createMetrics(),
    rescanIntervalMs: 0,
  });
  cleanups.push(() => plugin.stop());
  await plugin.start();
  return { dir, node, kubelet, plugin, configFile };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `pred` every 20 ms; rejects after `timeoutMs` (generous: fs events and reloads on a loaded machine). */
async function until(pred: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('config watcher (issue 11)', () => {
  it('ignores 5 unrelated writes in the config directory, and reloads on a write to the file', async () => {
    const log = new LogLines();
    const env = await setup({ log });
    await env.plugin.settled();
    const before = log.count('config loaded');
    for (let i = 0; i < 5; i++)
      await writeFile(path.join(path.dirname(env.configFile), `other-${i}.txt`), 'x');
    await sleep(400); // well past the 50 ms debounce: any reload would have happened
    await env.plugin.settled();
    expect(log.count('config loaded') - before).toBe(0);
    await writeFile(env.configFile, JSON.stringify(CONFIG));
    await until(() => log.count('config loaded') > before, 'a reload after writing the file');
  });

  it('does not loop when its own log file is in the config directory', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'np-dp-logdir-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const lines = new LogLines();
    const logFile = path.join(dir, 'device-plugin.log');
    const fileDest = pino.destination({ dest: logFile, sync: true });
    cleanups.push(() => {
      fileDest.end();
      return Promise.resolve();
    });
    const tee = pino.multistream([{ stream: fileDest }, { stream: lines }]);
    const env = await setup({
      log: tee,
      configFile: async () => {
        const f = path.join(dir, 'config.json');
        await writeFile(f, JSON.stringify(CONFIG));
        return f;
      },
    });
    // One real change, by rename: written in place, the truncation and the write are two events;
    // when they are more than the 50 ms debounce apart (a loaded machine) and the reload the first
    // one started reads the file after the write, the second loads it again: two loads, one change.
    await writeFile(`${env.configFile}.next`, JSON.stringify(CONFIG));
    await rename(`${env.configFile}.next`, env.configFile);
    await until(() => lines.count('config loaded') >= 1, 'the reload of the change');
    await sleep(1_000);
    await env.plugin.settled();
    // One reload for the one change; a watcher of the whole directory reloads again on every log
    // line it writes.
    expect(lines.count('config loaded')).toBe(1);
  });

  it('reloads when a ConfigMap volume swaps its ..data symlink', async () => {
    const log = new LogLines();
    const cfg = { resourceList: [{ resourceName: 'swapped', selectors: [{ drivers: ['iavf'] }] }] };
    const env = await setup({
      log,
      configFile: async (d) => {
        // The kubelet's atomic writer layout: config.json -> ..data/config.json, ..data -> ..v1.
        const vol = path.join(d, 'pcidp');
        await mkdir(path.join(vol, '..v1'), { recursive: true });
        await writeFile(path.join(vol, '..v1', 'config.json'), JSON.stringify(CONFIG));
        await symlink('..v1', path.join(vol, '..data'));
        await symlink('..data/config.json', path.join(vol, 'config.json'));
        return path.join(vol, 'config.json');
      },
    });
    await env.kubelet.waitForPlugin(NETDEV);
    const vol = path.dirname(env.configFile);
    await mkdir(path.join(vol, '..v2'));
    await writeFile(path.join(vol, '..v2', 'config.json'), JSON.stringify(cfg));
    await symlink('..v2', path.join(vol, '..data_tmp'));
    await rename(path.join(vol, '..data_tmp'), path.join(vol, '..data'));
    await env.kubelet.waitForPlugin('intel.com/swapped');
  });
});

describe('stop (issue 13 bug 3)', () => {
  it('stays stopped when a config event is still being debounced at stop()', async () => {
    const env = await setup();
    await env.kubelet.waitForPlugin(NETDEV);
    const socket = path.join(env.kubelet.devicePluginDir, 'intel.com_netdev.sock');
    const registrations = env.kubelet.registrations.length;
    await writeFile(env.configFile, JSON.stringify(CONFIG)); // a reload is now 50 ms away
    await env.plugin.stop();
    await sleep(400);
    await env.plugin.settled();
    // Before: the debounced reload ran after stop(), served the pool again and re-registered, so
    // the process kept a listening socket (and never exited) after SIGTERM.
    expect(
      await stat(socket).then(
        () => 'present',
        () => 'absent',
      ),
    ).toBe('absent');
    expect(env.kubelet.registrations.length).toBe(registrations);
  });
});

describe('Allocate refusals (issue 13 bug 4)', () => {
  it('refuses a VF that has left sysfs (reported Unhealthy), naming it', async () => {
    const env = await setup();
    await env.kubelet.waitForPlugin(NETDEV);
    const gone = '0000:3b:02.1';
    await removeVf(env.node, gone);
    await env.plugin.rescan();
    await env.kubelet.waitForDevices(
      NETDEV,
      (l) => l.find((d) => d.ID === gone)?.health === 'Unhealthy',
      'the removed VF reported Unhealthy',
    );
    await expect(env.kubelet.allocate(NETDEV, [gone])).rejects.toThrow(
      /FAILED_PRECONDITION: device "0000:3b:02.1" of resource intel.com\/netdev is no longer on the node/,
    );
    // The VFs still there are still handed out.
    const ok = await env.kubelet.allocate(NETDEV, ['0000:3b:02.0']);
    expect(ok.containerResponses[0]?.envs.PCIDEVICE_INTEL_COM_NETDEV).toBe('0000:3b:02.0');
  });

  it('refuses the same device ID twice in one request, naming it', async () => {
    const env = await setup();
    await env.kubelet.waitForPlugin(NETDEV);
    await expect(env.kubelet.allocate(NETDEV, ['0000:3b:02.2', '0000:3b:02.2'])).rejects.toThrow(
      /INVALID_ARGUMENT: device ID "0000:3b:02.2" is requested twice for resource intel.com\/netdev/,
    );
  });
});

describe('resource names (issue 13 bug 5)', () => {
  it('leaves out a pool whose resourcePrefix is not a DNS-1123 subdomain: no socket is made for it', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'np-dp-prefix-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const escape = path.join(dir, 'escaped');
    const env = await setup({
      config: {
        resourceList: [
          { resourceName: 'x', resourcePrefix: `../../../../../../..${escape}`, selectors: [{}] },
          { resourceName: 'ok', selectors: [{ drivers: ['iavf'] }] },
        ],
      },
    });
    expect(env.plugin.status().poolErrors).toEqual([
      expect.stringMatching(/^resourceList\[0\]\.resourcePrefix: ".*" is not a DNS-1123 subdomain/),
    ]);
    expect(env.plugin.status().pools.map((p) => p.resource)).toEqual(['intel.com/ok']);
    expect(
      await stat(`${escape}_x.sock`).then(
        () => 'present',
        () => 'absent',
      ),
    ).toBe('absent');
  });
});
