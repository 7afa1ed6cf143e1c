// 00-netplumb.conflist: the node's CNI config that routes every pod through netplumb. Generated
// from the node's primary network (the alphabetically first other config in the conf dir, as the
// runtime itself would pick), carrying its cniVersion and capabilities, so the runtime keeps
// passing portMappings/bandwidth/... to the cluster network through us.
import { NetplumbError } from '../../lib/errors.js';
import type { NetplumbErrorOptions } from '../../lib/errors.js';
import { isJsonObject } from '../../lib/json.js';
import type { JsonObject, JsonValue } from '../../lib/json.js';
import { DAEMON_SOCKET_KEY } from './wire.js';

export const GENERATED_CONF = '00-netplumb.conflist';
export const NETWORK_NAME = 'netplumb-cni-network';
export const SHIM_TYPE = 'netplumb-shim';
const CONF_EXTENSIONS = ['.conf', '.conflist', '.json'];

export class ConfGenError extends NetplumbError {
  override readonly name = 'ConfGenError';
  constructor(message: string, options?: NetplumbErrorOptions) {
    super('CONF_GEN_FAILED', message, options);
  }
}

/** The primary config among the conf dir's file names: ours and hidden/temp files excluded. */
export function pickPrimary(files: readonly string[]): string | undefined {
  return files
    .filter((f) => CONF_EXTENSIONS.some((e) => f.endsWith(e)))
    .filter((f) => !f.startsWith('.') && !f.startsWith('00-netplumb') && !f.startsWith('00-multus'))
    .sort()[0];
}

function capabilitiesOf(conf: JsonObject): JsonObject {
  const out: JsonObject = {};
  const plugins = Array.isArray(conf['plugins']) ? conf['plugins'] : [conf];
  for (const p of plugins) {
    if (!isJsonObject(p) || !isJsonObject(p['capabilities'])) continue;
    for (const [k, v] of Object.entries(p['capabilities'])) if (v === true) out[k] = true;
  }
  return out;
}

export interface GenerateOptions {
  /** Path of the primary config as the runtime (and the daemon) see it. */
  readonly primaryPath: string;
  readonly primaryText: string;
  readonly socketPath: string;
  /** Multus keys from the daemon config (confDir, cniDir, namespaces, ...), copied as they are. */
  readonly extra?: JsonObject;
}

/**
 * Builds the conflist. Throws ConfGenError naming the file when the primary is not a CNI config:
 * an unreadable primary must never produce an empty or half config (Multus #1155).
 */
export function generateConflist(opts: GenerateOptions): JsonObject {
  let primary: unknown;
  try {
    primary = JSON.parse(opts.primaryText);
  } catch (err) {
    throw new ConfGenError(
      `${opts.primaryPath} is not valid JSON; fix it or remove it from the CNI conf dir`,
      {
        cause: err,
      },
    );
  }
  if (!isJsonObject(primary) || typeof primary['name'] !== 'string') {
    throw new ConfGenError(`${opts.primaryPath} is not a CNI network config (no "name")`);
  }
  if (typeof primary['type'] !== 'string' && !Array.isArray(primary['plugins'])) {
    throw new ConfGenError(`${opts.primaryPath} has neither "type" nor "plugins"`);
  }
  const cniVersion = typeof primary['cniVersion'] === 'string' ? primary['cniVersion'] : '1.0.0';
  const extra: JsonObject = { ...(opts.extra ?? {}) };
  // Readiness is the daemon's job: the shim path must not poll for it on every call.
  delete extra['readinessindicatorfile'];
  const plugin: Record<string, JsonValue> = {
    ...extra,
    type: SHIM_TYPE,
    [DAEMON_SOCKET_KEY]: opts.socketPath,
    clusterNetwork: opts.primaryPath,
  };
  const caps = capabilitiesOf(primary);
  if (Object.keys(caps).length > 0) plugin['capabilities'] = caps;
  return { cniVersion, name: NETWORK_NAME, plugins: [plugin] };
}
