import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverNode } from '../sriov/discover.js';
import { readKernelFacts } from '../sriov/node-info.js';
import { fileVfState } from '../sriov/vf-state.js';
import { PROJECT_ROOT } from '../test/support/bin.js';

const run = promisify(execFile);
const MKNODE = path.join(PROJECT_ROOT, 'hack', 'mknode');

describe('hack/mknode', { timeout: 120_000 }, () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'np-node-mknode-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('writes a generated node of the asked size that discovery reads back', async () => {
    const out = path.join(tmp, 'gen');
    await run(MKNODE, ['--pfs', '3', '--vfs', '5', '--out', out]);
    const m = await discoverNode({
      sysfsRoot: path.join(out, 'sys'),
      vfState: fileVfState(path.join(out, 'links.json')),
    });
    expect(m.warnings).toEqual([]);
    expect(m.pfs.map((p) => [p.netdev, p.vfs.length])).toEqual([
      ['ens1f0', 5],
      ['ens2f0', 5],
      ['ens3f0', 5],
    ]);
  });

  it('--system writes the node-wide facts doctor reads (kernel command line, isolated CPUs, modules)', async () => {
    const out = path.join(tmp, 'system');
    await run(MKNODE, [
      '--pfs',
      '1',
      '--vfs',
      '1',
      '--out',
      out,
      '--system',
      '{"cmdline":"root=/dev/vda","isolatedCpus":"3","modules":[]}',
    ]);
    const facts = await readKernelFacts({
      sysfsRoot: path.join(out, 'sys'),
      procRoot: path.join(out, 'proc'),
    });
    expect(facts).toMatchObject({ cmdline: 'root=/dev/vda', isolatedCpus: [3], modules: [], pciDrivers: [] });
    await expect(
      run(MKNODE, ['--pfs', '1', '--out', path.join(tmp, 'bad'), '--system', '[1]']),
    ).rejects.toThrow(/--system takes a JSON object/);
  });

  it('refuses to overwrite without --force and rejects unknown presets', async () => {
    const out = path.join(tmp, 'preset');
    await run(MKNODE, ['--preset', 'mellanox-cx5', '--out', out]);
    await expect(run(MKNODE, ['--preset', 'mellanox-cx5', '--out', out])).rejects.toMatchObject({
      stderr: expect.stringMatching(/exists; pass --force/) as unknown,
    });
    await expect(run(MKNODE, ['--preset', 'nope', '--out', out])).rejects.toMatchObject({
      stderr: expect.stringMatching(/--preset nope: unknown; use one of intel-x710, mellanox-cx5/) as unknown,
    });
  });
});
