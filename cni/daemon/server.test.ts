import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import type { CniRequest, CniResponse } from '../skel.js';
import { createLimiter } from './limiter.js';
import { createDaemonMetrics } from './metrics.js';
import { createReadiness } from './readiness.js';
import type { Readiness } from './readiness.js';
import { createDaemonServer } from './server.js';
import type { DaemonServer } from './server.js';
import { buildShim } from './shim-build.js';
import { forwardToDaemon } from './wire.js';
import { runProcess } from '../../test/support/process.js';
import type { ProcessOutput } from '../../test/support/process.js';

let tmp: string;
let shim: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'np-daemon-'));
  shim = (await buildShim(path.join(tmp, 'bin', 'netplumb-shim'))).file;
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

interface Harness {
  socket: string;
  server: DaemonServer;
  readiness: Readiness;
  seen: CniRequest[];
  metricsText(): Promise<string>;
}

const servers: DaemonServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(
  opts: {
    handle?: (req: CniRequest) => Promise<CniResponse>;
    maxConcurrent?: number;
    maxQueued?: number;
    readyWaitMs?: number;
    ready?: boolean;
    listen?: boolean;
  } = {},
): Promise<Harness> {
  const socket = path.join(await mkdtemp(path.join(tmp, 's-')), 'run', 'cni.sock');
  await mkdir(path.dirname(socket), { mode: 0o700 });
  const seen: CniRequest[] = [];
  const readiness = createReadiness();
  if (opts.ready === false) readiness.set('caches', false, 'pod informer not synced');
  const metrics = createDaemonMetrics({ defaultMetrics: false });
  const server = createDaemonServer({
    handle:
      opts.handle ??
      ((req) => {
        seen.push(req);
        return Promise.resolve({
          exitCode: 0,
          stdout: `{"cniVersion":"1.0.0","echo":${JSON.stringify(req.stdin.length)}}`,
        });
      }),
    logger: pino({ level: 'silent' }),
    metrics,
    limiter: createLimiter({ maxConcurrent: opts.maxConcurrent ?? 4, maxQueued: opts.maxQueued ?? 16 }),
    readiness,
    readyWaitMs: opts.readyWaitMs ?? 5000,
    maxBodyBytes: 1 << 20,
  });
  servers.push(server);
  if (opts.listen !== false) await server.listenUnix(socket);
  return { socket, server, readiness, seen, metricsText: () => metrics.registry.metrics() };
}

function runShim(exe: string, env: Record<string, string>, stdin: string): Promise<ProcessOutput> {
  return runProcess(exe, { PATH: '/usr/bin:/bin', ...env }, stdin);
}

const ADD = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'c1',
  CNI_NETNS: '/run/netns/x',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
};
const conf = (socket: string, extra = ''): string =>
  `{"cniVersion":"0.4.0","name":"n","type":"netplumb-shim","daemonSocket":"${socket}"${extra}}`;

function get(socket: string, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath: socket, path: p, agent: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body });
        });
      })
      .on('error', reject);
  });
}

