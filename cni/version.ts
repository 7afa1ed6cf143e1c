// CNI spec versions and the comparisons the spec's rules need.
export const SPEC_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type SpecVersion = (typeof SPEC_VERSIONS)[number];

/** The newest spec version netplumb implements. */
export const CURRENT_VERSION: SpecVersion = '1.1.0';

/** Version assumed when a config has no `cniVersion` (libcni's ConfigDecoder). */
export const DEFAULT_CONFIG_VERSION: SpecVersion = '0.1.0';

export function isSpecVersion(v: string): v is SpecVersion {
  return (SPEC_VERSIONS as readonly string[]).includes(v);
}

function parts(v: string): [number, number, number] {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  if (m === null) return [-1, -1, -1];
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** Semver comparison of `a` and `b` (-1, 0, 1); malformed versions sort first. */
export function compareVersions(a: string, b: string): number {
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

export function versionAtLeast(v: string, min: string): boolean {
  return compareVersions(v, min) >= 0;
}

/** Result wire formats: 0.1.0/0.2.0 share one, 0.3.0..0.4.0 another, 1.x the current one. */
export type ResultFormat = 'legacy' | 'v04' | 'v1';

export function resultFormatOf(v: string): ResultFormat {
  if (compareVersions(v, '0.3.0') < 0) return 'legacy';
  if (compareVersions(v, '1.0.0') < 0) return 'v04';
  return 'v1';
}
