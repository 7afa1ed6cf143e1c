// The admission webhook on the real cluster: the real kube-apiserver calls `netplumb webhook` over
// TLS (the certs Job made the CA and serving certificate and set the caBundle), and every pod of
// deployments/examples, applied WITHOUT its hand-written device requests, is stored with the
// requests/limits its networks need, is scheduled and runs with its VF. netplumb.test.ts runs these
// checks on its own install (describeWebhook), before it applies the examples themselves: the pods
// made here are renamed (-wh) and deleted again, leaving the node as it was.
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { kubectl, kubectlJson, waitFor } from './support/cluster.js';
import { EXAMPLES, NS, rollout } from './support/install.js';
import { getPod, networkStatus, podEnv, waitPodReady } from './support/k8s.js';
import { nodeState, waitNodeState } from './support/node.js';
import type { NodeState, TestNode } from './support/node.js';

const NETWORKS = 'k8s.v1.cni.cncf.io/networks';
const RESOURCE_NAME = 'k8s.v1.cni.cncf.io/resourceName';
const INJECTED = 'netplumb.io/injected-resources';
const SUFFIX = '-wh';

interface Container {
  name: string;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  [k: string]: unknown;
}
interface Obj {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string>; [k: string]: unknown };
  spec: { containers?: Container[]; [k: string]: unknown };
  [k: string]: unknown;
}

let nads: Obj[] = [];
let pods: Obj[] = [];

/** The objects of the examples overlay (`kubectl kustomize`). */
async function examples(): Promise<Obj[]> {
  const { stdout } = await kubectl(['kustomize', EXAMPLES]);
  return parseAllDocuments(stdout).map((d) => d.toJS() as Obj);
}

/** The pod without any hand-written resources, renamed so it does not meet netplumb.test.ts's. */
function withoutResources(pod: Obj): Obj {
  const containers = (pod.spec.containers ?? []).map((c) => {
    const copy: Container = { ...c };
    delete copy.resources;
    return copy;
  });
  return {
    ...pod,
    metadata: { ...pod.metadata, name: `${pod.metadata.name}${SUFFIX}` },
    spec: { ...pod.spec, terminationGracePeriodSeconds: 1, containers },
  };
}

/** What the annotation implies: one of each NAD's resourceName per attachment (the same NAD twice = 2). */
function expectedResources(pod: Obj): Record<string, string> {
  const ann = pod.metadata.annotations?.[NETWORKS] ?? '';
  const refs = /^\s*\[/.test(ann)
    ? (JSON.parse(ann) as { name: string }[]).map((e) => e.name)
    : ann.split(',').map((s) => (s.trim().split('@')[0] ?? '').split('/').pop() ?? '');
  const out: Record<string, number> = {};
  for (const ref of refs) {
    const res = nads.find((n) => n.metadata.name === ref)?.metadata.annotations?.[RESOURCE_NAME];
    if (res !== undefined) out[res] = (out[res] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, String(v)]));
}

/**
 * The webhook answers the API server: a server-side dry run of a pod that needs a VF comes back
 * with the request. (failurePolicy is Ignore: without this wait, pods made too early would be
 * admitted unchanged.)
 */
async function webhookServing(): Promise<void> {
  const sriov = pods.find((p) => Object.keys(expectedResources(p)).length > 0);
  if (sriov === undefined) throw new Error('no example pod needs a device');
  const probe = withoutResources(sriov);
  probe.metadata.name = 'webhook-probe';
  await waitFor(
    'the API server getting device requests from the webhook',
    async () => {
      const { stdout } = await kubectl(
        ['-n', 'default', 'create', '--dry-run=server', '-o', 'json', '-f', '-'],
        {
          input: JSON.stringify(probe),
        },
      );
      const made = JSON.parse(stdout) as Obj;
      return made.spec.containers?.[0]?.resources?.limits !== undefined;
    },
    { timeoutMs: 180_000, intervalMs: 2_000 },
  );
}

/**
 * The webhook's checks on netplumb's install (already applied, both DaemonSets rolled out), on the
 * test node `testNode()` gives: they wait for the certs Job and the webhook themselves.
 */
