// The recorder adapter of PfVfSettings, for kernels without SR-IOV: it keeps each VF's settings
// and appends every change, as the `ip link set dev <pf>` arguments, to a list — and, when given a
// directory, to `<dir>/<pf>.calls` with the settings in `<dir>/<pf>.vf<N>.json`, so a plugin run
// as a separate process records into the same place a test reads. A test asserts "VLAN 100 was
// set on VF 3 of PF X" and the exact sequence.
//
// Failure injection: a file `<dir>/<pf>.fail` whose first line is a prefix of a call line (e.g.
// `vf 3 trust`) makes that call fail (and not be recorded), to drive rollback paths.
import { appendFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { z } from 'zod';
import type { VfSettings } from '../sriov/model.js';
import { LinkError, LinkErrorCode } from '../sriov/link/link-ops.js';
import { acquireLock } from '../sriov/link/lock.js';
import {
  applyVfChange,
  DEFAULT_VF_SETTINGS,
  parseVfChangeArgs,
  pfLinkJson,
  vfChangeArgs,
  vfSettingsFromIpJson,
} from '../sriov/link/vf-settings.js';
import type { PfVfSettings, VfChange } from '../sriov/link/vf-settings.js';
import { writeFileAtomic } from '../lib/atomic-file.js';

export interface RecordedCall {
  readonly pf: string;
  readonly vf: number;
  readonly change: VfChange;
  /** `vf 3 vlan 100 qos 0`: the `ip link set dev <pf>` arguments. */
  readonly line: string;
}

export interface VfSettingsRecorder extends PfVfSettings {
  /** Calls recorded for `pf` (all PFs when omitted), oldest first; read from disk in dir mode. */
  calls(pf?: string): Promise<readonly RecordedCall[]>;
  /** Sets a VF's current settings without recording a call (the state "the hardware" starts in). */
  seed(pf: string, vf: number, settings: VfSettings): Promise<void>;
  /** Makes calls whose line starts with `linePrefix` fail on `pf` (null clears). */
  failOn(pf: string, linePrefix: string | null): Promise<void>;
}

export interface RecorderOptions {
  /** Persist into this directory (shared across processes); in-memory when omitted. */
  readonly dir?: string;
  /** Settings of a VF never seen before. */
  readonly initial?: VfSettings;
  /**
   * A simulated node's links.json (`ip -json link show` output): VFs never seen before start from
   * its `vfinfo_list`, and every change is written back there (under a lock), so discovery and
   * `netplumb inspect` show what the CNI plugin and `netplumb vf` set.
   */
  readonly linksFile?: string;
}

function checkPfName(pf: string): void {
  if (pf === '' || pf.includes('/') || pf.startsWith('.')) {
    throw new LinkError(LinkErrorCode.FAILED, `invalid PF name ${JSON.stringify(pf)}`);
  }
}

export function createVfSettingsRecorder(options: RecorderOptions = {}): VfSettingsRecorder {
  const initial = options.initial ?? DEFAULT_VF_SETTINGS;
  const { dir } = options;
  const memState = new Map<string, VfSettings>();
  const memCalls: RecordedCall[] = [];
  const memFail = new Map<string, string>();

  const stateFile = (d: string, pf: string, vf: number): string => path.join(d, `${pf}.vf${vf}.json`);

  async function fromLinksFile(pf: string, vf: number): Promise<VfSettings> {
    if (options.linksFile === undefined) return initial;
    const entry = await readLinksEntry(options.linksFile, pf, vf);
    return entry === null ? initial : vfSettingsFromIpJson(entry);
  }

  async function load(pf: string, vf: number): Promise<VfSettings> {
    if (dir === undefined) return memState.get(`${pf}/${vf}`) ?? (await fromLinksFile(pf, vf));
    try {
      return JSON.parse(await readFile(stateFile(dir, pf, vf), 'utf8')) as VfSettings;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return fromLinksFile(pf, vf);
      throw error;
    }
  }

  async function store(pf: string, vf: number, settings: VfSettings): Promise<void> {
    if (dir === undefined) {
      memState.set(`${pf}/${vf}`, settings);
      return;
    }
    await mkdir(dir, { recursive: true });
    const file = stateFile(dir, pf, vf);
    await writeFileAtomic(file, JSON.stringify(settings));
  }

  async function failPrefix(pf: string): Promise<string | null> {
    if (dir === undefined) return memFail.get(pf) ?? null;
    try {
      const text = (await readFile(path.join(dir, `${pf}.fail`), 'utf8')).split('\n')[0]?.trim() ?? '';
      return text === '' ? null : text;
    } catch {
      return null;
    }
  }

  return {
    async read(pf, vf) {
      checkPfName(pf);
      return load(pf, vf);
    },
    async set(pf, vf, change) {
      checkPfName(pf);
      const line = vfChangeArgs(vf, change).join(' ');
      const fail = await failPrefix(pf);
      if (fail !== null && line.startsWith(fail)) {
        throw new LinkError(
          LinkErrorCode.FAILED,
          `ip link set dev ${pf} ${line}: injected failure (recorder)`,
        );
      }
      const next = applyVfChange(await load(pf, vf), change);
      await store(pf, vf, next);
      if (options.linksFile !== undefined) await writeLinksEntry(options.linksFile, pf, vf, next);
      if (dir === undefined) {
        memCalls.push({ pf, vf, change, line });
      } else {
        await appendFile(path.join(dir, `${pf}.calls`), `${line}\n`);
      }
    },
    async calls(pf) {
      if (dir === undefined) return memCalls.filter((c) => pf === undefined || c.pf === pf);
      const files =
        pf === undefined ? (await readdir(dir)).filter((f) => f.endsWith('.calls')) : [`${pf}.calls`];
      const out: RecordedCall[] = [];
      for (const f of files) {
        const name = f.slice(0, -'.calls'.length);
        let text = '';
        try {
          text = await readFile(path.join(dir, f), 'utf8');
        } catch {
          continue;
        }
        for (const line of text.split('\n')) {
          if (line.trim() === '') continue;
          const { vf, change } = parseVfChangeArgs(line.trim().split(/\s+/));
          out.push({ pf: name, vf, change, line: line.trim() });
        }
      }
      return out;
    },
    async seed(pf, vf, settings) {
      checkPfName(pf);
      await store(pf, vf, settings);
    },
    async failOn(pf, linePrefix) {
      checkPfName(pf);
      if (dir === undefined) {
        if (linePrefix === null) memFail.delete(pf);
        else memFail.set(pf, linePrefix);
        return;
      }
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, `${pf}.fail`), linePrefix ?? '');
    },
  };
}

