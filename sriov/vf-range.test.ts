import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatVfRange, parseIndexRanges, parseVfRange } from './vf-range.js';

describe('parseIndexRanges (the one range syntax: policies, the CLI and config.json pfNames)', () => {
  it('accepts spaces around numbers, dashes and commas', () => {
    expect(parseIndexRanges(' 0 - 3 ,5')).toEqual({
      ok: true,
      ranges: [
        { from: 0, to: 3 },
        { from: 5, to: 5 },
      ],
    });
  });
  it('says which part is wrong and how to write it', () => {
    expect(parseIndexRanges('2-1')).toEqual({ ok: false, error: '"2-1" runs backwards; write "1-2"' });
    expect(parseIndexRanges('0-x')).toMatchObject({
      ok: false,
      error: expect.stringContaining('"0-x" is not') as unknown,
    });
  });
});

describe('parseVfRange', () => {
  it('reads single indices, ranges and lists', () => {
    expect(parseVfRange('0-3')).toEqual([0, 1, 2, 3]);
    expect(parseVfRange('5')).toEqual([5]);
    expect(parseVfRange('6, 0-1 ,1')).toEqual([0, 1, 6]);
  });

  it.each([[''], ['a'], ['3-1'], ['1-'], ['-1'], ['1,,2']])('refuses %j with a hint', (spec) => {
    expect(() => parseVfRange(spec)).toThrow(/write/);
  });

  it('round-trips with formatVfRange for any set of indices', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.nat({ max: 300 }), { minLength: 1, maxLength: 60 }), (indices) => {
        expect(parseVfRange(formatVfRange(indices))).toEqual([...indices].sort((a, b) => a - b));
      }),
    );
  });
});
