// SRIOV-DP's `pfNames`/`rootDevices` entries: `<name>` or `<name>#<ranges>` where ranges is a comma
// list of VF indexes and inclusive ranges (`ens785f0#0-3,5`), parsed by the one range parser in
// sriov/vf-range.ts. Pure parsing and matching.

import { inRanges, parseIndexRanges } from '../sriov/vf-range.js';
import type { IndexRange } from '../sriov/vf-range.js';

export { inRanges };
export type { IndexRange };

export interface VfRef {
  /** PF netdev name (pfNames) or PF PCI address (rootDevices), compared case-insensitively. */
  readonly name: string;
  /** null = every VF of that PF. */
  readonly ranges: readonly IndexRange[] | null;
}

export type VfRefResult =
  { readonly ok: true; readonly ref: VfRef } | { readonly ok: false; readonly error: string };

/** Parses `name`, `name#3`, `name#0-3,5` (the range syntax of sriov/vf-range.ts). Errors quote the entry. */
export function parseVfRef(text: string): VfRefResult {
  const hash = text.indexOf('#');
  const name = hash === -1 ? text : text.slice(0, hash);
  if (name === '') return { ok: false, error: `"${text}": missing the PF name before "#"` };
  if (hash === -1) return { ok: true, ref: { name, ranges: null } };
  const r = parseIndexRanges(text.slice(hash + 1));
  if (!r.ok) return { ok: false, error: `"${text}": ${r.error}` };
  return { ok: true, ref: { name, ranges: r.ranges } };
}

/** True when `name`/`index` is selected by `ref` (name compared like Go's strings.EqualFold). */
export function matchesVfRef(ref: VfRef, name: string, index: number): boolean {
  return ref.name.toLowerCase() === name.toLowerCase() && inRanges(index, ref.ranges);
}

/**
 * `parseVfRef` as SRIOV-DP reads an entry: each bad comma-separated part is skipped (and said in
 * `problems`), so `ens1#2-1` selects no VF of ens1, and a malformed entry (no PF name, a second
 * "#") selects none at all. The entry still names its PF, so a later entry for that PF stays ignored.
 */
export function parseVfRefLenient(text: string): {
  readonly ref: VfRef;
  readonly problems: readonly string[];
} {
  const hash = text.indexOf('#');
  if (hash === -1) return { ref: { name: text, ranges: null }, problems: [] };
  const name = text.slice(0, hash);
  const spec = text.slice(hash + 1);
  const none = { name, ranges: [] };
  if (name === '') return { ref: none, problems: [`"${text}": missing the PF name before "#"`] };
  if (spec.includes('#'))
    return { ref: none, problems: [`"${text}": more than one "#"; write <PF>#<ranges>`] };
  const ranges: IndexRange[] = [];
  const problems: string[] = [];
  for (const part of spec.split(',')) {
    const r = parseIndexRanges(part);
    if (r.ok) ranges.push(...r.ranges);
    else problems.push(`"${text}": ${r.error}`);
  }
  return { ref: { name, ranges }, problems };
}
