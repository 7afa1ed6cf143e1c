// The vocabulary of `netplumb doctor` and of the device plugin's `netplumb_node_check` metric: a
// check is one verdict about the node (or one PF) with the fact it saw and, unless it passed, the
// fix. Plain data, so checks are pure functions and the CLI, JSON and metrics share them.

export const CHECK_STATUSES = ['pass', 'warn', 'fail'] as const;
export type CheckStatus = (typeof CHECK_STATUSES)[number];

export interface Check {
  /** Stable kebab-case name, e.g. `iommu`, `hugepages-numa`, `pf-vfs` (the metric's `check` label). */
  readonly id: string;
  /** PCI address of the PF the check is about; null for node-wide checks. */
  readonly pf: string | null;
  readonly status: CheckStatus;
  /** What was seen, in words a person can verify with `cat` or `ls`. */
  readonly fact: string;
  /** What to do about it; null when the check passed. */
  readonly fix: string | null;
}

/** 0 = pass, 1 = warn, 2 = fail: the metric value and, for the worst check, the exit code. */
export function statusValue(status: CheckStatus): 0 | 1 | 2 {
  switch (status) {
    case 'pass':
      return 0;
    case 'warn':
      return 1;
    case 'fail':
      return 2;
  }
}

/** Exit code of a doctor run: the worst status seen (0 when there are no checks). */
export function exitCodeOf(checks: readonly Check[]): 0 | 1 | 2 {
  let worst: 0 | 1 | 2 = 0;
  for (const c of checks) worst = Math.max(worst, statusValue(c.status)) as 0 | 1 | 2;
  return worst;
}

export function pass(id: string, pf: string | null, fact: string): Check {
  return { id, pf, status: 'pass', fact, fix: null };
}

export function warn(id: string, pf: string | null, fact: string, fix: string): Check {
  return { id, pf, status: 'warn', fact, fix };
}

export function fail(id: string, pf: string | null, fact: string, fix: string): Check {
  return { id, pf, status: 'fail', fact, fix };
}
