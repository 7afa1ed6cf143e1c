import { describe, expect, it } from 'vitest';
import { parseNetworkConfig } from '../network-config.js';
import type { NetworkSelection } from './annotations.js';
import type { ResolvedNetwork } from './nad.js';
import { planAttachments } from './plan.js';

const net = (name: string, extra: Record<string, unknown> = {}): ResolvedNetwork => ({
  displayName: `default/${name}`,
  list: parseNetworkConfig(
    { cniVersion: '1.0.0', name, type: 'macvlan', args: { cni: { fromNad: 'x', both: 'nad' } }, ...extra },
    't',
  ),
  resourceName: undefined,
});
const cluster: ResolvedNetwork = { ...net('cluster'), displayName: 'cluster' };
const sel = (name: string, extra: Partial<NetworkSelection> = {}): NetworkSelection => ({
  name,
  namespace: 'default',
  ...extra,
});

describe('planAttachments', () => {
  it('numbers interfaces net<idx> by position; explicit names win but still use up an index', () => {
    const plans = planAttachments({
      cluster,
      extras: [
        { network: net('a'), selection: sel('a', { interface: 'macvlan1' }) },
        { network: net('b'), selection: sel('b') },
      ],
      runtimeIfname: 'eth0',
      runtimeConfig: { portMappings: [] },
      baseArgs: [['IgnoreUnknown', 'true']],
    });
    expect(plans.map((p) => [p.name, p.ifname, p.isDefault])).toEqual([
      ['cluster', 'eth0', true],
      ['default/a', 'macvlan1', false],
      ['default/b', 'net2', false],
    ]);
    expect(plans[0]?.capabilityArgs).toEqual({ portMappings: [] });
  });

  it('turns the selection into capability args, CNI_ARGS MAC/IP and args.cni (pod wins)', () => {
    const [, p] = planAttachments({
      cluster,
      extras: [
        {
          network: net('a'),
          selection: sel('a', {
            ips: ['10.1.1.5/24'],
            mac: '02:00:00:00:00:01',
            bandwidth: { ingressRate: 1 },
            infinibandGuid: 'c2:11:22:33:44:55:66:77',
            cniArgs: { both: 'pod' },
          }),
        },
      ],
      runtimeIfname: 'eth0',
      runtimeConfig: {},
      baseArgs: [['IgnoreUnknown', 'true']],
    });
    expect(p?.capabilityArgs).toEqual({
      ips: ['10.1.1.5/24'],
      mac: '02:00:00:00:00:01',
      bandwidth: { ingressRate: 1 },
      infinibandGUID: 'c2:11:22:33:44:55:66:77',
    });
    expect(p?.cniArgs).toEqual([
      ['IgnoreUnknown', 'true'],
      ['MAC', '02:00:00:00:00:01'],
      ['IP', '10.1.1.5/24'],
    ]);
    expect(p?.list.raw['args']).toEqual({ cni: { fromNad: 'x', both: 'pod' } });
  });

  it('refuses duplicate interface names and two default routes of one family', () => {
    const base = { cluster, runtimeIfname: 'eth0', runtimeConfig: {}, baseArgs: [] };
    expect(() =>
      planAttachments({
        ...base,
        extras: [{ network: net('a'), selection: sel('a', { interface: 'eth0' }) }],
      }),
    ).toThrow(/interface name "eth0" is requested by both "cluster" and "default\/a"/);
    expect(() =>
      planAttachments({
        ...base,
        extras: [
          { network: net('a'), selection: sel('a', { defaultRoute: ['10.0.0.1'] }) },
          { network: net('b'), selection: sel('b', { defaultRoute: ['10.0.1.1'] }) },
        ],
      }),
    ).toThrow(/more than one IPv4 "default-route"/);
  });
});

describe('interface names the kernel or the pod already owns (issue 12 item 15)', () => {
  const plan = (ifname: string) =>
    planAttachments({
      cluster,
      extras: [{ network: net('a'), selection: sel('a', { interface: ifname }) }],
      runtimeIfname: 'eth0',
      runtimeConfig: {},
      baseArgs: [],
    });
  it('refuses "lo" (the pod loopback)', () => {
    expect(() => plan('lo')).toThrow(/interface name "lo" .*loopback/);
  });
  it("refuses the cluster network's interface (eth0) for an additional network", () => {
    expect(() => plan('eth0')).toThrow(
      /interface name "eth0" is requested by both "cluster" and "default\/a"/,
    );
  });
});
