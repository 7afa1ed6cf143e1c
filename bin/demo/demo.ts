// `netplumb demo` (npm start): the whole product on a machine with no cluster and no SR-IOV.
// A simulated node (sysfs tree on disk, VF netdevs = real veths), the device plugin against the
// kubelet stand-in, the CNI daemon with the real meta-plugin and in-process sriov, the real C shim,
// real delegate plugins, a real network namespace. Prints what the pod got, then cleans up.
import { NetplumbError } from '../../lib/errors.js';
import type { NetplumbErrorOptions } from '../../lib/errors.js';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { parseAllDocuments } from 'yaml';
import { NETWORK_STATUS_ANNOTATION } from '../../cni/meta/annotations.js';
import type { NadInfo, PodInfo } from '../../cni/meta/kube.js';
import { startCniDaemon } from '../../cni/daemon/daemon.js';
import type { RunningDaemon } from '../../cni/daemon/daemon.js';

import { GENERATED_CONF } from '../../cni/daemon/conf-gen.js';
import { buildShim } from '../../cni/daemon/shim-build.js';
import { simulatedNode } from '../../sim/simulated-node.js';
import type { WrittenNode } from '../../sim/simulated-node.js';
import { createVfSettingsRecorder } from '../../sim/vf-settings-recorder.js';
import { createApiStandIn } from './api-stand-in.js';
import { startDeviceSide } from './device-side.js';
import type { DeviceSide } from './device-side.js';

const run = promisify(execFile);

export class DemoError extends NetplumbError {
  override readonly name = 'DemoError';
  constructor(message: string, options?: NetplumbErrorOptions) {
    super('DEMO_FAILED', message, options);
  }
}

export interface DemoOptions {
  readonly keep: boolean;
  readonly out: Pick<NodeJS.WritableStream, 'write'>;
  /** Where delegate plugins live (first that has macvlan wins). */
  readonly cniBinDirs?: readonly string[];
}

export interface DemoReport {
  readonly dir: string;
  readonly netns: string;
  readonly interfaces: readonly { name: string; mac: string; addresses: string[] }[];
  readonly vfCalls: readonly string[];
  readonly networkStatus: unknown;
  readonly addMs: number;
  readonly kept: boolean;
}

const POD = {
  namespace: 'default',
  name: 'demo-pod',
  uid: '7d3c1f5e-0000-4000-8000-00000000demo',
  container: 'app',
};
const RESOURCE = 'intel.com/intel_sriov_netdevice';
const PF_PCI = '0000:3b:00.0';

function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

async function ip(...args: string[]): Promise<string> {
  return (await run('ip', args)).stdout;
}

/** The example NADs of deployments/examples, as the API would serve them. */
async function exampleNads(root: string): Promise<NadInfo[]> {
  const dir = path.join(root, 'deployments', 'examples');
  const out: NadInfo[] = [];
  for (const f of await readdir(dir)) {
    if (!f.endsWith('.yaml')) continue;
    for (const d of parseAllDocuments(await readFile(path.join(dir, f), 'utf8'))) {
      const o = d.toJS() as {
        kind?: string;
        metadata?: { name?: string; annotations?: Record<string, string> };
        spec?: { config?: string };
      };
      if (o.kind !== 'NetworkAttachmentDefinition') continue;
      out.push({
        namespace: 'default',
        name: o.metadata?.name ?? '',
        config: o.spec?.config ?? '',
        annotations: o.metadata?.annotations ?? {},
      });
    }
  }
  return out;
}

/** Points a NAD's config at the demo's uplink and keeps IPAM state inside the demo dir. */
function localise(nad: NadInfo, uplink: string, ipamDir: string): NadInfo {
  const conf = JSON.parse(nad.config) as Record<string, unknown>;
  const plugins = (Array.isArray(conf['plugins']) ? conf['plugins'] : [conf]) as Record<string, unknown>[];
  for (const p of plugins) {
    if (p['master'] === 'eth0') p['master'] = uplink;
    const ipam = p['ipam'] as Record<string, unknown> | undefined;
    if (ipam?.['type'] === 'host-local') ipam['dataDir'] = ipamDir;
  }
  return { ...nad, config: JSON.stringify(conf) };
}

function shimCall(
  shim: string,
  env: Record<string, string>,
  stdin: string,
): Promise<{ code: number | null; stdout: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn(shim, [], { env });
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      resolve({ code, stdout, ms: performance.now() - started });
    });
    p.stdin.end(stdin);
  });
}

/** The first of `dirs` that holds the delegates the demo calls. */
function findCniBinDir(dirs: readonly string[]): string {
  const binDir = dirs.find(
    (d) => existsSync(path.join(d, 'macvlan')) && existsSync(path.join(d, 'host-local')),
  );
  if (binDir === undefined) {
    throw new DemoError(
      `no CNI plugins (macvlan, host-local) in ${dirs.join(' or ')}: apt-get install containernetworking-plugins`,
    );
  }
  return binDir;
}

