// The ports the SR-IOV CNI plugin runs on. The composition root (bin/netplumb-sriov.ts, or the
// daemon running the plugin in-process) builds them; tests pass real iproute2 + the recorder.
import { NetplumbError } from '../../lib/errors.js';
import type { NetplumbErrorOptions } from '../../lib/errors.js';
import type { Logger } from 'pino';
import type { LinkOps } from '../../sriov/link/link-ops.js';
import type { PfVfSettings } from '../../sriov/link/vf-settings.js';
import type { Ipam } from './ipam.js';
import type { Clock } from '../../lib/clock.js';
import type { StateStore } from '../../sriov/records/state.js';

/** What the plugin needs to know about one VF, read from sysfs. */
export interface VfLocation {
  readonly pciAddress: string;
  readonly pfPciAddress: string;
  /** PF netdev (`ip link set <pf> vf N …` target); null when the PF has none. */
  readonly pfNetdev: string | null;
  readonly index: number;
  /** VF netdev in the host netns, null when bound to a userspace driver or moved away. */
  readonly netdev: string | null;
  readonly driver: string | null;
  readonly dpdk: boolean;
}

export const LocateErrorCode = { NOT_A_VF: 'SRIOV_NOT_A_VF' } as const;

/** `pci` is not an SR-IOV VF on this node (no such device, or no physfn). */
export class NotAVfError extends NetplumbError {
  override readonly name = 'NotAVfError';
  constructor(message: string, options?: NetplumbErrorOptions) {
    super(LocateErrorCode.NOT_A_VF, message, options);
  }
}

/** Reads one VF from sysfs; throws NotAVfError when `pci` is not a VF. */
export type LocateVf = (pci: string) => Promise<VfLocation>;

export interface SriovLogOptions {
  readonly logLevel: string;
  readonly logFile: string | null;
}

export interface SriovDeps {
  readonly links: LinkOps;
  readonly pf: PfVfSettings;
  readonly state: StateStore;
  readonly locateVf: LocateVf;
  readonly ipam: Ipam;
  readonly clock: Clock;
  /** Logger for one call, honouring the config's `logLevel`/`logFile` (never stdout). */
  readonly logger: (options: SriovLogOptions) => Logger;
  readonly netnsAlive: (nsPath: string) => Promise<boolean>;
  /** Per-VF lock wait; default 60 s. */
  readonly lockTimeoutMs?: number;
  /** Retries for MAC settings drivers apply asynchronously (i40e/iavf, mlx5); default 20 × 100 ms. */
  readonly macRetries?: number;
  readonly macRetryDelayMs?: number;
}
