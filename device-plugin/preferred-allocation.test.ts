import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { preferredAllocation } from './preferred-allocation.js';
import type { PlacementInfo, PreferenceRequest } from './preferred-allocation.js';

// A pool: devices `g<G>-<i>` on NUMA node numaOf[G].
const poolArb = fc
  .array(fc.record({ size: fc.integer({ min: 1, max: 6 }), numa: fc.integer({ min: -1, max: 2 }) }), {
    minLength: 1,
    maxLength: 6,
  })
  .map((groups) => {
    const placement = new Map<string, PlacementInfo>();
    groups.forEach((g, gi) => {
      for (let i = 0; i < g.size; i++) placement.set(`g${gi}-${i}`, { numaNode: g.numa, group: `g${gi}` });
    });
    return placement;
  });

const requestArb = poolArb.chain((placement) => {
  const ids = [...placement.keys()];
  return fc
    .record({
      placement: fc.constant(placement),
      available: fc.subarray(ids, { minLength: 0 }),
      mustCount: fc.integer({ min: 0, max: 3 }),
      size: fc.integer({ min: 0, max: ids.length + 1 }),
      policy: fc.constantFrom('pack' as const, 'spread' as const),
    })
    .map(({ available, mustCount, ...r }): PreferenceRequest => ({
      ...r,
      available,
      mustInclude: available.slice(0, Math.min(mustCount, r.size)),
    }));
});

const numaOf = (r: PreferenceRequest, id: string) => r.placement.get(id)?.numaNode;
const groupOf = (r: PreferenceRequest, id: string) => r.placement.get(id)?.group;

describe('preferredAllocation', () => {
  it('returns min(size, available) distinct available IDs including every must-include ID', () => {
    fc.assert(
      fc.property(requestArb, (r) => {
        const out = preferredAllocation(r);
        expect(new Set(out).size).toBe(out.length);
        expect(out.length).toBe(Math.min(r.size, new Set(r.available).size));
        for (const id of out) expect(r.available).toContain(id);
        for (const id of r.mustInclude) expect(out).toContain(id);
        expect(out.slice(0, r.mustInclude.length)).toEqual(r.mustInclude);
      }),
    );
  });

  it('stays on one NUMA node whenever one node can hold the whole request', () => {
    fc.assert(
      fc.property(requestArb, (r) => {
        const out = preferredAllocation(r);
        const mustNodes = new Set(r.mustInclude.map((id) => numaOf(r, id)));
        if (mustNodes.size > 1) return;
        const counts = new Map<number, number>();
        for (const id of r.available)
          counts.set(numaOf(r, id) ?? -1, (counts.get(numaOf(r, id) ?? -1) ?? 0) + 1);
        const feasible = [...counts.entries()].some(
          ([n, c]) => n !== -1 && c >= r.size && (mustNodes.size === 0 || mustNodes.has(n)),
        );
        if (!feasible || r.size === 0) return;
        expect(new Set(out.map((id) => numaOf(r, id))).size).toBe(1);
      }),
    );
  });

  it('pack uses the fewest groups possible on the chosen NUMA node (no must-include)', () => {
    fc.assert(
      fc.property(requestArb, (r0) => {
        const r: PreferenceRequest = { ...r0, policy: 'pack', mustInclude: [] };
        const out = preferredAllocation(r);
        const nodes = new Set(out.map((id) => numaOf(r, id)));
        if (nodes.size !== 1 || out.length === 0) return;
        const node = [...nodes][0];
        const sizes = new Map<string, number>();
        for (const id of r.available)
          if (numaOf(r, id) === node) sizes.set(groupOf(r, id)!, (sizes.get(groupOf(r, id)!) ?? 0) + 1);
        const sorted = [...sizes.values()].sort((a, b) => b - a);
        let min = 0;
        for (let acc = 0; acc < out.length; min++) acc += sorted[min] ?? Infinity;
        expect(new Set(out.map((id) => groupOf(r, id))).size).toBe(min);
      }),
    );
  });

  it('spread uses as many groups as it can on the chosen NUMA node (no must-include)', () => {
    fc.assert(
      fc.property(requestArb, (r0) => {
        const r: PreferenceRequest = { ...r0, policy: 'spread', mustInclude: [] };
        const out = preferredAllocation(r);
        const nodes = new Set(out.map((id) => numaOf(r, id)));
        if (nodes.size !== 1 || out.length === 0) return;
        const node = [...nodes][0];
        const groups = new Set(
          r.available.filter((id) => numaOf(r, id) === node).map((id) => groupOf(r, id)),
        );
        expect(new Set(out.map((id) => groupOf(r, id))).size).toBe(Math.min(out.length, groups.size));
      }),
    );
  });

  it('packs 4 VFs onto one PF and spreads them over two', () => {
    const placement = new Map<string, PlacementInfo>();
    for (const pf of ['a', 'b'])
      for (let i = 0; i < 4; i++) placement.set(`${pf}${i}`, { numaNode: 0, group: pf });
    const available = [...placement.keys()];
    expect(preferredAllocation({ available, mustInclude: [], size: 4, policy: 'pack', placement })).toEqual([
      'a0',
      'a1',
      'a2',
      'a3',
    ]);
    expect(
      preferredAllocation({ available, mustInclude: [], size: 4, policy: 'spread', placement }).sort(),
    ).toEqual(['a0', 'a1', 'b0', 'b1']);
  });

  it('prefers the must-include device’s NUMA node and PF', () => {
    const placement = new Map<string, PlacementInfo>([
      ['x0', { numaNode: 0, group: 'x' }],
      ['x1', { numaNode: 0, group: 'x' }],
      ['y0', { numaNode: 1, group: 'y' }],
      ['y1', { numaNode: 1, group: 'y' }],
      ['y2', { numaNode: 1, group: 'y' }],
    ]);
    const available = [...placement.keys()];
    expect(
      preferredAllocation({ available, mustInclude: ['y2'], size: 2, policy: 'pack', placement }),
    ).toEqual(['y2', 'y0']);
  });
});
