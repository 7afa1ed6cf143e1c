// The KubeClient adapter against the fake API server (real HTTP and HTTPS).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeApiServer } from '../../sim/apiserver.js';
import type { FakeApiServer } from '../../sim/apiserver.js';
import { createKubeClient } from './kube-client-node.js';
import { loadKubeAccess } from './kube-rest.js';
import { KubeErrorCode } from './kube.js';
import type { KubeClient } from './kube.js';

let api: FakeApiServer;
let dir: string;
let kube: KubeClient;

beforeEach(async () => {
  api = await startFakeApiServer();
  dir = await mkdtemp(path.join(tmpdir(), 'np-cni-kube-'));
  kube = createKubeClient(await api.writeKubeconfig(path.join(dir, 'kubeconfig')));
});

afterEach(async () => {
  await api.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('client-node KubeClient adapter', () => {
  it('reads a pod with its annotations, UID and container order', async () => {
    api.addPod({ namespace: 'ns1', name: 'p', uid: 'u1', annotations: { a: 'b' }, containers: ['c2', 'c1'] });
    const pod = await kube.getPod('ns1', 'p');
    expect(pod).toMatchObject({
      namespace: 'ns1',
      name: 'p',
      uid: 'u1',
      annotations: { a: 'b' },
      containerNames: ['c2', 'c1'],
    });
  });

  it('maps 404 to NotFound and 503 to Unavailable', async () => {
    await expect(kube.getPod('ns1', 'missing')).rejects.toMatchObject({ code: KubeErrorCode.NotFound });
    api.addPod({ namespace: 'ns1', name: 'p' });
    api.failNext(1, 503);
    await expect(kube.getPod('ns1', 'p')).rejects.toMatchObject({
      code: KubeErrorCode.Unavailable,
      status: 503,
    });
  });

  it('maps a stopped server to Unavailable', async () => {
    await api.stop();
    await expect(kube.getPod('ns1', 'p')).rejects.toMatchObject({ code: KubeErrorCode.Unavailable });
  });

  it('reads a NAD config and annotations', async () => {
    api.addNad(
      'ns1',
      'net-a',
      { cniVersion: '1.0.0', type: 'macvlan' },
      { 'k8s.v1.cni.cncf.io/resourceName': 'intel.com/sriov' },
    );
    const nad = await kube.getNad('ns1', 'net-a');
    expect(JSON.parse(nad.config)).toEqual({ cniVersion: '1.0.0', type: 'macvlan' });
    expect(nad.annotations).toEqual({ 'k8s.v1.cni.cncf.io/resourceName': 'intel.com/sriov' });
    await expect(kube.getNad('ns1', 'nope')).rejects.toMatchObject({ code: KubeErrorCode.NotFound });
  });

  it('PUTs pods/status at the read resourceVersion, keeping the rest of the pod, and reports 409 as Conflict', async () => {
    api.addPod({ namespace: 'ns1', name: 'p', annotations: { keep: 'me' } });
    const pod = await kube.getPod('ns1', 'p');
    await kube.updatePodStatusAnnotations(pod, { 'k8s.v1.cni.cncf.io/network-status': '[]' });
    expect(api.pod('ns1', 'p')?.metadata.annotations).toEqual({
      keep: 'me',
      'k8s.v1.cni.cncf.io/network-status': '[]',
    });
    const put = api.requests.find((r) => r.method === 'PUT');
    expect(put?.path).toBe('/api/v1/namespaces/ns1/pods/p/status');
    expect(put?.body).toMatchObject({ spec: { containers: [{ name: 'app' }] } });
    await expect(kube.updatePodStatusAnnotations(pod, { x: 'y' })).rejects.toMatchObject({
      code: KubeErrorCode.Conflict,
    });
  });
});

describe('KubeClient over HTTPS', () => {
  // The daemon's agent (Node's verification) and the thin executable's (tls-anchor.ts).
  it.each([
    ['a long-lived process', {}],
    ['a short-lived process', { shortLived: true }],
  ] as const)(
    '%s verifies the server with the kubeconfig CA and reuses one TLS connection for sequential calls',
    async (_what, options) => {
      const tlsDir = await mkdtemp(path.join(tmpdir(), 'np-cni-kube-tls-'));
      const run = promisify(execFile);
      await run('openssl', [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
        ...['-keyout', path.join(tlsDir, 'k'), '-out', path.join(tlsDir, 'c'), '-days', '1'],
        ...['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
      ]);
      const tls = {
        key: await readFile(path.join(tlsDir, 'k'), 'utf8'),
        cert: await readFile(path.join(tlsDir, 'c'), 'utf8'),
      };
      const secure = await startFakeApiServer({ tls });
      try {
        secure.addPod({ namespace: 'ns1', name: 'p' });
        secure.addNad('ns1', 'n', { cniVersion: '1.0.0', type: 'macvlan' });
        const client = createKubeClient(
          loadKubeAccess(await secure.writeKubeconfig(path.join(tlsDir, 'kubeconfig')), process.env, options),
        );
        for (let i = 0; i < 5; i++) {
          const pod = await client.getPod('ns1', 'p');
          await client.getNad('ns1', 'n');
          await client.updatePodStatusAnnotations(pod, { i: String(i) });
          await client.recordEvent?.(pod, { type: 'Normal', reason: 'R', message: 'm' });
        }
        expect(secure.requests).toHaveLength(20);
        expect(secure.connections()).toBe(1);
        // The CA is parsed once into the agent's TLS context: a kubeconfig trusting another CA is refused.
        await run('openssl', [
          ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
          ...['-keyout', path.join(tlsDir, 'k2'), '-out', path.join(tlsDir, 'c2'), '-days', '1'],
          ...['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
        ]);
        const own = await readFile(path.join(tlsDir, 'kubeconfig'), 'utf8');
        const other = own.replace(
          Buffer.from(tls.cert).toString('base64'),
          (await readFile(path.join(tlsDir, 'c2'))).toString('base64'),
        );
        expect(other).not.toBe(own);
        await writeFile(path.join(tlsDir, 'kubeconfig2'), other);
        const refused = createKubeClient(
          loadKubeAccess(path.join(tlsDir, 'kubeconfig2'), process.env, options),
        );
        await expect(refused.getPod('ns1', 'p')).rejects.toThrow(/certificate/);
      } finally {
        await secure.stop();
        await rm(tlsDir, { recursive: true, force: true });
      }
    },
  );
});

describe('a short-lived process over HTTPS', () => {
  it('reads and writes through kube-wire on one connection and never loads node:http or node:https', async () => {
    const tlsDir = await mkdtemp(path.join(tmpdir(), 'np-cni-kube-wire-'));
    const run = promisify(execFile);
    await run('openssl', [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
      ...['-keyout', path.join(tlsDir, 'k'), '-out', path.join(tlsDir, 'c'), '-days', '1'],
      ...['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
    ]);
    const secure = await startFakeApiServer({
      tls: {
        key: await readFile(path.join(tlsDir, 'k'), 'utf8'),
        cert: await readFile(path.join(tlsDir, 'c'), 'utf8'),
      },
    });
    try {
      secure.addPod({ namespace: 'ns1', name: 'p' });
      const kubeconfig = await secure.writeKubeconfig(path.join(tlsDir, 'kubeconfig'));
      // The client as the executable bundles it, run in a process of its own.
      const entry = path.join(tlsDir, 'entry.ts');
      await writeFile(
        entry,
        [
          `import { createKubeClient } from ${JSON.stringify(path.resolve('cni/meta/kube-client-node.ts'))};`,
          `import { loadKubeAccess } from ${JSON.stringify(path.resolve('cni/meta/kube-rest.ts'))};`,
          'void (async () => {',
          `const kube = createKubeClient(loadKubeAccess(${JSON.stringify(kubeconfig)}, {}, { shortLived: true }));`,
          "const pod = await kube.getPod('ns1', 'p');",
          "await kube.updatePodStatusAnnotations(pod, { a: 'b' });",
          "await kube.recordEvent?.(pod, { type: 'Normal', reason: 'R', message: 'm' });",
          'process.stdout.write(JSON.stringify(process.moduleLoadList));',
          'process.exit(0);',
          '})();',
        ].join('\n'),
      );
      const { build } = await import('esbuild');
      await build({
        entryPoints: [entry],
        bundle: true,
        outfile: path.join(tlsDir, 'entry.cjs'),
        platform: 'node',
        format: 'cjs',
        logLevel: 'silent',
        define: { 'import.meta.url': JSON.stringify(`file://${entry}`) },
      });
      const { stdout } = await run(process.execPath, [path.join(tlsDir, 'entry.cjs')]);
      const loaded = JSON.parse(stdout) as string[];
      expect(loaded).toContain('NativeModule tls');
      expect(loaded).not.toContain('NativeModule http');
      expect(loaded).not.toContain('NativeModule https');
      expect(secure.requests.map((r) => r.method)).toEqual(['GET', 'PUT', 'POST']);
      expect(secure.connections()).toBe(1);
    } finally {
      await secure.stop();
      await rm(tlsDir, { recursive: true, force: true });
    }
  });
});
