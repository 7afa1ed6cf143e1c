// The cluster tests' harness: a small API over the real single-node cluster that `hack/cluster up`
// started (see README "Real cluster tests"). Tests talk to it with kubectl only, as a user would.
//
//   const env = clusterEnv();                         // kubeconfig, node name, kubelet flavour, dirs
//   await kubectl(['get', 'pods', '-A']);             // throws KubectlError on a non-zero exit
//   const pod = await kubectlJson<Pod>(['-n', 'default', 'get', 'pod', 'x']);
//   await waitFor('pod x Running', async () => (await podPhase('default', 'x')) === 'Running');
//   await clusterCtl('restart', 'kubelet');           // hack/cluster stop|start|restart <component>
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface ClusterEnv {
  readonly kubeconfig: string;
  /** The Node's name (the kubelet's --hostname-override). */
  readonly node: string;
  /** `stock` v1.20.2, or `backport` (v1.20.2 + kubernetes/kubernetes#112597). */
  readonly kubelet: 'stock' | 'backport';
  /** hack/cluster's state directory. */
  readonly dir: string;
  readonly containerdSocket: string;
  /** The netplumb image archive that was imported. */
  readonly image: string;
}

export class ClusterNotUpError extends Error {
  override readonly name = 'ClusterNotUpError';
  readonly code = 'CLUSTER_NOT_UP';
}

export class KubectlError extends Error {
  override readonly name = 'KubectlError';
  readonly code = 'KUBECTL_FAILED';
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(message);
  }
}

export function clusterDir(): string {
  return process.env.NETPLUMB_CLUSTER_DIR ?? '/var/lib/netplumb-cluster';
}

/** The running cluster (hack/cluster up writes <dir>/env.json); throws ClusterNotUpError if none. */
export function clusterEnv(): ClusterEnv {
  const file = path.join(clusterDir(), 'env.json');
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ClusterEnv;
  } catch (cause) {
    throw new ClusterNotUpError(
      `no cluster: ${file} is missing; run hack/cluster up (or npm run test:cluster)`,
      {
        cause,
      },
    );
  }
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Written to stdin (e.g. a manifest for `apply -f -`). */
  readonly input?: string;
  readonly timeoutMs?: number;
}

function run(
  file: string,
  args: readonly string[],
  o: RunOptions & { env?: NodeJS.ProcessEnv },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      [...args],
      { timeout: o.timeoutMs ?? 60_000, maxBuffer: 64 * 2 ** 20, env: o.env ?? process.env },
      (err, stdout, stderr) => {
        if (err === null) {
          resolve({ stdout, stderr });
          return;
        }
        const code = typeof err.code === 'number' ? err.code : null;
        reject(
          new KubectlError(
            `${path.basename(file)} ${args.join(' ')}: ${stderr.trim() || err.message}`,
            code,
            stderr,
          ),
        );
      },
    );
    if (o.input !== undefined) child.stdin?.end(o.input);
  });
}

/** Runs kubectl against the cluster; rejects with KubectlError (message = its stderr) on failure. */
export function kubectl(args: readonly string[], o: RunOptions = {}): Promise<RunResult> {
  return run('kubectl', ['--kubeconfig', clusterEnv().kubeconfig, ...args], o);
}

/** kubectl … -o json, parsed. */
export async function kubectlJson<T>(args: readonly string[], o: RunOptions = {}): Promise<T> {
  const { stdout } = await kubectl([...args, '-o', 'json'], o);
  return JSON.parse(stdout) as T;
}

/** hack/cluster <args> (e.g. `restart kubelet`, `stop kube-apiserver`). */
export function clusterCtl(...args: readonly string[]): Promise<RunResult> {
  return run(path.join(ROOT, 'hack', 'cluster'), args, { timeoutMs: 180_000 });
}

export interface WaitOptions {
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
}

/**
 * Polls `probe` until it returns a value other than undefined/false (and returns it). On timeout it
 * throws an error naming `what` and the probe's last error or value.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  o: WaitOptions = {},
): Promise<T> {
  const deadline = Date.now() + (o.timeoutMs ?? 90_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out waiting for ${what} (last: ${detail})`);
    }
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 500));
  }
}

/** Runs a command on the node itself (the test process is on the node): for leftover checks. */
export function onNode(file: string, args: readonly string[], o: RunOptions = {}): Promise<RunResult> {
  return run(file, args, o);
}
