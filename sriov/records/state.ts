// The plugin's on-disk state, laid out like sriov-cni's so tools that read it keep working:
//   <dir>/<containerID>-<ifname>  the attachment record (JSON, 0600), written atomically before
//                                 the first side effect and updated as ADD proceeds;
//   <dir>/pci/<pci>               the netns path owning the VF (sriov-cni's allocation file);
//   <dir>/lock/<pci>.lock         the per-VF lock (./lock.ts).
import { formatIssues } from '../../lib/config-path.js';
import { NetplumbError } from '../../lib/errors.js';
import type { NetplumbErrorOptions } from '../../lib/errors.js';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { fromLegacyRecord, isLegacyRecord, toLegacyView } from './legacy.js';
import { writeFileAtomic } from '../../lib/atomic-file.js';

export const DEFAULT_STATE_DIR = '/var/lib/cni/sriov';

const vfSettings = z.object({
  mac: z.string().nullable(),
  vlan: z.number().nullable(),
  qos: z.number().nullable(),
  vlanProto: z.string().nullable(),
  spoofchk: z.boolean().nullable(),
  trust: z.boolean().nullable(),
  linkState: z.enum(['auto', 'enable', 'disable']).nullable(),
  minTxRate: z.number().nullable(),
  maxTxRate: z.number().nullable(),
});

/** How far ADD got; DEL and recovery undo exactly what the phase implies. */
export const Phase = {
  /** Record written, nothing touched yet. */
  STARTED: 'started',
  /** PF-side settings may have been changed. */
  PF_CONFIGURED: 'pf-configured',
  /** The netdev may have left the host (renamed to `tempName`, possibly in the pod). */
  NETDEV_MOVING: 'netdev-moving',
  /** IPAM may hold an allocation. */
  IPAM: 'ipam',
  DONE: 'done',
} as const;
export type Phase = (typeof Phase)[keyof typeof Phase];

export const attachmentSchema = z.object({
  kind: z.literal('netplumb-sriov/v1'),
  containerId: z.string(),
  ifname: z.string(),
  netns: z.string(),
  deviceID: z.string(),
  pfNetdev: z.string(),
  vfIndex: z.number().int(),
  /** Bound to a userspace driver: PF-side only (remembered, unlike sriov-cni; PR #346). */
  dpdk: z.boolean(),
  phase: z.enum(['started', 'pf-configured', 'netdev-moving', 'ipam', 'done']),
  /** The VF's PF-side settings before ADD. */
  origSettings: vfSettings,
  /** Which PF-side settings ADD changes (and DEL restores); the admin MAC is always restored. */
  configured: z.object({
    vlan: z.boolean(),
    mac: z.boolean(),
    rate: z.boolean(),
    spoofchk: z.boolean(),
    trust: z.boolean(),
    linkState: z.boolean(),
  }),
  /** The host netdev before ADD; null for DPDK VFs. */
  origNetdev: z
    .object({ name: z.string(), mac: z.string().nullable(), mtu: z.number(), altnames: z.array(z.string()) })
    .nullable(),
  /** Name the netdev carries while crossing between netns. */
  tempName: z.string().nullable(),
  /** MAC the netdev has in the pod (requested or original). */
  podMac: z.string().nullable(),
  /** The network config as received (IPAM DEL gets it back). */
  config: z.record(z.string(), z.unknown()),
  /** The ADD result (canonical form) once done. */
  result: z.unknown().nullable(),
});
export type Attachment = z.infer<typeof attachmentSchema>;

export const StateErrorCode = { CORRUPT: 'SRIOV_STATE_CORRUPT' } as const;

export class StateError extends NetplumbError {
  override readonly name = 'StateError';
  constructor(message: string, options?: NetplumbErrorOptions) {
    super(StateErrorCode.CORRUPT, message, options);
  }
}

