// The exec adapter of the PluginRunner port with small real executables.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkPluginOutput, createExecRunner, createInProcessRunner } from './exec.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'np-cni-exec-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function script(name: string, body: string): Promise<void> {
  await writeFile(path.join(dir, name), `#!/bin/sh\n${body}\n`);
  await chmod(path.join(dir, name), 0o755);
}

describe('exec runner', () => {
  it('passes the CNI_* env and stdin, replacing inherited CNI_* variables', async () => {
    await script('echoer', 'printf "%s|%s|%s|" "$CNI_COMMAND" "$CNI_IFNAME" "$CNI_STALE"; cat');
    const runner = createExecRunner({
      binDirs: [dir],
      baseEnv: { PATH: process.env['PATH'], CNI_STALE: 'leak' },
    });
    const out = await runner.run('echoer', {
      env: { CNI_COMMAND: 'ADD', CNI_IFNAME: 'net1' },
      stdin: '{"a":1}',
    });
    expect(out).toEqual({ exitCode: 0, stdout: 'ADD|net1||{"a":1}', stderr: '' });
  });

  it('kills a plugin that outlives the timeout and says so', async () => {
    await script('sleeper', 'sleep 5');
    const runner = createExecRunner({ binDirs: [dir], baseEnv: process.env, timeoutMs: 200 });
    await expect(runner.run('sleeper', { env: {}, stdin: '' })).rejects.toThrow(
      /timed out after 200 ms and was killed/,
    );
  });

  it('finds plugins in binDirs before CNI_PATH', async () => {
    const other = await mkdtemp(path.join(tmpdir(), 'np-cni-exec2-'));
    try {
      await script('p', 'echo bin');
      await writeFile(path.join(other, 'p'), '#!/bin/sh\necho path\n', { mode: 0o755 });
      const runner = createExecRunner({ binDirs: [dir], baseEnv: process.env });
      expect((await runner.run('p', { env: { CNI_PATH: other }, stdin: '' })).stdout).toBe('bin\n');
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('turns error JSON on stdout or stderr into a CniError with the plugin code', () => {
    const err = { cniVersion: '1.0.0', code: 7, msg: 'bad master', details: 'eth9' };
    expect(() =>
      checkPluginOutput('macvlan', { exitCode: 1, stdout: JSON.stringify(err), stderr: '' }),
    ).toThrow(
      expect.objectContaining({
        code: 7,
        details: 'eth9',
        message: 'plugin type="macvlan" failed (7): bad master',
      }) as Error,
    );
    expect(() => checkPluginOutput('x', { exitCode: 1, stdout: '', stderr: JSON.stringify(err) })).toThrow(
      /bad master/,
    );
    expect(() => checkPluginOutput('x', { exitCode: 2, stdout: '', stderr: 'panic: boom' })).toThrow(
      /plugin type="x" failed \(exit 2\): panic: boom/,
    );
  });

  it('in-process runner serves its plugins and falls back for the rest', async () => {
    await script('real', 'echo real');
    const runner = createInProcessRunner(
      { mine: () => Promise.resolve({ exitCode: 0, stdout: 'mine' }) },
      createExecRunner({ binDirs: [dir], baseEnv: process.env }),
    );
    expect((await runner.run('mine', { env: {}, stdin: '' })).stdout).toBe('mine');
    expect((await runner.run('real', { env: {}, stdin: '' })).stdout).toBe('real\n');
  });
});
