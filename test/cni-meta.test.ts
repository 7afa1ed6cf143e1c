// netplumb-cni end to end on real parts: Debian's macvlan/host-local/static/tuning in a real netns
// with a veth as master, the fake API server over HTTP, the fake PodResources gRPC server. The only
// recorded delegate is `sriov` (no SR-IOV here): a script that saves its stdin and prints a result.
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createChainRunner } from '../cni/chain.js';
import { createExecRunner } from '../cni/exec.js';
import { createKubeClient } from '../cni/meta/kube-client-node.js';
import { systemClock } from '../lib/clock.js';
import { createMetaPlugin } from '../cni/meta/plugin.js';
import { createPodResourcesClient } from '../cni/meta/podresources.js';
import { parseNetworkConfig } from '../cni/network-config.js';
import type { CniPluginFn, CniResponse } from '../cni/skel.js';
import { startFakeApiServer } from '../sim/apiserver.js';
import type { FakeApiServer } from '../sim/apiserver.js';
import { startFakePodResources } from '../sim/podresources.js';
import type { FakePodResourcesServer } from '../sim/podresources.js';
import { writeDevExecutable } from './support/bin.js';

const run = promisify(execFile);
const rand = () => Math.random().toString(36).slice(2, 8);
const STATUS = 'k8s.v1.cni.cncf.io/network-status';

interface Env {
  dir: string;
  ns: string;
  netns: string;
  master: string;
  api: FakeApiServer;
  podres: FakePodResourcesServer;
  conf: Record<string, unknown>;
  plugin: CniPluginFn;
  dataDir: string;
  recordDir: string;
}

let e: Env;
const links: string[] = [];

async function linkNames(netns: string): Promise<string[]> {
  const { stdout } = await run('ip', ['-n', netns, '-j', 'link', 'show']);
  return (JSON.parse(stdout) as { ifname: string }[])
    .map((l) => l.ifname)
    .filter((n) => n !== 'lo')
    .sort();
}

async function link(netns: string, name: string): Promise<{ address: string; addrs: string[] }> {
  const { stdout } = await run('ip', ['-n', netns, '-j', 'addr', 'show', 'dev', name]);
  const [l] = JSON.parse(stdout) as { address: string; addr_info: { local: string; prefixlen: number }[] }[];
  return { address: l!.address, addrs: l!.addr_info.map((a) => `${a.local}/${a.prefixlen}`) };
}

/** host-local's reserved IPs across all networks (one file per IP). */
async function reservedIps(): Promise<string[]> {
  const out: string[] = [];
  for (const net of await readdir(e.dataDir).catch(() => [] as string[])) {
    for (const f of await readdir(path.join(e.dataDir, net)))
      if (/^\d+\.\d+\.\d+\.\d+$/.test(f)) out.push(`${net}:${f}`);
  }
  return out.sort();
}

function macvlan(name: string | undefined, subnet: string, extra: Record<string, unknown> = {}) {
  return {
    cniVersion: '1.0.0',
    ...(name !== undefined && { name }),
    type: 'macvlan',
    master: e.master,
    mode: 'bridge',
    ipam: { type: 'host-local', subnet, dataDir: e.dataDir },
    ...extra,
  };
}

function env(command: string, containerId: string, pod = 'pod-a', extra: Record<string, string> = {}) {
  return {
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_NETNS: e.netns,
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/usr/lib/cni',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod};K8S_POD_INFRA_CONTAINER_ID=${containerId};K8S_POD_UID=uid-${pod}`,
    ...extra,
  };
}

async function call(
  command: string,
  containerId: string,
  opts: { pod?: string; conf?: Record<string, unknown>; env?: Record<string, string> } = {},
) {
  return e.plugin({
    env: env(command, containerId, opts.pod, opts.env),
    stdin: JSON.stringify(opts.conf ?? e.conf),
  });
}

function ok(res: CniResponse): Record<string, unknown> {
  expect(res.exitCode, res.stdout).toBe(0);
  return res.stdout === '' ? {} : (JSON.parse(res.stdout) as Record<string, unknown>);
}

function failed(res: CniResponse): { code: number; msg: string } {
  expect(res.exitCode, res.stdout).toBe(1);
  return JSON.parse(res.stdout) as { code: number; msg: string };
}

