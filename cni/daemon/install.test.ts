import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MANIFEST, install, uninstall } from './install.js';

let dir: string;
let src: string;
beforeEach(async () => {
  const base = await mkdtemp(path.join(os.tmpdir(), 'np-daemon-install-'));
  dir = path.join(base, 'opt', 'cni', 'bin');
  src = path.join(base, 'src');
  await import('node:fs/promises').then((f) => f.mkdir(src, { recursive: true }));
  await writeFile(path.join(src, 'a'), '#!/bin/sh\nsleep 2\necho v1\n');
  await writeFile(path.join(src, 'b'), 'b1');
});
afterEach(async () => {
  await rm(path.dirname(path.dirname(path.dirname(dir))), { recursive: true, force: true });
});

describe('host install', () => {
  it('installs executables 0755 and records them in a manifest', async () => {
    expect(await install(dir, [{ name: 'netplumb-shim', source: path.join(src, 'a') }])).toEqual([
      'netplumb-shim',
    ]);
    expect(
      (await import('node:fs/promises').then((f) => f.stat(path.join(dir, 'netplumb-shim')))).mode & 0o777,
    ).toBe(0o755);
    const m = JSON.parse(await readFile(path.join(dir, MANIFEST), 'utf8')) as { files: { name: string }[] };
    expect(m.files.map((f) => f.name)).toEqual(['netplumb-shim']);
  });

  it('replaces an executable that is running (no "text file busy") and the running one finishes', async () => {
    await install(dir, [{ name: 'x', source: path.join(src, 'a') }]);
    const running = spawn(path.join(dir, 'x'));
    let out = '';
    running.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise((r) => running.on('close', r));
    await new Promise((r) => setTimeout(r, 200));
    await writeFile(path.join(src, 'a'), '#!/bin/sh\necho v2\n');
    await install(dir, [{ name: 'x', source: path.join(src, 'a') }]);
    expect(await readFile(path.join(dir, 'x'), 'utf8')).toContain('v2');
    await done;
    expect(out).toBe('v1\n');
  });

  it('uninstall removes exactly what was installed, keeping files changed since and anything else', async () => {
    await writeFile(path.join(src, 'other'), 'not ours');
    await install(dir, [
      { name: 'a', source: path.join(src, 'a') },
      { name: 'b', source: path.join(src, 'b') },
    ]);
    await writeFile(path.join(dir, 'macvlan'), 'someone else');
    await writeFile(path.join(dir, 'b'), 'replaced by an admin');
    await chmod(path.join(dir, 'b'), 0o755);
    expect(await uninstall(dir)).toEqual({ removed: ['a'], kept: ['b'] });
    expect((await readdir(dir)).sort()).toEqual(['b', 'macvlan']);
    expect(await uninstall(dir)).toEqual({ removed: [], kept: [] });
  });

  it('drops files of an earlier install that the new one no longer ships', async () => {
    await install(dir, [
      { name: 'a', source: path.join(src, 'a') },
      { name: 'b', source: path.join(src, 'b') },
    ]);
    await install(dir, [{ name: 'a', source: path.join(src, 'a') }]);
    expect((await readdir(dir)).sort()).toEqual([MANIFEST, 'a'].sort());
  });

  it('names the source when it cannot be installed', async () => {
    await expect(install(dir, [{ name: 'a', source: path.join(src, 'missing') }])).rejects.toMatchObject({
      code: 'INSTALL_FAILED',
      message: expect.stringContaining('missing') as unknown,
    });
  });
});

describe('netplumb install / uninstall (CLI)', () => {
  it('installs the static launcher (and the SEA when built) atomically and uninstall removes exactly that', async () => {
    const { execFileSync } = await import('node:child_process');
    const { nodeArgsFor } = await import('../../test/support/bin.js');
    const cli = (...args: string[]): string =>
      execFileSync(process.execPath, [...nodeArgsFor('bin/netplumb.ts'), ...args], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    await import('node:fs/promises').then((f) => f.mkdir(dir, { recursive: true }));
    await writeFile(path.join(dir, 'macvlan'), 'not ours');
    const out = JSON.parse(cli('install', '--cni-bin-dir', dir, '--json')) as {
      installed: string[];
      staticShim: boolean;
    };
    expect(out.installed[0]).toBe('netplumb-shim');
    expect(out.staticShim).toBe(true);
    // With the SEA built, the launcher `netplumb-cni` goes in last, after what it starts.
    if (out.installed.includes('netplumb-cni-node')) expect(out.installed.at(-1)).toBe('netplumb-cni');
    else expect(out.installed).not.toContain('netplumb-cni');
    expect(await readdir(dir)).toEqual(expect.arrayContaining(['netplumb-shim', MANIFEST, 'macvlan']));
    const removed = JSON.parse(cli('uninstall', '--cni-bin-dir', dir, '--json')) as { removed: string[] };
    expect(removed.removed).toEqual(out.installed);
    expect(await readdir(dir)).toEqual(['macvlan']);
  }, 120_000);
});
