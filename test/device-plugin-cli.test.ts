// `netplumb device-plugin` as a real process against the fake kubelet and a simulated node. Each
// process starts through tsx (seconds on a loaded machine): the tests get long timeouts.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { setLinkState, simulatedNode } from '../sim/simulated-node.js';
import { startFakeKubelet } from '../sim/kubelet.js';
import { nodeArgsFor, TSX_LOADER } from './support/bin.js';
import { freePort } from './support/ports.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function run(args: string[]): {
  child: ChildProcess;
  exit: Promise<{ code: number | null; stderr: string }>;
} {
  const child = spawn(process.execPath, [...nodeArgsFor('bin/netplumb.ts'), 'device-plugin', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exit = new Promise<{ code: number | null; stderr: string }>((resolve) => {
    child.on('exit', (code) => {
      resolve({ code, stderr });
    });
  });
  cleanups.push(async () => {
    if (child.exitCode === null) {
      child.kill('SIGKILL');
      await exit;
    }
  });
  return { child, exit };
}

async function fixture() {
  const dir = await mkdtemp(path.join(tmpdir(), 'np-dp-cli-'));
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
    .vfs(4, { driver: 'iavf', device: '154c', operstate: 'up', carrier: true })
    .write(path.join(dir, 'node'));
  const config = path.join(dir, 'config.json');
  await writeFile(
    config,
    JSON.stringify({ resourceList: [{ resourceName: 'net', selectors: { drivers: ['iavf'] } }] }),
  );
  const kubeletRoot = path.join(dir, 'kubelet');
  await mkdir(kubeletRoot);
  const args = [
    '--config',
    config,
    '--simulated-node',
    node.dir,
    '--kubelet-root',
    kubeletRoot,
    '--devinfo-dir',
    path.join(dir, 'devinfo'),
    '--log-level',
    'warn',
    '--rescan-interval',
    '0',
  ];
  return { dir, config, kubeletRoot, args, node };
}

describe('netplumb device-plugin', () => {
  it('registers with the kubelet, serves /healthz, rediscovers on SIGHUP and removes its socket on SIGTERM', async () => {
    const f = await fixture();
    const kubelet = await startFakeKubelet({ root: f.kubeletRoot });
    cleanups.push(() => kubelet.stop());
    const port = await freePort();
    const { child, exit } = run([...f.args, '--metrics-address', `127.0.0.1:${port}`]);
    const conn = await kubelet.waitForPlugin('intel.com/net', 60_000);
    expect(conn.latest().map((d) => d.ID)).toEqual([
      '0000:3b:02.0',
      '0000:3b:02.1',
      '0000:3b:02.2',
      '0000:3b:02.3',
    ]);
    await expect
      .poll(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.status, {
        timeout: 30_000,
      })
      .toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toContain('netplumb_dp_devices{resource="intel.com/net",health="Healthy"} 4');
    // SIGHUP rediscovers (nothing else would: --rescan-interval 0, no link events on a simulated node).
    await setLinkState(f.node, 'ens1f0v2', { operstate: 'down', carrier: false });
    child.kill('SIGHUP');
    await kubelet.waitForDevices(
      'intel.com/net',
      (l) => l.find((d) => d.ID === '0000:3b:02.2')?.health === 'Unhealthy',
      'VF 2 Unhealthy after SIGHUP',
      30_000,
    );
    child.kill('SIGTERM');
    expect((await exit).code).toBe(0);
    await expect(stat(path.join(kubelet.devicePluginDir, 'intel.com_net.sock'))).rejects.toThrow();
  }, 120_000);

  it('exits 2 naming the JSON path when the config is bad at start with --strict', async () => {
    const f = await fixture();
    await writeFile(
      f.config,
      JSON.stringify({ resourceList: [{ resourceName: 'net', selectors: { driver: ['iavf'] } }] }),
    );
    const { exit } = run([...f.args, '--strict']);
    const { code, stderr } = await exit;
    expect(code).toBe(2);
    expect(stderr).toContain('resourceList[0].selectors.driver: unknown key; did you mean drivers?');
  }, 60_000);
});

// An ESM resolve hook that appends every resolved URL to $NP_TRACE (the loader thread shares env).
const TRACE_HOOKS = `import { appendFileSync } from 'node:fs';
export async function resolve(spec, ctx, next) {
  const r = await next(spec, ctx);
  appendFileSync(process.env.NP_TRACE, r.url + '\\n');
  return r;
}
`;

/** The packages the plugin process loaded (node_modules/<name>), from start to SIGTERM. */
async function packagesLoaded(f: Awaited<ReturnType<typeof fixture>>, extra: readonly string[]) {
  await writeFile(path.join(f.dir, 'hooks.mjs'), TRACE_HOOKS);
  await writeFile(
    path.join(f.dir, 'trace.mjs'),
    "import { register } from 'node:module';\nregister(new URL('./hooks.mjs', import.meta.url));\n",
  );
  const trace = path.join(f.dir, 'loaded.txt');
  const kubelet = await startFakeKubelet({ root: f.kubeletRoot, podResources: false });
  cleanups.push(() => kubelet.stop());
  const child = spawn(
    process.execPath,
    [
      '--import',
      TSX_LOADER,
      '--import',
      path.join(f.dir, 'trace.mjs'),
      ...nodeArgsFor('bin/netplumb.ts').slice(2),
      'device-plugin',
      ...f.args,
      ...extra,
    ],
    { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, NP_TRACE: trace } },
  );
  const exit = new Promise((resolve) => child.on('exit', resolve));
  cleanups.push(async () => {
    if (child.exitCode === null) {
      child.kill('SIGKILL');
      await exit;
    }
  });
  await kubelet.waitForPlugin('intel.com/net', 60_000);
  await kubelet.allocate('intel.com/net', ['0000:3b:02.0']);
  child.kill('SIGTERM');
  await exit;
  const urls = (await readFile(trace, 'utf8')).split('\n');
  return new Set(urls.flatMap((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1] ?? []));
}

describe('what the device plugin loads (issue 16: RSS at rest)', () => {
  it('loads neither prom-client nor the doctor (systeminformation) nor client-node without --metrics-address; prom-client with it', async () => {
    const f = await fixture();
    const plain = await packagesLoaded(f, []);
    expect(plain.has('@grpc/grpc-js')).toBe(true);
    for (const pkg of ['prom-client', 'systeminformation', '@kubernetes/client-node', 'pino-pretty'])
      expect(plain.has(pkg), pkg).toBe(false);
    const port = await freePort();
    const f2 = await fixture();
    const served = await packagesLoaded(f2, ['--metrics-address', `127.0.0.1:${String(port)}`]);
    expect(served.has('prom-client')).toBe(true);
  }, 120_000);
});
