// Device requests for one container: for each resource the pod's networks need, requests and limits
// are set to the larger of the user's value and the count (extended resources need requests equal
// to limits), or, with `honor` (network-resources-injector's honor-resources), to the user's value
// plus the count. A user's value is never lowered; every change or kept value is said in a warning. Pure.
import type { JsonObject, JsonValue } from '../lib/json.js';
import { pointer } from './json-patch.js';
import type { PatchOperation } from './json-patch.js';
import type { ContainerView } from './pod.js';
import { compareQuantity, parseQuantity, quantityOfCount } from './quantity.js';
import type { Quantity } from './quantity.js';

export interface ResourceOutcome {
  readonly patch: PatchOperation[];
  readonly warnings: string[];
  /** The value each resource has after the patch (the user's text when it was kept). */
  readonly result: Record<string, string>;
}

interface Decision {
  readonly value: string;
  readonly warning?: string;
}

/** honor-resources: the user's whole number plus the count; undefined when the user's value is not whole. */
function honored(
  resource: string,
  needed: number,
  best: { text: string; q: Quantity },
): Decision | undefined {
  const { numerator, denominator } = best.q;
  if (numerator < 0n || numerator % denominator !== 0n) return undefined;
  const value = String(numerator / denominator + BigInt(needed));
  return {
    value,
    warning: `${resource}: the pod's ${best.text} plus the ${needed} its networks need = ${value} (honor-resources)`,
  };
}

/** The value to set for `resource` given the user's request/limit texts and the count. */
export function decide(
  resource: string,
  needed: number,
  user: readonly JsonValue[],
  honor = false,
): Decision {
  let best: { text: string; q: Quantity } | undefined;
  for (const raw of user) {
    const q = parseQuantity(raw);
    const text = typeof raw === 'string' ? raw : JSON.stringify(raw);
    if (q === undefined) {
      return {
        value: text,
        warning: `${resource}: kept the pod's value "${text}" (not a quantity); its networks need ${needed}`,
      };
    }
    if (best === undefined || compareQuantity(q, best.q) > 0) best = { text, q };
  }
  if (best === undefined) return { value: String(needed) };
  const sum = honor ? honored(resource, needed, best) : undefined;
  if (sum !== undefined) return sum;
  const cmp = compareQuantity(best.q, quantityOfCount(needed));
  if (cmp > 0) {
    return {
      value: best.text,
      warning: `${resource}: kept the pod's ${best.text} (larger than the ${needed} its networks need)`,
    };
  }
  if (cmp < 0) {
    return {
      value: String(needed),
      warning: `${resource}: raised the pod's ${best.text} to ${needed} (one per network attachment)`,
    };
  }
  return { value: best.text };
}

function userValues(c: ContainerView, resource: string): JsonValue[] {
  return [c.requests?.[resource], c.limits?.[resource]].filter((v): v is JsonValue => v !== undefined);
}

function sectionOps(
  c: ContainerView,
  section: 'requests' | 'limits',
  values: Readonly<Record<string, string>>,
): PatchOperation[] {
  const base = ['spec', 'containers', c.index, 'resources', section];
  const existing = section === 'requests' ? c.requests : c.limits;
  if (existing === undefined) return [{ op: 'add', path: pointer(base), value: { ...values } }];
  return Object.entries(values)
    .filter(([k, v]) => existing[k] !== v)
    .map(([k, v]) => ({
      op: existing[k] === undefined ? ('add' as const) : ('replace' as const),
      path: pointer([...base, k]),
      value: v,
    }));
}

/** The patch giving container `c` the devices in `needed` (resource name → attachments). */
export function resourcePatch(
  c: ContainerView,
  needed: ReadonlyMap<string, number>,
  honor = false,
): ResourceOutcome {
  const warnings: string[] = [];
  const result: Record<string, string> = {};
  for (const [resource, count] of [...needed].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const d = decide(resource, count, userValues(c, resource), honor);
    result[resource] = d.value;
    if (d.warning !== undefined) warnings.push(d.warning);
  }
  if (Object.keys(result).length === 0) return { patch: [], warnings, result };
  if (!c.hasResources) {
    const value: JsonObject = { requests: { ...result }, limits: { ...result } };
    return {
      patch: [{ op: 'add', path: pointer(['spec', 'containers', c.index, 'resources']), value }],
      warnings,
      result,
    };
  }
  const patch = [...sectionOps(c, 'requests', result), ...sectionOps(c, 'limits', result)];
  return { patch, warnings, result };
}
