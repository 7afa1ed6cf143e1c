// SRIOV-DP's `pfNames`/`rootDevices` entries: `<name>` or `<name>#<ranges>` where ranges is a comma
// list of VF indexes and inclusive ranges (`ens785f0#0-3,5`). Pure parsing and matching.

/** An inclusive range of VF indexes. */
export interface IndexRange {
  readonly from: number;
  readonly to: number;
}

export interface VfRef {
  /** PF netdev name (pfNames) or PF PCI address (rootDevices), compared case-insensitively. */
  readonly name: string;
  /** null = every VF of that PF. */
  readonly ranges: readonly IndexRange[] | null;
}

export type VfRefResult =
  { readonly ok: true; readonly ref: VfRef } | { readonly ok: false; readonly error: string };

const INDEX = /^\d{1,5}$/;

/** Parses `name`, `name#3`, `name#0-3,5`. Errors say what is wrong with the range text. */
export function parseVfRef(text: string): VfRefResult {
  const hash = text.indexOf('#');
  const name = hash === -1 ? text : text.slice(0, hash);
  if (name === '') return { ok: false, error: `"${text}": missing the PF name before "#"` };
  if (hash === -1) return { ok: true, ref: { name, ranges: null } };
  const spec = text.slice(hash + 1);
  if (spec === '') return { ok: false, error: `"${text}": empty VF range after "#"; use e.g. ${name}#0-3,5` };
  const ranges: IndexRange[] = [];
  for (const part of spec.split(',')) {
    const bounds = part.split('-');
    const [a, b] = bounds;
    if (bounds.length > 2 || a === undefined || !INDEX.test(a) || (b !== undefined && !INDEX.test(b))) {
      return { ok: false, error: `"${text}": bad VF range "${part}"; use N or N-M (e.g. ${name}#0-3,5)` };
    }
    const from = Number(a);
    const to = b === undefined ? from : Number(b);
    if (to < from) return { ok: false, error: `"${text}": range "${part}" ends before it starts` };
    ranges.push({ from, to });
  }
  return { ok: true, ref: { name, ranges } };
}

export function inRanges(index: number, ranges: readonly IndexRange[] | null): boolean {
  return ranges === null || ranges.some((r) => index >= r.from && index <= r.to);
}

/** True when `name`/`index` is selected by `ref` (name compared like Go's strings.EqualFold). */
export function matchesVfRef(ref: VfRef, name: string, index: number): boolean {
  return ref.name.toLowerCase() === name.toLowerCase() && inRanges(index, ref.ranges);
}
