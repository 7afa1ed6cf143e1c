// VF index ranges as written in policies and on the command line: `0-3`, `5`, `0-3,6,8-9`.

export class VfRangeError extends Error {
  override readonly name = 'VfRangeError';
  readonly code = 'VF_RANGE_INVALID';
}

/** Sorted, de-duplicated VF indices of `spec`; throws VfRangeError naming the bad part. */
export function parseVfRange(spec: string): number[] {
  const out = new Set<number>();
  const trimmed = spec.trim();
  if (trimmed === '') throw new VfRangeError('empty VF range; write e.g. "0-3" or "0-3,6"');
  for (const part of trimmed.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (m === null) throw new VfRangeError(`"${part}" is not a VF index or range; write e.g. "4" or "0-3"`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) throw new VfRangeError(`"${part}" runs backwards; write "${to}-${from}"`);
    if (to - from > 4096) throw new VfRangeError(`"${part}" is larger than any PF's VF count`);
    for (let i = from; i <= to; i++) out.add(i);
  }
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
