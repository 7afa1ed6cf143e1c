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
