import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import pino from 'pino';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { versionWithoutPlugin } from '../about.js';
import { createInProcessRunner } from '../exec.js';
import { createMetaPlugin } from '../meta/plugin.js';
import { lazyPodResources } from '../meta/podresources-lazy.js';
import { SPEC_VERSIONS } from '../version.js';
import { systemClock } from '../../lib/clock.js';
import { startFakeApiServer } from '../../sim/apiserver.js';
import type { FakeApiServer } from '../../sim/apiserver.js';
import { startFakePodResources } from '../../sim/podresources.js';
import { PROJECT_ROOT } from '../../test/support/bin.js';
import { runProcess } from '../../test/support/process.js';
import { buildSea, wrapTopLevelAwait } from './sea-build.js';
import { buildLauncher, buildSpawner } from './spawner/build.js';

const run = promisify(execFile);
const STATUS = 'k8s.v1.cni.cncf.io/network-status';

describe('wrapTopLevelAwait', () => {
  it('keeps the imports on top and moves the rest into an async IIFE', () => {
    const src =
      "import a from 'a';\nimport {\n  b,\n} from 'b';\nimport 'c';\n\nconst x = await a();\nawait b(x);\n";
    const out = wrapTopLevelAwait(src);
    expect(out.startsWith("import a from 'a';\nimport {\n  b,\n} from 'b';\nimport 'c';")).toBe(true);
    const body = out.slice(out.indexOf('void (async () => {'));
    expect(body).toContain('const x = await a();\nawait b(x);');
    expect(body).toContain('})().catch(');
    expect(out.indexOf("import 'c';")).toBeLessThan(out.indexOf('void (async'));
  });

  it('refuses an entry that exports (its exports would vanish into the function)', () => {
    expect(() => wrapTopLevelAwait("import a from 'a';\nexport const y = 1;\n")).toThrow(/must not export/);
  });
});

interface Call {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `file` as a CNI runtime does: env, the config on stdin, stdout/stderr/exit code back. */
async function cniCall(file: string, env: Record<string, string>, stdin: string): Promise<Call> {
  const { code, stdout, stderr } = await runProcess(file, env, stdin);
  return { exitCode: code ?? -1, stdout, stderr };
}

describe('the thin entry bin/netplumb-cni.ts', () => {
  it('statically imports only version constants: the plugin (pino, zod, the API client) is a dynamic import', async () => {
    const entry = path.join(PROJECT_ROOT, 'bin', 'netplumb-cni.ts');
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      platform: 'node',
      format: 'esm',
      metafile: true,
      logLevel: 'silent',
      plugins: [
        {
          name: 'dynamic-imports-external',
          setup(b) {
            b.onResolve({ filter: /.*/ }, (args) =>
              args.kind === 'dynamic-import' ? { path: args.path, external: true } : undefined,
            );
          },
        },
      ],
    });
    const inputs = Object.keys(result.metafile.inputs).sort();
    expect(inputs).toEqual(['bin/netplumb-cni.ts', 'cni/about.ts', 'cni/version.ts', 'lib/version.ts']);
  });

