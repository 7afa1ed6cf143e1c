// The plugin as a real program (bin/netplumb-sriov.ts run by Node, as a runtime would exec it):
// two processes racing for one VF, the environment wiring, and stdout carrying only the result.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeDevExecutable } from '../../test/support/bin.js';
import { runProcess } from '../../test/support/process.js';
import type { ProcessOutput } from '../../test/support/process.js';
import { createStateStore } from '../../sriov/records/state.js';
import { cniEnv, createBench } from '../../test/support/sriov-cni-bench.js';
import type { Bench, CallOptions } from '../../test/support/sriov-cni-bench.js';

let bench: Bench;
let exe: string;

beforeEach(async () => {
  bench = await createBench('np-sx');
  exe = await writeDevExecutable(bench.dir, 'sriov', 'bin/netplumb-sriov.ts');
});
afterEach(async () => {
  await bench.cleanup();
});

function runExe(command: string, config: object, opts: CallOptions): Promise<ProcessOutput> {
  return runProcess(
    exe,
    {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      ...cniEnv(command, opts),
      NETPLUMB_SIMULATED_NODE: bench.node.dir,
      NETPLUMB_SRIOV_STATE_DIR: bench.stateDir,
    },
    JSON.stringify(config),
  );
}

describe('netplumb-sriov executable', () => {
  it('ignores a logFile in a missing directory or outside NETPLUMB_SRIOV_LOG_DIR: rc 0, no stack trace', async () => {
    const ns = await bench.newNetns();
    const conf = {
      cniVersion: '1.0.0',
      name: 'sriov-net',
      type: 'sriov',
      deviceID: bench.vf[0],
      logFile: '/nonexistent-np/x.log',
    };
    const add = await runExe('ADD', conf, { containerId: 'plf1', netns: ns.path });
    expect(add.code, add.stdout + add.stderr).toBe(0);
    expect(add.stderr).not.toMatch(/\n\s+at /);
    expect(add.stderr).toMatch(/outside the log directory|disabled/);
    expect((await runExe('DEL', conf, { containerId: 'plf1', netns: ns.path })).code).toBe(0);
  });

  it('lets exactly one of two processes ADDing the same VF win, and DELs it again', async () => {
    const [a, b] = [await bench.newNetns(), await bench.newNetns()];
    const conf = {
      cniVersion: '1.0.0',
      name: 'sriov-net',
      type: 'sriov',
      deviceID: bench.vf[1],
      vlan: 55,
      logLevel: 'debug',
    };
    const results = await Promise.all([
      runExe('ADD', conf, { containerId: 'px1', netns: a.path }),
      runExe('ADD', conf, { containerId: 'px2', netns: b.path }),
    ]);
    expect(results.map((r) => r.code).sort()).toEqual([0, 1]);
    const winner = results.find((r) => r.code === 0)!;
    const loser = results.find((r) => r.code === 1)!;
    // stdout is the CNI result (or error) only; logs go to stderr.
    expect(JSON.parse(winner.stdout)).toMatchObject({ cniVersion: '1.0.0', interfaces: [{ name: 'net1' }] });
    expect(JSON.parse(loser.stdout)).toMatchObject({ code: 11 });
    expect(winner.stderr).toMatch(/"msg":"VF attached"/);
    expect((await bench.recorder.calls('npscpf0')).map((c) => c.line)).toEqual(['vf 1 vlan 55 qos 0']);

    const winnerNs = results[0].code === 0 ? a : b;
    const winnerId = results[0].code === 0 ? 'px1' : 'px2';
    expect(await bench.links.get(winnerNs.path, 'net1')).not.toBeNull();
    const del = await runExe('DEL', conf, { containerId: winnerId, netns: winnerNs.path });
    expect(del.code, del.stdout).toBe(0);
    expect(del.stdout).toBe('');
    expect(await bench.links.get(null, bench.veths[1]!.name)).not.toBeNull();
    expect(await createStateStore(bench.stateDir).all()).toEqual([]);
  });

  it('answers VERSION with every spec version', async () => {
    const res = await runExe('VERSION', { cniVersion: '1.0.0' }, { containerId: 'v' });
    expect(JSON.parse(res.stdout)).toMatchObject({
      supportedVersions: ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
    });
  });
});
