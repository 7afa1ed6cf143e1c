import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CniError } from '../errors.js';
import { parseDefaultNetworkAnnotation, parseNetworksAnnotation } from './annotations.js';

const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/);
const ifname = fc.stringMatching(/^[a-z][a-z0-9]{0,14}$/);
const item = fc.record({
  namespace: fc.option(label, { nil: undefined }),
  name: label,
  iface: fc.option(ifname, { nil: undefined }),
});

function comma(
  items: readonly { namespace: string | undefined; name: string; iface: string | undefined }[],
): string {
  return items
    .map(
      (i) =>
        `${i.namespace === undefined ? '' : `${i.namespace}/`}${i.name}${i.iface === undefined ? '' : `@${i.iface}`}`,
    )
    .join(', ');
}

function expected(
  items: readonly { namespace: string | undefined; name: string; iface: string | undefined }[],
  podNs: string,
) {
  return items.map((i) => ({
    name: i.name,
    namespace: i.namespace ?? podNs,
    ...(i.iface !== undefined && { interface: i.iface }),
  }));
}

describe('parseNetworksAnnotation', () => {
  it('reads the comma form [ns/]name[@ifname] for any valid items', () => {
    fc.assert(
      fc.property(fc.array(item, { minLength: 1, maxLength: 5 }), label, (items, podNs) => {
        expect(parseNetworksAnnotation(comma(items), podNs)).toEqual(expected(items, podNs));
      }),
    );
  });

  it('reads the JSON form to the same selections as the comma form', () => {
    fc.assert(
      fc.property(fc.array(item, { minLength: 1, maxLength: 5 }), label, (items, podNs) => {
        const json = JSON.stringify(
          items.map((i) => ({
            name: i.name,
            ...(i.namespace !== undefined && { namespace: i.namespace }),
            ...(i.iface !== undefined && { interface: i.iface }),
          })),
        );
        expect(parseNetworksAnnotation(json, podNs)).toEqual(parseNetworksAnnotation(comma(items), podNs));
      }),
    );
  });

  it('either parses or throws a CniError with code 7 naming the annotation, for any string', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (s) => {
        try {
          parseNetworksAnnotation(s, 'default');
        } catch (err) {
          expect(err).toBeInstanceOf(CniError);
          expect((err as CniError).code).toBe(7);
          expect((err as CniError).message).toContain('k8s.v1.cni.cncf.io/networks');
        }
      }),
    );
  });

  it('treats an empty annotation as no networks', () => {
    expect(parseNetworksAnnotation('  ', 'default')).toEqual([]);
  });

  it('reads every JSON field (ips, mac, default-route, cni-args, portMappings, bandwidth, infiniband-guid)', () => {
    const sel = parseNetworksAnnotation(
      JSON.stringify([
        {
          name: 'net-a',
          namespace: 'other',
          interface: 'data0',
          ips: ['10.1.1.5/24', 'fd00::5/64'],
          mac: 'c2:b0:57:49:47:f1',
          'default-route': ['10.1.1.1'],
          'cni-args': { foo: 'bar' },
          portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
          bandwidth: { ingressRate: 1000 },
          'infiniband-guid': 'c2:11:22:33:44:55:66:77',
          unknownKey: true,
        },
      ]),
      'default',
    );
    expect(sel).toEqual([
      {
        name: 'net-a',
        namespace: 'other',
        interface: 'data0',
        ips: ['10.1.1.5/24', 'fd00::5/64'],
        mac: 'c2:b0:57:49:47:f1',
        defaultRoute: ['10.1.1.1'],
        cniArgs: { foo: 'bar' },
        portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
        bandwidth: { ingressRate: 1000 },
        infinibandGuid: 'c2:11:22:33:44:55:66:77',
      },
    ]);
  });

  it.each([
    ['a/b/c', /item 1 "a\/b\/c": more than one "\/"/],
    ['net@a@b', /more than one "@"/],
    ['Net-A', /network name "Net-A" is not a valid name/],
    ['ns_x/net', /namespace "ns_x" is not a valid name/],
    ['net-a,,net-b', /item 2: empty item/],
    ['net@averyveryverylongname', /interface name "averyveryverylongname" is longer than 15/],
    ['[{"name": "n", "ips": ["10.1.1.300/24"]}]', /"ips": "10.1.1.300\/24" is not an IP address or CIDR/],
    ['[{"name": "n", "mac": "zz:00:00:00:00:00"}]', /"mac": "zz:00:00:00:00:00" is not a MAC address/],
    ['[{"name": "n", "ips": "10.1.1.5/24"}]', /"ips" must be a list of strings/],
    ['[{"namespace": "x"}]', /\[0\]: missing "name"/],
    ['{"name": "n"}', /JSON form must be a list: wrap the object in \[ ... \]/],
    ['[{"name": "n",}]', /invalid JSON/],
    ['[{"name": "n", "default-route": ["x"]}]', /"default-route": "x" is not an IP address/],
    ['[{"name": "n", "infiniband-guid": "00:11"}]', /"infiniband-guid": "00:11" is not a GUID/],
  ])('rejects %s with a clear message', (value, msg) => {
    expect(() => parseNetworksAnnotation(value, 'default')).toThrow(msg);
  });
});

describe('parseDefaultNetworkAnnotation', () => {
  it('resolves a bare name in the given namespace and refuses two networks', () => {
    expect(parseDefaultNetworkAnnotation('calico', 'kube-system')).toEqual({
      name: 'calico',
      namespace: 'kube-system',
    });
    expect(() => parseDefaultNetworkAnnotation('a,b', 'kube-system')).toThrow(
      /more than one default network/,
    );
  });
});

// Issue 12 item 14: a pod annotation is untrusted input; its size, depth and count are bounded.
describe('networks annotation bounds', () => {
  const code7 = (fn: () => unknown, msg: RegExp) => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(CniError);
      expect((err as CniError).code).toBe(7);
      expect((err as CniError).message).toMatch(msg);
      return;
    }
    throw new Error('expected a CniError');
  };
  it('refuses a 100k-deep JSON nesting with a clear error, not a stack overflow', () => {
    code7(() => parseNetworksAnnotation('['.repeat(100_000), 'default'), /nested more than 32 levels/);
  });
  it('refuses 5,000 attachments (JSON and comma forms)', () => {
    const json = JSON.stringify(Array.from({ length: 5_000 }, () => ({ name: 'net-a' })));
    code7(() => parseNetworksAnnotation(json, 'default'), /5000 attachments; at most 100/);
    const comma = Array.from({ length: 5_000 }, () => 'net-a').join(',');
    code7(() => parseNetworksAnnotation(comma, 'default'), /5000 attachments; at most 100/);
  });
  it('refuses an annotation larger than Kubernetes allows for all annotations (256 KiB)', () => {
    code7(
      () => parseNetworksAnnotation(`net-a${' '.repeat(300_000)}`, 'default'),
      /larger than 262144 bytes/,
    );
  });
});
