import fc from 'fast-check';
import jsonpatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../lib/json.js';
import type { NadInfo } from '../cni/meta/kube.js';
import {
  AdmissionDenial,
  INJECTED_ANNOTATION,
  computeMutation,
  defaultNetworkOf,
  nadKey,
  networksOf,
} from './mutate.js';
import type { MutationOptions, NadLookup } from './mutate.js';
import { podView } from './pod.js';
import { PODNETINFO_PATH } from './downward-api.js';

const NETWORKS = 'k8s.v1.cni.cncf.io/networks';
const RESOURCE = 'k8s.v1.cni.cncf.io/resourceName';
const OPTS: MutationOptions = {
  downwardApi: false,
  namespaceIsolation: false,
  globalNamespaces: ['default'],
};

function nad(namespace: string, name: string, annotations: Record<string, string> = {}): NadInfo {
  return { namespace, name, config: '{}', annotations };
}

function podObject(
  annotations: Record<string, string>,
  containers: JsonObject[],
  spec: JsonObject = {},
): JsonObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'ns1', annotations },
    spec: { containers, ...spec },
  };
}

/** Runs the webhook's decision against `nads` and applies the patch with an independent RFC 6902 library. */
function admit(pod: JsonObject, nads: readonly NadInfo[], opts: MutationOptions = OPTS) {
  const view = podView(pod, 'ns1');
  const selections = networksOf(view, opts);
  const cluster = defaultNetworkOf(view, opts);
  const lookups = new Map<string, NadLookup>();
  for (const s of cluster === undefined ? selections : [...selections, cluster]) {
    const found = nads.find((n) => n.namespace === s.namespace && n.name === s.name);
    lookups.set(nadKey(s), found ? { kind: 'found', nad: found } : { kind: 'missing' });
  }
  const mutation = computeMutation(view, selections, lookups, opts, cluster);
  const patched = jsonpatch.applyPatch(structuredClone(pod), mutation.patch, true, false).newDocument;
  return { mutation, patched };
}

const containerAt = (pod: JsonObject, i: number) =>
  ((pod['spec'] as JsonObject)['containers'] as JsonObject[])[i] as JsonObject;
const resourcesOf = (c: JsonObject, section: 'requests' | 'limits') =>
  ((c['resources'] as JsonObject | undefined)?.[section] as Record<string, string> | undefined) ?? {};

