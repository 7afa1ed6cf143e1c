// GetPreferredAllocation as a pure function: honour must-include, then keep the answer on one NUMA
// node when possible, then pack devices onto the fewest groups (PFs / NICs) or spread them.
import type { AllocationPolicy } from './config.js';

export interface PlacementInfo {
  /** -1 when unknown. */
  readonly numaNode: number;
  /** Devices in one group share a physical port (a PF's VFs, a NIC's slots). */
  readonly group: string;
}

export interface PreferenceRequest {
  readonly available: readonly string[];
  readonly mustInclude: readonly string[];
  readonly size: number;
  readonly policy: AllocationPolicy;
  /** Placement of the pool's devices; IDs missing here count as their own group on no NUMA node. */
  readonly placement: ReadonlyMap<string, PlacementInfo>;
}

const byId = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function place(req: PreferenceRequest, id: string): PlacementInfo {
  return req.placement.get(id) ?? { numaNode: -1, group: id };
}

/**
 * Returns `size` device IDs (or fewer when not enough are available): every must-include ID
 * first, then the preferred rest. Deterministic for a given input.
 */
export function preferredAllocation(req: PreferenceRequest): string[] {
  const chosen = [...new Set(req.mustInclude)];
  const need = req.size - chosen.length;
  if (need <= 0) return chosen;
  const taken = new Set(chosen);
  const free = [...new Set(req.available)].filter((id) => !taken.has(id)).sort(byId);

  // NUMA: the must-include devices' node if they share one, else the node that fits best.
  const byNuma = new Map<number, string[]>();
  for (const id of free) {
    const n = place(req, id).numaNode;
    const list = byNuma.get(n);
    if (list) list.push(id);
    else byNuma.set(n, [id]);
  }
  const mustNodes = new Set(chosen.map((id) => place(req, id).numaNode));
  const nodes = [...byNuma.keys()].sort((a, b) => {
    // Order: the must-include node, then known nodes that can hold the rest alone (best fit for
    // pack, most free for spread), then the others by free count; unknown NUMA (-1) last.
    const rank = (n: number): number => (mustNodes.size === 1 && mustNodes.has(n) ? 0 : n === -1 ? 2 : 1);
    const ra = rank(a);
    const rb = rank(b);
    if (ra !== rb) return ra - rb;
    const fa = byNuma.get(a)?.length ?? 0;
    const fb = byNuma.get(b)?.length ?? 0;
    const fitsA = fa >= need;
    const fitsB = fb >= need;
    if (fitsA !== fitsB) return fitsA ? -1 : 1;
    if (fitsA && fa !== fb) return req.policy === 'pack' ? fa - fb : fb - fa;
    if (!fitsA && fa !== fb) return fb - fa;
    return a - b;
  });

  const result = [...chosen];
  let remaining = need;
  for (const n of nodes) {
    if (remaining === 0) break;
    const picked = pickWithinNode(req, byNuma.get(n) ?? [], chosen, remaining);
    result.push(...picked);
    remaining -= picked.length;
  }
  return result;
}

function pickWithinNode(
  req: PreferenceRequest,
  ids: readonly string[],
  already: readonly string[],
  count: number,
): string[] {
  const groups = new Map<string, string[]>();
  for (const id of ids) {
    const g = place(req, id).group;
    const list = groups.get(g);
    if (list) list.push(id);
    else groups.set(g, [id]);
  }
  const used = new Map<string, number>();
  for (const id of already) {
    const g = place(req, id).group;
    used.set(g, (used.get(g) ?? 0) + 1);
  }
  return req.policy === 'pack' ? pack(groups, used, count) : spread(groups, used, count);
}

// Fewest groups: fill groups already in use, then the smallest group that fits the rest alone,
// else the largest group (greedy largest-first minimises the number of groups).
function pack(groups: Map<string, string[]>, used: ReadonlyMap<string, number>, count: number): string[] {
  const out: string[] = [];
  const names = [...groups.keys()].sort(byId);
  for (const g of names.filter((n) => used.has(n))) {
    const list = groups.get(g) ?? [];
    out.push(...list.splice(0, count - out.length));
    if (list.length === 0) groups.delete(g);
  }
  while (out.length < count && groups.size > 0) {
    const rest = count - out.length;
    const entries = [...groups.entries()].sort((a, b) => byId(a[0], b[0]));
    const fits = entries.filter(([, l]) => l.length >= rest).sort((a, b) => a[1].length - b[1].length)[0];
    const [name, list] = fits ?? entries.sort((a, b) => b[1].length - a[1].length)[0] ?? ['', []];
    out.push(...list.slice(0, rest));
    groups.delete(name);
  }
  return out;
}

// Round-robin over groups, least-used first, so the devices land on as many groups as possible.
function spread(groups: Map<string, string[]>, used: ReadonlyMap<string, number>, count: number): string[] {
  const out: string[] = [];
  const load = new Map<string, number>([...groups.keys()].map((g) => [g, used.get(g) ?? 0]));
  while (out.length < count && groups.size > 0) {
    const next = [...groups.keys()].sort(
      (a, b) =>
        (load.get(a) ?? 0) - (load.get(b) ?? 0) ||
        (groups.get(b)?.length ?? 0) - (groups.get(a)?.length ?? 0) ||
        byId(a, b),
    )[0];
    if (next === undefined) break;
    const list = groups.get(next) ?? [];
    const id = list.shift();
    if (id !== undefined) out.push(id);
    load.set(next, (load.get(next) ?? 0) + 1);
    if (list.length === 0) groups.delete(next);
  }
  return out;
}
