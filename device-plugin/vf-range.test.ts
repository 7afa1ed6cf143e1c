import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inRanges, matchesVfRef, parseVfRef } from './vf-range.js';

describe('parseVfRef', () => {
  it('parses a bare name as every VF', () => {
    expect(parseVfRef('ens785f1')).toEqual({ ok: true, ref: { name: 'ens785f1', ranges: null } });
  });

  it('parses indexes and inclusive ranges after #', () => {
    expect(parseVfRef('0000:86:00.0#4-7,9')).toEqual({
      ok: true,
      ref: {
        name: '0000:86:00.0',
        ranges: [
          { from: 4, to: 7 },
          { from: 9, to: 9 },
        ],
      },
    });
  });

  it.each(['ens1#', 'ens1#a', 'ens1#1-', 'ens1#-1', 'ens1#1-2-3', 'ens1#3-1', '#1', 'ens1#1,,2'])(
    'rejects %s with a message naming it',
    (text) => {
      const r = parseVfRef(text);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toContain(`"${text}"`);
    },
  );

  it('selects exactly the listed indexes (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(64), fc.nat(8)), { minLength: 1, maxLength: 5 }),
        fc.nat(80),
        (parts, probe) => {
          const text = `pf#${parts.map(([a, len]) => (len === 0 ? `${a}` : `${a}-${a + len}`)).join(',')}`;
          const r = parseVfRef(text);
          expect(r.ok).toBe(true);
          if (!r.ok) return;
          const expected = parts.some(([a, len]) => probe >= a && probe <= a + len);
          expect(inRanges(probe, r.ref.ranges)).toBe(expected);
          expect(matchesVfRef(r.ref, 'PF', probe)).toBe(expected);
          expect(matchesVfRef(r.ref, 'pf0', probe)).toBe(false);
        },
      ),
    );
  });
});

describe('one range syntax', () => {
  it('a pfNames entry takes the ranges a `netplumb vf` policy takes, spaces included', () => {
    expect(parseVfRef('ens1#0 - 3')).toEqual({
      ok: true,
      ref: { name: 'ens1', ranges: [{ from: 0, to: 3 }] },
    });
  });
});