describe('computeMutation', () => {
  it('adds requests and limits per attachment, escaping "/" in the patch path', () => {
    const pod = podObject({ [NETWORKS]: 'vf-a,vf-a@net2,other/vf-b' }, [
      { name: 'app', image: 'x', resources: { requests: { cpu: '1' } } },
    ]);
    const { mutation, patched } = admit(pod, [
      nad('ns1', 'vf-a', { [RESOURCE]: 'intel.com/pool_a' }),
      nad('other', 'vf-b', { [RESOURCE]: 'intel.com/pool_b' }),
    ]);
    expect(mutation.patch.map((p) => p.path)).toContain(
      '/spec/containers/0/resources/requests/intel.com~1pool_a',
    );
    const c = containerAt(patched, 0);
    expect(resourcesOf(c, 'requests')).toEqual({
      cpu: '1',
      'intel.com/pool_a': '2',
      'intel.com/pool_b': '1',
    });
    expect(resourcesOf(c, 'limits')).toEqual({ 'intel.com/pool_a': '2', 'intel.com/pool_b': '1' });
    const meta = patched['metadata'] as { annotations: Record<string, string> };
    expect(JSON.parse(meta.annotations[INJECTED_ANNOTATION] ?? '')).toEqual({
      container: 'app',
      resources: { 'intel.com/pool_a': '2', 'intel.com/pool_b': '1' },
    });
    expect(mutation.warnings).toEqual([]);
  });

  it('reads the JSON form of the annotation too', () => {
    const pod = podObject(
      { [NETWORKS]: '[{"name":"vf-a","interface":"fast0"},{"name":"vf-a","namespace":"ns1"}]' },
      [{ name: 'app' }],
    );
    const { patched } = admit(pod, [nad('ns1', 'vf-a', { [RESOURCE]: 'intel.com/sriov' })]);
    expect(resourcesOf(containerAt(patched, 0), 'limits')).toEqual({ 'intel.com/sriov': '2' });
  });

  it('keeps a larger user value and raises a smaller one, saying so; never lowers', () => {
    const pod = podObject({ [NETWORKS]: 'vf-a,vf-b' }, [
      {
        name: 'app',
        resources: { requests: { 'r.io/a': '5', 'r.io/b': '0' }, limits: { 'r.io/a': '5', 'r.io/b': '0' } },
      },
    ]);
    const { mutation, patched } = admit(pod, [
      nad('ns1', 'vf-a', { [RESOURCE]: 'r.io/a' }),
      nad('ns1', 'vf-b', { [RESOURCE]: 'r.io/b' }),
    ]);
    const c = containerAt(patched, 0);
    expect(resourcesOf(c, 'requests')).toEqual({ 'r.io/a': '5', 'r.io/b': '1' });
    expect(resourcesOf(c, 'limits')).toEqual({ 'r.io/a': '5', 'r.io/b': '1' });
    expect(mutation.warnings).toEqual([
      "r.io/a: kept the pod's 5 (larger than the 1 its networks need)",
      "r.io/b: raised the pod's 0 to 1 (one per network attachment)",
    ]);
  });

  it('puts the requests on the container the netplumb.io/resources-container annotation names', () => {
    const pod = podObject({ [NETWORKS]: 'vf-a', 'netplumb.io/resources-container': 'dpdk' }, [
      { name: 'sidecar' },
      { name: 'dpdk' },
    ]);
    const { patched } = admit(pod, [nad('ns1', 'vf-a', { [RESOURCE]: 'r.io/a' })]);
    expect(containerAt(patched, 0)['resources']).toBeUndefined();
    expect(resourcesOf(containerAt(patched, 1), 'requests')).toEqual({ 'r.io/a': '1' });
  });

  it('denies a pod whose container annotation names no container, or whose networks annotation is invalid', () => {
    const bad = podObject({ [NETWORKS]: 'vf-a', 'netplumb.io/resources-container': 'nope' }, [
      { name: 'app' },
    ]);
    expect(() => admit(bad, [nad('ns1', 'vf-a', { [RESOURCE]: 'r.io/a' })])).toThrow(AdmissionDenial);
    expect(() => admit(podObject({ [NETWORKS]: 'a/b/c' }, [{ name: 'app' }]), [])).toThrow(
      /more than one "\/"/,
    );
  });

  it('allows a pod whose NAD is missing, with a warning and a count', () => {
    const pod = podObject({ [NETWORKS]: 'gone,vf-a' }, [{ name: 'app' }]);
    const { mutation, patched } = admit(pod, [nad('ns1', 'vf-a', { [RESOURCE]: 'r.io/a' })]);
    expect(mutation.missingNads).toBe(1);
    expect(mutation.warnings).toEqual([
      'network ns1/gone: no such NetworkAttachmentDefinition; the pod will fail to start until it exists',
    ]);
    expect(resourcesOf(containerAt(patched, 0), 'requests')).toEqual({ 'r.io/a': '1' });
  });

  it('does not count a network that namespace isolation forbids', () => {
    const pod = podObject({ [NETWORKS]: 'other/vf-b,default/vf-c' }, [{ name: 'app' }]);
    const nads = [
      nad('other', 'vf-b', { [RESOURCE]: 'r.io/b' }),
      nad('default', 'vf-c', { [RESOURCE]: 'r.io/c' }),
    ];
    const { mutation, patched } = admit(pod, nads, { ...OPTS, namespaceIsolation: true });
    expect(resourcesOf(containerAt(patched, 0), 'requests')).toEqual({ 'r.io/c': '1' });
    expect(mutation.warnings[0]).toMatch(/namespace isolation forbids/);
  });

  it("merges NAD nodeSelector labels; the pod's own value wins", () => {
    const pod = podObject({ [NETWORKS]: 'vf-a,vf-b' }, [{ name: 'app' }], { nodeSelector: { zone: 'z1' } });
    const { mutation, patched } = admit(pod, [
      nad('ns1', 'vf-a', { 'k8s.v1.cni.cncf.io/nodeSelector': 'netplumb.io/sriov=true' }),
      nad('ns1', 'vf-b', { 'k8s.v1.cni.cncf.io/nodeSelector': 'zone=z2, bad key=1' }),
    ]);
    expect((patched['spec'] as JsonObject)['nodeSelector']).toEqual({
      zone: 'z1',
      'netplumb.io/sriov': 'true',
    });
    expect(mutation.warnings).toEqual([
      'network ns1/vf-b: k8s.v1.cni.cncf.io/nodeSelector item "bad key=1" ignored (use key=value node labels)',
      'nodeSelector zone: kept the pod\'s "z1"; network ns1/vf-b asks for "z2"',
    ]);
  });

  it('mounts the Downward API volume with network-status, networks, annotations, labels and (when asked) hugepages in every container', () => {
    const pod = podObject({ [NETWORKS]: 'vf-a' }, [
      {
        name: 'dpdk',
        resources: { requests: { 'hugepages-1Gi': '2Gi' }, limits: { 'hugepages-1Gi': '2Gi' } },
      },
      { name: 'side', volumeMounts: [{ name: 'x', mountPath: '/x' }] },
    ]);
    const items = (opts: MutationOptions) => {
      const spec = admit(pod, [nad('ns1', 'vf-a')], opts).patched['spec'] as { volumes: JsonObject[] };
      return (spec.volumes[0]?.['downwardAPI'] as { items: { path: string }[] }).items.map((i) => i.path);
    };
    // Hugepages only when asked for: an apiserver without DownwardAPIHugePages rejects those items.
    expect(items({ ...OPTS, downwardApi: true })).toEqual([
      'network-status',
      'networks',
      'annotations',
      'labels',
    ]);
    expect(items({ ...OPTS, downwardApi: true, downwardApiHugepages: true })).toEqual([
      'network-status',
      'networks',
      'annotations',
      'labels',
      'hugepages_1G_request_dpdk',
      'hugepages_1G_limit_dpdk',
    ]);
    const { patched } = admit(pod, [nad('ns1', 'vf-a')], { ...OPTS, downwardApi: true });
    for (const i of [0, 1]) {
      const mounts = containerAt(patched, i)['volumeMounts'] as JsonObject[];
      expect(mounts.at(-1)).toEqual({ name: 'podnetinfo', mountPath: PODNETINFO_PATH, readOnly: true });
    }
  });

  it('changes nothing for a pod without networks', () => {
    const { mutation } = admit(podObject({}, [{ name: 'app' }]), [], { ...OPTS, downwardApi: true });
    expect(mutation.patch).toEqual([]);
  });
});

