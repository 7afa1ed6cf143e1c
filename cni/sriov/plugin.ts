// The SR-IOV CNI plugin (`"type": "sriov"`): thin verbs over the domain (attach/release), built on
// the CNI core's skeleton so the executable and the daemon run the same code.
import type { Logger } from 'pino';
import { CniError, CniErrorCode } from '../errors.js';
import { createPlugin } from '../skel.js';
import type { CheckCall, CniPluginFn, DelCall, GcCall } from '../skel.js';
import { SPEC_VERSIONS } from '../version.js';
import { LinkError } from '../../sriov/link/link-ops.js';
import { addVf, ipamEnvFor, recoverVf } from './attach.js';
import { checkVf } from './check.js';
import { parseSriovConfig, resolveMac, SriovConfigError } from './config.js';
import type { SriovDeps } from './deps.js';
import { acquireLock } from '../../sriov/link/lock.js';
import { releaseVf } from './release.js';
import { StateError } from '../../sriov/records/state.js';

function asCniError(error: unknown): unknown {
  if (error instanceof CniError) return error;
  if (error instanceof SriovConfigError) {
    return new CniError(CniErrorCode.InvalidNetworkConfig, error.message, { cause: error });
  }
  if (error instanceof LinkError || error instanceof StateError) {
    return new CniError(CniErrorCode.Internal, error.message, { cause: error, details: String(error.code) });
  }
  return error;
}

/** Log options from a config that may be invalid (DEL must still run). */
function logOptions(config: Readonly<Record<string, unknown>>): { logLevel: string; logFile: string | null } {
  const level = config.logLevel;
  const file = config.logFile;
  return {
    logLevel: typeof level === 'string' ? level : 'info',
    logFile: typeof file === 'string' && file !== '' ? file : null,
  };
}

export function createSriovPlugin(deps: SriovDeps): CniPluginFn {
  const loggerFor = (
    config: Readonly<Record<string, unknown>>,
    containerId: string,
    ifname: string,
  ): Logger => deps.logger(logOptions(config)).child({ plugin: 'sriov', containerId, ifname });

  async function del(call: DelCall): Promise<void> {
    const log = loggerFor(call.config, call.containerId, call.ifname);
    const first = await deps.state.load(call.containerId, call.ifname);
    if (first === null) {
      // The record precedes every side effect: without it there is nothing to undo (#178, #271).
      log.debug('DEL: no record, nothing to undo');
      return;
    }
    const lock = await acquireLock(deps.state.lockDir, first.deviceID, {
      clock: deps.clock,
      ...(deps.lockTimeoutMs === undefined ? {} : { timeoutMs: deps.lockTimeoutMs }),
    });
    try {
      const loaded = await deps.state.load(call.containerId, call.ifname);
      if (loaded === null) return; // a concurrent DEL finished it
      // An sriov-cni record whose allocation file is gone names no netns: the runtime's is the pod's.
      const netns = call.netns ?? '';
      const record = loaded.netns === '' && netns !== '' ? { ...loaded, netns } : loaded;
      const ipamError = await releaseVf(record, { deps, log, ipamEnv: ipamEnvFor(record, call.env) });
      await deps.state.remove(record.containerId, record.ifname);
      const owner = await deps.state.owner(record.deviceID);
      if (owner === record.netns || owner === loaded.netns) await deps.state.clearOwner(record.deviceID);
      log.info({ deviceID: record.deviceID }, 'VF released');
      if (ipamError !== undefined) throw ipamError;
    } finally {
      await lock.release();
    }
  }

  async function check(call: CheckCall): Promise<void> {
    const config = parseSriovConfig(call.config);
    await checkVf(deps, {
      config,
      mac: resolveMac(config, Object.fromEntries(call.args)),
      containerId: call.containerId,
      ifname: call.ifname,
      netns: call.netns,
      prevResult: call.prevResult,
      stdin: call.stdin,
      env: call.env,
    });
  }

  // GC (1.1): release every attachment the runtime no longer knows about.
  async function gc(call: GcCall): Promise<void> {
    const valid = new Set(call.validAttachments.map((a) => `${a.containerId}\0${a.ifname}`));
    const log = loggerFor(call.config, '', '');
    // GC is per network: attachments of other networks (other NADs using this plugin) are not ours to judge.
    const network = call.config.name;
    for (const rec of await deps.state.all()) {
      if (rec.config.name !== network) continue;
      if (valid.has(`${rec.containerId}\0${rec.ifname}`)) continue;
      const lock = await acquireLock(deps.state.lockDir, rec.deviceID, { clock: deps.clock });
      try {
        const again = await deps.state.load(rec.containerId, rec.ifname);
        if (again === null) continue;
        const ipamError = await releaseVf(again, { deps, log, ipamEnv: ipamEnvFor(again, call.env) });
        if (ipamError !== undefined) log.warn({ err: ipamError }, 'GC: IPAM release failed');
        await deps.state.remove(again.containerId, again.ifname);
        if ((await deps.state.owner(again.deviceID)) === again.netns)
          await deps.state.clearOwner(again.deviceID);
      } finally {
        await lock.release();
      }
    }
  }

  return createPlugin({
    supportedVersions: SPEC_VERSIONS,
    async add(call) {
      try {
        const config = parseSriovConfig(call.config);
        const log = loggerFor(call.config, call.containerId, call.ifname);
        return await addVf(deps, log, {
          config,
          mac: resolveMac(config, Object.fromEntries(call.args)),
          containerId: call.containerId,
          ifname: call.ifname,
          netns: call.netns,
          cniVersion: call.cniVersion,
          stdin: call.stdin,
          env: call.env,
        });
      } catch (error) {
        throw asCniError(error);
      }
    },
    async del(call) {
      await del(call).catch((error: unknown) => {
        throw asCniError(error);
      });
    },
    async check(call) {
      await check(call).catch((error: unknown) => {
        throw asCniError(error);
      });
    },
    async gc(call) {
      await gc(call).catch((error: unknown) => {
        throw asCniError(error);
      });
    },
  });
}

export { recoverVf };
