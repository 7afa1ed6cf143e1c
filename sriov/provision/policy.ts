// `netplumb vf apply FILE`: a declarative per-node policy. Applying it twice changes nothing the
// second time; every change made is reported.
//
//   { "pfs": [ { "pf": "ens1f0", "numVfs": 8,
//                "vfs": [ { "range": "0-3", "driver": "vfio-pci", "vlan": 100, "trust": "on" },
//                         { "range": "4-7", "driver": "iavf", "spoofchk": "off" } ] } ] }
import { formatIssues } from '../../lib/config-path.js';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { VfChange } from '../link/vf-settings.js';
import { VlanProto } from '../link/vf-settings.js';
import type { VfSettings } from '../model.js';
import type { Change, ProvisionDeps } from './operations.js';
import { applySettings, bindVfs, setVfCount, vfsInUse } from './operations.js';
import { ProvisionError, readPf, resolvePf } from './pf-tree.js';
import { parseVfRange, VfRangeError } from '../vf-range.js';

const onOff = z.union([z.boolean(), z.enum(['on', 'off']).transform((v) => v === 'on')]);

const vfRule = z.strictObject({
  range: z.string(),
  driver: z.string().min(1).optional(),
  vlan: z.number().int().min(0).max(4094).optional(),
  vlanQoS: z.number().int().min(0).max(7).optional(),
  trust: onOff.optional(),
  spoofchk: onOff.optional(),
});

const policySchema = z.strictObject({
  pfs: z.array(
    z.strictObject({
      pf: z.string().min(1),
      numVfs: z.number().int().min(0),
      vfs: z.array(vfRule).default([]),
    }),
  ),
});

export type Policy = z.infer<typeof policySchema>;

export function parsePolicy(raw: unknown, where: string): Policy {
  const parsed = policySchema.safeParse(raw);
  if (!parsed.success) {
    throw new ProvisionError('BAD_POLICY', `${where}: ${formatIssues(parsed.error.issues)}`);
  }
  for (const [i, pf] of parsed.data.pfs.entries()) {
    const seen = new Map<number, number>();
    for (const [j, rule] of pf.vfs.entries()) {
      let indices: number[];
      try {
        indices = parseVfRange(rule.range);
      } catch (error) {
        if (error instanceof VfRangeError)
          throw new ProvisionError('BAD_POLICY', `${where}: pfs[${i}].vfs[${j}].range: ${error.message}`);
        throw error;
      }
      for (const n of indices) {
        if (n >= pf.numVfs) {
          throw new ProvisionError(
            'BAD_POLICY',
            `${where}: pfs[${i}].vfs[${j}].range: VF ${n} is beyond numVfs ${pf.numVfs}`,
          );
        }
        const other = seen.get(n);
        if (other !== undefined) {
          throw new ProvisionError(
            'BAD_POLICY',
            `${where}: pfs[${i}].vfs[${j}].range: VF ${n} is also in vfs[${other}]; ranges must not overlap`,
          );
        }
        seen.set(n, j);
      }
      if (rule.vlanQoS !== undefined && rule.vlan === undefined) {
        throw new ProvisionError('BAD_POLICY', `${where}: pfs[${i}].vfs[${j}].vlanQoS: needs "vlan"`);
      }
    }
  }
  return parsed.data;
}

/** Reads a policy file: JSON, or YAML for .yaml/.yml. */
export async function loadPolicy(file: string): Promise<Policy> {
  const text = await readFile(file, 'utf8').catch((error: unknown) => {
    throw new ProvisionError('BAD_POLICY', `cannot read policy ${file}: ${String(error)}`, { cause: error });
  });
  let raw: unknown;
  try {
    if (/\.ya?ml$/i.test(file)) {
      const yaml = await import('yaml').catch((error: unknown) => {
        throw new ProvisionError(
          'NO_YAML',
          `${file}: reading YAML needs the "yaml" package; write the policy as JSON instead`,
          {
            cause: error,
          },
        );
      });
      raw = yaml.parse(text);
    } else {
      raw = JSON.parse(text);
    }
  } catch (error) {
    if (error instanceof ProvisionError) throw error;
    throw new ProvisionError(
      'BAD_POLICY',
      `${file}: not valid ${/\.ya?ml$/i.test(file) ? 'YAML' : 'JSON'}: ${String(error)}`,
      {
        cause: error,
      },
    );
  }
  return parsePolicy(raw, file);
}

/** The PF-side changes that bring `current` to what `rule` asks (empty when it already is). */
export function settingsDiff(rule: z.infer<typeof vfRule>, current: VfSettings): VfChange[] {
  const out: VfChange[] = [];
  if (rule.vlan !== undefined) {
    const qos = rule.vlanQoS ?? 0;
    if (current.vlan !== rule.vlan || (current.qos ?? 0) !== qos) {
      out.push({ kind: 'vlan', vlan: rule.vlan, qos, proto: VlanProto.Q });
    }
  }
  if (rule.spoofchk !== undefined && current.spoofchk !== rule.spoofchk)
    out.push({ kind: 'spoofchk', on: rule.spoofchk });
  if (rule.trust !== undefined && current.trust !== rule.trust) out.push({ kind: 'trust', on: rule.trust });
  return out;
}

/** Applies a policy: VF counts, then drivers, then PF-side settings. Returns every change made. */
export async function applyPolicy(deps: ProvisionDeps, policy: Policy, force: boolean): Promise<Change[]> {
  const changes: Change[] = [];
  // Count the work up front for the progress bar: one step per PF count, per VF rule target.
  const total = policy.pfs.reduce(
    (n, pf) => n + 1 + pf.vfs.reduce((m, r) => m + parseVfRange(r.range).length, 0),
    0,
  );
  let done = 0;
  const step = (): void => deps.onProgress?.(++done, total);
  const quiet: ProvisionDeps = { ...deps, onProgress: undefined };
  const inUse = force ? new Map<string, string>() : await vfsInUse(deps);
  for (const pfPolicy of policy.pfs) {
    changes.push(...(await setVfCount(quiet, pfPolicy.pf, pfPolicy.numVfs, force)));
    step();
    const pf = await resolvePf(deps.sysfsRoot, pfPolicy.pf);
    const state = await readPf(deps.sysfsRoot, pf);
    for (const rule of pfPolicy.vfs) {
      for (const index of parseVfRange(rule.range)) {
        const vf = state.vfs.find((v) => v.index === index);
        if (vf === undefined) {
          throw new ProvisionError(
            'VF_MISSING',
            `PF ${pfPolicy.pf} has no VF ${index} after setting ${pfPolicy.numVfs} VFs`,
          );
        }
        if (rule.driver !== undefined && vf.driver !== rule.driver) {
          changes.push(...(await bindVfs(quiet, [vf.pciAddress], rule.driver, force)));
        }
        if (rule.vlan !== undefined || rule.trust !== undefined || rule.spoofchk !== undefined) {
          if (state.netdev === null) {
            throw new ProvisionError(
              'NO_PF_NETDEV',
              `PF ${pfPolicy.pf} has no netdev; VF vlan/trust/spoofchk cannot be set`,
            );
          }
          const diff = settingsDiff(rule, await deps.settings.read(state.netdev, index));
          if (diff.length > 0) {
            if (inUse.has(vf.pciAddress)) {
              throw new ProvisionError(
                'VF_IN_USE',
                `PF ${pfPolicy.pf} VF ${index} (${vf.pciAddress}) is in use by a pod; pass --force to change its settings`,
              );
            }
            changes.push(...(await applySettings(deps, state.netdev, pf, vf, diff)));
          }
        }
        step();
      }
    }
  }
  return changes;
}
