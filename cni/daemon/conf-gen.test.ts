import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateConflist, pickPrimary } from './conf-gen.js';

describe('pickPrimary', () => {
  it('takes the alphabetically first config, never our own or Multus’, ignoring other files', () => {
    expect(
      pickPrimary(['20-b.conf', '00-netplumb.conflist', '10-flannel.conflist', 'README', '.tmp.conf']),
    ).toBe('10-flannel.conflist');
    expect(pickPrimary(['00-multus.conf', '99-x.json'])).toBe('99-x.json');
    expect(pickPrimary(['00-netplumb.conflist'])).toBeUndefined();
  });

  it('is the minimum of the eligible names whatever the order', () => {
    fc.assert(
      fc.property(fc.array(fc.stringMatching(/^[0-9a-z-]{1,8}\.(conf|conflist|txt)$/)), (names) => {
        const got = pickPrimary(names);
        const eligible = names.filter(
          (n) => !n.endsWith('.txt') && !n.startsWith('00-netplumb') && !n.startsWith('00-multus'),
        );
        expect(got).toBe(eligible.length === 0 ? undefined : [...eligible].sort()[0]);
      }),
    );
  });
});

describe('generateConflist', () => {
  const flannel = JSON.stringify({
    cniVersion: '0.4.0',
    name: 'cbr0',
    plugins: [
      { type: 'flannel', delegate: { hairpinMode: true } },
      { type: 'portmap', capabilities: { portMappings: true } },
      { type: 'bandwidth', capabilities: { bandwidth: true, other: false } },
    ],
  });

  it('points the shim at the daemon and the primary as clusterNetwork, keeping its version and capabilities', () => {
    expect(
      generateConflist({
        primaryPath: '/etc/cni/net.d/10-flannel.conflist',
        primaryText: flannel,
        socketPath: '/run/netplumb/cni.sock',
        extra: {
          cniDir: '/var/lib/cni/netplumb',
          readinessindicatorfile: '/etc/cni/net.d/10-flannel.conflist',
        },
      }),
    ).toEqual({
      cniVersion: '0.4.0',
      name: 'netplumb-cni-network',
      plugins: [
        {
          cniDir: '/var/lib/cni/netplumb',
          type: 'netplumb-shim',
          daemonSocket: '/run/netplumb/cni.sock',
          clusterNetwork: '/etc/cni/net.d/10-flannel.conflist',
          capabilities: { portMappings: true, bandwidth: true },
        },
      ],
    });
  });

  it('reads capabilities of a single-plugin .conf too', () => {
    const out = generateConflist({
      primaryPath: '/x/10-a.conf',
      primaryText: '{"cniVersion":"1.0.0","name":"a","type":"bridge","capabilities":{"ips":true}}',
      socketPath: '/s',
    });
    expect(out['plugins']).toEqual([expect.objectContaining({ capabilities: { ips: true } })]);
  });

  it('refuses a primary that is not a CNI config instead of writing an empty one', () => {
    expect(() =>
      generateConflist({ primaryPath: '/x/10-a.conf', primaryText: '{', socketPath: '/s' }),
    ).toThrow(/10-a.conf is not valid JSON/);
    expect(() =>
      generateConflist({ primaryPath: '/x/10-a.conf', primaryText: '{"name":"a"}', socketPath: '/s' }),
    ).toThrow(/neither "type" nor "plugins"/);
  });
});
