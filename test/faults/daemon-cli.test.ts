// `netplumb cni-daemon` start-up on bad or unusual input (issue 12 items 13, 16; issue 11 "Smaller"):
// a --daemon-config with wrong types exits 2 naming the key; its logFile receives the daemon's log
// with one "component" key per line; `--metrics-address :PORT` stays on loopback.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostPort } from '../../cni/daemon/command.js';
import { buildShim } from '../../cni/daemon/shim-build.js';
import { nodeArgsFor } from '../support/bin.js';
import { callShim, healthy, startDaemon } from './harness.js';

const exec = promisify(execFile);
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'np-daemon-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function daemonExit(config: object): Promise<{ code: number; stderr: string }> {
  const file = path.join(dir, `conf-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, JSON.stringify(config));
  const args = [
    ...nodeArgsFor('bin/netplumb.ts'),
    'cni-daemon',
    '--socket',
    path.join(dir, 'x.sock'),
    '--daemon-config',
    file,
  ];
  try {
    await exec(process.execPath, args, { timeout: 60_000 });
    return { code: 0, stderr: '' };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

describe('netplumb cni-daemon --daemon-config', () => {
  it.each([
    [{ cniDir: 123 }, /cniDir: .*expected string/],
    [{ namespaceIsolation: 'x' }, /namespaceIsolation: .*expected boolean/],
    [{ delegates: 'x' }, /delegates: .*expected array/],
  ])(
    'refuses %j at start with exit 2 and the key',
    async (config, msg) => {
      const r = await daemonExit(config);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).not.toMatch(/at .*\.ts:\d+/); // no stack trace
    },
    90_000,
  );

  it('writes its log to logFile, one "component" key per line', async () => {
    const logFile = path.join(dir, 'logs', 'daemon.log');
    const conf = path.join(dir, 'daemon.json');
    await writeFile(conf, JSON.stringify({ logFile, logToStderr: false, cniDir: path.join(dir, 'cache') }));
    const socket = path.join(dir, 'run', 'cni.sock');
    const daemon = await startDaemon(
      [
        '--no-write-config',
        '--daemon-config',
        conf,
        '--log-level',
        'debug',
        '--sriov-state-dir',
        path.join(dir, 'sriov'),
      ],
      socket,
    );
    expect(await healthy(socket)).toBe(true);
    const shim = (await buildShim(path.join(dir, 'shim'))).file;
    const del = await callShim(
      shim,
      {
        CNI_COMMAND: 'DEL',
        CNI_CONTAINERID: 'c1',
        CNI_IFNAME: 'eth0',
        CNI_NETNS: '',
        CNI_PATH: '/usr/lib/cni',
      },
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'n',
        type: 'netplumb-shim',
        daemonSocket: socket,
        delegates: [{ cniVersion: '1.0.0', name: 'c', type: 'macvlan' }],
        cniDir: path.join(dir, 'cache'),
      }),
    );
    expect(del.code, del.stdout).toBe(0);
    await daemon.stop();
    const lines = (await readFile(logFile, 'utf8')).trim().split('\n');
    expect(lines.some((l) => l.includes('CNI daemon serving'))).toBe(true);
    expect(lines.some((l) => l.includes('"component":"meta"'))).toBe(true);
    for (const l of lines) expect(l.split('"component":').length, l).toBeLessThanOrEqual(2);
  }, 90_000);
});

describe('--metrics-address', () => {
  it('":PORT" binds loopback; an explicit host is kept', () => {
    expect(hostPort(':9092')).toEqual({ host: '127.0.0.1', port: 9092 });
    expect(hostPort('0.0.0.0:9092')).toEqual({ host: '0.0.0.0', port: 9092 });
  });
});
