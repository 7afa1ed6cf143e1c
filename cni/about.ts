// What a plugin executable answers before (or instead of) a CNI call: the about line outside a
// call, and the VERSION answer. Imports nothing but version constants, so an executable's entry
// can answer both without loading the plugin (the thin netplumb-cni answers VERSION this way).
import { aboutLine } from '../lib/version.js';
import { CURRENT_VERSION, SPEC_VERSIONS, compareVersions } from './version.js';

/** The newest of `versions` (what VERSION reports as its own cniVersion). */
export function highestVersion(versions: readonly string[]): string {
  return [...versions].sort(compareVersions).at(-1) ?? CURRENT_VERSION;
}

/** The VERSION answer's stdout: `{cniVersion, supportedVersions}`, printed as every result is. */
export function versionAnswer(supportedVersions: readonly string[]): string {
  return JSON.stringify(
    { cniVersion: highestVersion(supportedVersions), supportedVersions: [...supportedVersions] },
    null,
    4,
  );
}

/**
 * Outside a CNI call (no CNI_COMMAND, or `--version`), a plugin executable says what it is on
 * stderr and exits 0, as the reference plugins' skel does, instead of failing with error 4.
 */
export function aboutOutsideCniCall(
  executable: string,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): boolean {
  if ((env['CNI_COMMAND'] ?? '') !== '' && !argv.includes('--version')) return false;
  process.stderr.write(
    `${aboutLine(executable)}\nCNI protocol versions supported: ${SPEC_VERSIONS.join(', ')}\n`,
  );
  return true;
}

/**
 * The VERSION answer when the environment alone decides it (CNI_COMMAND=VERSION and no CNI_ARGS to
 * validate), else undefined: the plugin itself then answers, errors included.
 */
export function versionWithoutPlugin(
  env: NodeJS.ProcessEnv,
  supportedVersions: readonly string[],
): string | undefined {
  if (env['CNI_COMMAND'] !== 'VERSION' || (env['CNI_ARGS'] ?? '').trim() !== '') return undefined;
  return versionAnswer(supportedVersions);
}
