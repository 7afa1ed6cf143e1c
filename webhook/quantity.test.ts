import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareQuantity, parseQuantity, quantityOfCount } from './quantity.js';

const q = (text: string) => {
  const v = parseQuantity(text);
  if (v === undefined) throw new Error(`${text} did not parse`);
  return v;
};

describe('parseQuantity', () => {
  it('reads integers, decimals, decimal and binary suffixes and exponents exactly', () => {
    expect(compareQuantity(q('2'), quantityOfCount(2))).toBe(0);
    expect(compareQuantity(q('2000m'), quantityOfCount(2))).toBe(0);
    expect(compareQuantity(q('1k'), quantityOfCount(1000))).toBe(0);
    expect(compareQuantity(q('1Ki'), quantityOfCount(1024))).toBe(0);
    expect(compareQuantity(q('1.5Ki'), quantityOfCount(1536))).toBe(0);
    expect(compareQuantity(q('2e3'), quantityOfCount(2000))).toBe(0);
    expect(compareQuantity(q('1500m'), quantityOfCount(2))).toBe(-1);
    expect(compareQuantity(q('2.0001'), quantityOfCount(2))).toBe(1);
    expect(compareQuantity(q('.5'), q('500m'))).toBe(0);
  });

  it('accepts a JSON number and rejects what is not a quantity', () => {
    expect(parseQuantity(3)).toEqual(quantityOfCount(3));
    for (const bad of ['', 'two', '1 k', '1KB', '1e9999', '--1', null, {}, '9'.repeat(65)]) {
      expect(parseQuantity(bad)).toBeUndefined();
    }
  });

  it('orders integers as numbers do (property)', () => {
    fc.assert(
      fc.property(fc.nat(1_000_000), fc.nat(1_000_000), (a, b) => {
        expect(compareQuantity(q(String(a)), quantityOfCount(b))).toBe(Math.sign(a - b));
      }),
    );
  });

  it('never throws on any string (property)', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        parseQuantity(s);
      }),
    );
  });
});