type VfInfoEntry = NonNullable<z.infer<typeof pfLinkJson>[number]['vfinfo_list']>[number];

async function readLinksEntry(linksFile: string, pf: string, vf: number): Promise<VfInfoEntry | null> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(linksFile, 'utf8'));
  } catch {
    return null;
  }
  const parsed = pfLinkJson.safeParse(raw);
  if (!parsed.success) return null;
  return parsed.data.find((l) => l.ifname === pf)?.vfinfo_list?.find((e) => e.vf === vf) ?? null;
}

// Writes one VF's settings into links.json the way iproute2 prints them (zero VLAN/QoS left out,
// protocol only when not 802.1Q). Read-modify-write under a lock: parallel plugins share the file.
async function writeLinksEntry(linksFile: string, pf: string, vf: number, s: VfSettings): Promise<void> {
  const lock = await acquireLock(path.dirname(linksFile), `${path.basename(linksFile)}.vfinfo`);
  try {
    const links = JSON.parse(await readFile(linksFile, 'utf8')) as Record<string, unknown>[];
    const link = links.find((l) => l.ifname === pf);
    if (link === undefined) return;
    const list = Array.isArray(link.vfinfo_list) ? (link.vfinfo_list as Record<string, unknown>[]) : [];
    const entry = list.find((e) => e.vf === vf);
    if (entry === undefined) return;
    const vlan: Record<string, unknown> = {};
    if ((s.vlan ?? 0) !== 0) vlan.vlan = s.vlan;
    if ((s.qos ?? 0) !== 0) vlan.qos = s.qos;
    if (s.vlanProto !== null && s.vlanProto !== '802.1Q') vlan.protocol = s.vlanProto;
    delete entry.vlan;
    delete entry.qos;
    entry.vlan_list = [vlan];
    if (s.mac !== null) entry.address = s.mac;
    entry.rate = { max_tx: s.maxTxRate ?? 0, min_tx: s.minTxRate ?? 0 };
    if (s.spoofchk !== null) entry.spoofchk = s.spoofchk;
    if (s.trust !== null) entry.trust = s.trust;
    if (s.linkState !== null) entry.link_state = s.linkState;
    await writeFileAtomic(linksFile, `${JSON.stringify(links, null, 1)}\n`);
  } finally {
    await lock.release();
  }
}
