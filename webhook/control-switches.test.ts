// network-resources-injector's ConfigMap `nri-control-switches`, as an NRI user has it: parsed
// (unit), then watched by the real webhook over a real list/watch API: each change applies to the
// next admission, without a restart.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadKubeAccess } from '../cni/meta/kube-rest.js';
import {
  httpsRequest,
  memoryNadWatch,
  permissionOf,
  startConfigMapApi,
  webhookGrants,
  writeSecretDir,
} from '../test/support/webhook.js';
import type { FakeConfigMapApi } from '../test/support/webhook.js';
import { createCertificates } from './certs.js';
import type { CertBundle } from './certs.js';
import { createConfigMapWatch } from './configmap-watch.js';
import { CONTROL_SWITCHES_CONFIGMAP, applySwitches, parseControlSwitches } from './control-switches.js';
import { startWebhook } from './webhook.js';
import type { RunningWebhook } from './webhook.js';

const SNI = 'netplumb-webhook.netplumb.svc';
const NS = `netplumb-cs-${process.pid}`;
const BASE = { downwardApi: false, namespaceIsolation: false, globalNamespaces: [] } as const;
const config = (o: unknown): Record<string, string> => ({ 'config.json': JSON.stringify(o) });

describe('parseControlSwitches', () => {
  it("reads NRI's documented example: both features off, overriding the command line", () => {
    const s = parseControlSwitches(
      config({ features: { enableHugePageDownApi: false, enableHonorExistingResources: false } }),
    );
    const o = applySwitches({ ...BASE, downwardApiHugepages: true, honorExistingResources: true }, s);
    expect([o.downwardApiHugepages, o.honorExistingResources]).toEqual([false, false]);
  });

  it('keeps the command-line value of a feature the map does not set, or of all when config.json is not JSON', () => {
    const cli = { ...BASE, downwardApi: true, downwardApiHugepages: true, honorExistingResources: true };
    const one = applySwitches(
      cli,
      parseControlSwitches(config({ features: { enableHonorExistingResources: false } })),
    );
    expect([one.downwardApiHugepages, one.honorExistingResources]).toEqual([true, false]);
    const broken = parseControlSwitches({ 'config.json': '{"features": {' });
    expect(broken.problems[0]).toMatch(/^config\.json is not JSON/);
    const kept = applySwitches(cli, broken);
    expect([kept.downwardApiHugepages, kept.honorExistingResources]).toEqual([true, true]);
  });

  it('takes user-defined injections of annotations only, saying what it ignored', () => {
    const s = parseControlSwitches(
      config({
        'user-defined-injections': {
          'feature.pod.kubernetes.io_sriov-network': {
            op: 'add',
            path: '/metadata/annotations',
            value: { 'k8s.v1.cni.cncf.io/networks': 'sriov-net' },
          },
          bad: { op: 'add', path: '/spec/nodeSelector', value: { a: 'b' } },
        },
        features: { enableHugePageDownApi: 'yes' },
      }),
    );
    expect(s.injections).toEqual([
      {
        label: 'feature.pod.kubernetes.io_sriov-network',
        annotations: { 'k8s.v1.cni.cncf.io/networks': 'sriov-net' },
      },
    ]);
    expect(s.hugepages).toBeUndefined();
    expect(s.problems).toEqual([
      'features.enableHugePageDownApi: not true/false, ignored',
      expect.stringMatching(/^user-defined-injections\.bad: ignored/) as string,
    ]);
  });
});

