// Issue 12 item 1: `logFile` / `logLevel` from a network config (written by namespace users) must
// never crash the process running the sriov plugin (the CNI daemon runs it in-process), never
// write outside the operator's log directory, and never keep a descriptor per distinct path.
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSriovPlugin } from '../../cni/sriov/plugin.js';
import { createSriovDeps } from '../../cni/sriov/wiring.js';
import type { CniPluginFn } from '../../cni/skel.js';
import { cniEnv, createBench } from '../support/sriov-cni-bench.js';
import type { Bench } from '../support/sriov-cni-bench.js';

let bench: Bench;
let logDir: string;
let plugin: CniPluginFn;

beforeEach(async () => {
  bench = await createBench('np-lf');
  logDir = path.join(bench.dir, 'logs');
  await mkdir(logDir);
  const wired = createSriovDeps({
    sysfsRoot: bench.node.sysfsRoot,
    delegateLogDir: logDir,
    logDestination: pino.destination({ dest: path.join(bench.dir, 'default.log'), sync: true }),
  });
  plugin = createSriovPlugin({ ...bench.deps, logger: wired.logger });
});
afterEach(async () => {
  await bench.cleanup();
});

function conf(extra: Record<string, unknown>) {
  return { cniVersion: '1.0.0', name: 'sriov-net', type: 'sriov', deviceID: bench.vf[0], ...extra };
}

async function addDel(containerId: string, extra: Record<string, unknown>) {
  const ns = await bench.newNetns();
  const opts = { containerId, netns: ns.path };
  const add = await plugin({ env: cniEnv('ADD', opts), stdin: JSON.stringify(conf(extra)) });
  const del = await plugin({ env: cniEnv('DEL', opts), stdin: JSON.stringify(conf(extra)) });
  await ns.remove();
  return { add, del };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('logFile from a network config', () => {
  it('in a missing directory: the call succeeds, nothing crashes, the default log says why', async () => {
    const { add, del } = await addDel('lf1', { logFile: path.join(logDir, 'no-such-dir', 'x.log') });
    await settle(); // an unhandled stream 'error' would surface here and fail the file
    expect(add.exitCode, add.stdout).toBe(0);
    expect(del.exitCode, del.stdout).toBe(0);
    expect(await readFile(path.join(bench.dir, 'default.log'), 'utf8')).toMatch(/no-such-dir/);
  });

  it('outside the log directory (absolute, ../, through a symlink): nothing is written there', async () => {
    const outside = path.join(bench.dir, 'outside');
    await mkdir(outside);
    await symlink(outside, path.join(logDir, 'escape'));
    for (const [i, logFile] of [
      path.join(outside, 'abs.log'),
      '../outside/rel.log',
      'escape/link.log',
    ].entries()) {
      const { add } = await addDel(`lf2${i}`, { logFile, logLevel: 'debug' });
      expect(add.exitCode, add.stdout).toBe(0);
    }
    await settle();
    expect(await readdir(outside)).toEqual([]);
    expect(await readFile(path.join(bench.dir, 'default.log'), 'utf8')).toMatch(/outside the log directory/);
  });

  it('inside the log directory: the lines land there, at the requested level, and no descriptor stays open', async () => {
    const fds = async () => (await readdir('/proc/self/fd')).length;
    await addDel('lf3', { logFile: 'warmup.log', logLevel: 'debug' });
    const before = await fds();
    for (let i = 0; i < 8; i++) await addDel(`lf4${i}`, { logFile: `pod-${i}.log`, logLevel: 'debug' });
    await addDel('lf5', { logFile: 'quiet.log', logLevel: 'error' });
    await settle();
    expect(await fds()).toBeLessThanOrEqual(before);
    expect(await readFile(path.join(logDir, 'pod-7.log'), 'utf8')).toMatch(/"msg":"VF attached"/);
    // logLevel error: a successful call writes nothing.
    expect(existsSync(path.join(logDir, 'quiet.log'))).toBe(false);
    expect(existsSync(path.join(bench.dir, 'pod-7.log'))).toBe(false);
  });
});