// Resource names with the characters RFC 6901 escapes ("/" and "~").
const resourceName = fc.constantFrom('intel.com/pool', 'intel.com/a~b', 'mellanox.com/cx6', 'x.io/~1');
const nadName = fc.constantFrom('a', 'b', 'c', 'd', 'e');
const userValue = fc.option(fc.nat(4).map(String), { nil: undefined });

describe('computeMutation (properties)', () => {
  it('applying the patch gives exactly the requests the annotation implies, never lowering a user value', () => {
    fc.assert(
      fc.property(
        fc.dictionary(nadName, fc.option(resourceName, { nil: undefined })),
        fc.array(nadName, { minLength: 1, maxLength: 8 }),
        fc.dictionary(resourceName, userValue),
        fc.nat(2),
        (nadResources, refs, user, target) => {
          const containers: JsonObject[] = [0, 1, 2].map((i) => ({ name: `c${i}` }));
          const requests: Record<string, string> = {};
          for (const [r, v] of Object.entries(user)) if (v !== undefined) requests[r] = v;
          containers[target] = {
            name: `c${target}`,
            resources: { requests: { ...requests }, limits: { ...requests } },
          };
          const annotations = { [NETWORKS]: refs.join(','), 'netplumb.io/resources-container': `c${target}` };
          const nads = Object.entries(nadResources).map(([n, r]) =>
            nad('ns1', n, r === undefined ? {} : { [RESOURCE]: r }),
          );
          const { patched } = admit(podObject(annotations, containers), nads);

          const implied = new Map<string, number>();
          for (const ref of refs) {
            const r = nadResources[ref];
            if (r !== undefined) implied.set(r, (implied.get(r) ?? 0) + 1);
          }
          const want: Record<string, string> = { ...requests };
          for (const [r, n] of implied) want[r] = String(Math.max(n, Number(requests[r] ?? 0)));
          const c = containerAt(patched, target);
          expect(resourcesOf(c, 'requests')).toEqual(want);
          expect(resourcesOf(c, 'limits')).toEqual(want);
          for (const other of [0, 1, 2].filter((i) => i !== target)) {
            expect(containerAt(patched, other)).toEqual({ name: `c${other}` });
          }
        },
      ),
    );
  });

  it('never throws on arbitrary pod shapes, only AdmissionDenial', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.string(), (object, ns) => {
        const view = podView(object, ns);
        try {
          computeMutation(view, networksOf(view), new Map(), { ...OPTS, downwardApi: true });
        } catch (err) {
          expect(err).toBeInstanceOf(AdmissionDenial);
        }
      }),
    );
  });
});