/** Step 1, the "hardware": veths stand for the uplink (eth0) and for two VF netdevs. */
async function makeHardware(
  dir: string,
  id: string,
  teardown: (() => Promise<unknown>)[],
): Promise<{ node: WrittenNode; uplink: string; vfNetdevs: string[] }> {
  const uplink = `npd${id}up`;
  const [vf0, vf1] = [`npd${id}v0`, `npd${id}v1`];
  const vfNetdevs = [vf0, vf1];
  for (const name of [uplink, ...vfNetdevs]) {
    await ip('link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`);
    teardown.push(() => ip('link', 'del', name));
  }
  await ip('link', 'set', uplink, 'up');
  const node = await simulatedNode()
    .pf(PF_PCI, {
      netdev: `npd${id}pf`,
      vendor: '8086',
      device: '1572',
      driver: 'i40e',
      totalVfs: 8,
      numa: 0,
    })
    .vfs(4, {
      driver: 'iavf',
      device: '154c',
      overrides: { 0: { netdev: vf0 }, 1: { netdev: vf1 }, 2: { driver: 'vfio-pci' } },
    })
    .write(path.join(dir, 'node'));
  return { node, uplink, vfNetdevs };
}

/** Step 4: the CNI daemon over the "cluster network" config, with in-process sriov. */
async function startDemoDaemon(
  dir: string,
  binDir: string,
  devices: DeviceSide,
  node: WrittenNode,
  api: ReturnType<typeof createApiStandIn>,
): Promise<{ daemon: RunningDaemon; socket: string; confDir: string }> {
  const confDir = path.join(dir, 'net.d');
  await mkdir(confDir, { recursive: true });
  await writeFile(
    path.join(confDir, '10-cluster.conflist'),
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'cluster',
      plugins: [
        {
          type: 'ptp',
          ipam: { type: 'host-local', subnet: '10.244.7.0/24', dataDir: path.join(dir, 'ipam') },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    }),
  );
  const socket = path.join(dir, 'run', 'cni.sock');
  const daemon = await startCniDaemon({
    socketPath: socket,
    cniConfDir: confDir,
    daemonConfig: {
      cniDir: path.join(dir, 'cni-cache'),
      binDir,
      confDir: path.join(dir, 'multus.d'),
      podResourcesSocket: devices.podResourcesSocket,
      devinfoDir: devices.devinfoDir,
      sysfsRoot: node.sysfsRoot,
    },
    kubeClient: api,
    maxConcurrent: 4,
    maxQueued: 16,
    readyWaitMs: 5000,
    sysfsRoot: node.sysfsRoot,
    sriovPf: createVfSettingsRecorder({ dir: path.join(dir, 'pf-calls'), linksFile: node.linksFile }),
    sriovStateDir: path.join(dir, 'sriov-state'),
    logger: pino({ level: 'warn' }, pino.destination(2)),
  });
  return { daemon, socket, confDir };
}

/** Step 6: the pod's interfaces as `ip -n <netns> addr` shows them. */
async function podInterfaces(netns: string): Promise<DemoReport['interfaces']> {
  const addrs = JSON.parse(await ip('-n', netns, '-json', '-details', 'addr', 'show')) as {
    ifname: string;
    address: string;
    addr_info: { family: string; local: string; prefixlen: number }[];
  }[];
  return addrs
    .filter((l) => l.ifname !== 'lo')
    .map((l) => ({
      name: l.ifname,
      mac: l.address,
      addresses: l.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
    }));
}

export async function runDemo(o: DemoOptions): Promise<DemoReport> {
  const say = (s: string): void => {
    o.out.write(`${s}\n`);
  };
  if (process.getuid?.() !== 0)
    throw new DemoError('the demo creates network namespaces and links: run it as root');
  const binDir = findCniBinDir(o.cniBinDirs ?? ['/opt/cni/bin', '/usr/lib/cni']);
  const root = projectRoot();
  const id = randomBytes(2).toString('hex');
  const dir = await mkdtemp('/tmp/netplumb-demo-');
  const netns = `npdemo-${id}`;
  // Kernel objects and files (kept with --keep) and processes (always stopped), undone in reverse.
  const teardown: (() => Promise<unknown>)[] = [];
  const stops: (() => Promise<unknown>)[] = [];
  let del: (() => Promise<unknown>) | undefined;
  let kept = false;
  try {
    say(`netplumb demo (work dir ${dir})\n`);
    const { node, uplink, vfNetdevs } = await makeHardware(dir, id, teardown);
    say(`1. simulated node: PF ${PF_PCI} (i40e) with 4 VFs (iavf ×3, vfio-pci ×1) in ${node.sysfsRoot}`);
    say(`   VF netdevs ${vfNetdevs.join(', ')} are real veths; "${uplink}" stands for the node's eth0`);

    // 2. Device plugin against the kubelet stand-in; the pod is admitted with one VF.
    const devices = await startDeviceSide({ dir, node, resource: RESOURCE, pod: POD, root });
    stops.push(() => devices.stop());
    say(`2. device plugin registered ${devices.registered.join(', ')} with the kubelet stand-in`);
    say(`   advertised: ${devices.advertised.join(', ')}`);
    say(
      `   Allocate for ${POD.namespace}/${POD.name}: ${devices.allocated.join(', ')}  env ${devices.envSummary}`,
    );

    // 3. The API stand-in holds the pod and the example networks.
    const nads = (await exampleNads(root)).map((n) => localise(n, uplink, path.join(dir, 'ipam')));
    const pod: PodInfo = {
      namespace: POD.namespace,
      name: POD.name,
      uid: POD.uid,
      resourceVersion: '1',
      containerNames: [POD.container],
      annotations: {
        'k8s.v1.cni.cncf.io/networks': JSON.stringify([
          { name: 'macvlan-net' },
          { name: 'sriov-vlan210', interface: 'fast0' },
        ]),
      },
    };
    const api = createApiStandIn([pod], nads);
    say(`3. pod ${POD.namespace}/${POD.name} asks for: ${pod.annotations['k8s.v1.cni.cncf.io/networks']}`);

    // 4. The CNI daemon writes the node config from the "cluster network" and serves the socket.
    const { daemon, socket, confDir } = await startDemoDaemon(dir, binDir, devices, node, api);
    stops.push(() => daemon.close());
    const shim = (await buildShim(path.join(dir, 'bin', 'netplumb-shim'))).file;
    say(`4. CNI daemon on ${socket}; wrote ${path.join(confDir, GENERATED_CONF)}; C shim ${shim}`);

    // 5. The runtime's ADD: through the shim, exactly as containerd would call it.
    await ip('netns', 'add', netns);
    teardown.push(() => ip('netns', 'del', netns));
    const list = JSON.parse(await readFile(path.join(confDir, GENERATED_CONF), 'utf8')) as {
      cniVersion: string;
      name: string;
      plugins: Record<string, unknown>[];
    };
    const stdin = JSON.stringify({ cniVersion: list.cniVersion, name: list.name, ...list.plugins[0] });
    const env = {
      CNI_CONTAINERID: `demo${id}`,
      CNI_NETNS: `/run/netns/${netns}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: binDir,
      CNI_ARGS: `IgnoreUnknown=true;K8S_POD_NAMESPACE=${POD.namespace};K8S_POD_NAME=${POD.name};K8S_POD_INFRA_CONTAINER_ID=demo${id};K8S_POD_UID=${POD.uid}`,
    };
    const add = await shimCall(shim, { ...env, CNI_COMMAND: 'ADD' }, stdin);
    if (add.code !== 0) throw new DemoError(`CNI ADD failed (exit ${add.code}): ${add.stdout}`);
    del = () => shimCall(shim, { ...env, CNI_COMMAND: 'DEL' }, stdin);
    say(`5. CNI ADD through the shim into netns ${netns}: ok in ${add.ms.toFixed(0)} ms\n`);

    // 6. What the pod got.
    const interfaces = await podInterfaces(netns);
    say('pod interfaces (ip -n netns addr):');
    for (const i of interfaces) say(`  ${i.name.padEnd(8)} ${i.mac}  ${i.addresses.join(' ')}`);
    const recorder = createVfSettingsRecorder({ dir: path.join(dir, 'pf-calls') });
    const vfCalls = (await recorder.calls()).map((c) => `ip link set dev ${c.pf} ${c.line}`);
    say('PF-side VF settings applied (recorded: this kernel has no SR-IOV PF):');
    for (const c of vfCalls) say(`  ${c}`);
    const status = api.pod(POD.namespace, POD.name)?.annotations[NETWORK_STATUS_ANNOTATION];
    const networkStatus: unknown = status === undefined ? null : JSON.parse(status);
    say(`${NETWORK_STATUS_ANNOTATION}:`);
    say(status ?? '  (not written)');
    say('');
    say('simulated: the PCI/sysfs tree, the PF VF table (recorder), the kubelet (stand-in over real gRPC),');
    say('           the API server (in-memory); veths stand for the VF netdevs and for eth0.');
    say(
      'real:      the device plugin, the CNI daemon and C shim, macvlan/ptp/host-local, the netns, the links.',
    );

    if (o.keep) {
      kept = true;
      say(`\n--keep: left up (the processes stop with this one). Try:\n  ip netns exec ${netns} ip -d addr`);
      say(`  netplumb inspect --simulated-node ${node.dir}`);
      say(
        `Clean up with: ip netns del ${netns}; ${[uplink, ...vfNetdevs].map((n) => `ip link del ${n}`).join('; ')}; rm -rf ${dir}`,
      );
    }
    return { dir, netns, interfaces, vfCalls, networkStatus, addMs: add.ms, kept };
  } finally {
    if (!kept && del !== undefined) {
      const r = await del().catch((err: unknown) => err);
      if (!(typeof r === 'object' && r !== null && 'code' in r && r.code === 0))
        say(`warning: CNI DEL during clean-up: ${JSON.stringify(r)}`);
    }
    for (const s of stops.reverse()) await s().catch(() => undefined);
    if (!kept) {
      for (const t of teardown.reverse()) await t().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  }
}
