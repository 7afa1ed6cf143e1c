// The `netplumb-cni` launcher (netplumb-cni-launcher.c) for real: built with the one C build, it
// starts the real netplumb-spawner and execs a stand-in for the Node executable (this package's
// client, bundled) that adopts the helper from NETPLUMB_SPAWNER_FDS and runs a process through it.
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runProcess } from '../../../test/support/process.js';
import type { ProcessOutput } from '../../../test/support/process.js';
import { buildLauncher, buildSpawner } from './build.js';
import { inheritedHelper } from './client.js';

const here = path.dirname(fileURLToPath(import.meta.url));

// The stand-in for netplumb-cni-node: what the launcher handed it, and one process run through the
// helper it adopted. Its own helper path does not exist: a spawn instead of the adoption would fail.
const STAND_IN = `
import { readFileSync } from 'node:fs';
import { createHelperSpawner, inheritedHelper } from './client.js';
const value = process.env.NETPLUMB_SPAWNER_FDS;
const inherited = inheritedHelper(value);
const out = { pid: process.pid, argv: process.argv.slice(2), value: value ?? null, inherited: inherited ?? null };
if (inherited) {
  const spawner = createHelperSpawner({ helper: '/nonexistent/netplumb-spawner', inherited });
  const r = await spawner.run('/bin/sh', { A: 'b' }, '', 5000, ['-c', 'echo "$PPID $A \${NETPLUMB_SPAWNER_FDS-unset}"']);
  const stat = readFileSync('/proc/' + inherited.pid + '/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  out.helper = { comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), ppid: Number(fields[1]) };
  out.delegate = r.stdout.trim();
  out.helperPid = spawner.helperPid();
}
process.stdout.write(JSON.stringify(out));
process.exit(0);
`;

interface StandInOutput {
  pid: number;
  argv: string[];
  value: string | null;
  inherited: { requestFd: number; replyFd: number; pid: number } | null;
  helper?: { comm: string; ppid: number };
  delegate?: string;
  helperPid?: number;
}

let dir = '';
let withHelper = '';
let alone = '';

function launch(file: string, env: Record<string, string>): Promise<ProcessOutput> {
  return runProcess(file, { PATH: '/usr/bin:/bin', ...env }, '{}', ['x', 'y z']);
}

function alive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'np-launcher-'));
  const bundle = path.join(dir, 'stand-in.mjs');
  await build({
    stdin: { contents: STAND_IN, resolveDir: here, loader: 'ts' },
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outfile: bundle,
    logLevel: 'error',
  });
  withHelper = path.join(dir, 'with-helper');
  alone = path.join(dir, 'alone');
  for (const d of [withHelper, alone]) {
    await mkdir(d);
    await writeFile(
      path.join(d, 'netplumb-cni-node'),
      `#!/bin/sh\nexec ${process.execPath} ${bundle} "$@"\n`,
    );
    await chmod(path.join(d, 'netplumb-cni-node'), 0o755);
    await buildLauncher(path.join(d, 'netplumb-cni'), { force: true });
  }
  await buildSpawner(path.join(withHelper, 'netplumb-spawner'), { force: true });
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the netplumb-cni launcher', () => {
  it('starts the helper, becomes the Node executable with its pipes, and the helper exits after it', async () => {
    const res = await launch(path.join(withHelper, 'netplumb-cni'), { CNI_COMMAND: 'ADD' });
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as StandInOutput;
    expect(out.argv).toEqual(['x', 'y z']);
    expect(out.inherited).not.toBeNull();
    const pid = out.inherited?.pid ?? 0;
    // The helper is the launcher's child, so the child of the process the runtime started (the
    // launcher exec'd into Node: one pid), and the process ran through it with exactly its env.
    expect(out.helper).toEqual({ comm: 'netplumb-spawne', ppid: out.pid });
    expect(out.helperPid).toBe(pid);
    expect(out.delegate).toBe(`${pid} b unset`);
    // Node is gone: the helper saw EOF on its requests and exited.
    for (let i = 0; i < 200 && alive(pid); i++) await new Promise((r) => setTimeout(r, 25));
    expect(alive(pid)).toBe(false);
  });

  it('starts no helper for VERSION, nor without netplumb-spawner beside it; a caller cannot name fds', async () => {
    const version = await launch(path.join(withHelper, 'netplumb-cni'), { CNI_COMMAND: 'VERSION' });
    expect((JSON.parse(version.stdout) as StandInOutput).value).toBeNull();
    const about = await launch(path.join(withHelper, 'netplumb-cni'), {});
    expect((JSON.parse(about.stdout) as StandInOutput).value).toBeNull();
    const spoofed = await launch(path.join(alone, 'netplumb-cni'), {
      CNI_COMMAND: 'ADD',
      NETPLUMB_SPAWNER_FDS: '0,1,1',
    });
    expect(spoofed.code).toBe(0);
    expect((JSON.parse(spoofed.stdout) as StandInOutput).value).toBeNull();
  });

  it('answers a CNI error naming the file when the Node executable is missing, as JSON whatever the path', async () => {
    // A quote, a backslash and a tab in the directory's name: the message must still parse.
    const lonely = path.join(dir, 'lone"ly\\\tdir');
    await mkdir(lonely);
    await buildLauncher(path.join(lonely, 'netplumb-cni'), { force: true });
    const res = await launch(path.join(lonely, 'netplumb-cni'), { CNI_COMMAND: 'ADD' });
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout)).toMatchObject({
      code: 999,
      msg: expect.stringContaining(`${path.join(lonely, 'netplumb-cni-node')}: No such file`) as unknown,
    });
  });
});

describe('inheritedHelper', () => {
  it('takes two pipes and a pid, and nothing else', async () => {
    const file = await open(path.join(dir, 'plain'), 'w');
    const other = await open(path.join(dir, 'other'), 'w');
    try {
      const fd = String(file.fd);
      expect(inheritedHelper(`${fd},${other.fd},99`)).toBeUndefined();
      for (const bad of [
        undefined,
        '',
        '3,4',
        '3,4,5,6',
        'a,b,c',
        '1,4,99',
        '4,4,99',
        ` 3,4,99`,
        `${fd},${fd},99`,
      ])
        expect(inheritedHelper(bad), String(bad)).toBeUndefined();
      // A regular file is no helper pipe; fds that are not open are not either.
      expect(inheritedHelper(`${fd},999999,99`)).toBeUndefined();
      expect(inheritedHelper(`999998,999999,99`)).toBeUndefined();
    } finally {
      await file.close();
      await other.close();
    }
  });
});
