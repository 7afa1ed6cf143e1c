import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCniDaemon } from './daemon.js';
import type { RunningDaemon } from './daemon.js';
import { buildShim } from './shim-build.js';
import { buildSpawner } from './spawner/build.js';
import { runProcess } from '../../test/support/process.js';
import type { ProcessOutput } from '../../test/support/process.js';

// End to end on this kernel: the generated config, the C shim, the daemon, the meta-plugin and a
// real macvlan delegate (from /usr/lib/cni) into a real network namespace, every process started
// by netplumb-spawner (as the DaemonSet runs it). An `nsenter` wrapper first on the daemon's PATH
// records which process started it (the pod netns check before the first delegate).
const id = randomBytes(3).toString('hex');
const NETNS = `np-dmn-${id}`;
const MASTER = `np-dm${id}`;
const PEER = `np-dp${id}`;
const REAL_NSENTER = execFileSync('sh', ['-c', 'command -v nsenter'], { encoding: 'utf8' }).trim();

let tmp: string;
let shim: string;
let daemon: RunningDaemon;
let socket: string;
let confDir: string;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'np-daemon-e2e-'));
  shim = (await buildShim(path.join(tmp, 'bin', 'netplumb-shim'))).file;
  ip('netns', 'add', NETNS);
  ip('link', 'add', MASTER, 'type', 'veth', 'peer', 'name', PEER);
  ip('link', 'set', MASTER, 'up');
  confDir = path.join(tmp, 'net.d');
  execFileSync('mkdir', ['-p', confDir]);
  await writeFile(
    path.join(confDir, '10-cluster.conflist'),
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'cluster',
      plugins: [
        {
          type: 'macvlan',
          master: MASTER,
          mode: 'bridge',
          ipam: { type: 'host-local', subnet: '10.99.0.0/24', dataDir: path.join(tmp, 'ipam') },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    }),
  );
  socket = path.join(tmp, 'run', 'cni.sock');
  const spawner = (await buildSpawner(path.join(tmp, 'bin', 'netplumb-spawner'))).file;
  await mkdir(path.join(tmp, 'wrap'));
  await writeFile(
    path.join(tmp, 'wrap', 'nsenter'),
    `#!/bin/sh\ncat /proc/$PPID/comm >> ${tmp}/nsenter-parents\nexec ${REAL_NSENTER} "$@"\n`,
  );
  await chmod(path.join(tmp, 'wrap', 'nsenter'), 0o755);
  const pathBefore = process.env['PATH'];
  // The daemon reads its environment once, at start.
  process.env['PATH'] = `${tmp}/wrap:${pathBefore ?? '/usr/bin:/bin'}`;
  daemon = await startCniDaemon({
    socketPath: socket,
    cniConfDir: confDir,
    daemonConfig: { cniDir: path.join(tmp, 'cache'), binDir: '/usr/lib/cni' },
    maxConcurrent: 4,
    maxQueued: 16,
    readyWaitMs: 5000,
    sysfsRoot: '/sys',
    sriovStateDir: path.join(tmp, 'sriov'),
    spawnerPath: spawner,
    logger: pino({ level: 'silent' }),
  });
  process.env['PATH'] = pathBefore;
}, 60_000);

afterAll(async () => {
  await daemon.close();
  try {
    ip('netns', 'del', NETNS);
  } catch {
    // already gone
  }
  try {
    ip('link', 'del', MASTER);
  } catch {
    // already gone
  }
  await rm(tmp, { recursive: true, force: true });
});

function call(command: string, stdin: string): Promise<ProcessOutput> {
  return runProcess(
    shim,
    {
      CNI_COMMAND: command,
      CNI_CONTAINERID: `ctr-${id}`,
      CNI_NETNS: `/run/netns/${NETNS}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/usr/lib/cni',
      CNI_ARGS: 'IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=p',
    },
    stdin,
  );
}

describe('CNI daemon end to end (shim → daemon → meta-plugin → macvlan)', () => {
  it('writes 00-netplumb.conflist and becomes ready', async () => {
    const conf = JSON.parse(await readFile(path.join(confDir, '00-netplumb.conflist'), 'utf8')) as {
      plugins: Record<string, unknown>[];
    };
    expect(conf.plugins[0]).toMatchObject({
      type: 'netplumb-shim',
      daemonSocket: socket,
      capabilities: { portMappings: true },
    });
    expect(daemon.readiness.ready).toBe(true);
  });

  it('ADD puts the cluster interface into the pod netns and DEL removes it', async () => {
    // What a runtime sends for the first (only) plugin of the generated conflist.
    const list = JSON.parse(await readFile(path.join(confDir, '00-netplumb.conflist'), 'utf8')) as {
      cniVersion: string;
      name: string;
      plugins: Record<string, unknown>[];
    };
    const stdin = JSON.stringify({ cniVersion: list.cniVersion, name: list.name, ...list.plugins[0] });
    const add = await call('ADD', stdin);
    expect(add.stdout).toContain('10.99.0.');
    expect(add.code).toBe(0);
    const links = JSON.parse(ip('-n', NETNS, '-json', 'addr', 'show', 'eth0')) as {
      addr_info: { local: string }[];
    }[];
    expect(links[0]!.addr_info.some((a) => a.local.startsWith('10.99.0.'))).toBe(true);
    // The netns check ran from the helper, not from a fork of the daemon's process.
    expect((await readFile(path.join(tmp, 'nsenter-parents'), 'utf8')).split('\n')).toEqual([
      'netplumb-spawne',
      '',
    ]);
    const del = await call('DEL', stdin);
    expect(del.code).toBe(0);
    expect(() => ip('-n', NETNS, 'link', 'show', 'eth0')).toThrow();
    expect(await daemon.metrics.registry.metrics()).toMatch(
      /netplumb_cni_request_duration_seconds_count\{command="ADD",result="success"\} 1/,
    );
  });
});
