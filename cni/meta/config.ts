// The meta-plugin's own config: Multus's NetConf keys unchanged, plus netplumb's
// `podResourcesSocket`, `devinfoDir`, `sysfsRoot` and `daemonSocket` (reserved for the daemon shim).
// Validated once at the edge; unknown keys are kept (Multus configs carry extras) and reported.
import * as z from 'zod/mini';
import '../../lib/zod-locale.js';
import { CniError, CniErrorCode } from '../errors.js';
import { formatConfigPath } from '../../lib/config-path.js';
import type { JsonObject } from '../../lib/json.js';

export const META_DEFAULTS = {
  confDir: '/etc/cni/multus/net.d',
  cniDir: '/var/lib/cni/multus',
  binDir: '/opt/cni/bin',
  multusNamespace: 'kube-system',
  systemNamespaces: ['kube-system'],
  globalNamespaces: ['default'],
  podResourcesSocket: '/var/lib/kubelet/pod-resources/kubelet.sock',
  devinfoDir: '/var/run/k8s.cni.cncf.io/devinfo',
  sysfsRoot: '/sys',
  readinessTimeoutMs: 45_000,
} as const;

const KNOWN_KEYS = [
  'cniVersion',
  'cniVersions',
  'name',
  'type',
  'capabilities',
  'ipam',
  'dns',
  'args',
  'runtimeConfig',
  'prevResult',
  'kubeconfig',
  'clusterNetwork',
  'defaultNetworks',
  'delegates',
  'systemNamespaces',
  'multusNamespace',
  'namespaceIsolation',
  'globalNamespaces',
  'cniDir',
  'binDir',
  'confDir',
  'readinessindicatorfile',
  'logFile',
  'logLevel',
  'logToStderr',
  'logOptions',
  'retryDeleteOnError',
  'auxiliaryCNIChainName',
  'podResourcesSocket',
  'devinfoDir',
  'sysfsRoot',
  'daemonSocket',
  'cni.dev/valid-attachments',
  'cni.dev/attachments',
] as const;

const schema = z.object({
  cniVersion: z.optional(z.string()),
  name: z.optional(z.string()),
  type: z.optional(z.string()),
  kubeconfig: z.optional(z.string()),
  clusterNetwork: z.optional(z.string()),
  defaultNetworks: z.nullish(z.array(z.string())),
  delegates: z.nullish(z.array(z.record(z.string(), z.unknown()))),
  systemNamespaces: z.nullish(z.array(z.string())),
  multusNamespace: z.optional(z.string()),
  namespaceIsolation: z.optional(z.boolean()),
  globalNamespaces: z.optional(z.string()),
  cniDir: z.optional(z.string()),
  binDir: z.optional(z.string()),
  confDir: z.optional(z.string()),
  readinessindicatorfile: z.optional(z.string()),
  logFile: z.optional(z.string()),
  logLevel: z.optional(z.string()),
  logToStderr: z.optional(z.boolean()),
  retryDeleteOnError: z.optional(z.boolean()),
  auxiliaryCNIChainName: z.optional(z.string()),
  runtimeConfig: z.optional(z.record(z.string(), z.unknown())),
  podResourcesSocket: z.optional(z.string()),
  devinfoDir: z.optional(z.string()),
  sysfsRoot: z.optional(z.string()),
  daemonSocket: z.optional(z.string()),
});

export interface MetaConf {
  readonly cniVersion: string;
  readonly name: string;
  readonly kubeconfig: string | undefined;
  /** NAD name, conf name, directory or file; undefined when `delegates` is used. */
  readonly clusterNetwork: string | undefined;
  readonly defaultNetworks: readonly string[];
  /** Inline delegate confs (raw); first is the cluster network when clusterNetwork is unset. */
  readonly delegates: readonly JsonObject[];
  readonly systemNamespaces: readonly string[];
  readonly multusNamespace: string;
  readonly namespaceIsolation: boolean;
  readonly globalNamespaces: readonly string[];
  readonly cniDir: string;
  readonly binDir: string;
  readonly confDir: string;
  readonly readinessIndicatorFile: string | undefined;
  readonly logFile: string | undefined;
  readonly logLevel: string | undefined;
  readonly logToStderr: boolean;
  readonly retryDeleteOnError: boolean;
  readonly auxiliaryCNIChainName: string | undefined;
  /** The runtime's runtimeConfig (capability args for the cluster network). */
  readonly runtimeConfig: JsonObject;
  readonly podResourcesSocket: string;
  readonly devinfoDir: string;
  readonly sysfsRoot: string;
  readonly daemonSocket: string | undefined;
  /** Keys we do not know (kept, reported in the log). */
  readonly unknownKeys: readonly string[];
  readonly raw: JsonObject;
}