describe('netplumb-shim (C launcher) → daemon', () => {
  it('forwards the CNI_* variables and stdin byte for byte, prints the result and exits with its code', async () => {
    const h = await start();
    const big = 'é'.repeat(100_000);
    const stdin = conf(h.socket, `,"pad":"${big}"`);
    const r = await runShim(
      shim,
      { ...ADD, CNI_ARGS: 'K8S_POD_NAME=p;X=a=b', HOME: '/root', SECRET: 'x' },
      stdin,
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ cniVersion: '1.0.0', echo: stdin.length });
    expect(h.seen).toHaveLength(1);
    expect(h.seen[0]!.stdin).toBe(stdin);
    expect(h.seen[0]!.env).toEqual({ ...ADD, CNI_ARGS: 'K8S_POD_NAME=p;X=a=b' });
  });

  it('passes a plugin error through: stdout is the error JSON and the exit code is the plugin’s', async () => {
    const h = await start({
      handle: () =>
        Promise.resolve({ exitCode: 1, stdout: '{"cniVersion":"0.4.0","code":7,"msg":"bad master"}\n' }),
    });
    const r = await runShim(shim, ADD, conf(h.socket));
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({ cniVersion: '0.4.0', code: 7, msg: 'bad master' });
  });

  it('waits for the socket while the daemon restarts, then is served', async () => {
    const h = await start({ listen: false });
    const pending = runShim(
      shim,
      { ...ADD, CNI_COMMAND: 'DEL', NETPLUMB_SHIM_WAIT_MS: '10000' },
      conf(h.socket),
    );
    await new Promise((r) => setTimeout(r, 400));
    await h.server.listenUnix(h.socket);
    const r = await pending;
    expect(r.code).toBe(0);
    expect(h.seen[0]!.env['CNI_COMMAND']).toBe('DEL');
  });

  it('fails with CNI error 11 in the config’s version when the daemon stays away', async () => {
    const socket = path.join(tmp, 'absent.sock');
    const r = await runShim(shim, { ...ADD, NETPLUMB_SHIM_WAIT_MS: '300' }, conf(socket));
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ cniVersion: '0.4.0', code: 11 });
    expect((JSON.parse(r.stdout) as { msg: string }).msg).toContain(socket);
  });

  describe('thin mode and DEL fallback (netplumb-cni next to the shim)', () => {
    let dir: string;
    let copy: string;
    beforeAll(async () => {
      dir = await mkdtemp(path.join(tmp, 'thin-'));
      copy = path.join(dir, 'netplumb-shim');
      await writeFile(copy, await import('node:fs/promises').then((f) => f.readFile(shim)));
      await chmod(copy, 0o755);
      // Stands in for the self-contained thin plugin: reports what it was given.
      await writeFile(
        path.join(dir, 'netplumb-cni'),
        '#!/bin/sh\nprintf \'{"thin":"%s","stdin":%s}\' "$CNI_COMMAND" "$(cat)"\nexit 3\n',
      );
      await chmod(path.join(dir, 'netplumb-cni'), 0o755);
    });

    it('runs netplumb-cni with the same env and stdin when the config has no daemonSocket', async () => {
      const r = await runShim(copy, ADD, '{"cniVersion":"1.0.0","name":"n","type":"netplumb"}');
      expect(r.code).toBe(3);
      expect(JSON.parse(r.stdout)).toEqual({
        thin: 'ADD',
        stdin: { cniVersion: '1.0.0', name: 'n', type: 'netplumb' },
      });
    });

    it('deletes through netplumb-cni (on-disk cache) when the daemon never comes back', async () => {
      const socket = path.join(dir, 'gone.sock');
      const r = await runShim(
        copy,
        { ...ADD, CNI_COMMAND: 'DEL', NETPLUMB_SHIM_WAIT_MS: '200' },
        conf(socket),
      );
      expect(r.code).toBe(3);
      expect((JSON.parse(r.stdout) as { thin: string }).thin).toBe('DEL');
    });
  });
});

