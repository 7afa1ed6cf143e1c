// The one syntax for "which key is wrong", used by every parser of user input (device-plugin
// config, CNI and sriov configs, annotations, policies, daemon config): `resourceList[1].selectors[0].pfNames`.
export type ConfigPath = readonly PropertyKey[];

export function formatConfigPath(path: ConfigPath): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

/** A problem at a path (a zod issue, or one a parser found itself). */
export interface PathIssue {
  readonly path: ConfigPath;
  readonly message: string;
}

/**
 * Every issue as `a.b[0].c: message` (`(root)` for the whole document), joined by `separator`:
 * users see all problems at once, in one syntax, whatever parser found them.
 */
export function formatIssues(
  issues: readonly PathIssue[],
  prefix: ConfigPath = [],
  separator = '; ',
): string {
  return issues
    .map((i) => {
      const at = formatConfigPath([...prefix, ...i.path]);
      return `${at === '' ? '(root)' : at}: ${i.message}`;
    })
    .join(separator);
}
