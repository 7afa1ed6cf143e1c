import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatVfRange, parseVfRange } from './vf-range.js';

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