describe('daemon server', () => {
  it('makes the socket root-only: directory 0700, socket 0600', async () => {
    const h = await start();
    expect((await stat(path.dirname(h.socket))).mode & 0o777).toBe(0o700);
    expect((await stat(h.socket)).mode & 0o777).toBe(0o600);
  });

  it('refuses to steal a socket another daemon is serving', async () => {
    const h = await start({ listen: false });
    const live = net.createServer((c) => c.destroy());
    await new Promise<void>((r) => live.listen(h.socket, r));
    try {
      await expect(h.server.listenUnix(h.socket)).rejects.toMatchObject({ code: 'SOCKET_IN_USE' });
    } finally {
      live.close();
    }
  });

  it('replaces a socket file left by a killed daemon', async () => {
    const h = await start({ listen: false });
    const killed = spawn(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(h.socket)}, () => console.log('up'))`,
    ]);
    await new Promise((r) => killed.stdout.once('data', r));
    killed.kill('SIGKILL');
    await new Promise((r) => killed.once('close', r));
    expect((await stat(h.socket)).isSocket()).toBe(true);
    await h.server.listenUnix(h.socket);
    expect((await get(h.socket, '/healthz')).status).toBe(200);
  });

  it('holds ADD until ready, and reports what is missing on /readyz meanwhile', async () => {
    const h = await start({ ready: false });
    expect(await get(h.socket, '/readyz')).toEqual({
      status: 503,
      body: 'not ready: caches: pod informer not synced\n',
    });
    expect((await get(h.socket, '/healthz')).status).toBe(200);
    const add = forwardToDaemon(h.socket, { env: ADD, stdin: conf(h.socket) });
    await new Promise((r) => setTimeout(r, 150));
    expect(h.seen).toHaveLength(0);
    h.readiness.set('caches', true);
    expect((await add).exitCode).toBe(0);
    expect((await get(h.socket, '/readyz')).status).toBe(200);
  });

  it('answers ADD with error 11 naming the missing condition when readiness does not come in time', async () => {
    const h = await start({ ready: false, readyWaitMs: 100 });
    const r = await forwardToDaemon(h.socket, { env: ADD, stdin: conf(h.socket) });
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ cniVersion: '0.4.0', code: 11 });
    expect(r.stdout).toContain('pod informer not synced');
  });

  it('serves DEL without waiting for readiness (it works from the on-disk cache)', async () => {
    const h = await start({ ready: false, readyWaitMs: 60_000 });
    const r = await forwardToDaemon(h.socket, { env: { ...ADD, CNI_COMMAND: 'DEL' }, stdin: conf(h.socket) });
    expect(r.exitCode).toBe(0);
  });

  it('caps concurrency and turns requests beyond the queue into error 11 instead of growing', async () => {
    let running = 0;
    let peak = 0;
    // The handlers finish only once the two refusals are in: with a fixed 100 ms of work, a loaded
    // machine could deliver the last requests after the first had finished, and they were served.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const h = await start({
      maxConcurrent: 2,
      maxQueued: 2,
      handle: async () => {
        running++;
        peak = Math.max(peak, running);
        await gate;
        running--;
        return { exitCode: 0, stdout: '{}' };
      },
    });
    let answered = 0;
    const calls = Array.from({ length: 6 }, () =>
      forwardToDaemon(h.socket, { env: ADD, stdin: conf(h.socket) }).finally(() => answered++),
    );
    // Bounded, so that a limiter letting more through fails on the counts below, not on the timeout.
    for (const end = Date.now() + 20_000; answered < 2 && Date.now() < end;)
      await new Promise((r) => setTimeout(r, 10));
    release();
    const results = await Promise.all(calls);
    expect(peak).toBe(2);
    expect(results.filter((r) => r.exitCode === 0)).toHaveLength(4);
    const rejected = results.filter((r) => r.exitCode !== 0);
    expect(rejected).toHaveLength(2);
    for (const r of rejected) expect(JSON.parse(r.stdout)).toMatchObject({ code: 11 });
    expect(await h.metricsText()).toMatch(
      /netplumb_cni_request_duration_seconds_count\{command="ADD",result="overloaded"\} 2/,
    );
  });

  it('exports request latency by command and result, in-flight and cache metrics', async () => {
    const h = await start();
    await forwardToDaemon(h.socket, { env: ADD, stdin: conf(h.socket) });
    await forwardToDaemon(h.socket, { env: { ...ADD, CNI_COMMAND: 'BOGUS' }, stdin: conf(h.socket) });
    const m = await get(h.socket, '/metrics');
    expect(m.status).toBe(200);
    expect(m.body).toMatch(
      /netplumb_cni_request_duration_seconds_bucket\{le="0.005",command="ADD",result="success"\}/,
    );
    expect(m.body).toMatch(/command="other",result="success"/);
    expect(m.body).toContain('netplumb_cni_requests_in_flight 0');
    expect(m.body).toContain('# TYPE netplumb_kube_cache_lookups_total counter');
  });

  it('rejects a malformed request with a CNI decoding error', async () => {
    const h = await start();
    const r = await new Promise<string>((resolve, reject) => {
      const req = http.request(
        {
          socketPath: h.socket,
          path: '/cni',
          method: 'POST',
          agent: false,
          headers: { 'x-env-length': '999' },
        },
        (res) => {
          let b = '';
          res.on('data', (d: Buffer) => (b += d.toString()));
          res.on('end', () => {
            resolve(b);
          });
        },
      );
      req.on('error', reject);
      req.end('CNI_COMMAND=ADD\0{}');
    });
    expect(JSON.parse(r)).toMatchObject({ code: 6 });
    expect(r).toContain('X-Env-Length 999');
  });

  it('serves only probes and metrics on TCP, never CNI', async () => {
    const h = await start();
    const { port } = await h.server.listenTcp('127.0.0.1', 0);
    const res = await fetch(`http://127.0.0.1:${port}/cni`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  });
});