  it('loads no TLS, HTTPS, crypto or child_process module before a call needs them (a DEL from the cache never does)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'np-sea-load-'));
    try {
      const out = path.join(dir, 'plugin.cjs');
      await build({
        entryPoints: [path.join(PROJECT_ROOT, 'bin', 'netplumb-cni-main.ts')],
        bundle: true,
        outfile: out,
        platform: 'node',
        format: 'cjs',
        logLevel: 'silent',
        define: { 'import.meta.url': '"file:///netplumb-sea/main.cjs"' },
      });
      const { stdout } = await run(process.execPath, [
        '-e',
        `require(${JSON.stringify(out)}); process.stdout.write(JSON.stringify(process.moduleLoadList))`,
      ]);
      const loaded = (JSON.parse(stdout) as string[]).filter((m) => m.startsWith('NativeModule '));
      expect(loaded).toContain('NativeModule net');
      // child_process too: the launcher's helper runs every process of a thin call.
      for (const m of ['crypto', 'tls', 'https', 'http', 'child_process'])
        expect(loaded).not.toContain(`NativeModule ${m}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("answers VERSION exactly as the meta-plugin does (the plugin's own supportedVersions)", async () => {
    const plugin = createMetaPlugin({
      logger: pino({ level: 'silent' }),
      clock: systemClock,
      kubeFor: () => undefined,
      podResourcesFor: lazyPodResources,
      runnerFor: () => createInProcessRunner({}),
    });
    const viaPlugin = await plugin({ env: { CNI_COMMAND: 'VERSION' }, stdin: '{"cniVersion":"1.0.0"}' });
    expect(versionWithoutPlugin({ CNI_COMMAND: 'VERSION' }, SPEC_VERSIONS)).toBe(viaPlugin.stdout);
    // CNI_ARGS to validate, or another command: the plugin answers (errors included).
    expect(versionWithoutPlugin({ CNI_COMMAND: 'VERSION', CNI_ARGS: 'bad' }, SPEC_VERSIONS)).toBeUndefined();
    expect(versionWithoutPlugin({ CNI_COMMAND: 'ADD' }, SPEC_VERSIONS)).toBeUndefined();
  });
});

describe('single-executable netplumb-cni', () => {
  let dir = '';
  let exe = '';

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'np-daemon-sea-'));
    exe = path.join(dir, 'netplumb-cni');
    await buildSea({ root: PROJECT_ROOT, entry: 'bin/netplumb-cni.ts', out: exe });
  }, 240_000);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs on a host without Node.js on PATH and answers VERSION', async () => {
    const child = run(exe, [], { env: { CNI_COMMAND: 'VERSION' } });
    child.child.stdin?.end();
    const { stdout } = await child;
    expect(JSON.parse(stdout)).toMatchObject({
      supportedVersions: expect.arrayContaining(['0.3.0', '1.1.0']) as unknown,
    });
  });

  it('still validates CNI_ARGS on VERSION through the plugin (error 4 on stdout, exit 1)', async () => {
    const res = await cniCall(exe, { CNI_COMMAND: 'VERSION', CNI_ARGS: 'novalue' }, '{"cniVersion":"1.0.0"}');
    expect(res.exitCode).toBe(1);
    expect(JSON.parse(res.stdout)).toMatchObject({ code: 4 });
  });

  describe("ADD and DEL in a real netns with Debian's macvlan + host-local, the API over HTTPS", () => {
    const id = Math.random().toString(16).slice(2, 8);
    const ns = `np-sea-${id}`;
    const master = `npsea${id}`;
    let api: FakeApiServer | undefined;
    let conf = '';

    beforeAll(async () => {
      await run('openssl', [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
        ...['-keyout', path.join(dir, 'api.key'), '-out', path.join(dir, 'api.crt'), '-days', '1'],
        ...['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
      ]);
      api = await startFakeApiServer({
        tls: {
          key: await readFile(path.join(dir, 'api.key'), 'utf8'),
          cert: await readFile(path.join(dir, 'api.crt'), 'utf8'),
        },
      });
      const dataDir = path.join(dir, 'ipam');
      const mv = (name: string, subnet: string) => ({
        cniVersion: '1.0.0',
        name,
        type: 'macvlan',
        master,
        mode: 'bridge',
        ipam: { type: 'host-local', subnet, dataDir },
      });
      api.addNad('default', 'mv', mv('mv', '10.97.0.0/24'));
      api.addPod({
        namespace: 'default',
        name: 'p',
        uid: 'uid-p',
        annotations: { 'k8s.v1.cni.cncf.io/networks': 'mv' },
      });
      await run('ip', ['netns', 'add', ns]);
      await run('ip', ['link', 'add', master, 'type', 'veth', 'peer', 'name', `${master}p`]);
      await run('ip', ['link', 'set', master, 'up']);
      conf = JSON.stringify({
        cniVersion: '1.0.0',
        name: 'netplumb-sea',
        type: 'netplumb',
        binDir: '/usr/lib/cni',
        cniDir: path.join(dir, 'cache'),
        kubeconfig: await api.writeKubeconfig(path.join(dir, 'kubeconfig')),
        delegates: [mv('cluster', '10.96.0.0/24')],
      });
    });

    afterAll(async () => {
      await api?.stop();
      await run('ip', ['netns', 'del', ns]).catch(() => undefined);
      await run('ip', ['link', 'del', master]).catch(() => undefined);
    });

    const env = (command: string): Record<string, string> => ({
      PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: command,
      CNI_CONTAINERID: `c${id}`,
      CNI_NETNS: `/run/netns/${ns}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/usr/lib/cni',
      CNI_ARGS: `IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=p;K8S_POD_INFRA_CONTAINER_ID=c${id};K8S_POD_UID=uid-p`,
    });

    const links = async (): Promise<string[]> => {
      const { stdout } = await run('ip', ['-n', ns, '-j', 'link', 'show']);
      return (JSON.parse(stdout) as { ifname: string }[]).map((l) => l.ifname).filter((n) => n !== 'lo');
    };

    it('ADD attaches eth0 and net1 over one TLS connection and writes network-status; DEL removes both', async () => {
      const a = api!;
      const before = a.connections();
      const add = await cniCall(exe, env('ADD'), conf);
      expect(add.exitCode, `${add.stdout} ${add.stderr}`).toBe(0);
      // Nothing logged at the default level, and the plugin's code cache was accepted.
      expect(add.stderr).toBe('');
      const result = JSON.parse(add.stdout) as { interfaces: { name: string }[]; ips: { address: string }[] };
      expect(result.ips.map((x) => x.address)).toEqual([expect.stringMatching(/^10\.96\.0\./) as unknown]);
      expect((await links()).sort()).toEqual(['eth0', 'net1']);
      const status = JSON.parse(a.pod('default', 'p')?.metadata.annotations?.[STATUS] ?? '[]') as {
        name: string;
        interface: string;
      }[];
      expect(status.map((s) => s.interface)).toEqual(['eth0', 'net1']);
      // Pod GET, NAD GET, status write and the AddedInterface events share one connection.
      expect(a.connections() - before).toBe(1);

      const del = await cniCall(exe, env('DEL'), conf);
      expect(del.exitCode, `${del.stdout} ${del.stderr}`).toBe(0);
      expect(await links()).toEqual([]);
    });

    it('reads a kubeconfig kube-rest leaves to yaml (JSON here) through yaml, loaded from its own asset', async () => {
      const text = await readFile(path.join(dir, 'kubeconfig'), 'utf8');
      const asJson = path.join(dir, 'kubeconfig.json');
      await writeFile(asJson, JSON.stringify(parseYaml(text)));
      const jsonConf = JSON.stringify({ ...(JSON.parse(conf) as object), kubeconfig: asJson });
      const add = await cniCall(exe, env('ADD'), jsonConf);
      expect(add.exitCode, `${add.stdout} ${add.stderr}`).toBe(0);
      // The yaml asset's code cache was accepted too.
      expect(add.stderr).toBe('');
      expect((await links()).sort()).toEqual(['eth0', 'net1']);
      const del = await cniCall(exe, env('DEL'), jsonConf);
      expect(del.exitCode, `${del.stdout} ${del.stderr}`).toBe(0);
      expect(await links()).toEqual([]);
    });

    it('loads the PodResources client (its own asset: grpc-js) for a pod whose NAD names a resource', async () => {
      const a = api!;
      const podres = await startFakePodResources(path.join(dir, 'kubelet.sock'));
      try {
        a.addNad(
          'default',
          'dev',
          { cniVersion: '1.0.0', type: 'host-device' },
          {
            'k8s.v1.cni.cncf.io/resourceName': 'example.com/nic',
          },
        );
        a.addPod({
          namespace: 'default',
          name: 'q',
          uid: 'uid-q',
          annotations: { 'k8s.v1.cni.cncf.io/networks': 'dev' },
        });
        podres.setPod({ namespace: 'default', name: 'q', containers: { app: {} } });
        const devConf = JSON.stringify({
          ...(JSON.parse(conf) as object),
          podResourcesSocket: podres.socket,
        });
        const args = env('ADD')['CNI_ARGS'] ?? '';
        const q = { ...env('ADD'), CNI_ARGS: args.replace('NAME=p;', 'NAME=q;').replace('uid-p', 'uid-q') };
        const add = await cniCall(exe, q, devConf);
        // The kubelet was asked (over gRPC, from the executable) and allocated nothing to the pod.
        expect(add.exitCode).toBe(1);
        expect(JSON.parse(add.stdout)).toMatchObject({
          msg: expect.stringMatching(
            /resource "example.com\/nic" but pod default\/q was allocated 0/,
          ) as unknown,
        });
        expect(add.stderr).not.toMatch(/code cache .* was rejected/);
        expect(await links()).toEqual([]);
      } finally {
        await podres.stop();
      }
    });
  });

  describe('delegates start through netplumb-spawner when it is installed next to the executable', () => {
    const id = Math.random().toString(16).slice(2, 8);
    const ns = `np-seah-${id}`;
    let bin = '';
    let rec = '';

    beforeAll(async () => {
      await run('ip', ['netns', 'add', ns]);
      bin = path.join(dir, 'bin');
      rec = path.join(dir, 'parents');
      await mkdir(bin, { recursive: true });
      // A delegate that records which process started it (its parent's name) and answers ADD.
      await writeFile(
        path.join(bin, 'recorder'),
        [
          '#!/bin/sh',
          'cat > /dev/null',
          'echo "$(cat /proc/$PPID/comm) $PPID ${NETPLUMB_SPAWNER_FDS-unset}" >> "$NP_REC"',
          'if [ "$CNI_COMMAND" = ADD ]; then',
          '  echo \'{"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],"ips":[{"address":"10.9.0.2/24","interface":0}]}\'',
          'fi',
          '',
        ].join('\n'),
        { mode: 0o755 },
      );
    });

    afterAll(async () => {
      await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    });

    const call = (file: string, command: string, extra: object = {}): Promise<Call> =>
      cniCall(
        file,
        {
          PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
          NP_REC: rec,
          CNI_COMMAND: command,
          CNI_CONTAINERID: `h${id}`,
          CNI_NETNS: `/run/netns/${ns}`,
          CNI_IFNAME: 'eth0',
          CNI_PATH: bin,
        },
        JSON.stringify({
          cniVersion: '1.0.0',
          name: 'netplumb-helper',
          type: 'netplumb',
          binDir: bin,
          cniDir: path.join(dir, 'cache-helper'),
          delegates: [{ cniVersion: '1.0.0', name: 'cluster', type: 'recorder' }],
          ...extra,
        }),
      );

    it('uses the helper beside it, and child_process without one; same answers either way', async () => {
      const withHelper = path.join(dir, 'with-helper');
      await mkdir(withHelper, { recursive: true });
      await copyFile(exe, path.join(withHelper, 'netplumb-cni'));
      await buildSpawner(path.join(withHelper, 'netplumb-spawner'), { force: true });
      const answers: string[] = [];
      for (const file of [exe, path.join(withHelper, 'netplumb-cni')]) {
        await rm(rec, { force: true });
        const add = await call(file, 'ADD');
        expect(add.exitCode, `${add.stdout} ${add.stderr}`).toBe(0);
        answers.push(add.stdout);
        const del = await call(file, 'DEL');
        expect(del.exitCode, `${del.stdout} ${del.stderr}`).toBe(0);
        const parents = (await readFile(rec, 'utf8'))
          .trim()
          .split('\n')
          .map((l) => l.split(' ')[0]);
        // comm is cut to 15 characters: "netplumb-spawner" reads "netplumb-spawne".
        expect(parents).toEqual(
          file === exe ? ['netplumb-cni', 'netplumb-cni'] : ['netplumb-spawne', 'netplumb-spawne'],
        );
      }
      expect(answers[1]).toBe(answers[0]);
    });

    it('installed as `netplumb install` lays it out, runs every delegate from the helper the launcher started', async () => {
      const launched = path.join(dir, 'launched');
      await mkdir(launched, { recursive: true });
      await copyFile(exe, path.join(launched, 'netplumb-cni-node'));
      await buildSpawner(path.join(launched, 'netplumb-spawner'), { force: true });
      await buildLauncher(path.join(launched, 'netplumb-cni'), { force: true });
      const file = path.join(launched, 'netplumb-cni');
      const logFile = path.join(dir, 'logs', 'launched.log');
      await rm(rec, { force: true });
      const logged = { logLevel: 'debug', logFile, logToStderr: false };
      const add = await call(file, 'ADD', logged);
      expect(add.exitCode, `${add.stdout} ${add.stderr}`).toBe(0);
      expect(JSON.parse(add.stdout)).toMatchObject({ ips: [{ address: '10.9.0.2/24' }] });
      const del = await call(file, 'DEL', logged);
      expect(del.exitCode, `${del.stdout} ${del.stderr}`).toBe(0);
      const helpers = (await readFile(logFile, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { msg: string; from?: string; helperPid?: number })
        .filter((l) => l.msg === 'delegate helper');
      expect(helpers.map((h) => h.from)).toEqual(['launcher', 'launcher']);
      // Each call's delegate ran from that call's launcher-started helper, and the launcher's
      // variable did not reach it.
      expect((await readFile(rec, 'utf8')).trim().split('\n')).toEqual(
        helpers.map((h) => `netplumb-spawne ${String(h.helperPid)} unset`),
      );
      const version = await cniCall(file, { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
      expect(JSON.parse(version.stdout)).toMatchObject({
        supportedVersions: expect.arrayContaining(['0.3.0', '1.1.0']) as unknown,
      });
    });

    it('logs pino JSON to the logFile (the bundle has pino without its worker transports)', async () => {
      const logFile = path.join(dir, 'logs', 'netplumb.log');
      const add = await call(exe, 'ADD', { logLevel: 'debug', logFile, logToStderr: false });
      expect(add.exitCode, `${add.stdout} ${add.stderr}`).toBe(0);
      expect(add.stderr).toBe('');
      expect((await call(exe, 'DEL', { logLevel: 'debug', logFile, logToStderr: false })).exitCode).toBe(0);
      const lines = (await readFile(logFile, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { level: number; plugin: string; msg: string; containerId?: string });
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.every((l) => l.plugin === 'netplumb-cni' && typeof l.msg === 'string')).toBe(true);
      // The 'attached' line of the ADD (info), with the call's bindings.
      expect(lines.some((l) => l.level === 30 && l.containerId === `h${id}` && l.msg === 'attached')).toBe(
        true,
      );
    });
  });
});