beforeEach(async () => {
  const id = rand();
  const dir = await mkdtemp(path.join(tmpdir(), 'np-cni-meta-'));
  const ns = `np-cni-${id}`;
  const master = `npcm${id}`;
  await run('ip', ['netns', 'add', ns]);
  await run('ip', ['link', 'add', master, 'type', 'veth', 'peer', 'name', `${master}p`]);
  await run('ip', ['link', 'set', master, 'up']);
  links.push(master);
  const binDir = path.join(dir, 'bin');
  const recordDir = path.join(dir, 'record');
  await mkdir(binDir);
  await mkdir(recordDir);
  for (const p of ['macvlan', 'host-local', 'static', 'tuning'])
    await symlink(`/usr/lib/cni/${p}`, path.join(binDir, p));
  // The recording stand-in for sriov-cni: saves stdin per command+ifname, prints a 1.0.0 result.
  await writeFile(
    path.join(binDir, 'sriov'),
    `#!/bin/sh\ncat > "${recordDir}/$CNI_COMMAND-$CNI_IFNAME.json"\n` +
      `if [ "$CNI_COMMAND" = ADD ]; then printf '{"cniVersion":"1.0.0","interfaces":[{"name":"%s","sandbox":"%s"}],"ips":[{"address":"10.55.0.9/24","interface":0}]}' "$CNI_IFNAME" "$CNI_NETNS"; fi\n`,
  );
  await chmod(path.join(binDir, 'sriov'), 0o755);
  const api = await startFakeApiServer();
  const podres = await startFakePodResources(path.join(dir, 'kubelet.sock'));
  const kubeconfig = await api.writeKubeconfig(path.join(dir, 'kubeconfig'));
  e = {
    dir,
    ns,
    netns: `/run/netns/${ns}`,
    master,
    api,
    podres,
    dataDir: path.join(dir, 'ipam'),
    recordDir,
    conf: {},
    plugin: () => Promise.reject(new Error('not built')),
  };
  const confDir = path.join(dir, 'net.d');
  await mkdir(confDir);
  const clusterFile = path.join(confDir, '10-cluster.conflist');
  await writeFile(
    clusterFile,
    JSON.stringify({ cniVersion: '1.0.0', name: 'cluster', plugins: [macvlan(undefined, '10.90.0.0/24')] }),
  );
  e.conf = {
    cniVersion: '1.0.0',
    name: 'netplumb-cni-network',
    type: 'netplumb',
    kubeconfig,
    clusterNetwork: clusterFile,
    confDir,
    cniDir: path.join(dir, 'cache'),
    binDir,
    devinfoDir: path.join(dir, 'devinfo'),
    podResourcesSocket: podres.socket,
  };
  e.plugin = createMetaPlugin({
    logger: pino({ level: 'silent' }),
    clock: systemClock,
    kubeFor: (conf) => (conf.kubeconfig === undefined ? undefined : createKubeClient(conf.kubeconfig)),
    podResourcesFor: (socket) => createPodResourcesClient(socket, 2_000),
    runnerFor: (conf) => createExecRunner({ binDirs: [conf.binDir], baseEnv: process.env }),
  });
  api.addNad('default', 'macvlan-conf', macvlan(undefined, '10.91.0.0/24'));
});

afterEach(async () => {
  await e.api.stop();
  await e.podres.stop();
  await run('ip', ['netns', 'del', e.ns]).catch(() => undefined);
  for (const l of links.splice(0)) await run('ip', ['link', 'del', l]).catch(() => undefined);
  await rm(e.dir, { recursive: true, force: true });
});

afterAll(async () => {
  for (const l of links) await run('ip', ['link', 'del', l]).catch(() => undefined);
});

function statusOf(pod = 'pod-a'): Record<string, unknown>[] {
  const value = e.api.pod('default', pod)?.metadata.annotations?.[STATUS];
  expect(value).toBeDefined();
  return JSON.parse(value!) as Record<string, unknown>[];
}

