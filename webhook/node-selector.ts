// NAD annotation `k8s.v1.cni.cncf.io/nodeSelector` (network-resources-injector's idea): node labels a
// network needs, `key=value[,key=value...]`, merged into the pod's nodeSelector. The pod's own value
// of a key wins (said in a warning); between networks, the first to name a key wins. Pure.
import { pointer } from './json-patch.js';
import type { PatchOperation } from './json-patch.js';

export const NODE_SELECTOR_ANNOTATION = 'k8s.v1.cni.cncf.io/nodeSelector';

const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** Parses the annotation of NAD `nad`; a bad item is skipped with a warning. */
export function parseNodeSelector(
  value: string,
  nad: string,
): { labels: Record<string, string>; warnings: string[] } {
  const labels: Record<string, string> = {};
  const warnings: string[] = [];
  for (const item of value.split(',').map((s) => s.trim())) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    const key = (eq < 0 ? item : item.slice(0, eq)).trim();
    const val = eq < 0 ? '' : item.slice(eq + 1).trim();
    if (!LABEL_KEY.test(key) || key.length > 317 || !LABEL_VALUE.test(val)) {
      warnings.push(
        `network ${nad}: ${NODE_SELECTOR_ANNOTATION} item "${item.slice(0, 80)}" ignored (use key=value node labels)`,
      );
      continue;
    }
    labels[key] = val;
  }
  return { labels, warnings };
}

/** Merges `wanted` (label → [value, from which network]) into the pod's nodeSelector. */
export function nodeSelectorPatch(
  current: Readonly<Record<string, string>> | undefined,
  wanted: ReadonlyMap<string, { value: string; nad: string }>,
): { patch: PatchOperation[]; warnings: string[] } {
  const warnings: string[] = [];
  const add: Record<string, string> = {};
  for (const [key, { value, nad }] of wanted) {
    const mine = current?.[key];
    if (mine === undefined) add[key] = value;
    else if (mine !== value) {
      warnings.push(`nodeSelector ${key}: kept the pod's "${mine}"; network ${nad} asks for "${value}"`);
    }
  }
  if (Object.keys(add).length === 0) return { patch: [], warnings };
  if (current === undefined) {
    return { patch: [{ op: 'add', path: pointer(['spec', 'nodeSelector']), value: add }], warnings };
  }
  const patch = Object.entries(add).map(([k, v]) => ({
    op: 'add' as const,
    path: pointer(['spec', 'nodeSelector', k]),
    value: v,
  }));
  return { patch, warnings };
}