describe('the webhook with a watched nri-control-switches ConfigMap', () => {
  let dir: string;
  let bundle: CertBundle;
  let api: FakeConfigMapApi;
  let hook: RunningWebhook;
  let review: { request: { object: { metadata: Record<string, unknown>; spec: Record<string, unknown> } } };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'netplumb-webhook-cs-'));
    bundle = createCertificates({
      service: 'netplumb-webhook',
      namespace: 'netplumb',
      days: 30,
      now: new Date(),
    });
    const files = await writeSecretDir(dir, bundle);
    api = await startConfigMapApi();
    const access = loadKubeAccess(await api.writeKubeconfig(path.join(dir, 'kubeconfig')));
    hook = await startWebhook({
      logger: pino({ level: 'silent' }),
      tls: { ...files, minVersion: 'TLSv1.2', ciphers: undefined },
      listen: { host: '127.0.0.1', port: 0 },
      nads: memoryNadWatch([
        {
          namespace: 'default',
          name: 'vf',
          config: '{}',
          annotations: { 'k8s.v1.cni.cncf.io/resourceName': 'intel.com/vf' },
        },
      ]),
      live: undefined,
      switches: createConfigMapWatch(access, NS, CONTROL_SWITCHES_CONFIGMAP, 50),
      options: BASE,
      defaultMetrics: false,
    });
    review = JSON.parse(
      await readFile(path.join(import.meta.dirname, 'testdata', 'admission-review-v1.json'), 'utf8'),
    ) as typeof review;
  });

  afterAll(async () => {
    await hook.stop();
    await api.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Admits a pod whose first container asks for 1 intel.com/vf and 2Mi hugepages itself. */
  async function admit(extra: { networks?: string; labels?: Record<string, string> } = {}) {
    const r = structuredClone(review);
    const annotations: Record<string, string> = {};
    if (extra.networks !== undefined) annotations['k8s.v1.cni.cncf.io/networks'] = extra.networks;
    r.request.object.metadata['annotations'] = annotations;
    r.request.object.metadata['labels'] = extra.labels ?? {};
    const containers = r.request.object.spec['containers'] as Record<string, unknown>[];
    const quantities = { 'intel.com/vf': '1', 'hugepages-2Mi': '64Mi' };
    containers[0] = { ...containers[0], resources: { requests: quantities, limits: quantities } };
    const answer = await httpsRequest(hook.port, {
      ca: bundle.caCert,
      servername: SNI,
      body: JSON.stringify(r),
    });
    const response = (JSON.parse(answer.body) as { response: { patch?: string } }).response;
    return response.patch === undefined ? '' : Buffer.from(response.patch, 'base64').toString();
  }

  /**
   * Waits (up to 20 s: a loaded machine; was 200 tries, ~5 s) until the watch has delivered a
   * change, seen as the next admission's patch.
   */
  async function until(check: (patch: string) => boolean, extra?: Parameters<typeof admit>[0]) {
    let patch = await admit(extra);
    for (const end = Date.now() + 20_000; !check(patch) && Date.now() < end;) {
      await new Promise((r) => setTimeout(r, 25));
      patch = await admit(extra);
    }
    return patch;
  }

  it('is ready once the ConfigMap list is in, with the command-line behaviour while the map is absent', async () => {
    for (const end = Date.now() + 20_000; Date.now() < end;) {
      const ready = await httpsRequest(hook.port, { ca: bundle.caCert, servername: SNI, path: '/readyz' });
      if (ready.status === 200) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(api.requests[0]).toBe(
      `GET /api/v1/namespaces/${NS}/configmaps?fieldSelector=metadata.name%3D${CONTROL_SWITCHES_CONFIGMAP}`,
    );
    // The larger of the pod's 1 and the 2 attachments: 2.
    expect(await admit({ networks: 'vf,vf' })).toContain(
      '"path":"/spec/containers/0/resources/requests/intel.com~1vf","value":"2"',
    );
  });

  it('enableHonorExistingResources flipped in the ConfigMap changes the next admission (1 + 2 = 3)', async () => {
    api.set(NS, CONTROL_SWITCHES_CONFIGMAP, config({ features: { enableHonorExistingResources: true } }));
    const patch = await until((p) => p.includes('"value":"3"'), { networks: 'vf,vf' });
    expect(patch).toContain('"path":"/spec/containers/0/resources/requests/intel.com~1vf","value":"3"');
    expect(patch).toContain('"path":"/spec/containers/0/resources/limits/intel.com~1vf","value":"3"');
  });

  it('enableHugePageDownApi adds the hugepages files and CONTAINER_NAME; deleting the map restores the command line', async () => {
    api.set(NS, CONTROL_SWITCHES_CONFIGMAP, config({ features: { enableHugePageDownApi: true } }));
    const on = await until((p) => p.includes('hugepages_2M_request_app'), { networks: 'vf' });
    expect(on).toContain('"resource":"requests.hugepages-2Mi"');
    expect(on).toContain(
      '{"op":"add","path":"/spec/containers/0/env","value":[{"name":"CONTAINER_NAME","value":"app"}]}',
    );
    // honor-resources is back to the command line's (off) now that the map no longer sets it.
    expect(on).not.toContain('intel.com~1vf');
    api.delete(NS, CONTROL_SWITCHES_CONFIGMAP);
    const off = await until((p) => !p.includes('podnetinfo'), { networks: 'vf' });
    // Only the record of what it decided (the pod's own 1 is enough for 1 attachment).
    expect(JSON.parse(off)).toEqual([
      {
        op: 'add',
        path: '/metadata/annotations/netplumb.io~1injected-resources',
        value: '{"container":"app","resources":{"intel.com/vf":"1"}}',
      },
    ]);
  });

  it('a user-defined injection gives a labelled pod its networks, and their devices', async () => {
    api.set(
      NS,
      CONTROL_SWITCHES_CONFIGMAP,
      config({
        'user-defined-injections': {
          'feature.pod.kubernetes.io_sriov-network': {
            op: 'add',
            path: '/metadata/annotations',
            value: { 'k8s.v1.cni.cncf.io/networks': 'vf,vf,vf' },
          },
        },
      }),
    );
    const labels = { 'feature.pod.kubernetes.io_sriov-network': 'True' };
    const patch = await until((p) => p.includes('vf,vf,vf'), { labels });
    expect(patch).toContain(
      '{"op":"add","path":"/metadata/annotations/k8s.v1.cni.cncf.io~1networks","value":"vf,vf,vf"}',
    );
    expect(patch).toContain('"path":"/spec/containers/0/resources/requests/intel.com~1vf","value":"3"');
    // The pod's own networks annotation wins over the injected one.
    expect(await admit({ networks: 'vf', labels })).not.toContain('vf,vf,vf');
    // Without the label: nothing injected.
    expect(await admit({})).toBe('');
  });

  it('calls only what deployments/webhook.yaml grants: get/list/watch of that one ConfigMap in its namespace', async () => {
    const used = new Set(api.requests.map((r) => permissionOf(...(r.split(' ') as [string, string]))));
    expect([...used].sort()).toEqual(['/configmaps:list', '/configmaps:watch']);
    for (const r of api.requests)
      expect(r).toContain(`fieldSelector=metadata.name%3D${CONTROL_SWITCHES_CONFIGMAP}`);
    const grants = [...(await webhookGrants('netplumb-webhook'))].filter((g) => g.startsWith('/configmaps:'));
    expect(grants.sort()).toEqual(['/configmaps:get', '/configmaps:list', '/configmaps:watch']);
    const text = await readFile(path.join(import.meta.dirname, '..', 'deployments', 'webhook.yaml'), 'utf8');
    const role = parseAllDocuments(text)
      .map((d) => d.toJS() as { kind: string; rules?: { resources: string[]; resourceNames?: string[] }[] })
      .find((d) => d.kind === 'Role' && d.rules?.some((r) => r.resources.includes('configmaps')) === true);
    expect(role?.rules?.[0]?.resourceNames).toEqual([CONTROL_SWITCHES_CONFIGMAP]);
  });
});
