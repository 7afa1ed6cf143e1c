// netplumb's version, printed by `netplumb --version`, `netplumb-cni --version` and
// `netplumb-sriov --version`. A test keeps it equal to package.json's.
export const VERSION = '0.1.0';

/** The one-line answer every executable gives outside a CNI call. */
export function aboutLine(executable: string): string {
  return `${executable} ${VERSION} (netplumb; Node.js ${process.versions.node})`;
}