export interface StateStore {
  readonly dir: string;
  load(containerId: string, ifname: string): Promise<Attachment | null>;
  /** Atomic (temp file + rename). */
  save(record: Attachment): Promise<void>;
  remove(containerId: string, ifname: string): Promise<void>;
  /** Every attachment record (for recovery and `netplumb vf` in-use checks); unreadable files are skipped. */
  all(): Promise<readonly Attachment[]>;
  /** Netns path owning `pci`, or null. */
  owner(pci: string): Promise<string | null>;
  setOwner(pci: string, netns: string): Promise<void>;
  clearOwner(pci: string): Promise<void>;
  /** PCI addresses with an owner file. */
  owned(): Promise<readonly { pci: string; netns: string }[]>;
  readonly lockDir: string;
}

function atomicWrite(file: string, content: string): Promise<void> {
  return writeFileAtomic(file, content, { mode: 0o600 });
}

export function createStateStore(dir: string = DEFAULT_STATE_DIR): StateStore {
  const pciDir = path.join(dir, 'pci');
  const recordFile = (cid: string, ifname: string): string => path.join(dir, `${cid}-${ifname}`);

  async function ensure(): Promise<void> {
    await mkdir(pciDir, { recursive: true, mode: 0o700 });
  }

  async function ownerOf(pci: string): Promise<string | null> {
    try {
      const text = (await readFile(path.join(pciDir, pci), 'utf8')).trim();
      return text === '' ? null : text;
    } catch {
      return null;
    }
  }

  async function parseFile(file: string, ids?: { cid: string; ifname: string }): Promise<Attachment | null> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (error) {
      throw new StateError(`${file} is not JSON; remove it if the attachment is gone`, { cause: error });
    }
    if (isLegacyRecord(raw)) {
      // sriov-cni names the file <containerID>-<ifname>; without the ids, split at the last '-'.
      const name = path.basename(file);
      const cut = name.lastIndexOf('-');
      const cid = ids?.cid ?? name.slice(0, cut);
      const ifname = ids?.ifname ?? name.slice(cut + 1);
      const deviceID = (raw as { deviceID?: unknown }).deviceID;
      const netns = typeof deviceID === 'string' ? ((await ownerOf(deviceID.toLowerCase())) ?? '') : '';
      const legacy = fromLegacyRecord(raw, cid, ifname, netns);
      if (legacy !== null) return legacy;
    }
    const parsed = attachmentSchema.safeParse(raw);
    if (!parsed.success) {
      throw new StateError(`${file} is not a netplumb-sriov record: ${formatIssues(parsed.error.issues)}`);
    }
    return parsed.data;
  }

  return {
    dir,
    lockDir: path.join(dir, 'lock'),
    load: (cid, ifname) => parseFile(recordFile(cid, ifname), { cid, ifname }),
    async save(record) {
      await ensure();
      // sriov-cni's NetConf fields first (read by its DEL after a switch back), ours win on overlap.
      const doc = { ...toLegacyView(record), ...record };
      await atomicWrite(recordFile(record.containerId, record.ifname), `${JSON.stringify(doc)}\n`);
    },
    async remove(cid, ifname) {
      await rm(recordFile(cid, ifname), { force: true });
    },
    async all() {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        return [];
      }
      const out: Attachment[] = [];
      for (const n of names) {
        if (n === 'pci' || n === 'lock' || n.endsWith('.tmp')) continue;
        const rec = await parseFile(path.join(dir, n)).catch(() => null);
        if (rec !== null) out.push(rec);
      }
      return out;
    },
    owner: ownerOf,
    async setOwner(pci, netns) {
      await ensure();
      await atomicWrite(path.join(pciDir, pci), netns);
    },
    async clearOwner(pci) {
      await rm(path.join(pciDir, pci), { force: true });
    },
    async owned() {
      let names: string[];
      try {
        names = await readdir(pciDir);
      } catch {
        return [];
      }
      const out: { pci: string; netns: string }[] = [];
      for (const n of names) {
        if (n.endsWith('.tmp')) continue;
        const text = await readFile(path.join(pciDir, n), 'utf8').catch(() => '');
        if (text.trim() !== '') out.push({ pci: n, netns: text.trim() });
      }
      return out;
    },
  };
}
