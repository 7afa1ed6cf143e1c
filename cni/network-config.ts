// Network configurations (a single `.conf` or a `.conflist`) kept as raw JSON: only the keys a runtime
// owns (`cniVersion`, `name`, `runtimeConfig`, `prevResult`, `args`) are ever written.
import { CniError, CniErrorCode } from './errors.js';
import { isJsonObject } from '../lib/json.js';
import type { JsonObject, JsonValue } from '../lib/json.js';
import { DEFAULT_CONFIG_VERSION } from './version.js';

/** A network as a chain of plugins (a single conf becomes a chain of one, as libcni does). */
export interface NetworkConfigList {
  readonly name: string;
  readonly cniVersion: string;
  /** 1.1.0 `cniVersions`, when present. */
  readonly cniVersions: readonly string[];
  readonly disableCheck: boolean;
  readonly disableGC: boolean;
  /** Each plugin's raw config (without the injected keys). */
  readonly plugins: readonly JsonObject[];
  /** True when it came from a conflist (has `plugins`). */
  readonly isList: boolean;
  /** The raw document it came from. */
  readonly raw: JsonObject;
}

function bad(where: string, msg: string): CniError {
  return new CniError(CniErrorCode.InvalidNetworkConfig, `${where}: ${msg}`);
}

/** Parses JSON text into an object or throws CniError 6 naming `where`. */
export function parseJsonObject(text: string, where: string): JsonObject {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new CniError(CniErrorCode.DecodingFailure, `${where}: invalid JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!isJsonObject(v)) throw new CniError(CniErrorCode.DecodingFailure, `${where}: expected a JSON object`);
  return v;
}

function str(o: JsonObject, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw bad(where, `"${key}" must be a string, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Reads a conf or conflist. `where` names the source in errors (a file path, `NAD ns/name`).
 * `fallbackName` is injected when the document has no `name` (NAD rule).
 */
export function parseNetworkConfig(doc: JsonObject, where: string, fallbackName?: string): NetworkConfigList {
  const name = str(doc, 'name', where) ?? fallbackName;
  if (name === undefined || name === '') throw bad(where, 'missing "name" (give the network a name)');
  const cniVersion = str(doc, 'cniVersion', where) ?? DEFAULT_CONFIG_VERSION;
  const versionsRaw = doc['cniVersions'];
  const cniVersions: string[] = [];
  if (versionsRaw !== undefined && versionsRaw !== null) {
    if (!Array.isArray(versionsRaw) || !versionsRaw.every((v) => typeof v === 'string')) {
      throw bad(where, '"cniVersions" must be a list of version strings');
    }
    cniVersions.push(...versionsRaw);
  }
  const pluginsRaw: JsonValue | undefined = doc['plugins'];
  if (pluginsRaw !== undefined) {
    if (!Array.isArray(pluginsRaw) || pluginsRaw.length === 0) {
      throw bad(where, '"plugins" must be a non-empty list of plugin configs');
    }
    const plugins = pluginsRaw.map((p, i) => {
      if (!isJsonObject(p)) throw bad(where, `plugins[${i}] must be an object`);
      const type = p['type'];
      if (typeof type !== 'string' || type === '') throw bad(where, `plugins[${i}] is missing "type"`);
      return p;
    });
    return {
      name,
      cniVersion,
      cniVersions,
      disableCheck: doc['disableCheck'] === true,
      disableGC: doc['disableGC'] === true,
      plugins,
      isList: true,
      raw: doc,
    };
  }
  const type = doc['type'];
  if (typeof type !== 'string' || type === '') {
    throw bad(where, 'missing "type" (a conf needs "type", a conflist needs "plugins")');
  }
  return {
    name,
    cniVersion,
    cniVersions,
    disableCheck: false,
    disableGC: false,
    plugins: [doc],
    isList: false,
    raw: doc,
  };
}

/** Plugin `type`, validated by parseNetworkConfig. */
export function pluginType(plugin: JsonObject): string {
  const t = plugin['type'];
  return typeof t === 'string' ? t : '';
}

/** The capability names a plugin declares (`"capabilities": {"ips": true}`). */
export function declaredCapabilities(plugin: JsonObject): Set<string> {
  const caps = plugin['capabilities'];
  const out = new Set<string>();
  if (isJsonObject(caps)) for (const [k, v] of Object.entries(caps)) if (v === true) out.add(k);
  return out;
}