/** Every type problem of a meta-plugin config as `path: message` (the daemon checks its --daemon-config with it). */
export function metaConfProblems(raw: JsonObject): string[] {
  const p = schema.safeParse(raw);
  return p.success ? [] : p.error.issues.map((i) => `${formatConfigPath(i.path)}: ${i.message}`);
}

/**
 * Multus's early `delegates` forms: a delegate without `name` gets the config's name (Multus accepts
 * them; libcni needs one), and the one delegate marked `"masterplugin": true` becomes the cluster
 * network (first: it gets CNI_IFNAME and its result is returned). Two masters are refused.
 */
function normalizeDelegates(delegates: readonly JsonObject[], confName: string): JsonObject[] {
  const named = delegates.map((d) =>
    typeof d['name'] === 'string' && d['name'] !== '' ? d : { ...d, name: confName },
  );
  const masters = named.flatMap((d, i) => (d['masterplugin'] === true ? [i] : []));
  if (masters.length > 1) {
    throw new CniError(
      CniErrorCode.InvalidNetworkConfig,
      `netplumb config: delegates[${masters.join('], delegates[')}] are all "masterplugin": mark exactly one (the cluster network)`,
    );
  }
  const [master] = masters;
  if (master === undefined || master === 0) return named;
  return [named[master] as JsonObject, ...named.filter((_, i) => i !== master)];
}

/** Validates the meta-plugin config; errors name the key (code 7). */
export function parseMetaConf(raw: JsonObject): MetaConf {
  const p = schema.safeParse(raw);
  if (!p.success) {
    const msg = p.error.issues.map((i) => `${formatConfigPath(i.path)}: ${i.message}`).join('; ');
    throw new CniError(CniErrorCode.InvalidNetworkConfig, `netplumb config: ${msg}`);
  }
  const c = p.data;
  const delegates = normalizeDelegates((c.delegates ?? []) as JsonObject[], c.name ?? 'netplumb-cni-network');
  if ((c.clusterNetwork ?? '') === '' && delegates.length === 0) {
    throw new CniError(
      CniErrorCode.InvalidNetworkConfig,
      'netplumb config: at least one delegate/clusterNetwork must be specified (set "clusterNetwork" to a NAD name, conf name, directory or file, or give "delegates")',
    );
  }
  const known: readonly string[] = KNOWN_KEYS;
  return {
    cniVersion: c.cniVersion ?? '0.1.0',
    name: c.name ?? 'netplumb-cni-network',
    kubeconfig: c.kubeconfig === '' ? undefined : c.kubeconfig,
    clusterNetwork: c.clusterNetwork === '' ? undefined : c.clusterNetwork,
    defaultNetworks: c.defaultNetworks ?? [],
    delegates,
    systemNamespaces: c.systemNamespaces ?? META_DEFAULTS.systemNamespaces,
    multusNamespace: c.multusNamespace ?? META_DEFAULTS.multusNamespace,
    namespaceIsolation: c.namespaceIsolation ?? false,
    globalNamespaces:
      c.globalNamespaces === undefined
        ? META_DEFAULTS.globalNamespaces
        : c.globalNamespaces
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s !== ''),
    cniDir: c.cniDir ?? META_DEFAULTS.cniDir,
    binDir: c.binDir ?? META_DEFAULTS.binDir,
    confDir: c.confDir ?? META_DEFAULTS.confDir,
    readinessIndicatorFile: c.readinessindicatorfile === '' ? undefined : c.readinessindicatorfile,
    logFile: c.logFile,
    logLevel: c.logLevel,
    logToStderr: c.logToStderr ?? true,
    retryDeleteOnError: c.retryDeleteOnError ?? false,
    auxiliaryCNIChainName: c.auxiliaryCNIChainName,
    runtimeConfig: (c.runtimeConfig ?? {}) as JsonObject,
    podResourcesSocket: c.podResourcesSocket ?? META_DEFAULTS.podResourcesSocket,
    devinfoDir: c.devinfoDir ?? META_DEFAULTS.devinfoDir,
    sysfsRoot: c.sysfsRoot ?? META_DEFAULTS.sysfsRoot,
    daemonSocket: c.daemonSocket,
    unknownKeys: Object.keys(raw).filter((k) => !known.includes(k)),
    raw,
  };
}