export function describeWebhook(testNode: () => TestNode): void {
  let before: NodeState;

  describe('the admission webhook on a real cluster', () => {
    beforeAll(async () => {
      before = await nodeState(testNode());
      await kubectl(
        ['-n', NS, 'wait', '--for=condition=complete', 'job/netplumb-webhook-certs', '--timeout=180s'],
        {
          timeoutMs: 190_000,
        },
      );
      await rollout('deployment', 'netplumb-webhook');
      const all = await examples();
      nads = all.filter((o) => o.kind === 'NetworkAttachmentDefinition');
      pods = all.filter((o) => o.kind === 'Pod');
      await kubectl(['-n', 'default', 'apply', '-f', '-'], {
        input: JSON.stringify({ kind: 'List', apiVersion: 'v1', items: nads }),
      });
      await webhookServing();
    }, 600_000);

    it('the certs Job set the caBundle the API server verifies the webhook with', async () => {
      const cfg = await kubectlJson<{ webhooks: { clientConfig: { caBundle?: string } }[] }>([
        'get',
        'mutatingwebhookconfiguration',
        'netplumb-webhook',
      ]);
      const pem = Buffer.from(cfg.webhooks[0]?.clientConfig.caBundle ?? '', 'base64').toString();
      expect(pem).toContain('BEGIN CERTIFICATE');
    });

    it('every example pod applied without resources gets them from the webhook, is scheduled and runs (the VF pod with its VF)', async () => {
      const node = testNode();
      expect(pods.length).toBeGreaterThan(0);
      const made = pods.map(withoutResources);
      for (const p of made) expect(p.spec.containers?.every((c) => c.resources === undefined)).toBe(true);
      await kubectl(['-n', 'default', 'apply', '-f', '-'], {
        input: JSON.stringify({ kind: 'List', apiVersion: 'v1', items: made }),
      });
      let withDevice = 0;
      for (const [i, p] of made.entries()) {
        const want = expectedResources(pods[i]!);
        const stored = await kubectlJson<Obj>(['-n', 'default', 'get', 'pod', p.metadata.name]);
        const res = stored.spec.containers?.[0]?.resources ?? {};
        if (Object.keys(want).length === 0) {
          expect(res.limits ?? {}, `${p.metadata.name}: nothing to add`).toEqual({});
        } else {
          withDevice++;
          expect(res.requests, `${p.metadata.name}: requests the API server stored`).toMatchObject(want);
          expect(res.limits, `${p.metadata.name}: limits the API server stored`).toMatchObject(want);
          expect(stored.metadata.annotations?.[INJECTED], `${p.metadata.name}: ${INJECTED}`).toBeDefined();
        }
        const pod = await waitPodReady('default', p.metadata.name, 180_000);
        expect(pod.spec.nodeName).toBeDefined();
        if (Object.keys(want).length === 0) continue;
        // The VF the kubelet allocated (PCIDEVICE_*) is the one the CNI attached (device-info).
        const envs = await podEnv('default', p.metadata.name);
        const pcis = [...envs.entries()].filter(([k]) => /^PCIDEVICE_/.test(k) && !k.endsWith('_INFO'));
        expect(pcis.length, `${p.metadata.name}: PCIDEVICE_* env`).toBeGreaterThan(0);
        const attached = networkStatus(await getPod('default', p.metadata.name))
          .map((s) => s['device-info']?.pci?.['pci-address'])
          .filter((a): a is string => a !== undefined);
        expect(attached.length).toBeGreaterThan(0);
        for (const a of attached)
          expect(pcis.map(([, v]) => v).join(','), `${p.metadata.name}: VF ${a}`).toContain(a);
        expect(node.netdevVfs.map((v) => v.address)).toEqual(expect.arrayContaining(attached));
      }
      expect(withDevice, 'at least one example pod needs a device').toBeGreaterThan(0);
    }, 600_000);

    // They go at once (grace 1 s), and their DEL is done before the examples' pods (the same static
    // IP and MAC) are made; the NADs stay for the examples.
    it("deleting the webhook's pods leaves the node as it was before them", async () => {
      await kubectl(
        [
          '-n',
          'default',
          'delete',
          'pod',
          ...pods.map((p) => `${p.metadata.name}${SUFFIX}`),
          '--ignore-not-found',
          '--wait=true',
          '--timeout=120s',
        ],
        { timeoutMs: 130_000 },
      );
      await waitNodeState(testNode(), "node as before the webhook's pods", before);
    }, 300_000);
  });
}
