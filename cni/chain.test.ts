// The CNI-exec contract run against Debian's real plugins in a real network namespace.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPluginConfig, createChainRunner } from './chain.js';
import type { RuntimeConf } from './chain.js';
import { createExecRunner } from './exec.js';
import { parseNetworkConfig } from './network-config.js';
import { decodeResult } from './result.js';

const run = promisify(execFile);
const REAL_PLUGINS = '/usr/lib/cni';
const suffix = Math.random().toString(36).slice(2, 8);
const ns = `np-cni-ch-${suffix}`;
const master = `npch${suffix}`;
let dataDir = '';

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'np-cni-chain-'));
  await run('ip', ['netns', 'add', ns]);
  await run('ip', ['link', 'add', master, 'type', 'veth', 'peer', 'name', `${master}p`]);
  await run('ip', ['link', 'set', master, 'up']);
});

afterAll(async () => {
  await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  await run('ip', ['link', 'del', master]).catch(() => undefined);
  await rm(dataDir, { recursive: true, force: true });
});

function conflist(version: string) {
  return parseNetworkConfig(
    {
      cniVersion: version,
      name: 'chain-net',
      plugins: [
        {
          type: 'macvlan',
          master,
          ipam: { type: 'host-local', subnet: '10.77.0.0/24', dataDir },
        },
        { type: 'tuning', capabilities: { mac: true } },
      ],
    },
    'test conflist',
  );
}

const rt: RuntimeConf = {
  containerId: `ctr${suffix}`,
  netns: `/run/netns/${ns}`,
  ifname: 'net1',
  args: [['IgnoreUnknown', 'true']],
  capabilityArgs: { mac: '02:11:22:33:44:55', ips: ['10.77.0.9/24'] },
  path: [REAL_PLUGINS],
};

describe('chain runner with real plugins', () => {
  const chain = createChainRunner(createExecRunner({ binDirs: [REAL_PLUGINS], baseEnv: process.env }));

  it('runs ADD in order with prevResult, forwarding the mac capability only to tuning', async () => {
    const list = conflist('1.0.0');
    const result = await chain.add(list, rt);
    const decoded = decodeResult(result, '1.0.0');
    expect(decoded.ips[0]?.address).toMatch(/^10\.77\.0\.\d+\/24$/);
    const { stdout } = await run('ip', ['-n', ns, '-j', 'link', 'show', 'net1']);
    expect((JSON.parse(stdout) as { address: string }[])[0]?.address).toBe('02:11:22:33:44:55');
    await chain.check(list, rt, result);
    await chain.del(list, rt, result);
    await expect(run('ip', ['-n', ns, 'link', 'show', 'net1'])).rejects.toThrow();
  });

  it('DEL is repeatable and succeeds when the link is already gone', async () => {
    await chain.del(conflist('1.0.0'), rt);
  });

  it('reports a failing plugin as a CniError carrying the plugin code and message', async () => {
    const list = parseNetworkConfig(
      { cniVersion: '1.0.0', name: 'bad', plugins: [{ type: 'macvlan', master: 'np-no-such0', ipam: {} }] },
      't',
    );
    await expect(chain.add(list, rt)).rejects.toMatchObject({
      message: expect.stringMatching(/plugin type="macvlan" failed/) as string,
    });
  });

  it('names every searched directory when the plugin binary is missing', async () => {
    const list = parseNetworkConfig({ cniVersion: '1.0.0', name: 'x', type: 'no-such-plugin' }, 't');
    await expect(chain.add(list, rt)).rejects.toThrow(
      /failed to find plugin "no-such-plugin" in path \[\/usr\/lib\/cni/,
    );
  });
});

describe('buildPluginConfig', () => {
  it('injects name and cniVersion, keeps unknown keys and forwards only declared capabilities', () => {
    const list = parseNetworkConfig(
      {
        cniVersion: '0.4.0',
        name: 'n',
        plugins: [{ type: 'calico', datastore_type: 'kubernetes', capabilities: { ips: true } }],
      },
      't',
    );
    const conf = buildPluginConfig(list, list.plugins[0]!, { ips: ['1.2.3.4/32'], mac: 'aa:bb:cc:dd:ee:ff' });
    expect(conf).toEqual({
      type: 'calico',
      datastore_type: 'kubernetes',
      capabilities: { ips: true },
      cniVersion: '0.4.0',
      name: 'n',
      runtimeConfig: { ips: ['1.2.3.4/32'] },
    });
  });
});
