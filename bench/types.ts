// Shape shared by every benchmark module under bench/: `export async function run(report)`.
export interface BenchResult {
  /** e.g. "discovery: 1024 VFs". */
  readonly name: string;
  /** Median in milliseconds. */
  readonly medianMs: number;
  readonly p99Ms?: number;
  readonly samples: number;
  /** Free-form extra figures (RSS MiB, ratio vs baseline, …). */
  readonly extra?: Readonly<Record<string, number | string>>;
  /** The goal the issue set, e.g. "≤ 100 ms", and whether it was met. */
  readonly goal?: string;
  readonly goalMet?: boolean;
}

export type Reporter = (r: BenchResult) => void;
export type BenchModule = { run(report: Reporter): Promise<void> };
