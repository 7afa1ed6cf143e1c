import { readdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { manifestSchema } from './kinds.js';
import type { Manifest, PodSpec, PolicyRule } from './kinds.js';
import { nodeArgsFor } from '../test/support/bin.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const NAMESPACE = 'netplumb';
const NETWORKS = 'k8s.v1.cni.cncf.io/networks';
const RESOURCE_NAME = 'k8s.v1.cni.cncf.io/resourceName';

interface Loaded {
  readonly file: string;
  readonly doc: Manifest;
}

async function load(dir: string): Promise<Loaded[]> {
  const out: Loaded[] = [];
  for (const f of (await readdir(dir)).filter((x) => x.endsWith('.yaml')).sort()) {
    const text = await readFile(path.join(dir, f), 'utf8');
    for (const d of parseAllDocuments(text)) {
      if (d.errors.length > 0) throw new Error(`${f}: ${d.errors.map((e) => e.message).join('; ')}`);
      const raw: unknown = d.toJS();
      const parsed = manifestSchema.safeParse(raw);
      if (!parsed.success) throw new Error(`${f}: ${parsed.error.message}`);
      out.push({ file: f, doc: parsed.data });
    }
  }
  return out;
}

function of<K extends Manifest['kind']>(docs: readonly Loaded[], kind: K): Extract<Manifest, { kind: K }>[] {
  return docs.map((l) => l.doc).filter((d): d is Extract<Manifest, { kind: K }> => d.kind === kind);
}

function podSpecs(docs: readonly Loaded[]): { name: string; spec: PodSpec }[] {
  return [
    ...of(docs, 'DaemonSet').map((d) => ({ name: d.metadata.name, spec: d.spec.template.spec })),
    ...of(docs, 'Pod').map((d) => ({ name: d.metadata.name, spec: d.spec })),
  ];
}

/** Host paths a DaemonSet may mount, each with the reason it is needed. */
const ALLOWED_HOST_PATHS: Readonly<Record<string, string>> = {
  '/var/lib/kubelet/device-plugins': 'device-plugin sockets and kubelet.sock',
  '/var/lib/kubelet/plugins_registry': 'plugin-watcher registration',
  '/var/lib/kubelet/pod-resources': 'PodResources List for the devices allocated to a pod',
  '/var/run/k8s.cni.cncf.io/devinfo/dp': 'device-info files written at Allocate',
  '/var/run/k8s.cni.cncf.io/devinfo': 'device-info files (dp read, cni written)',
  '/etc/cni/net.d': '00-netplumb.conflist',
  '/etc/cni/multus/net.d': 'on-disk named networks (Multus confDir)',
  '/opt/cni/bin': 'install the shim; run delegate plugins',
  '/run/netplumb': 'the daemon socket',
  '/var/lib/cni': 'CNI cache (DEL without the API) and host-local IPAM state',
  '/run/netns': 'pod network namespaces (CNI_NETNS)',
};

describe('deployments/ (kustomize base)', () => {
  let base: Loaded[];
  let examples: Loaded[];
  let all: Loaded[];
  beforeAll(async () => {
    base = await load(here);
    examples = await load(path.join(here, 'examples'));
    all = [...base, ...examples];
  });

  it('parses every manifest and every document matches the schema of its kind', () => {
    expect(base.length).toBeGreaterThan(8);
    expect(examples.length).toBeGreaterThan(5);
  });

  it('lists exactly the YAML files of each folder in its kustomization', async () => {
    for (const [dir, docs] of [
      [here, base],
      [path.join(here, 'examples'), examples],
    ] as const) {
      const k = of(docs, 'Kustomization');
      expect(k).toHaveLength(1);
      const files = (await readdir(dir))
        .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
        .sort();
      expect([...k[0]!.resources].sort()).toEqual(files);
    }
  });

  it('names each object once per kind', () => {
    const keys = all
      .filter((l) => l.doc.kind !== 'Kustomization')
      .map((l) => `${l.doc.kind}/${'metadata' in l.doc ? l.doc.metadata.name : ''}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('binds roles that exist to service accounts that exist', () => {
    const sas = new Set(of(base, 'ServiceAccount').map((s) => s.metadata.name));
    const roles = new Set([
      ...of(base, 'ClusterRole').map((r) => `ClusterRole/${r.metadata.name}`),
      ...of(base, 'Role').map((r) => `Role/${r.metadata.name}`),
    ]);
    for (const b of [...of(base, 'ClusterRoleBinding'), ...of(base, 'RoleBinding')]) {
      expect(roles, b.metadata.name).toContain(`${b.roleRef.kind}/${b.roleRef.name}`);
      for (const s of b.subjects) {
        expect(s.namespace).toBe(NAMESPACE);
        expect(sas, b.metadata.name).toContain(s.name);
      }
    }
    for (const ds of of(base, 'DaemonSet')) expect(sas).toContain(ds.spec.template.spec.serviceAccountName);
  });

  it('gives DaemonSets selectors matching their template, resources, and only the host paths they use', () => {
    for (const ds of of(base, 'DaemonSet')) {
      const tpl = ds.spec.template;
      for (const [k, v] of Object.entries(ds.spec.selector.matchLabels))
        expect(tpl.metadata.labels[k]).toBe(v);
      const containers = [...(tpl.spec.initContainers ?? []), ...tpl.spec.containers];
      for (const c of containers) {
        expect(
          c.resources?.requests?.['memory'],
          `${ds.metadata.name}/${c.name} memory request`,
        ).toBeDefined();
        expect(c.resources?.limits?.['memory'], `${ds.metadata.name}/${c.name} memory limit`).toBeDefined();
      }
      const volumes = new Map((tpl.spec.volumes ?? []).map((v) => [v.name, v]));
      const mounted = new Set(containers.flatMap((c) => (c.volumeMounts ?? []).map((m) => m.name)));
      for (const m of mounted)
        expect(volumes.has(m), `${ds.metadata.name}: mount ${m} has no volume`).toBe(true);
      for (const [n, v] of volumes) {
        expect(mounted.has(n), `${ds.metadata.name}: volume ${n} is never mounted`).toBe(true);
        if (v.hostPath)
          expect(ALLOWED_HOST_PATHS, `${ds.metadata.name}: hostPath ${v.hostPath.path}`).toHaveProperty([
            v.hostPath.path,
          ]);
        if (v.configMap)
          expect(of(base, 'ConfigMap').map((c) => c.metadata.name)).toContain(v.configMap.name);
      }
    }
  });

  it('runs netplumb subcommands that the CLI registers, with flags they accept', () => {
    const help = (args: string[]): string =>
      execFileSync(process.execPath, [...nodeArgsFor('bin/netplumb.ts'), ...args, '--help'], {
        encoding: 'utf8',
      });
    const registered = new Set([...help([]).matchAll(/^\s{2}([a-z][a-z-]*)\b/gm)].map((m) => m[1]));
    for (const ds of of(base, 'DaemonSet')) {
      for (const c of [
        ...(ds.spec.template.spec.initContainers ?? []),
        ...ds.spec.template.spec.containers,
      ]) {
        const [sub = '', ...flags] = c.args ?? [];
        expect(registered, `${ds.metadata.name}/${c.name}: \`netplumb ${sub}\``).toContain(sub);
        const accepted = help([sub]);
        for (const f of flags) {
          const flag = f.split('=')[0]!;
          expect(accepted, `${ds.metadata.name}/${c.name}: netplumb ${sub} ${flag}`).toContain(`${flag} `);
        }
      }
    }
  }, 180_000);

  it('ships a device-plugin ConfigMap in SRIOV-DP format', () => {
    const cm = of(base, 'ConfigMap').find((c) => c.metadata.name === 'netplumb-device-plugin-config');
    const conf = JSON.parse(cm!.data['config.json']!) as {
      resourceList: { resourceName: string; selectors: unknown }[];
    };
    expect(conf.resourceList.length).toBeGreaterThan(0);
    for (const r of conf.resourceList) {
      expect(r.resourceName).toMatch(/^[a-zA-Z0-9_-]+$/);
      expect(r.selectors).toBeDefined();
    }
  });

  it('defines the NetworkAttachmentDefinition CRD the code reads', () => {
    const crd = of(base, 'CustomResourceDefinition')[0]!;
    expect(crd.metadata.name).toBe('network-attachment-definitions.k8s.cni.cncf.io');
    expect(crd.spec.names.kind).toBe('NetworkAttachmentDefinition');
  });

  describe('examples', () => {
    it('have NADs whose config is CNI JSON naming a plugin this node has', () => {
      const nads = of(examples, 'NetworkAttachmentDefinition');
      expect(nads.map((n) => n.metadata.name).sort()).toEqual([
        'ipvlan-l3',
        'macvlan-net',
        'sriov-vlan210',
        'static-net',
      ]);
      for (const nad of nads) {
        const conf = JSON.parse(nad.spec.config!) as {
          name: string;
          type?: string;
          plugins?: { type: string }[];
        };
        expect(conf.name).toBe(nad.metadata.name);
        const types = conf.plugins ? conf.plugins.map((p) => p.type) : [conf.type!];
        for (const t of types) {
          if (t === 'sriov') continue; // served in-process by the daemon
          expect(existsSync(path.join('/usr/lib/cni', t)), `plugin ${t}`).toBe(true);
        }
      }
    });

    it('reproduce the seeds: macvlan on eth0, ipvlan l3, VF with VLAN 210 and a custom ifname, static IP+MAC, two attachments', () => {
      const conf = (n: string): Record<string, unknown> =>
        JSON.parse(
          of(examples, 'NetworkAttachmentDefinition').find((x) => x.metadata.name === n)!.spec.config!,
        ) as Record<string, unknown>;
      expect(conf('macvlan-net')).toMatchObject({
        type: 'macvlan',
        master: 'eth0',
        ipam: { type: 'host-local' },
      });
      expect(conf('ipvlan-l3')).toMatchObject({ type: 'ipvlan', mode: 'l3' });
      expect(conf('sriov-vlan210')).toMatchObject({ type: 'sriov', vlan: 210 });
      const pod = (n: string): Record<string, string> =>
        of(examples, 'Pod').find((p) => p.metadata.name === n)!.metadata.annotations!;
      expect(JSON.parse(pod('sriov-pod')[NETWORKS]!)).toEqual([
        { name: 'sriov-vlan210', interface: 'fast0' },
      ]);
      expect(JSON.parse(pod('static-pod')[NETWORKS]!)).toEqual([
        { name: 'static-net', ips: ['10.20.0.10/24'], mac: 'c2:b0:57:49:47:f1' },
      ]);
      expect(pod('two-attachments-pod')[NETWORKS]).toBe('macvlan-net,macvlan-net');
    });

    it('have pods that reference existing NADs and request the device resource those NADs need', () => {
      const nads = new Map(of(examples, 'NetworkAttachmentDefinition').map((n) => [n.metadata.name, n]));
      const dp = JSON.parse(
        of(base, 'ConfigMap').find((c) => c.metadata.name === 'netplumb-device-plugin-config')!.data[
          'config.json'
        ]!,
      ) as {
        resourceList: { resourceName: string; resourcePrefix?: string }[];
      };
      const offered = new Set(
        dp.resourceList.map((r) => `${r.resourcePrefix ?? 'intel.com'}/${r.resourceName}`),
      );
      for (const { name, spec } of podSpecs(examples)) {
        const ann =
          of(examples, 'Pod').find((p) => p.metadata.name === name)!.metadata.annotations?.[NETWORKS] ?? '';
        const refs = /[[{"]/.test(ann)
          ? (JSON.parse(ann) as { name: string }[]).map((e) => e.name)
          : ann.split(',').map((s) => s.trim().split('@')[0]!);
        expect(refs.length, name).toBeGreaterThan(0);
        for (const ref of refs) {
          const nad = nads.get(ref);
          expect(nad, `${name} → ${ref}`).toBeDefined();
          const res = nad!.metadata.annotations?.[RESOURCE_NAME];
          if (res === undefined) continue;
          expect(offered, `${ref} needs ${res}`).toContain(res);
          expect(
            spec.containers.some((c) => c.resources?.limits?.[res] !== undefined),
            `${name} requests ${res}`,
          ).toBe(true);
        }
      }
    });
  });

  describe('RBAC covers what the code calls', () => {
    it('grants every Kubernetes API call made by the CNI code to the netplumb-cni role', async () => {
      const granted = [
        ...of(base, 'ClusterRole').filter((r) => r.metadata.name === 'netplumb-cni'),
        ...of(base, 'Role').filter((r) => r.metadata.name === 'netplumb-cni-self'),
      ].flatMap((r) => r.rules);
      const calls = await kubeCalls(path.join(root, 'cni'));
      expect(calls.length, 'the daemon lists and watches pods and NADs at least').toBeGreaterThanOrEqual(4);
      for (const c of calls)
        expect(allows(granted, c), `${c.file}: ${c.method} needs ${c.verb} ${c.group}/${c.resource}`).toBe(
          true,
        );
    });

    it('grants nothing the code does not call (least privilege)', async () => {
      const granted = of(base, 'ClusterRole')
        .filter((r) => r.metadata.name === 'netplumb-cni')
        .flatMap((r) => r.rules);
      const calls = await kubeCalls(path.join(root, 'cni'));
      for (const rule of granted) {
        for (const resource of rule.resources) {
          if (resource === 'events') continue; // events are best-effort diagnostics; either API group
          for (const verb of rule.verbs) {
            expect(
              calls.some((c) => c.resource === resource && c.verb === verb),
              `ClusterRole grants ${verb} ${resource} but no code calls it`,
            ).toBe(true);
          }
        }
      }
    });
  });
});

interface KubeCall {
  readonly file: string;
  readonly method: string;
  readonly group: string;
  readonly resource: string;
  readonly verb: string;
}

/** client-node methods → the API permission they need. An unknown method fails the test: add it here. */
const METHODS: Readonly<Record<string, readonly [group: string, resource: string, verb: string]>> = {
  readNamespacedPod: ['', 'pods', 'get'],
  listNamespacedPod: ['', 'pods', 'list'],
  listPodForAllNamespaces: ['', 'pods', 'list'],
  replaceNamespacedPodStatus: ['', 'pods/status', 'update'],
  patchNamespacedPodStatus: ['', 'pods/status', 'patch'],
  createNamespacedEvent: ['', 'events', 'create'],
  getNamespacedCustomObject: ['k8s.cni.cncf.io', 'network-attachment-definitions', 'get'],
  listNamespacedCustomObject: ['k8s.cni.cncf.io', 'network-attachment-definitions', 'list'],
  listClusterCustomObject: ['k8s.cni.cncf.io', 'network-attachment-definitions', 'list'],
  readNamespacedDaemonSet: ['apps', 'daemonsets', 'get'],
  listNamespacedDaemonSet: ['apps', 'daemonsets', 'list'],
};

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(p)));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** The Kubernetes API calls made through client-node in the non-test sources under `dir`. */
async function kubeCalls(dir: string): Promise<KubeCall[]> {
  const calls: KubeCall[] = [];
  for (const file of await sources(dir)) {
    const text = await readFile(file, 'utf8');
    if (!text.includes('@kubernetes/client-node')) continue;
    const informer = /makeInformer\(|new Watch\(|listWatchSource\(/.test(text);
    const rel = path.relative(root, file);
    for (const m of text.matchAll(
      /\.((?:read|list|create|replace|patch|delete|get)(?:Namespaced|Cluster)?\w*?)\(/g,
    )) {
      const method = m[1]!;
      if (!/(Pod|Event|CustomObject|DaemonSet|Node|Namespace)/.test(method)) continue;
      const known = METHODS[method];
      if (!known)
        throw new Error(`${rel}: unknown client-node call ${method}: add it to METHODS with its permission`);
      const [group, resource, verb] = known;
      calls.push({ file: rel, method, group, resource, verb });
      if (verb === 'list' && informer) calls.push({ file: rel, method, group, resource, verb: 'watch' });
    }
  }
  return calls;
}

function allows(rules: readonly PolicyRule[], c: KubeCall): boolean {
  return rules.some(
    (r) =>
      r.apiGroups.includes(c.group) &&
      r.resources.includes(c.resource) &&
      r.verbs.includes(c.verb as PolicyRule['verbs'][number]),
  );
}
