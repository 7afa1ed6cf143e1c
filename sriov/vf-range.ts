// VF index ranges, one syntax everywhere: `5`, `0-3`, `0-3,6,8-9` (spaces around numbers, dashes
// and commas are allowed). Used by `netplumb vf` policies and the command line, and by the
// device-plugin config's `pfNames`/`rootDevices` entries (`ens785f0#0-3,5`).
import { ExitCode, NetplumbError } from '../lib/errors.js';

/** An inclusive range of VF indexes. */
export interface IndexRange {
  readonly from: number;
  readonly to: number;
}

export type IndexRangesResult =
  | { readonly ok: true; readonly ranges: readonly IndexRange[] }
  | { readonly ok: false; readonly error: string };

/** No PF has more VFs than this (PCIe SR-IOV TotalVFs is 16 bits; real NICs stop near 256). */
const MAX_INDEX = 65_535;
const PART = /^\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?$/;

/** Parses a range list; the error says which part is wrong and how to write it. */
export function parseIndexRanges(spec: string): IndexRangesResult {
  if (spec.trim() === '') return { ok: false, error: 'empty VF range; write e.g. "0-3" or "0-3,6"' };
  const ranges: IndexRange[] = [];
  for (const part of spec.split(',')) {
    const m = PART.exec(part);
    if (m === null)
      return { ok: false, error: `"${part}" is not a VF index or range; write e.g. "4" or "0-3"` };
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) return { ok: false, error: `"${part.trim()}" runs backwards; write "${to}-${from}"` };
    if (to > MAX_INDEX) return { ok: false, error: `"${part.trim()}" is larger than any PF's VF count` };
    ranges.push({ from, to });
  }
  return { ok: true, ranges };
}

export function inRanges(index: number, ranges: readonly IndexRange[] | null): boolean {
  return ranges === null || ranges.some((r) => index >= r.from && index <= r.to);
}

export class VfRangeError extends NetplumbError {
  override readonly name = 'VfRangeError';
  constructor(message: string) {
    super('VF_RANGE_INVALID', message, { exitCode: ExitCode.USAGE });
  }
}

/** Sorted, de-duplicated VF indices of `spec`; throws VfRangeError naming the bad part. */
export function parseVfRange(spec: string): number[] {
  const r = parseIndexRanges(spec);
  if (!r.ok) throw new VfRangeError(r.error);
  const out = new Set<number>();
  for (const { from, to } of r.ranges) for (let i = from; i <= to; i++) out.add(i);
  return [...out].sort((a, b) => a - b);
}

/** The shortest range spec for a set of indices (the inverse of parseVfRange). */
export function formatVfRange(indices: Iterable<number>): string {
  const sorted = [...new Set(indices)].sort((a, b) => a - b);
  const parts: string[] = [];
  let i = 0;
  while (i < sorted.length) {
    const start = sorted[i] ?? 0;
    let end = start;
    while (sorted[i + 1] === end + 1) {
      end += 1;
      i += 1;
    }
    parts.push(start === end ? String(start) : `${start}-${end}`);
    i += 1;
  }
  return parts.join(',');
}
