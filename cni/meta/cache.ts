// The DEL cache: `<cniDir>/<containerID>`, everything DEL needs when the pod, the NADs or the API
// server are gone. Written atomically (temp + rename) before the first delegate runs, and again
// after each delegate's ADD (to record its result, the prevResult for its DEL): those writes are
// coalesced off the delegates' path (CacheWriter), the last one is on disk before ADD answers.
import { formatIssues } from '../../lib/config-path.js';
import { readFileSync, rmSync } from 'node:fs';
import { readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod/mini';
import '../../lib/zod-locale.js';
import { CniError, CniErrorCode } from '../errors.js';
import type { JsonObject } from '../../lib/json.js';
import { writeFileAtomicSync } from '../../lib/atomic-file.js';

export const CACHE_KIND = 'netplumbCacheV1';

export interface CachedAttachment {
  /** `ns/name` or conf name. */
  readonly name: string;
  readonly ifname: string;
  /** The cluster network (the attachment whose result the runtime gets). */
  readonly isDefault: boolean;
  /** Raw conf/conflist as sent to the delegates (after injection). */
  readonly config: JsonObject;
  readonly capabilityArgs: JsonObject;
  readonly cniArgs: readonly (readonly [string, string])[];
  readonly resourceName?: string;
  readonly deviceId?: string;
  readonly devinfoFile?: string;
  /** Set once the delegate's ADD succeeded (in the network's cniVersion format). */
  readonly result?: JsonObject;
}

export interface MetaCache {
  readonly kind: typeof CACHE_KIND;
  readonly containerId: string;
  readonly netns: string;
  readonly podNamespace: string;
  readonly podName: string;
  readonly podUid: string;
  readonly attachments: readonly CachedAttachment[];
}

// mini's custom() types the check's argument as the output type, but it gets the raw input.
const json = z.custom<JsonObject>((v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v));

const schema = z.object({
  kind: z.literal(CACHE_KIND),
  containerId: z.string(),
  netns: z.string(),
  podNamespace: z.string(),
  podName: z.string(),
  podUid: z.string(),
  attachments: z.array(
    z.object({
      name: z.string(),
      ifname: z.string(),
      isDefault: z.boolean(),
      config: json,
      capabilityArgs: json,
      cniArgs: z.array(z.tuple([z.string(), z.string()])),
      resourceName: z.optional(z.string()),
      deviceId: z.optional(z.string()),
      devinfoFile: z.optional(z.string()),
      result: z.optional(json),
    }),
  ),
});

export function cachePath(cniDir: string, containerId: string): string {
  return path.join(cniDir, containerId);
}

export function writeCache(cniDir: string, cache: MetaCache): Promise<void> {
  const file = cachePath(cniDir, cache.containerId);
  try {
    // Blocking calls: a cache is a few KB into the page cache, written five times per ADD in bench
    // cni-pod, and the async calls' threadpool hops cost ~1 ms of CPU per write against ~0.2 ms.
    // The directory is made only when it is missing: not once per write on the ADD path.
    writeFileAtomicSync(file, JSON.stringify(cache), { mode: 0o600, createDir: true, dirMode: 0o700 });
    return Promise.resolve();
  } catch (err) {
    return Promise.reject(
      new CniError(CniErrorCode.IoFailure, `cannot write DEL cache ${file}: ${(err as Error).message}`, {
        cause: err,
      }),
    );
  }
}

/**
 * Coalesced DEL-cache writes for one ADD: `record` keeps the newest state and writes it in the
 * background (one write in flight, the newest waiting; older waiting states are dropped), so the
 * delegates do not wait for the disk. `flush` waits until the newest recorded state is on disk and
 * rejects with the first write error. The write before the first delegate is not one of these:
 * it is awaited (writeCache), so a crash at any point leaves a cache DEL can clean up from.
 */
export interface CacheWriter {
  record(cache: MetaCache): void;
  flush(): Promise<void>;
}

export function createCacheWriter(cniDir: string): CacheWriter {
  let next: MetaCache | undefined;
  let running: Promise<void> | undefined;
  let failure: unknown;
  const drain = async (): Promise<void> => {
    while (next !== undefined) {
      const c = next;
      next = undefined;
      await writeCache(cniDir, c).catch((err: unknown) => {
        failure ??= err;
      });
    }
    running = undefined;
  };
  return {
    record(cache) {
      next = cache;
      // On the next loop turn: the writes are blocking calls, and the ADD starts its next delegate
      // (a request to the spawner, in this turn's microtasks) before the disk holds it up.
      running ??= new Promise<void>((resolve) => setImmediate(resolve)).then(drain);
    },
    async flush() {
      while (running !== undefined) await running;
      if (failure !== undefined) throw failure as Error;
    },
  };
}

export type CacheRead =
  | { readonly state: 'missing' }
  | { readonly state: 'ok'; readonly cache: MetaCache; readonly origin: 'netplumb' | 'multus' }
  | { readonly state: 'corrupt'; readonly problem: string; readonly text: string };

// Multus's scratch cache (same path, `<cniDir>/<containerID>`): a JSON array of DelegateNetConf
// whose `Bytes` is the raw delegate conf (base64). Read so that pods attached by Multus before a
// switch to netplumb are still torn down (delegates DEL'd, IPs released).
const multusSchema = z.array(
  z.object({
    Bytes: z.string(),
    Name: z.optional(z.string()),
    ifnameRequest: z.optional(z.string()),
    deviceID: z.optional(z.string()),
    resourceName: z.optional(z.string()),
  }),
);

// libcni's result cache `<cniDir>/results/<network>-<containerID>-<ifname>` (Multus runs libcni with
// cacheDir = cniDir): the ADD result (prevResult for DEL) and the capability args.
const libcniCacheSchema = z.object({
  result: z.optional(json),
  capabilityArgs: z.optional(json),
});

async function readLibcniCache(cniDir: string, network: string, containerId: string, ifname: string) {
  try {
    const text = await readFile(path.join(cniDir, 'results', `${network}-${containerId}-${ifname}`), 'utf8');
    const p = libcniCacheSchema.safeParse(JSON.parse(text));
    return p.success ? p.data : undefined;
  } catch {
    return undefined;
  }
}

async function fromMultus(
  cniDir: string,
  containerId: string,
  runtimeIfname: string,
  entries: z.infer<typeof multusSchema>,
): Promise<MetaCache | string> {
  const attachments: CachedAttachment[] = [];
  for (const [i, d] of entries.entries()) {
    let config: unknown;
    try {
      config = JSON.parse(Buffer.from(d.Bytes, 'base64').toString('utf8'));
    } catch (err) {
      return `Multus cache entry ${i}: Bytes is not base64 JSON (${(err as Error).message})`;
    }
    if (typeof config !== 'object' || config === null || Array.isArray(config))
      return `Multus cache entry ${i}: not a conf`;
    const conf = config as JsonObject;
    const name = typeof conf['name'] === 'string' ? conf['name'] : (d.Name ?? `delegate-${i}`);
    const requested = d.ifnameRequest ?? '';
    const ifname = i === 0 ? runtimeIfname : requested !== '' ? requested : `net${i}`;
    const libcni = await readLibcniCache(cniDir, name, containerId, ifname);
    attachments.push({
      name: d.Name ?? name,
      ifname,
      isDefault: i === 0,
      config: conf,
      capabilityArgs: libcni?.capabilityArgs ?? {},
      cniArgs: [],
      ...(d.resourceName !== undefined && d.resourceName !== '' && { resourceName: d.resourceName }),
      ...(d.deviceID !== undefined && d.deviceID !== '' && { deviceId: d.deviceID }),
      ...(libcni?.result !== undefined && { result: libcni.result }),
    });
  }
  return { kind: CACHE_KIND, containerId, netns: '', podNamespace: '', podName: '', podUid: '', attachments };
}

/** Reads our cache, or Multus's (`runtimeIfname` names its first delegate's interface). */
export async function readCache(
  cniDir: string,
  containerId: string,
  runtimeIfname: string,
): Promise<CacheRead> {
  let text: string;
  try {
    // Blocking, like writeCache: one open that fails (ADD) or a few KB from the page cache (DEL),
    // where readFile's open/fstat/read/close threadpool hops cost ~4x the CPU and 4 loop turns.
    text = readFileSync(cachePath(cniDir, containerId), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' };
    throw new CniError(CniErrorCode.IoFailure, `cannot read DEL cache: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { state: 'corrupt', problem: `invalid JSON: ${(err as Error).message}`, text };
  }
  if (Array.isArray(parsed)) {
    const m = multusSchema.safeParse(parsed);
    if (!m.success)
      return {
        state: 'corrupt',
        problem: `neither a netplumb nor a Multus cache: ${m.error.issues[0]?.message ?? ''}`,
        text,
      };
    const cache = await fromMultus(cniDir, containerId, runtimeIfname, m.data);
    return typeof cache === 'string'
      ? { state: 'corrupt', problem: cache, text }
      : { state: 'ok', cache, origin: 'multus' };
  }
  const p = schema.safeParse(parsed);
  if (!p.success)
    return {
      state: 'corrupt',
      problem: formatIssues(p.error.issues),
      text,
    };
  return { state: 'ok', cache: p.data as MetaCache, origin: 'netplumb' };
}

export function removeCache(cniDir: string, containerId: string): Promise<void> {
  // One unlink, blocking (see readCache); the Promise keeps the callers' contract.
  return new Promise<void>((resolve) => {
    rmSync(cachePath(cniDir, containerId), { force: true });
    resolve();
  });
}

/** Keeps an unreadable cache for inspection instead of deleting it. */
export async function quarantineCache(cniDir: string, containerId: string): Promise<string> {
  const file = cachePath(cniDir, containerId);
  const to = `${file}.corrupt`;
  await rename(file, to);
  return to;
}
