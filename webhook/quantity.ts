// Kubernetes resource quantities ("2", "1k", "1Ki", "1.5", "2e3", "500m"), exactly: the webhook must
// compare a user's value with its own count without rounding, and never lower the user's value.
// Pure. Values come from untrusted pod specs, so exponents are bounded (no huge BigInts).

/** A quantity as the exact fraction numerator / denominator (denominator > 0). */
export interface Quantity {
  readonly numerator: bigint;
  readonly denominator: bigint;
}

const PATTERN = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d{1,3})?$/;
const DECIMAL_SUFFIX: Readonly<Record<string, number>> = {
  n: -9,
  u: -6,
  m: -3,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};
const BINARY_SUFFIX: Readonly<Record<string, number>> = { Ki: 1, Mi: 2, Gi: 3, Ti: 4, Pi: 5, Ei: 6 };
const MAX_TEXT = 64;

function exponentOf(suffix: string): { e10: number; bin: bigint } {
  const binary = BINARY_SUFFIX[suffix];
  if (binary !== undefined) return { e10: 0, bin: 1024n ** BigInt(binary) };
  const decimal = DECIMAL_SUFFIX[suffix];
  if (decimal !== undefined) return { e10: decimal, bin: 1n };
  return { e10: suffix === '' ? 0 : Number(suffix.slice(1)), bin: 1n };
}

/** Parses a quantity (string or JSON number); undefined when it is not one. */
export function parseQuantity(value: unknown): Quantity | undefined {
  const text = typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
  if (typeof text !== 'string' || text.length > MAX_TEXT) return undefined;
  const m = PATTERN.exec(text);
  if (m === null) return undefined;
  const [, sign = '', number = '', suffix = ''] = m;
  const [whole = '', fraction = ''] = number.split('.');
  const digits = BigInt(`${whole}${fraction}` === '' ? '0' : `${whole}${fraction}`);
  const { e10, bin } = exponentOf(suffix);
  const scale = fraction.length - e10;
  const numerator = (sign === '-' ? -1n : 1n) * digits * bin * (scale < 0 ? 10n ** BigInt(-scale) : 1n);
  return { numerator, denominator: scale > 0 ? 10n ** BigInt(scale) : 1n };
}

export function compareQuantity(a: Quantity, b: Quantity): -1 | 0 | 1 {
  const l = a.numerator * b.denominator;
  const r = b.numerator * a.denominator;
  return l < r ? -1 : l > r ? 1 : 0;
}

export function quantityOfCount(n: number): Quantity {
  return { numerator: BigInt(n), denominator: 1n };
}
