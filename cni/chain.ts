// Runs a network (conf or conflist) as a chain of plugins, as libcni does: ADD in order with each
// plugin's result as the next one's prevResult, DEL in reverse (prevResult = the cached ADD result
// for 0.4.0+), CHECK in order, STATUS and GC on every plugin. The runtime injects `cniVersion`,
// `name`, `runtimeConfig` (only the capability args a plugin declares) and `prevResult`.
import { CniError, CniErrorCode } from './errors.js';
import { formatCniArgs } from './env.js';
import type { CniArg, CniCommand } from './env.js';
import { checkPluginOutput } from './exec.js';
import type { PluginRunner } from './exec.js';
import { isJsonObject } from '../lib/json.js';
import type { JsonObject, JsonValue } from '../lib/json.js';
import { declaredCapabilities, parseJsonObject, pluginType } from './network-config.js';
import type { NetworkConfigList } from './network-config.js';
import { decodeResult } from './result.js';
import type { Attachment } from './skel.js';
import { versionAtLeast } from './version.js';

/** What the runtime knows about one attachment (libcni RuntimeConf). */
export interface RuntimeConf {
  readonly containerId: string;
  readonly netns: string | undefined;
  readonly ifname: string;
  readonly args: readonly CniArg[];
  /** Capability args (`ips`, `mac`, `portMappings`, `deviceID`, ...): forwarded only when declared. */
  readonly capabilityArgs: Readonly<Record<string, JsonValue>>;
  /** CNI_PATH for the plugins. */
  readonly path: readonly string[];
}

/** The config one plugin of the chain receives on stdin. Pure. */
export function buildPluginConfig(
  list: NetworkConfigList,
  plugin: JsonObject,
  capabilityArgs: Readonly<Record<string, JsonValue>>,
  prevResult?: JsonObject,
): JsonObject {
  const out: JsonObject = { ...plugin, cniVersion: list.cniVersion, name: list.name };
  const rc: JsonObject = {};
  for (const cap of declaredCapabilities(plugin)) {
    const v = capabilityArgs[cap];
    if (v !== undefined) rc[cap] = v;
  }
  if (Object.keys(rc).length > 0) {
    const existing = plugin['runtimeConfig'];
    out['runtimeConfig'] = isJsonObject(existing) ? { ...existing, ...rc } : rc;
  }
  if (prevResult !== undefined) out['prevResult'] = prevResult;
  else delete out['prevResult'];
  return out;
}

export function pluginEnv(
  command: CniCommand,
  rt: Pick<RuntimeConf, 'containerId' | 'netns' | 'ifname' | 'args' | 'path'> | undefined,
  path: readonly string[],
): Record<string, string> {
  const env: Record<string, string> = { CNI_COMMAND: command, CNI_PATH: path.join(':') };
  if (rt !== undefined) {
    env['CNI_CONTAINERID'] = rt.containerId;
    env['CNI_NETNS'] = rt.netns ?? '';
    env['CNI_IFNAME'] = rt.ifname;
    env['CNI_ARGS'] = formatCniArgs(rt.args);
  }
  return env;
}

export interface ChainRunner {
  /** Returns the last plugin's result, in the list's cniVersion wire format. */
  add(list: NetworkConfigList, rt: RuntimeConf): Promise<JsonObject>;
  /** Best effort: every plugin is asked even when one fails; failures are aggregated. */
  del(list: NetworkConfigList, rt: RuntimeConf, prevResult?: JsonObject): Promise<void>;
  check(list: NetworkConfigList, rt: RuntimeConf, prevResult: JsonObject): Promise<void>;
  status(list: NetworkConfigList, path: readonly string[]): Promise<void>;
  gc(list: NetworkConfigList, path: readonly string[], valid: readonly Attachment[]): Promise<void>;
}

function aggregate(errors: readonly CniError[]): CniError | undefined {
  const [first] = errors;
  if (first === undefined) return undefined;
  if (errors.length === 1) return first;
  return new CniError(first.code, errors.map((e) => e.message).join(' / '), { cause: errors });
}

export function createChainRunner(runner: PluginRunner): ChainRunner {
  async function call(
    command: CniCommand,
    plugin: JsonObject,
    env: Record<string, string>,
    conf: JsonObject,
  ) {
    const type = pluginType(plugin);
    const out = await runner.run(type, { env, stdin: JSON.stringify(conf) });
    return checkPluginOutput(type, out);
  }

  return {
    async add(list, rt) {
      const chains = versionAtLeast(list.cniVersion, '0.3.0');
      let prev: JsonObject | undefined;
      for (const plugin of list.plugins) {
        const conf = buildPluginConfig(list, plugin, rt.capabilityArgs, chains ? prev : undefined);
        const stdout = await call('ADD', plugin, pluginEnv('ADD', rt, rt.path), conf);
        const result = parseJsonObject(stdout, `result of plugin type="${pluginType(plugin)}"`);
        decodeResult(result, list.cniVersion); // reject garbage now, not in the next plugin
        prev = result;
      }
      if (prev === undefined)
        throw new CniError(CniErrorCode.InvalidNetworkConfig, `network "${list.name}" has no plugins`);
      return prev;
    },

    async del(list, rt, prevResult) {
      const withPrev = versionAtLeast(list.cniVersion, '0.4.0') ? prevResult : undefined;
      const errors: CniError[] = [];
      for (const plugin of [...list.plugins].reverse()) {
        try {
          await call(
            'DEL',
            plugin,
            pluginEnv('DEL', rt, rt.path),
            buildPluginConfig(list, plugin, rt.capabilityArgs, withPrev),
          );
        } catch (err) {
          errors.push(CniError.from(err));
        }
      }
      const err = aggregate(errors);
      if (err !== undefined) throw err;
    },

    async check(list, rt, prevResult) {
      if (!versionAtLeast(list.cniVersion, '0.4.0') || list.disableCheck) return;
      for (const plugin of list.plugins) {
        await call(
          'CHECK',
          plugin,
          pluginEnv('CHECK', rt, rt.path),
          buildPluginConfig(list, plugin, rt.capabilityArgs, prevResult),
        );
      }
    },

    async status(list, path) {
      if (!versionAtLeast(list.cniVersion, '1.1.0')) return;
      for (const plugin of list.plugins) {
        await call(
          'STATUS',
          plugin,
          pluginEnv('STATUS', undefined, path),
          buildPluginConfig(list, plugin, {}),
        );
      }
    },

    async gc(list, path, valid) {
      if (!versionAtLeast(list.cniVersion, '1.1.0') || list.disableGC) return;
      const attachments = valid.map((a) => ({ containerID: a.containerId, ifname: a.ifname }));
      const errors: CniError[] = [];
      for (const plugin of list.plugins) {
        const conf: JsonObject = {
          ...buildPluginConfig(list, plugin, {}),
          'cni.dev/valid-attachments': attachments,
          'cni.dev/attachments': attachments,
        };
        try {
          await call('GC', plugin, pluginEnv('GC', undefined, path), conf);
        } catch (err) {
          errors.push(CniError.from(err));
        }
      }
      const err = aggregate(errors);
      if (err !== undefined) throw err;
    },
  };
}
