import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CniError } from './errors.js';
import { convertResult, decodeResult, encodeResult, ipFamily } from './result.js';
import type { CniResult } from './result.js';
import { SPEC_VERSIONS, compareVersions, resultFormatOf } from './version.js';

const hex = fc.integer({ min: 0, max: 255 }).map((n) => n.toString(16).padStart(2, '0'));
const mac = fc.array(hex, { minLength: 6, maxLength: 6 }).map((a) => a.join(':'));
const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
const v6 = fc
  .array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 })
  .map((a) => a.map((n) => n.toString(16)).join(':'));
const ip = fc.oneof(v4, v6);
const cidr = fc.oneof(
  fc.tuple(v4, fc.nat(32)).map(([a, p]) => `${a}/${p}`),
  fc.tuple(v6, fc.nat(128)).map(([a, p]) => `${a}/${p}`),
);
const small = fc.integer({ min: 0, max: 10_000 });

const result: fc.Arbitrary<CniResult> = fc.record({
  interfaces: fc.array(
    fc.record(
      {
        name: fc.stringMatching(/^[a-z][a-z0-9]{0,14}$/),
        mac,
        mtu: fc.integer({ min: 68, max: 9000 }),
        sandbox: fc.constantFrom('/run/netns/a', '/proc/1/ns/net'),
        socketPath: fc.constant('/run/x.sock'),
        pciID: fc.constant('0000:3b:02.1'),
      },
      { requiredKeys: ['name'] },
    ),
    { maxLength: 3 },
  ),
  ips: fc.array(
    fc.record({ address: cidr, gateway: ip, interface: fc.nat(2) }, { requiredKeys: ['address'] }),
    {
      maxLength: 4,
    },
  ),
  routes: fc.array(
    fc.record(
      { dst: cidr, gw: ip, mtu: small, advmss: small, priority: small, table: small, scope: fc.nat(255) },
      { requiredKeys: ['dst'] },
    ),
    { maxLength: 3 },
  ),
  dns: fc.record(
    {
      nameservers: fc.array(ip, { maxLength: 2 }),
      domain: fc.constant('example.org'),
      search: fc.array(fc.constantFrom('a.example', 'b.example'), { maxLength: 2 }),
      options: fc.array(fc.constant('ndots:5'), { maxLength: 1 }),
    },
    { requiredKeys: [] },
  ),
});

const modern = SPEC_VERSIONS.filter((v) => resultFormatOf(v) !== 'legacy');
const version = fc.constantFrom(...SPEC_VERSIONS);
const modernVersion = fc.constantFrom(...modern);

/** What survives encoding for `v` (the canonical result minus what v cannot carry). */
function restrict(r: CniResult, v: string): CniResult {
  const full = compareVersions(v, '1.1.0') >= 0;
  return {
    interfaces: r.interfaces.map((i) =>
      full ? i : { name: i.name, ...(i.mac && { mac: i.mac }), ...(i.sandbox && { sandbox: i.sandbox }) },
    ),
    ips: r.ips,
    routes: r.routes.map((x) => (full ? x : { dst: x.dst, ...(x.gw !== undefined && { gw: x.gw }) })),
    dns: r.dns,
  };
}

