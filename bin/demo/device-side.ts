// The demo's kubelet side: the project's kubelet stand-in (real gRPC on unix sockets, also serving
// PodResources) and the real `netplumb device-plugin` process reading the simulated node with the
// device-plugin ConfigMap of deployments/ (SRIOV-DP format); then the pod is admitted (Allocate).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { WrittenNode } from '../../sim/simulated-node.js';
import { startFakeKubelet } from '../../sim/kubelet.js';

export interface DeviceSide {
  readonly registered: readonly string[];
  /** Device IDs the plugin advertised for the resource. */
  readonly advertised: readonly string[];
  /** Device IDs Allocate handed to the pod. */
  readonly allocated: readonly string[];
  readonly envSummary: string;
  readonly podResourcesSocket: string;
  /** Root of the device-info files (the plugin writes `<root>/dp`). */
  readonly devinfoDir: string;
  stop(): Promise<void>;
}

export interface DeviceSideOptions {
  readonly dir: string;
  readonly node: WrittenNode;
  readonly resource: string;
  readonly pod: { namespace: string; name: string; uid: string; container: string };
  readonly root: string;
}

/** argv running the netplumb CLI: the built one when this runs from dist/, else through tsx. */
function cli(root: string): string[] {
  if (fileURLToPath(import.meta.url).endsWith('.js')) return [path.join(root, 'dist', 'bin', 'netplumb.js')];
  return [
    '--import',
    path.join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs'),
    path.join(root, 'bin', 'netplumb.ts'),
  ];
}

async function configMapJson(root: string): Promise<string> {
  const text = await readFile(path.join(root, 'deployments', 'device-plugin.yaml'), 'utf8');
  for (const d of parseAllDocuments(text)) {
    const o = d.toJS() as { kind?: string; data?: Record<string, string> };
    const conf = o.kind === 'ConfigMap' ? o.data?.['config.json'] : undefined;
    if (conf !== undefined) return conf;
  }
  throw new Error('deployments/device-plugin.yaml has no ConfigMap with config.json');
}

export async function startDeviceSide(o: DeviceSideOptions): Promise<DeviceSide> {
  const kubelet = await startFakeKubelet({ root: path.join(o.dir, 'kubelet'), mode: 'legacy' });
  const devinfoDir = path.join(o.dir, 'devinfo');
  await mkdir(path.join(devinfoDir, 'dp'), { recursive: true });
  const config = path.join(o.dir, 'pcidp-config.json');
  await writeFile(config, await configMapJson(o.root));
  const stderr: string[] = [];
  const plugin: ChildProcess = spawn(
    process.execPath,
    [
      ...cli(o.root),
      'device-plugin',
      '--config',
      config,
      '--simulated-node',
      o.node.dir,
      '--kubelet-root',
      kubelet.root,
      '--registration',
      'legacy',
      '--devinfo-dir',
      path.join(devinfoDir, 'dp'),
      '--rescan-interval',
      '0',
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  plugin.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<void>((resolve) =>
    plugin.once('exit', () => {
      resolve();
    }),
  );
  const stop = async (): Promise<void> => {
    if (plugin.exitCode === null) {
      plugin.kill('SIGTERM');
      await exited;
    }
    await kubelet.stop();
  };
  try {
    await kubelet.waitForPlugin(o.resource, 20_000);
    const advertised = (
      await kubelet.waitForDevices(o.resource, (d) => d.length > 0, 'devices advertised', 20_000)
    ).map((d) => d.ID);
    const admitted = await kubelet.admitPod({
      namespace: o.pod.namespace,
      name: o.pod.name,
      uid: o.pod.uid,
      containers: [{ name: o.pod.container, requests: { [o.resource]: 1 } }],
    });
    const c = admitted.containers[0];
    const envs = c?.responses[o.resource]?.envs ?? {};
    return {
      registered: kubelet.registrations.map((r) => r.request.resourceName),
      advertised,
      allocated: c?.devices[o.resource] ?? [],
      envSummary: Object.keys(envs)
        .filter((k) => !k.endsWith('_INFO'))
        .map((k) => `${k}=${envs[k] ?? ''}`)
        .join(' '),
      podResourcesSocket: kubelet.podResourcesSocket,
      devinfoDir,
      stop,
    };
  } catch (err) {
    await stop();
    const why = stderr.join('').trim().slice(-2000);
    throw new Error(`device plugin did not serve ${o.resource}${why ? `: ${why}` : ''}`, { cause: err });
  }
}
