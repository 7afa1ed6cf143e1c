// DEL of a container netplumb has no DEL cache for, on real parts (Debian's macvlan + host-local in
// a real netns). Seen on the real cluster: a pod started while the CNI daemon came up was attached
// by the runtime straight through the cluster network's own config (00-netplumb.conflist did not
// exist yet); its DEL came through netplumb, found no cache and undid nothing, so the cluster
// network's lease leaked. netplumb now DELs the cluster network from its config, as Multus does.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createExecRunner } from '../cni/exec.js';
import { createMetaPlugin } from '../cni/meta/plugin.js';
import type { CniPluginFn } from '../cni/skel.js';
import { systemClock } from '../lib/clock.js';

const run = promisify(execFile);
const rand = (): string => Math.random().toString(36).slice(2, 8);

let dir: string;
let ns: string;
let master: string;
let binDir: string;
let dataDir: string;
let clusterFile: string;
let plugin: CniPluginFn;

beforeEach(async () => {
  const id = rand();
  dir = await mkdtemp(path.join(tmpdir(), 'np-del-nocache-'));
  ns = `np-dnc-${id}`;
  master = `npdn${id}`;
  await run('ip', ['netns', 'add', ns]);
  await run('ip', ['link', 'add', master, 'type', 'veth', 'peer', 'name', `${master}p`]);
  await run('ip', ['link', 'set', master, 'up']);
  binDir = path.join(dir, 'bin');
  dataDir = path.join(dir, 'ipam');
  await mkdir(binDir);
  for (const p of ['macvlan', 'host-local']) await symlink(`/usr/lib/cni/${p}`, path.join(binDir, p));
  await mkdir(path.join(dir, 'net.d'));
  clusterFile = path.join(dir, 'net.d', '10-cluster.conflist');
  await writeFile(
    clusterFile,
    JSON.stringify({
      cniVersion: '0.4.0',
      name: 'cluster-net',
      plugins: [
        {
          type: 'macvlan',
          master,
          mode: 'bridge',
          ipam: { type: 'host-local', subnet: '10.93.0.0/24', dataDir },
        },
      ],
    }),
  );
  plugin = createMetaPlugin({
    logger: pino({ level: 'silent' }),
    clock: systemClock,
    kubeFor: () => undefined,
    podResourcesFor: () => {
      throw new Error('not used');
    },
    runnerFor: (conf) => createExecRunner({ binDirs: [conf.binDir], baseEnv: process.env }),
  });
});

afterEach(async () => {
  await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  await run('ip', ['link', 'del', master]).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

const env = (command: string, containerId: string, netns = `/run/netns/${ns}`): Record<string, string> => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: containerId,
  CNI_NETNS: netns,
  CNI_IFNAME: 'eth0',
  CNI_PATH: binDir,
  CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=certs;K8S_POD_INFRA_CONTAINER_ID=${containerId}`,
});

const netplumbConf = (): string =>
  JSON.stringify({
    cniVersion: '0.4.0',
    name: 'netplumb-cni-network',
    type: 'netplumb',
    clusterNetwork: clusterFile,
    confDir: path.join(dir, 'net.d'),
    cniDir: path.join(dir, 'cache'),
    binDir,
  });

/** host-local's leases (one file per IP) of every network under dataDir. */
async function leases(): Promise<string[]> {
  const out: string[] = [];
  for (const net of await readdir(dataDir).catch(() => [] as string[]))
    for (const f of await readdir(path.join(dataDir, net)))
      if (/^\d+\.\d+\.\d+\.\d+$/.test(f)) out.push(`${net}/${f}`);
  return out.sort();
}

async function podLinks(): Promise<string[]> {
  const { stdout } = await run('ip', ['-n', ns, '-j', 'link', 'show']);
  return (JSON.parse(stdout) as { ifname: string }[]).map((l) => l.ifname).filter((n) => n !== 'lo');
}

/** What the runtime did before netplumb's config existed: ADD through the cluster network's conflist. */
async function addThroughClusterConfig(containerId: string): Promise<void> {
  const list = JSON.parse(await readFile(clusterFile, 'utf8')) as {
    name: string;
    cniVersion: string;
    plugins: Record<string, unknown>[];
  };
  const conf = { name: list.name, cniVersion: list.cniVersion, ...list.plugins[0] };
  await new Promise<void>((resolve, reject) => {
    const child = execFile(
      path.join(binDir, 'macvlan'),
      [],
      { env: env('ADD', containerId) },
      (err: Error | null) => {
        if (err) reject(err);
        else resolve();
      },
    );
    child.stdin?.end(JSON.stringify(conf));
  });
}

describe('meta-plugin DEL without a DEL cache', () => {
  it("releases what the cluster network allocated when the runtime ADDed through the cluster network's own config", async () => {
    await addThroughClusterConfig('nocache1');
    expect(await leases()).toEqual(['cluster-net/10.93.0.2']);
    expect(await podLinks()).toEqual(['eth0']);
    const res = await plugin({ env: env('DEL', 'nocache1'), stdin: netplumbConf() });
    expect(res.exitCode, res.stdout).toBe(0);
    expect(await leases()).toEqual([]);
    expect(await podLinks()).toEqual([]);
  });

  it('with the netns already gone still releases the lease, and a repeated DEL succeeds', async () => {
    await addThroughClusterConfig('nocache2');
    await run('ip', ['netns', 'del', ns]);
    for (let i = 0; i < 2; i++) {
      const res = await plugin({ env: env('DEL', 'nocache2', ''), stdin: netplumbConf() });
      expect(res.exitCode, res.stdout).toBe(0);
    }
    expect(await leases()).toEqual([]);
  });

  it("leaves other containers' leases alone", async () => {
    await addThroughClusterConfig('nocache3');
    const res = await plugin({ env: env('DEL', 'someone-else'), stdin: netplumbConf() });
    expect(res.exitCode, res.stdout).toBe(0);
    expect(await leases()).toEqual(['cluster-net/10.93.0.2']);
  });
});