describe("computeMutation: network-resources-injector's switches", () => {
  it("honor-resources adds the count to the pod's own value (requests = limits), saying so", () => {
    const pod = podObject({ [NETWORKS]: 'vf-a,vf-a' }, [
      { name: 'app', resources: { requests: { 'r.io/a': '1' }, limits: { 'r.io/a': '1' } } },
    ]);
    const nads = [nad('ns1', 'vf-a', { [RESOURCE]: 'r.io/a' })];
    const { mutation, patched } = admit(pod, nads, { ...OPTS, honorExistingResources: true });
    expect(resourcesOf(containerAt(patched, 0), 'requests')).toEqual({ 'r.io/a': '3' });
    expect(resourcesOf(containerAt(patched, 0), 'limits')).toEqual({ 'r.io/a': '3' });
    expect(mutation.warnings).toEqual([
      "r.io/a: the pod's 1 plus the 2 its networks need = 3 (honor-resources)",
    ]);
    // Off (the default): the larger of 1 and 2.
    expect(resourcesOf(containerAt(admit(pod, nads).patched, 0), 'requests')).toEqual({ 'r.io/a': '2' });
  });

  it('counts every NAD annotation listed in resourceNameKeys', () => {
    const pod = podObject({ [NETWORKS]: 'vf-a' }, [{ name: 'app' }]);
    const nads = [nad('ns1', 'vf-a', { [RESOURCE]: 'r.io/a', 'example.com/pool': 'r.io/b' })];
    const { patched } = admit(pod, nads, { ...OPTS, resourceNameKeys: [RESOURCE, 'example.com/pool'] });
    expect(resourcesOf(containerAt(patched, 0), 'requests')).toEqual({ 'r.io/a': '1', 'r.io/b': '1' });
  });

  it('with hugepages files, gives those containers CONTAINER_NAME (never replacing their own)', () => {
    const huge = { requests: { 'hugepages-2Mi': '64Mi' }, limits: { 'hugepages-2Mi': '64Mi' } };
    const pod = podObject({ [NETWORKS]: 'vf-a' }, [
      { name: 'dpdk', resources: huge },
      { name: 'plain' },
      { name: 'mine', resources: huge, env: [{ name: 'CONTAINER_NAME', value: 'other' }] },
    ]);
    const opts = { ...OPTS, downwardApi: true, downwardApiHugepages: true };
    const { mutation, patched } = admit(pod, [nad('ns1', 'vf-a')], opts);
    expect(containerAt(patched, 0)['env']).toEqual([{ name: 'CONTAINER_NAME', value: 'dpdk' }]);
    expect(containerAt(patched, 1)['env']).toBeUndefined();
    expect(containerAt(patched, 2)['env']).toEqual([{ name: 'CONTAINER_NAME', value: 'other' }]);
    expect(mutation.warnings).toEqual([
      'container mine: kept its own CONTAINER_NAME; its hugepages files end in _mine',
    ]);
    // Without hugepages files: no env.
    expect(
      containerAt(admit(pod, [nad('ns1', 'vf-a')], { ...OPTS, downwardApi: true }).patched, 0)['env'],
    ).toBeUndefined();
  });

  it("user-defined injections add annotations to labelled pods without replacing the pod's own", () => {
    const injection = {
      label: 'feature.pod.kubernetes.io_sriov-network',
      annotations: { [NETWORKS]: 'vf-a,vf-a', 'example.com/team': 'radio' },
    };
    const opts = { ...OPTS, userInjections: [injection] };
    const nads = [nad('ns1', 'vf-a', { [RESOURCE]: 'r.io/a' })];
    const labelled = (annotations: Record<string, string>) => ({
      ...podObject(annotations, [{ name: 'app' }]),
      metadata: { name: 'p', namespace: 'ns1', annotations, labels: { [injection.label]: 'TRUE' } },
    });
    const { patched } = admit(labelled({ keep: 'me' }), nads, opts);
    const meta = patched['metadata'] as { annotations: Record<string, string> };
    expect(meta.annotations).toMatchObject({
      keep: 'me',
      [NETWORKS]: 'vf-a,vf-a',
      'example.com/team': 'radio',
    });
    expect(resourcesOf(containerAt(patched, 0), 'requests')).toEqual({ 'r.io/a': '2' });
    // The pod's own networks win; the pod without annotations gets them as one new map.
    const own = admit(labelled({ [NETWORKS]: 'vf-a' }), nads, opts);
    expect(resourcesOf(containerAt(own.patched, 0), 'requests')).toEqual({ 'r.io/a': '1' });
    expect(own.mutation.warnings[0]).toMatch(
      /^annotation k8s\.v1\.cni\.cncf\.io\/networks: kept the pod's value/,
    );
    const bare = {
      ...podObject({}, [{ name: 'app' }]),
      metadata: { name: 'p', labels: { [injection.label]: 'true' } },
    };
    const none = admit(bare, nads, opts);
    expect((none.patched['metadata'] as { annotations: Record<string, string> }).annotations[NETWORKS]).toBe(
      'vf-a,vf-a',
    );
  });

  it('counts the devices of the v1.multus-cni.io/default-network override, read where the CNI reads it', () => {
    const nads = [
      nad('kube-system', 'sriov-cluster', { [RESOURCE]: 'r.io/c' }),
      nad('ns1', 'vf-a', { [RESOURCE]: 'r.io/a' }),
    ];
    const pod = podObject({ 'v1.multus-cni.io/default-network': 'sriov-cluster', [NETWORKS]: 'vf-a' }, [
      { name: 'app' },
    ]);
    // Namespace isolation does not apply to the cluster network (as in the meta-plugin).
    const { patched } = admit(pod, nads, { ...OPTS, namespaceIsolation: true });
    expect(resourcesOf(containerAt(patched, 0), 'requests')).toEqual({ 'r.io/a': '1', 'r.io/c': '1' });
    const alone = podObject({ 'v1.multus-cni.io/default-network': 'kube-system/sriov-cluster' }, [
      { name: 'app' },
    ]);
    expect(resourcesOf(containerAt(admit(alone, nads).patched, 0), 'limits')).toEqual({ 'r.io/c': '1' });
    const two = podObject({ 'v1.multus-cni.io/default-network': 'a,b' }, [{ name: 'app' }]);
    expect(() => admit(two, nads)).toThrow(AdmissionDenial);
  });
});