describe('result conversion', () => {
  it('decode(encode(r, v), v) keeps everything version v can carry (0.3.0 .. 1.1.0)', () => {
    fc.assert(
      fc.property(result, modernVersion, (r, v) => {
        expect(decodeResult(encodeResult(r, v), v)).toEqual(restrict(r, v));
      }),
    );
  });

  it('converting through any chain of versions equals converting to the least capable one', () => {
    fc.assert(
      fc.property(result, fc.array(modernVersion, { minLength: 1, maxLength: 4 }), (r, path) => {
        let json = encodeResult(r, '1.1.0');
        let from = '1.1.0';
        for (const v of path) {
          json = convertResult(json, from, v);
          from = v;
        }
        const weakest = [...path].sort(compareVersions)[0]!;
        expect(decodeResult(json, from)).toEqual(decodeResult(encodeResult(r, weakest), weakest));
      }),
    );
  });

  it('prints ips[].version matching the address family only in 0.3.x/0.4.0', () => {
    fc.assert(
      fc.property(result, modernVersion, (r, v) => {
        const ips = (encodeResult(r, v)['ips'] ?? []) as { version?: string; address: string }[];
        for (const x of ips) {
          if (resultFormatOf(v) === 'v04') expect(x.version).toBe(String(ipFamily(x.address)));
          else expect(x.version).toBeUndefined();
        }
      }),
    );
  });

  it('0.2.0 keeps the first IPv4 and first IPv6 address and splits routes by family', () => {
    fc.assert(
      fc.property(result, (r) => {
        const out = encodeResult(r, '0.2.0') as {
          ip4?: { ip: string; routes?: { dst: string }[] };
          ip6?: { ip: string; routes?: { dst: string }[] };
        };
        expect(out.ip4?.ip).toBe(r.ips.find((i) => ipFamily(i.address) === 4)?.address);
        expect(out.ip6?.ip).toBe(r.ips.find((i) => ipFamily(i.address) === 6)?.address);
        for (const x of out.ip4?.routes ?? []) expect(ipFamily(x.dst)).toBe(4);
        for (const x of out.ip6?.routes ?? []) expect(ipFamily(x.dst)).toBe(6);
      }),
    );
  });

  it('every version encodes to JSON that decodes again', () => {
    fc.assert(
      fc.property(result, version, (r, v) => {
        const json = JSON.parse(JSON.stringify(encodeResult(r, v))) as unknown;
        expect(() => decodeResult(json, v)).not.toThrow();
      }),
    );
  });

  it('reads a real 0.3.1 macvlan result and prints it as 1.0.0 without ips[].version', () => {
    const printed = {
      cniVersion: '0.3.1',
      interfaces: [{ name: 'net1', mac: '0a:58:0a:01:00:05', sandbox: '/run/netns/x' }],
      ips: [{ version: '4', interface: 0, address: '10.1.0.5/24', gateway: '10.1.0.1' }],
      routes: [{ dst: '0.0.0.0/0' }],
      dns: {},
    };
    expect(convertResult(printed, '0.3.1', '1.0.0')).toEqual({
      cniVersion: '1.0.0',
      interfaces: [{ name: 'net1', mac: '0a:58:0a:01:00:05', sandbox: '/run/netns/x' }],
      ips: [{ interface: 0, address: '10.1.0.5/24', gateway: '10.1.0.1' }],
      routes: [{ dst: '0.0.0.0/0' }],
    });
  });

  it('reads a 0.2.0 result into ips and routes', () => {
    const r = decodeResult(
      {
        cniVersion: '0.2.0',
        ip4: { ip: '10.0.0.2/24', gateway: '10.0.0.1', routes: [{ dst: '0.0.0.0/0' }] },
        dns: {},
      },
      '0.2.0',
    );
    expect(r).toEqual({
      interfaces: [],
      ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1' }],
      routes: [{ dst: '0.0.0.0/0' }],
      dns: {},
    });
  });

  it('rejects a malformed result with a decoding error naming the field', () => {
    expect(() => decodeResult({ cniVersion: '1.0.0', ips: [{ gateway: '1.2.3.4' }] }, '1.0.0')).toThrow(
      CniError,
    );
    expect(() => decodeResult({ cniVersion: '1.0.0', ips: [{ gateway: '1.2.3.4' }] }, '1.0.0')).toThrow(
      /ips\[0\]\.address: /,
    );
  });

  it('says in English what each bad field should have been (zod/mini ships no locale: ours is installed)', () => {
    expect(() =>
      decodeResult({ ips: [{ address: 1 }], routes: [{ dst: '0.0.0.0/0', mtu: 1.5, table: '1' }] }, '1.0.0'),
    ).toThrow(
      'invalid 1.0.0 result: ips[0].address: Invalid input: expected string, received number; ' +
        'routes[0].mtu: Invalid input: expected int, received number; ' +
        'routes[0].table: Invalid input: expected number, received string',
    );
    expect(() => decodeResult({ ip4: { ip: '10.0.0.2/24' }, dns: [] }, '0.2.0')).toThrow(
      'invalid 0.2.0 result: dns: Invalid input: expected object, received array',
    );
  });
});
