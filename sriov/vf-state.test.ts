import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VfSettings } from './model.js';
import {
  fileVfState,
  iproute2VfState,
  parseIpLinks,
  parseVfInfo,
  readIpLinkTable,
  resolveVfStateSource,
  VF_STATE_ERROR,
} from './vf-state.js';

// A vfinfo_list entry the way iproute2 prints it (print_vfinfo): zero VLAN/QoS omitted, protocol
// only when not 802.1Q; `form` picks the modern vlan_list or the older flat vlan/qos fields.
function asIproute2(index: number, s: VfSettings, form: 'vlan_list' | 'flat'): Record<string, unknown> {
  const vlan: Record<string, unknown> = {};
  if (s.vlan) vlan.vlan = s.vlan;
  if (s.qos) vlan.qos = s.qos;
  const out: Record<string, unknown> = {
    vf: index,
    link_type: 'ether',
    address: s.mac,
    broadcast: 'ff:ff:ff:ff:ff:ff',
  };
  if (form === 'vlan_list') {
    if (s.vlanProto === '802.1ad') vlan.protocol = '802.1ad';
    out.vlan_list = [vlan];
  } else Object.assign(out, vlan);
  out.rate = { max_tx: s.maxTxRate, min_tx: s.minTxRate };
  out.spoofchk = s.spoofchk;
  out.link_state = s.linkState;
  out.trust = s.trust;
  return out;
}

const hex2 = fc.integer({ min: 0, max: 255 }).map((n) => n.toString(16).padStart(2, '0'));
const settingsArb = fc.record({
  mac: fc.array(hex2, { minLength: 6, maxLength: 6 }).map((b) => b.join(':')),
  vlan: fc.integer({ min: 0, max: 4094 }),
  qos: fc.integer({ min: 0, max: 7 }),
  vlanProto: fc.constantFrom('802.1Q', '802.1ad'),
  spoofchk: fc.boolean(),
  trust: fc.boolean(),
  linkState: fc.constantFrom('auto' as const, 'enable' as const, 'disable' as const),
  minTxRate: fc.integer({ min: 0, max: 100_000 }),
  maxTxRate: fc.integer({ min: 0, max: 100_000 }),
});

describe('parseVfInfo', () => {
  it('reads the vlan_list form back to the settings iproute2 printed', () => {
    fc.assert(
      fc.property(fc.nat(255), settingsArb, (index, s) => {
        expect(parseVfInfo(asIproute2(index, s, 'vlan_list'))).toEqual({ index, settings: s });
      }),
    );
  });

  it('reads the older flat vlan/qos form; the VLAN protocol is then unknown', () => {
    fc.assert(
      fc.property(fc.nat(255), settingsArb, (index, s) => {
        expect(parseVfInfo(asIproute2(index, s, 'flat'))).toEqual({
          index,
          settings: { ...s, vlanProto: null },
        });
      }),
    );
  });

  it('treats an empty vlan_list entry as untagged 802.1Q', () => {
    const r = parseVfInfo({ vf: 0, address: '00:00:00:00:00:00', vlan_list: [{}] });
    expect(r).toMatchObject({ settings: { vlan: 0, qos: 0, vlanProto: '802.1Q' } });
  });

  it('accepts the pre-4.16 `mac` key and legacy `tx_rate`, with unknown fields null', () => {
    const r = parseVfInfo({ vf: 3, mac: 'aa:bb:cc:dd:ee:ff', vlan: 5, tx_rate: 300 });
    expect(r).toEqual({
      index: 3,
      settings: {
        mac: 'aa:bb:cc:dd:ee:ff',
        vlan: 5,
        qos: 0,
        vlanProto: null,
        spoofchk: null,
        trust: null,
        linkState: null,
        minTxRate: null,
        maxTxRate: 300,
      },
    });
  });

  it('reports a malformed entry instead of throwing', () => {
    expect(parseVfInfo({ vf: 'x' })).toEqual({
      error: expect.stringMatching(/vfinfo_list entry is malformed/) as unknown,
    });
    expect(parseVfInfo(null)).toHaveProperty('error');
  });
});

describe('parseIpLinks', () => {
  it('indexes links by name with VF settings, VLAN id and parent', () => {
    const t = parseIpLinks(
      [
        {
          ifname: 'ens1f0',
          link_type: 'ether',
          operstate: 'UP',
          address: 'aa:00:00:00:00:01',
          mtu: 1500,
          vfinfo_list: [{ vf: 1, vlan_list: [{ vlan: 7 }] }],
        },
        {
          ifname: 'ens1f0.7',
          link: 'ens1f0',
          linkinfo: { info_kind: 'vlan', info_data: { protocol: '802.1Q', id: 7 } },
        },
      ],
      'test',
    );
    expect(t.warnings).toEqual([]);
    expect(t.links.get('ens1f0')).toMatchObject({ operstate: 'up', linkType: 'ether', mtu: 1500 });
    expect(t.links.get('ens1f0')?.vfs.get(1)).toMatchObject({ vlan: 7 });
    expect(t.links.get('ens1f0.7')).toMatchObject({
      parent: 'ens1f0',
      kind: 'vlan',
      vlanId: 7,
      vlanProtocol: '802.1Q',
    });
  });

  it('skips bad links and bad VF entries with warnings naming the origin', () => {
    const t = parseIpLinks(
      [{ nope: 1 }, { ifname: 'a', vfinfo_list: [{ vf: -1 }, { vf: 0 }] }],
      'links.json',
    );
    expect([...t.links.keys()]).toEqual(['a']);
    expect(t.links.get('a')?.vfs.size).toBe(1);
    expect(t.warnings).toEqual([
      expect.stringMatching(/^links\.json: link #0 skipped/),
      expect.stringMatching(/^links\.json: a vfinfo_list\[0\]/),
    ]);
    expect(parseIpLinks({}, 'x').warnings).toEqual([expect.stringMatching(/expected a JSON array/)]);
  });
});

describe('VfStateSource adapters', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'np-node-vfstate-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('iproute2 runs `ip -json -details link show` once and sees this host’s links', async () => {
    const table = await readIpLinkTable(iproute2VfState());
    expect(table.warnings).toEqual([]);
    const expected = (
      JSON.parse(execFileSync('ip', ['-json', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string }[]
    ).map((l) => l.ifname);
    expect([...table.links.keys()].sort()).toEqual(expected.sort());
    expect(table.links.get('lo')?.linkType).toBe('loopback');
  });

  it('iproute2 failure is a VfStateError with a stable code', async () => {
    await expect(iproute2VfState({ ipBinary: path.join(tmp, 'no-ip') }).readLinks()).rejects.toMatchObject({
      code: VF_STATE_ERROR,
    });
  });

  it('file reads a saved links.json', async () => {
    const file = path.join(tmp, 'links.json');
    await writeFile(file, JSON.stringify([{ ifname: 'x', vfinfo_list: [{ vf: 0, vlan: 9 }] }]));
    const table = await readIpLinkTable(fileVfState(file));
    expect(table.links.get('x')?.vfs.get(0)?.vlan).toBe(9);
  });

  it('reads a given links file, else runs iproute2 (no environment switch)', () => {
    expect(resolveVfStateSource('/a.json').origin).toBe('/a.json');
    expect(resolveVfStateSource(undefined).origin).toBe('ip -json -details link show');
    expect(resolveVfStateSource('').origin).toBe('ip -json -details link show');
  });
});
