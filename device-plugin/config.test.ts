import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, suggestKey } from './config.js';

const opts = { resourcePrefix: 'intel.com' };
const parse = (v: unknown) => parseConfig(JSON.stringify(v), opts);
/** What --strict (and --check-config) refuses: every finding, as an error. */
const problemsOf = (v: unknown): string[] => {
  try {
    parseConfig(JSON.stringify(v), { ...opts, strict: true });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
  throw new Error('expected a ConfigError');
};

// The exact example from SRIOV-DP's README (docs: the config.json example).
const SRIOV_DP_EXAMPLE = {
  resourceList: [
    {
      resourceName: 'intel_sriov_netdevice',
      selectors: [
        {
          vendors: ['8086'],
          devices: ['154c', '10ed', '1889'],
          drivers: ['iavf', 'i40evf', 'ixgbevf'],
          pfNames: ['ens785f0#0-3', 'ens785f1'],
        },
      ],
    },
    {
      resourceName: 'intel_sriov_dpdk',
      resourcePrefix: 'example.com',
      excludeTopology: true,
      selectors: [
        { vendors: ['8086'], drivers: ['vfio-pci'], rootDevices: ['0000:86:00.0#4-7,9'], needVhostNet: true },
      ],
      additionalInfo: { '*': { token: 'abc' } },
    },
    {
      resourceName: 'mlnx_rdma',
      resourcePrefix: 'nvidia.com',
      selectors: [{ vendors: ['15b3'], linkTypes: ['ether'], isRdma: true }],
    },
  ],
};

describe('parseConfig', () => {
  it('accepts SRIOV-DP config.json unchanged', () => {
    const { pools } = parse(SRIOV_DP_EXAMPLE);
    expect(pools.map((p) => p.fullName)).toEqual([
      'intel.com/intel_sriov_netdevice',
      'example.com/intel_sriov_dpdk',
      'nvidia.com/mlnx_rdma',
    ]);
    const [net, dpdk, rdma] = pools;
    expect(net?.deviceType).toBe('netDevice');
    if (
      net?.deviceType !== 'netDevice' ||
      dpdk?.deviceType !== 'netDevice' ||
      rdma?.deviceType !== 'netDevice'
    )
      throw new Error('unreachable');
    expect(net.selectors[0]?.pfNames).toEqual([
      { name: 'ens785f0', ranges: [{ from: 0, to: 3 }] },
      { name: 'ens785f1', ranges: null },
    ]);
    expect(dpdk.excludeTopology).toBe(true);
    expect(dpdk.selectors[0]?.rootDevices).toEqual([
      {
        name: '0000:86:00.0',
        ranges: [
          { from: 4, to: 7 },
          { from: 9, to: 9 },
        ],
      },
    ]);
    expect(dpdk.selectors[0]?.needVhostNet).toBe(true);
    expect(dpdk.additionalInfo).toEqual({ '*': { token: 'abc' } });
    expect(rdma.selectors[0]?.isRdma).toBe(true);
    expect(net.allocationPolicy).toBe('pack');
  });

  it('accepts a single selector object as well as a list, and a missing selectors key as "match all"', () => {
    const { pools } = parse({
      resourceList: [{ resourceName: 'a', selectors: { drivers: ['iavf'] } }, { resourceName: 'b' }],
    });
    expect(pools[0]?.selectors).toHaveLength(1);
    expect(pools[1]?.selectors).toHaveLength(1);
  });

  it('matches keys case-insensitively like Go (IsRdma)', () => {
    const { pools } = parse({ resourceList: [{ resourceName: 'a', selectors: [{ IsRdma: true }] }] });
    const p = pools[0];
    expect(p?.deviceType === 'netDevice' && p.selectors[0]?.isRdma).toBe(true);
  });

  it('names the JSON path of a misspelt key and suggests the right one', () => {
    expect(
      problemsOf({
        resourceList: [{ resourceName: 'a' }, { resourceName: 'b', selectors: [{ pfName: ['ens1'] }] }],
      }),
    ).toEqual(['resourceList[1].selectors[0].pfName: unknown key; did you mean pfNames?']);
  });

  it('reports unknown keys at the resource and top level too', () => {
    expect(problemsOf({ resourceList: [{ resourceName: 'a', excludeTopolgy: true }] })).toEqual([
      'resourceList[0].excludeTopolgy: unknown key; did you mean excludeTopology?',
    ]);
    expect(problemsOf({ resourceLists: [] })).toContain(
      'resourceLists: unknown key; did you mean resourceList?',
    );
  });

  it('rejects a bad VF range naming the entry', () => {
    expect(
      problemsOf({ resourceList: [{ resourceName: 'a', selectors: [{ pfNames: ['ens1#0-x'] }] }] }),
    ).toEqual([
      'resourceList[0].selectors[0].pfNames[0]: "ens1#0-x": "0-x" is not a VF index or range; write e.g. "4" or "0-3"; that part selects no VF (as in SRIOV-DP)',
    ]);
  });

  it('rejects duplicate <prefix>/<name>, but allows the same name under another prefix', () => {
    expect(
      problemsOf({
        resourceList: [{ resourceName: 'a' }, { resourceName: 'a', resourcePrefix: 'intel.com' }],
      }),
    ).toEqual([
      'resourceList[1].resourceName: duplicate resource intel.com/a (already defined by resourceList[0]); rename one',
    ]);
    expect(
      parse({ resourceList: [{ resourceName: 'a' }, { resourceName: 'a', resourcePrefix: 'x.io' }] }).pools,
    ).toHaveLength(2);
  });

  it('rejects invalid resource names and device types', () => {
    expect(problemsOf({ resourceList: [{ resourceName: 'a/b' }] })[0]).toMatch(
      /^resourceList\[0\]\.resourceName: must match/,
    );
    expect(problemsOf({ resourceList: [{ resourceName: 'a', deviceType: 'auxNetDevice' }] })[0]).toMatch(
      /^resourceList\[0\]\.deviceType: "auxNetDevice" \(SFs\) is not supported/,
    );
  });

  it('refuses SRIOV-DP selectors it cannot honour instead of silently matching nothing', () => {
    expect(
      problemsOf({ resourceList: [{ resourceName: 'a', selectors: { ddpProfiles: ['x'] } }] })[0],
    ).toMatch(
      /^resourceList\[0\]\.selectors\.ddpProfiles: is an SRIOV-DP selector netplumb does not support/,
    );
  });

  it('parses nic pools with names/parents/vlans and slots', () => {
    const { pools } = parse({
      resourceList: [
        {
          resourceName: 'vlan210',
          deviceType: 'nic',
          slots: 4,
          selectors: [{ parents: ['ens2f0'], vlans: [210] }],
        },
      ],
    });
    expect(pools[0]).toMatchObject({
      deviceType: 'nic',
      slots: 4,
      selectors: [{ names: [], parents: ['ens2f0'], vlans: [210] }],
    });
    expect(problemsOf({ resourceList: [{ resourceName: 'a', slots: 2 }] })).toEqual([
      'resourceList[0].slots: only applies to deviceType "nic"; remove it',
    ]);
    expect(
      problemsOf({
        resourceList: [{ resourceName: 'a', deviceType: 'nic', selectors: [{ pfNames: [] }] }],
      })[0],
    ).toMatch(/^resourceList\[0\]\.selectors\[0\]\.pfNames: unknown key; did you mean names\?/);
  });

  it('validates the new vlans selector and allocationPolicy', () => {
    expect(problemsOf({ resourceList: [{ resourceName: 'a', selectors: [{ vlans: [5000] }] }] })[0]).toMatch(
      /^resourceList\[0\]\.selectors\[0\]\.vlans\[0\]: /,
    );
    expect(problemsOf({ resourceList: [{ resourceName: 'a', allocationPolicy: 'random' }] })).toEqual([
      'resourceList[0].allocationPolicy: must be "pack" or "spread"',
    ]);
  });

  it('reports invalid JSON with a stable code', () => {
    expect(() => parseConfig('{', opts)).toThrow(expect.objectContaining({ code: 'ERR_DP_CONFIG_INVALID' }));
  });
});

const README_EXAMPLE = readFileSync(new URL('./testdata/sriov-dp-readme.txt', import.meta.url), 'utf8');
const summary = (v: unknown) => {
  const c = parseConfig(typeof v === 'string' ? v : JSON.stringify(v), opts);
  return {
    pools: c.pools.map((p) => p.fullName),
    warnings: c.warnings.map((w) => `${w.path}: ${w.message}`),
    poolErrors: c.poolErrors.map((e) => `${e.path}: ${e.message}`),
  };
};

describe('parseConfig without --strict: what SRIOV-DP accepts keeps serving (issue 13 item 7)', () => {
  it('refuses SRIOV-DP README example byte for byte as SRIOV-DP does: its trailing comma is not JSON', () => {
    expect(() => parseConfig(README_EXAMPLE, opts)).toThrow(/^not valid JSON/);
  });

  it('serves every pool of the README example (comma fixed) but the vDPA and auxNetDevice ones', () => {
    const fixed = README_EXAMPLE.replace(/\}\],(\s*\},\s*\{\s*"resourceName": "old_selectors)/, '}]$1');
    expect(fixed).not.toBe(README_EXAMPLE);
    const s = summary(fixed);
    expect(s.pools).toEqual([
      'intel.com/intel_sriov_netdevice',
      'intel.com/intel_sriov_dpdk',
      'mellanox.com/mlnx_sriov_rdma',
      'intel.com/infiniband_rdma_netdevs',
      'intel.com/intel_fpga',
      'intel.com/intel_sriov_netdevice_additional_env',
      'broadcom.com/brcm_sriov_bnxt',
      'intel.com/old_selectors_syntax_example',
    ]);
    expect(s.warnings).toEqual([]);
    expect(s.poolErrors).toEqual([
      expect.stringMatching(
        /^resourceList\[4\]\.selectors\[0\]\.vdpaType: is an SRIOV-DP selector netplumb does not support yet/,
      ),
      expect.stringMatching(/^resourceList\[6\]\.deviceType: "auxNetDevice" \(SFs\) is not supported/),
    ]);
    expect(() => parseConfig(fixed, { ...opts, strict: true })).toThrow(ConfigError);
  });

  it('leaves out only the pool with ddpProfiles (SRIOV-DP serves only devices with that profile); [] is no filter', () => {
    const s = summary({
      resourceList: [
        {
          resourceName: 'x700_gtp',
          selectors: { vendors: ['8086'], ddpProfiles: ['GTPv1-C/U IPv4/IPv6 payload'] },
        },
        { resourceName: 'plain', selectors: { vendors: ['8086'], ddpProfiles: [] } },
        { resourceName: 'ib', selectors: [{ linkTypes: ['infiniband'], pKeys: ['0x1'] }] },
      ],
    });
    expect(s.pools).toEqual(['intel.com/plain']);
    expect(s.poolErrors).toEqual([
      expect.stringMatching(
        /^resourceList\[0\]\.selectors\.ddpProfiles: .*the DDP profile of each device.*remove the key/,
      ),
      expect.stringMatching(/^resourceList\[2\]\.selectors\[0\]\.pKeys: /),
    ]);
  });

  it('serves a pool with unknown keys (the SelectorObj key, a misspelt selector) without them, as warnings with did-you-mean', () => {
    const s = summary({
      resourceList: [
        { resourceName: 'a', SelectorObj: null, selectors: [{ vendors: ['14e4'], pfName: ['ens1'] }] },
      ],
      version: 1,
    });
    expect(s.pools).toEqual(['intel.com/a']);
    expect(s.poolErrors).toEqual([]);
    expect(s.warnings).toEqual([
      expect.stringMatching(/^version: unknown key; known keys: resourceList$/),
      expect.stringMatching(/^resourceList\[0\]\.SelectorObj: unknown key; /),
      'resourceList[0].selectors[0].pfName: unknown key; did you mean pfNames?',
    ]);
  });

  it('keeps a pfNames entry with a backwards range as an entry that selects no VF (pf#2-1), with a warning', () => {
    const c = parseConfig(
      JSON.stringify({
        resourceList: [{ resourceName: 'a', selectors: { pfNames: ['ens2f0#2-1', 'ens1#0,x,3'] } }],
      }),
      opts,
    );
    const p = c.pools[0];
    if (p?.deviceType !== 'netDevice') throw new Error('expected a netDevice pool');
    expect(p.selectors[0]?.pfNames).toEqual([
      { name: 'ens2f0', ranges: [] },
      {
        name: 'ens1',
        ranges: [
          { from: 0, to: 0 },
          { from: 3, to: 3 },
        ],
      },
    ]);
    expect(c.warnings.map((w) => `${w.path}: ${w.message}`)).toEqual([
      'resourceList[0].selectors.pfNames[0]: "ens2f0#2-1": "2-1" runs backwards; write "1-2"; that part selects no VF (as in SRIOV-DP)',
      'resourceList[0].selectors.pfNames[1]: "ens1#0,x,3": "x" is not a VF index or range; write e.g. "4" or "0-3"; that part selects no VF (as in SRIOV-DP)',
    ]);
  });

  it('means the default prefix by resourcePrefix "", and leaves out only a pool of the wrong shape or a duplicate', () => {
    const s = summary({
      resourceList: [
        { resourceName: 'a', resourcePrefix: '' },
        { resourceName: 'b', selectors: { vendors: '8086' } },
        { resourceName: 'a' },
        'c',
        { resourceName: 'd', selectors: [{ drivers: ['iavf'] }, 7] },
        { resourceName: 'e', deviceType: 'accelerator', selectors: { acpiIndexes: ['101'] } },
      ],
    });
    expect(s.pools).toEqual(['intel.com/a', 'intel.com/e']);
    expect(s.poolErrors).toEqual([
      expect.stringMatching(/^resourceList\[1\]\.selectors\.vendors: /),
      'resourceList[2].resourceName: duplicate resource intel.com/a (already defined by resourceList[0]); rename one',
      'resourceList[3]: must be a resource object',
      'resourceList[4].selectors[1]: must be a selector object',
    ]);
  });

  it('still refuses what nothing can be served from: not JSON, no resourceList, a bad --resource-prefix', () => {
    expect(() => parseConfig('{', opts)).toThrow(ConfigError);
    expect(() => parseConfig('{"resourceLists": []}', opts)).toThrow(/did you mean resourceList\?/);
    expect(() => parseConfig('{"resourceList": []}', { resourcePrefix: 'Bad/' })).toThrow(ConfigError);
  });
});

describe('suggestKey', () => {
  it('suggests close keys and nothing for unrelated ones', () => {
    expect(suggestKey('rootDevice', ['rootDevices', 'pfNames'])).toBe('rootDevices');
    expect(suggestKey('banana', ['rootDevices', 'pfNames'])).toBeNull();
  });
});
