// The few Kubernetes object shapes the cluster tests read (kubectl -o json), and small readers.
import { kubectl, kubectlJson, waitFor } from './cluster.js';

export interface Pod {
  metadata: { name: string; namespace: string; uid: string; annotations?: Record<string, string> };
  spec: { nodeName?: string; containers: { name: string }[] };
  status: {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: {
      name: string;
      restartCount: number;
      ready: boolean;
      imageID: string;
      image: string;
    }[];
  };
}

export interface NetworkStatus {
  name: string;
  interface?: string;
  ips?: string[];
  mac?: string;
  default?: boolean;
  'device-info'?: { type: string; version: string; pci?: { 'pci-address': string } };
}

export interface IpAddr {
  ifname: string;
  address?: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

export interface KEvent {
  reason: string;
  message: string;
  involvedObject: { kind: string; name: string; uid?: string };
}

export const NETWORK_STATUS = 'k8s.v1.cni.cncf.io/network-status';

export function getPod(ns: string, name: string): Promise<Pod> {
  return kubectlJson<Pod>(['-n', ns, 'get', 'pod', name]);
}

export function isReady(p: Pod): boolean {
  return p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

export async function waitPodReady(ns: string, name: string, timeoutMs = 120_000): Promise<Pod> {
  return waitFor(
    `pod ${ns}/${name} Ready`,
    async () => {
      const p = await getPod(ns, name);
      return isReady(p) ? p : undefined;
    },
    { timeoutMs },
  );
}

export function networkStatus(p: Pod): NetworkStatus[] {
  const raw = p.metadata.annotations?.[NETWORK_STATUS];
  return raw === undefined ? [] : (JSON.parse(raw) as NetworkStatus[]);
}

/** `ip -j addr` inside the pod's first container. */
export async function podAddrs(ns: string, name: string): Promise<IpAddr[]> {
  const { stdout } = await kubectl(['-n', ns, 'exec', name, '--', 'ip', '-j', 'addr']);
  return JSON.parse(stdout) as IpAddr[];
}

/** The container's environment (`env` inside it) as a map. */
export async function podEnv(ns: string, name: string): Promise<Map<string, string>> {
  const { stdout } = await kubectl(['-n', ns, 'exec', name, '--', 'env']);
  const env = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) env.set(line.slice(0, i), line.slice(i + 1));
  }
  return env;
}

export async function podEvents(ns: string, name: string, reason: string): Promise<KEvent[]> {
  const list = await kubectlJson<{ items: KEvent[] }>([
    '-n',
    ns,
    'get',
    'events',
    '--field-selector',
    `involvedObject.kind=Pod,involvedObject.name=${name},reason=${reason}`,
  ]);
  return list.items;
}

export async function allocatable(node: string): Promise<Record<string, string>> {
  const n = await kubectlJson<{ status: { allocatable: Record<string, string> } }>(['get', 'node', node]);
  return n.status.allocatable;
}