describe('netplumb-cni ADD/DEL with real plugins', () => {
  it('attaches the same macvlan NAD twice (macvlan-conf,macvlan-conf) as net1 and net2, then DEL removes all', async () => {
    e.api.addPod({
      namespace: 'default',
      name: 'pod-a',
      annotations: { 'k8s.v1.cni.cncf.io/networks': 'macvlan-conf,macvlan-conf' },
    });
    const result = ok(await call('ADD', 'c1'));
    expect(result).toMatchObject({ cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: e.netns }] });
    expect(await linkNames(e.ns)).toEqual(['eth0', 'net1', 'net2']);
    const net1 = await link(e.ns, 'net1');
    const net2 = await link(e.ns, 'net2');
    expect(net1.addrs[0]).toMatch(/^10\.91\.0\.\d+\/24$/);
    expect(net2.addrs[0]).toMatch(/^10\.91\.0\.\d+\/24$/);
    expect(net1.addrs[0]).not.toBe(net2.addrs[0]);

    const status = statusOf();
    expect(status.map((s) => [s['name'], s['interface'], s['default']])).toEqual([
      ['cluster', 'eth0', true],
      ['default/macvlan-conf', 'net1', undefined],
      ['default/macvlan-conf', 'net2', undefined],
    ]);
    expect(status[1]).toEqual({
      name: 'default/macvlan-conf',
      interface: 'net1',
      ips: [net1.addrs[0]!.split('/')[0]],
      mac: net1.address,
      dns: {},
    });

    const eth0 = await link(e.ns, 'eth0');
    // Multus posts one for every attachment, the cluster network's included.
    expect(e.api.events.map((x) => [x['reason'], x['type'], x['message']]).sort()).toEqual([
      ['AddedInterface', 'Normal', `Add eth0 [${eth0.addrs[0]!}] from cluster`],
      ['AddedInterface', 'Normal', `Add net1 [${net1.addrs[0]!}] from default/macvlan-conf`],
      ['AddedInterface', 'Normal', `Add net2 [${net2.addrs[0]!}] from default/macvlan-conf`],
    ]);
    expect(e.api.events.at(-1)?.['involvedObject']).toMatchObject({
      kind: 'Pod',
      namespace: 'default',
      name: 'pod-a',
      uid: 'uid-pod-a',
    });

    ok(await call('CHECK', 'c1'));
    ok(await call('DEL', 'c1'));
    expect(await linkNames(e.ns)).toEqual([]);
    expect(await reservedIps()).toEqual([]);
    ok(await call('DEL', 'c1')); // repeated DEL: nothing left to undo
  });

  it('applies a static IP and MAC from the JSON annotation through a capabilities conflist', async () => {
    e.api.addNad('default', 'static-net', {
      cniVersion: '1.0.0',
      plugins: [
        { type: 'macvlan', master: e.master, capabilities: { ips: true }, ipam: { type: 'static' } },
        { type: 'tuning', capabilities: { mac: true } },
      ],
    });
    e.api.addPod({
      namespace: 'default',
      name: 'pod-a',
      annotations: {
        'k8s.v1.cni.cncf.io/networks': JSON.stringify([
          { name: 'static-net', interface: 'data0', ips: ['10.1.1.11/24'], mac: 'c2:b0:57:49:47:f1' },
        ]),
      },
    });
    ok(await call('ADD', 'c2'));
    expect(await link(e.ns, 'data0')).toEqual({ address: 'c2:b0:57:49:47:f1', addrs: ['10.1.1.11/24'] });
    expect(statusOf()[1]).toEqual({
      name: 'default/static-net',
      interface: 'data0',
      ips: ['10.1.1.11'],
      mac: 'c2:b0:57:49:47:f1',
      dns: {},
    });
    ok(await call('DEL', 'c2'));
    expect(await linkNames(e.ns)).toEqual([]);
  });

  it('rolls back when the second delegate fails: no interface, no IP, no cache left', async () => {
    e.api.addNad('default', 'broken', {
      cniVersion: '1.0.0',
      type: 'macvlan',
      master: 'np-nosuch0',
      ipam: { type: 'host-local', subnet: '10.92.0.0/24', dataDir: e.dataDir },
    });
    e.api.addPod({
      namespace: 'default',
      name: 'pod-a',
      annotations: { 'k8s.v1.cni.cncf.io/networks': 'macvlan-conf,broken' },
    });
    const err = failed(await call('ADD', 'c3'));
    expect(err.msg).toMatch(
      /^\[default\/pod-a\/uid-pod-a:default\/broken\]: error adding container to network "default\/broken": plugin type="macvlan" failed/,
    );
    expect(await linkNames(e.ns)).toEqual([]);
    expect(await reservedIps()).toEqual([]);
    expect(await readdir(path.join(e.dir, 'cache'))).toEqual([]);
    ok(await call('DEL', 'c3'));
  });

  it('DELs from the cache with the API server down', async () => {
    e.api.addPod({
      namespace: 'default',
      name: 'pod-a',
      annotations: { 'k8s.v1.cni.cncf.io/networks': 'macvlan-conf' },
    });
    ok(await call('ADD', 'c4'));
    expect(await linkNames(e.ns)).toEqual(['eth0', 'net1']);
    await e.api.stop();
    ok(await call('DEL', 'c4'));
    expect(await linkNames(e.ns)).toEqual([]);
    expect(await reservedIps()).toEqual([]);
  });

  it('DELs with the netns already gone and releases the IPs', async () => {
    e.api.addPod({
      namespace: 'default',
      name: 'pod-a',
      annotations: { 'k8s.v1.cni.cncf.io/networks': 'macvlan-conf' },
    });
    ok(await call('ADD', 'c5'));
    await run('ip', ['netns', 'del', e.ns]);
    ok(await call('DEL', 'c5', { env: { CNI_NETNS: '' } }));
    expect(await reservedIps()).toEqual([]);
  });

  it('answers a 0.3.1 caller (as an executable) with ips[].version and a 1.0.0 caller without', async () => {
    e.api.addPod({
      namespace: 'default',
      name: 'pod-a',
      annotations: { 'k8s.v1.cni.cncf.io/networks': 'macvlan-conf' },
    });
    const exe = await writeDevExecutable(e.dir, 'netplumb-cni', 'bin/netplumb-cni.ts');
    const conf031 = { ...e.conf, cniVersion: '0.3.1' };
    const child = execFile(exe, { env: { ...process.env, ...env('ADD', 'c6') } });
    child.stdin?.end(JSON.stringify(conf031));
    const stdout = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
      child.on('close', (code) => {
        if (code === 0) resolve(out);
        else reject(new Error(`exit ${code}: ${out}`));
      });
    });
    const r031 = JSON.parse(stdout) as { cniVersion: string; ips: { version?: string }[]; dns?: unknown };
    // Thin mode posts Multus's events too.
    expect(e.api.events.map((x) => x['reason'])).toEqual(['AddedInterface', 'AddedInterface']);
    expect(r031.cniVersion).toBe('0.3.1');
    expect(r031.ips[0]?.version).toBe('4');
    expect(r031.dns).toEqual({});
    ok(await call('DEL', 'c6', { conf: conf031 }));

    const r100 = ok(await call('ADD', 'c7')) as { cniVersion: string; ips: { version?: string }[] };
    expect(r100.cniVersion).toBe('1.0.0');
    expect(r100.ips[0]?.version).toBeUndefined();
    ok(await call('DEL', 'c7'));
  });

  it.each([
    ['a/b/c', /more than one "\/"/],
    ['Macvlan', /network name "Macvlan" is not a valid name/],
    [
      '[{"name": "macvlan-conf", "ips": ["300.1.1.1/24"]}]',
      /"ips": "300.1.1.1\/24" is not an IP address or CIDR/,
    ],
    ['missing-net', /cannot find a network-attachment-definition \(missing-net\) in namespace \(default\)/],
    ['macvlan-conf@eth0', /interface name "eth0" is requested by both "cluster" and "default\/macvlan-conf"/],
  ])('refuses the annotation %s with a clear error and attaches nothing', async (annotation, msg) => {
    e.api.addPod({
      namespace: 'default',
      name: 'pod-a',
      annotations: { 'k8s.v1.cni.cncf.io/networks': annotation },
    });
    const err = failed(await call('ADD', 'c8'));
    expect(err.code).toBe(7);
    expect(err.msg).toMatch(msg);
    expect(await linkNames(e.ns)).toEqual([]);
    // A NAD that does not exist is also a Warning event on the pod, as Multus posts it.
    const warnings = e.api.events.filter((x) => x['reason'] === 'NoNetworkFound');
    expect(warnings.map((x) => x['type'])).toEqual(annotation === 'missing-net' ? ['Warning'] : []);
  });

  it('injects the kubelet-allocated VF into an sriov NAD (recorded delegate) with device-info', async () => {
    e.api.addNad(
      'default',
      'sriov-net',
      {
        cniVersion: '1.0.0',
        type: 'sriov',
        vlan: 100,
        capabilities: { deviceID: true, CNIDeviceInfoFile: true },
      },
      {
        'k8s.v1.cni.cncf.io/resourceName': 'intel.com/sriov',
      },
    );
    e.api.addPod({
      namespace: 'default',
      name: 'pod-a',
      annotations: { 'k8s.v1.cni.cncf.io/networks': 'sriov-net,sriov-net' },
      containers: ['app'],
    });
    e.podres.setPod({
      namespace: 'default',
      name: 'pod-a',
      containers: { app: { 'intel.com/sriov': ['0000:3b:02.2', '0000:3b:02.1'] } },
    });
    const dp = path.join(e.dir, 'devinfo', 'dp');
    await mkdir(dp, { recursive: true });
    const info = { type: 'pci', version: '1.1.0', pci: { 'pci-address': '0000:3b:02.1' } };
    await writeFile(path.join(dp, 'intel.com-sriov-0000:3b:02.1-device.json'), JSON.stringify(info));

    ok(await call('ADD', 'c9'));
    const net1 = JSON.parse(await readFile(path.join(e.recordDir, 'ADD-net1.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const net2 = JSON.parse(await readFile(path.join(e.recordDir, 'ADD-net2.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const devinfoFile = path.join(e.dir, 'devinfo', 'cni', 'default-sriov-net-c9_net1');
    expect(net1).toMatchObject({
      name: 'sriov-net',
      type: 'sriov',
      vlan: 100,
      deviceID: '0000:3b:02.1',
      pciBusID: '0000:3b:02.1',
      runtimeConfig: { deviceID: '0000:3b:02.1', CNIDeviceInfoFile: devinfoFile },
    });
    expect(net2).toMatchObject({ deviceID: '0000:3b:02.2', pciBusID: '0000:3b:02.2' });
    expect(JSON.parse(await readFile(devinfoFile, 'utf8'))).toEqual(info);
    expect(statusOf()[1]).toMatchObject({
      name: 'default/sriov-net',
      interface: 'net1',
      'device-info': info,
    });

    ok(await call('DEL', 'c9'));
    const del1 = JSON.parse(await readFile(path.join(e.recordDir, 'DEL-net1.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(del1).toMatchObject({
      deviceID: '0000:3b:02.1',
      prevResult: { ips: [{ address: '10.55.0.9/24' }] },
    });
    await expect(readFile(devinfoFile)).rejects.toThrow(/ENOENT/);
  });

  it('names the NAD, resource and allocation when the pod got too few devices', async () => {
    e.api.addNad(
      'default',
      'sriov-net',
      { cniVersion: '1.0.0', type: 'sriov' },
      { 'k8s.v1.cni.cncf.io/resourceName': 'intel.com/sriov' },
    );
    e.api.addPod({
      namespace: 'default',
      name: 'pod-a',
      annotations: { 'k8s.v1.cni.cncf.io/networks': 'sriov-net' },
    });
    e.podres.setPod({ namespace: 'default', name: 'pod-a', containers: { app: {} } });
    const err = failed(await call('ADD', 'c10'));
    expect(err.msg).toMatch(
      /network "default\/sriov-net" needs a device of resource "intel.com\/sriov" but pod default\/pod-a was allocated 0/,
    );
    expect(await linkNames(e.ns)).toEqual([]);
  });

  it('uses a NIC-pool device as macvlan master', async () => {
    const nic = `npnc${rand()}`;
    await run('ip', ['link', 'add', nic, 'type', 'veth', 'peer', 'name', `${nic}p`]);
    links.push(nic);
    await run('ip', ['link', 'set', nic, 'up']);
    e.api.addNad(
      'default',
      'nic-net',
      {
        cniVersion: '1.0.0',
        type: 'macvlan',
        ipam: { type: 'static', addresses: [{ address: '10.3.0.2/24' }] },
      },
      {
        'k8s.v1.cni.cncf.io/resourceName': 'netplumb.io/nic',
      },
    );
    e.api.addPod({
      namespace: 'default',
      name: 'pod-a',
      annotations: { 'k8s.v1.cni.cncf.io/networks': 'nic-net' },
    });
    e.podres.setPod({
      namespace: 'default',
      name: 'pod-a',
      containers: { app: { 'netplumb.io/nic': [nic] } },
    });
    ok(await call('ADD', 'c11'));
    const { stdout } = await run('ip', ['-n', e.ns, '-j', '-d', 'link', 'show', 'net1']);
    const [l] = JSON.parse(stdout) as { link_index?: number; link?: string; link_netnsid?: number }[];
    const { stdout: host } = await run('ip', ['-j', 'link', 'show', nic]);
    expect(l?.link_index).toBe((JSON.parse(host) as { ifindex: number }[])[0]?.ifindex);
    ok(await call('DEL', 'c11'));
  });

  it('retries the network-status write on conflict', async () => {
    e.api.addPod({
      namespace: 'default',
      name: 'pod-a',
      annotations: { 'k8s.v1.cni.cncf.io/networks': 'macvlan-conf' },
    });
    e.api.conflictNext(2);
    ok(await call('ADD', 'c12'));
    expect(statusOf()).toHaveLength(2);
    expect(e.api.requests.filter((r) => r.method === 'PUT')).toHaveLength(3);
    ok(await call('DEL', 'c12'));
  });

  it('retries reading the pod through transient 503s', async () => {
    e.api.addPod({
      namespace: 'default',
      name: 'pod-a',
      annotations: { 'k8s.v1.cni.cncf.io/networks': 'macvlan-conf' },
    });
    e.api.failNext(2, 503, /^GET \/api\/v1\/namespaces\/default\/pods\/pod-a$/);
    ok(await call('ADD', 'c14'));
    expect(await linkNames(e.ns)).toEqual(['eth0', 'net1']);
    ok(await call('DEL', 'c14'));
  });

  it('fails ADD with code 11 and attaches nothing when the API server is down', async () => {
    await e.api.stop();
    const err = failed(await call('ADD', 'c15'));
    expect(err.code).toBe(11);
    expect(err.msg).toMatch(/cannot read pod default\/pod-a: .*unreachable/);
    expect(await linkNames(e.ns)).toEqual([]);
  });

  it('moves the default route to the attachment that asks for it (default-route)', async () => {
    const clusterFile = path.join(e.dir, 'cluster-with-route.conflist');
    const cluster = macvlan(undefined, '10.90.0.0/24');
    cluster.ipam = { ...cluster.ipam, routes: [{ dst: '0.0.0.0/0' }] } as typeof cluster.ipam;
    await writeFile(
      clusterFile,
      JSON.stringify({ cniVersion: '1.0.0', name: 'cluster', plugins: [cluster] }),
    );
    e.api.addPod({
      namespace: 'default',
      name: 'pod-a',
      annotations: {
        'k8s.v1.cni.cncf.io/networks': '[{"name": "macvlan-conf", "default-route": ["10.91.0.254"]}]',
      },
    });
    const conf = { ...e.conf, clusterNetwork: clusterFile };
    const r = ok(await call('ADD', 'c16', { conf })) as { routes?: { dst: string }[] };
    const { stdout } = await run('ip', ['-n', e.ns, '-4', 'route', 'show', 'default']);
    expect(stdout.trim().split('\n')).toEqual([
      expect.stringMatching(/^default via 10\.91\.0\.254 dev net1\b/),
    ]);
    expect((r.routes ?? []).filter((x) => x.dst === '0.0.0.0/0')).toEqual([]);
    expect(statusOf()[1]).toMatchObject({ interface: 'net1', gateway: ['10.91.0.254'] });
    ok(await call('DEL', 'c16', { conf }));
    expect(await linkNames(e.ns)).toEqual([]);
  });

  it("tears down a pod that Multus attached (reads Multus's cache after a switch)", async () => {
    const chain = createChainRunner(createExecRunner({ binDirs: ['/usr/lib/cni'], baseEnv: process.env }));
    const clusterDoc = {
      cniVersion: '1.0.0',
      name: 'cluster',
      plugins: [macvlan(undefined, '10.90.0.0/24')],
    };
    const nadDoc = macvlan('macvlan-conf', '10.91.0.0/24');
    const rt = (ifname: string) => ({
      containerId: 'm1',
      netns: e.netns,
      ifname,
      args: [],
      capabilityArgs: {},
      path: ['/usr/lib/cni'],
    });
    await chain.add(parseNetworkConfig(clusterDoc, 't'), rt('eth0'));
    await chain.add(parseNetworkConfig(nadDoc, 't'), rt('net1'));
    expect(await linkNames(e.ns)).toEqual(['eth0', 'net1']);
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64');
    await mkdir(path.join(e.dir, 'cache'), { recursive: true });
    await writeFile(
      path.join(e.dir, 'cache', 'm1'),
      JSON.stringify([
        {
          Conf: {},
          ConfList: {},
          Name: 'cluster',
          IsFilterV4Gateway: false,
          IsFilterV6Gateway: false,
          Bytes: b64(clusterDoc),
        },
        {
          Conf: {},
          ConfList: {},
          Name: 'default/macvlan-conf',
          IsFilterV4Gateway: false,
          IsFilterV6Gateway: false,
          Bytes: b64(nadDoc),
        },
      ]),
    );
    ok(await call('DEL', 'm1'));
    expect(await linkNames(e.ns)).toEqual([]);
    expect(await reservedIps()).toEqual([]);
    expect(await readdir(path.join(e.dir, 'cache'))).toEqual([]);
  });

  it('honours v1.multus-cni.io/default-network as the cluster network', async () => {
    e.api.addNad('kube-system', 'alt-default', macvlan(undefined, '10.93.0.0/24'));
    e.api.addPod({
      namespace: 'default',
      name: 'pod-a',
      annotations: { 'v1.multus-cni.io/default-network': 'alt-default' },
    });
    const r = ok(await call('ADD', 'c13')) as { ips: { address: string }[] };
    expect(r.ips[0]?.address).toMatch(/^10\.93\.0\./);
    expect(statusOf()[0]).toMatchObject({
      name: 'kube-system/alt-default',
      interface: 'eth0',
      default: true,
    });
    ok(await call('DEL', 'c13'));
    expect(await linkNames(e.ns)).toEqual([]);
  });
});

// Issue 12 items 3, 4, 6, 11: state loss and wrong answers on the meta-plugin path.
describe('netplumb-cni under faults and bad input', () => {
  const twoNets = () => {
    e.api.addPod({
      namespace: 'default',
      name: 'pod-a',
      annotations: { 'k8s.v1.cni.cncf.io/networks': 'macvlan-conf,macvlan-conf' },
    });
  };
  const cacheFile = (cid: string) => path.join(e.dir, 'cache', cid);

  it.each([
    ['truncated', (t: string) => t.slice(0, Math.floor(t.length * 0.6))],
    ['garbage', () => 'x\u0000\u00ff not json'],
    ['empty', () => ''],
    ['of the wrong schema', () => JSON.stringify({ kind: 'netplumbCacheV1', attachments: 'nope' })],
  ])(
    'DEL with a %s cache and the API up undoes every attachment (no lease, no link left)',
    async (_w, damage) => {
      twoNets();
      ok(await call('ADD', 'f1'));
      expect(await reservedIps()).toHaveLength(3);
      await writeFile(cacheFile('f1'), damage(await readFile(cacheFile('f1'), 'utf8')));
      ok(await call('DEL', 'f1'));
      expect(await reservedIps()).toEqual([]);
      expect(await linkNames(e.ns)).toEqual([]);
      expect(await readdir(path.join(e.dir, 'cache'))).toEqual(['f1.corrupt']);
    },
  );

  it("DEL with a truncated cache and the API down releases the leases from host-local's own state", async () => {
    twoNets();
    ok(await call('ADD', 'f2'));
    // Cut just after the first delegate's dataDir: the rest (the NAD delegates) is lost.
    const text = await readFile(cacheFile('f2'), 'utf8');
    await writeFile(cacheFile('f2'), text.slice(0, text.indexOf('"dataDir"') + 100));
    await e.api.stop();
    ok(await call('DEL', 'f2'));
    expect(await reservedIps()).toEqual([]);
    expect(await linkNames(e.ns)).toEqual([]);
  });

  it('a second ADD of the same container is refused before any side effect and leaves the first attachment alone', async () => {
    twoNets();
    ok(await call('ADD', 'f3'));
    const before = await reservedIps();
    const again = failed(await call('ADD', 'f3'));
    expect(again.msg).toMatch(/container f3 is already attached \(eth0, net1, net2\)/);
    expect(await linkNames(e.ns)).toEqual(['eth0', 'net1', 'net2']);
    expect(await reservedIps()).toEqual(before);
    ok(await call('DEL', 'f3'));
    expect(await linkNames(e.ns)).toEqual([]);
    expect(await reservedIps()).toEqual([]);
  });

  it('refuses a CNI_NETNS that does not exist before any delegate runs', async () => {
    twoNets();
    const err = failed(await call('ADD', 'f4', { env: { CNI_NETNS: '/run/netns/np-no-such-ns' } }));
    expect(err.msg).toMatch(/CNI_NETNS \/run\/netns\/np-no-such-ns is not a network namespace/);
    expect(await reservedIps()).toEqual([]);
    expect(await readdir(path.join(e.dir, 'cache')).catch(() => [])).toEqual([]);
  });

  it('refuses an interface name already present in the pod before any delegate runs', async () => {
    twoNets();
    await run('ip', ['-n', e.ns, 'link', 'add', 'net2', 'type', 'veth', 'peer', 'name', 'np-peer']);
    const err = failed(await call('ADD', 'f5'));
    expect(err.code).toBe(7);
    expect(err.msg).toMatch(/interface net2 \(network "default\/macvlan-conf"\) already exists/);
    expect(await linkNames(e.ns)).toEqual(['net2', 'np-peer']);
    expect(await reservedIps()).toEqual([]);
  });

  it('reports an API 503 on the network-status write as code 11 (transient) and rolls back', async () => {
    twoNets();
    e.api.failNext(10, 503, /^PUT /);
    const err = failed(await call('ADD', 'f6'));
    expect(err.code).toBe(11);
    expect(err.msg).toMatch(/cannot set network-status on pod default\/pod-a/);
    expect(await linkNames(e.ns)).toEqual([]);
    expect(await reservedIps()).toEqual([]);
  });
});

describe('a crash in the middle of ADD: the process stops at a delegate, a restarted one serves DEL', () => {
  /** The crashed process's meta-plugin: its `n`th macvlan ADD runs (or not) and then never returns. */
  function crashingAt(n: number, after: 'before' | 'after', reached: () => void): CniPluginFn {
    let adds = 0;
    return createMetaPlugin({
      logger: pino({ level: 'silent' }),
      clock: systemClock,
      kubeFor: (conf) => (conf.kubeconfig === undefined ? undefined : createKubeClient(conf.kubeconfig)),
      podResourcesFor: (socket) => createPodResourcesClient(socket, 2_000),
      runnerFor: (conf) => {
        const exec = createExecRunner({ binDirs: [conf.binDir], baseEnv: process.env });
        return {
          async run(type, req) {
            if (req.env['CNI_COMMAND'] !== 'ADD' || type !== 'macvlan' || ++adds !== n)
              return exec.run(type, req);
            if (after === 'after') await exec.run(type, req);
            reached();
            return new Promise<never>(() => undefined);
          },
        };
      },
    });
  }

  it.each([
    ['before the first delegate runs', 1, 'before'],
    ['after two delegates, before the third runs', 3, 'before'],
    ['after the third delegate attached, before its result is recorded', 3, 'after'],
  ] as const)('%s', async (_what, n, after) => {
    e.api.addPod({
      namespace: 'default',
      name: 'pod-a',
      annotations: { 'k8s.v1.cni.cncf.io/networks': 'macvlan-conf,macvlan-conf' },
    });
    let reached!: () => void;
    const atCrash = new Promise<void>((resolve) => (reached = resolve));
    const crashed = crashingAt(n, after, reached);
    void crashed({ env: env('ADD', 'x1'), stdin: JSON.stringify(e.conf) });
    await atCrash;
    // A real crash ends the process's background cache writes too: let this one's finish first.
    const cacheDir = path.join(e.dir, 'cache');
    const writing = async () => (await readdir(cacheDir)).some((f) => f.endsWith('.tmp'));
    for (let quiet = 0; quiet < 3; quiet = (await writing()) ? 0 : quiet + 1)
      await new Promise((r) => setTimeout(r, 20));
    expect(await readdir(cacheDir)).toEqual(['x1']);
    // The restarted process (a new meta-plugin over the same disk) gets the runtime's DEL.
    ok(await call('DEL', 'x1'));
    expect(await linkNames(e.ns)).toEqual([]);
    expect(await reservedIps()).toEqual([]);
    expect(await readdir(path.join(e.dir, 'cache'))).toEqual([]);
  });
});
