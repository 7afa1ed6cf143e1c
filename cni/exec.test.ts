// The exec adapter of the PluginRunner port with small real executables, run through both
// ProcessSpawner adapters (Node's child_process and the netplumb-spawner helper): one contract.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildSpawner } from './daemon/spawner/build.js';
import {
  PROTOCOL_VERSION,
  createHelperSpawner,
  createSpawnerCommandRunner,
} from './daemon/spawner/client.js';
import type { HelperSpawner } from './daemon/spawner/client.js';
import {
  checkPluginOutput,
  childProcessSpawner,
  createExecRunner,
  createInProcessRunner,
  createPluginLookup,
  findPlugin,
} from './exec.js';
import type { ProcessSpawner } from './exec.js';

let dir: string;
let helperDir: string;
let helper: HelperSpawner;
beforeAll(async () => {
  helperDir = await mkdtemp(path.join(tmpdir(), 'np-cni-spawner-'));
  helper = createHelperSpawner({
    helper: (await buildSpawner(path.join(helperDir, 'netplumb-spawner'))).file,
  });
}, 60_000);
afterAll(async () => {
  await helper.close();
  await rm(helperDir, { recursive: true, force: true });
});
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'np-cni-exec-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function script(name: string, body: string, where = dir): Promise<void> {
  await writeFile(path.join(where, name), `#!/bin/sh\n${body}\n`);
  await chmod(path.join(where, name), 0o755);
}

const spawners: [string, () => ProcessSpawner][] = [
  ['child_process', () => childProcessSpawner],
  ['netplumb-spawner', () => helper],
];

describe.each(spawners)('exec runner over %s', (_name, spawner) => {
  it('passes arguments after argv[0] exactly (spaces, empty ones)', async () => {
    await script('args', 'for a in "$0" "$@"; do printf "<%s>" "$a"; done');
    const file = path.join(dir, 'args');
    const out = await spawner().run(file, {}, '', 5_000, ['a b', '', '--net=/run/netns/x']);
    expect(out.stdout).toBe(`<${file}><a b><><--net=/run/netns/x>`);
    expect((await spawner().run(file, {}, '', 5_000)).stdout).toBe(`<${file}>`);
  });

  it('passes the CNI_* env and stdin, replacing inherited CNI_* variables', async () => {
    await script('echoer', 'printf "%s|%s|%s|" "$CNI_COMMAND" "$CNI_IFNAME" "$CNI_STALE"; cat');
    const runner = createExecRunner({
      binDirs: [dir],
      baseEnv: { PATH: process.env['PATH'], CNI_STALE: 'leak' },
      spawner: spawner(),
    });
    const out = await runner.run('echoer', {
      env: { CNI_COMMAND: 'ADD', CNI_IFNAME: 'net1' },
      stdin: '{"a":1}',
    });
    expect(out).toEqual({ exitCode: 0, stdout: 'ADD|net1||{"a":1}', stderr: '' });
  });

  it('gives the plugin exactly the env it was given (nothing of this process leaks in)', async () => {
    await script('envdump', 'env | sort');
    const runner = createExecRunner({
      binDirs: [dir],
      baseEnv: { PATH: '/usr/bin:/bin' },
      spawner: spawner(),
    });
    const out = await runner.run('envdump', { env: { CNI_COMMAND: 'DEL', CNI_ARGS: 'A=b;C=d' }, stdin: '' });
    const lines = out.stdout
      .trim()
      .split('\n')
      .filter((l) => !/^(PWD|SHLVL|_)=/.test(l));
    expect(lines).toEqual(['CNI_ARGS=A=b;C=d', 'CNI_COMMAND=DEL', 'PATH=/usr/bin:/bin']);
  });

  it('kills a plugin that outlives the timeout and says so', async () => {
    await script('sleeper', 'exec sleep 5');
    const runner = createExecRunner({
      binDirs: [dir],
      baseEnv: process.env,
      timeoutMs: 200,
      spawner: spawner(),
    });
    await expect(runner.run('sleeper', { env: {}, stdin: '' })).rejects.toThrow(
      /timed out after 200 ms and was killed/,
    );
  });

  it('finds plugins in binDirs before CNI_PATH', async () => {
    const other = await mkdtemp(path.join(tmpdir(), 'np-cni-exec2-'));
    try {
      await script('p', 'echo bin');
      await script('p', 'echo path', other);
      const runner = createExecRunner({ binDirs: [dir], baseEnv: process.env, spawner: spawner() });
      expect((await runner.run('p', { env: { CNI_PATH: other }, stdin: '' })).stdout).toBe('bin\n');
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('returns large stdout and stderr whole, the exit code, and 128 for a signal', async () => {
    await script(
      'big',
      'head -c 300000 /dev/zero | tr "\\0" a; head -c 100000 /dev/zero | tr "\\0" b >&2; exit 3',
    );
    await script('selfkill', 'kill -TERM $$');
    const runner = createExecRunner({ binDirs: [dir], baseEnv: process.env, spawner: spawner() });
    const big = await runner.run('big', { env: {}, stdin: '' });
    expect([big.exitCode, big.stdout.length, big.stderr.length]).toEqual([3, 300_000, 100_000]);
    expect(big.stdout).toMatch(/^a+$/);
    expect((await runner.run('selfkill', { env: {}, stdin: '' })).exitCode).toBe(128);
  });

  it('feeds a large stdin to a plugin that reads it all', async () => {
    await script('wc', 'wc -c');
    const runner = createExecRunner({ binDirs: [dir], baseEnv: process.env, spawner: spawner() });
    const stdin = 'x'.repeat(1_000_000);
    expect((await runner.run('wc', { env: {}, stdin })).stdout.trim()).toBe('1000000');
  });

  it('runs 16 plugins at once, each with its own output', async () => {
    await script('id', 'sleep 0.1; echo "$CNI_CONTAINERID"');
    const runner = createExecRunner({ binDirs: [dir], baseEnv: process.env, spawner: spawner() });
    const outs = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        runner.run('id', { env: { CNI_CONTAINERID: `c${i}` }, stdin: '' }),
      ),
    );
    expect(outs.map((o) => o.stdout)).toEqual(Array.from({ length: 16 }, (_, i) => `c${i}\n`));
  });

  it('a cached plugin path that vanished is looked up again', async () => {
    const other = await mkdtemp(path.join(tmpdir(), 'np-cni-exec3-'));
    try {
      await script('p', 'echo first');
      await script('p', 'echo second', other);
      const lookup = createPluginLookup();
      const runner = createExecRunner({
        binDirs: [dir, other],
        baseEnv: process.env,
        spawner: spawner(),
        lookup,
      });
      expect((await runner.run('p', { env: {}, stdin: '' })).stdout).toBe('first\n');
      await rm(path.join(dir, 'p'));
      expect((await runner.run('p', { env: {}, stdin: '' })).stdout).toBe('second\n');
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});

describe('netplumb-spawner', () => {
  it('starts plugins from the helper, not by forking this process', async () => {
    await script('ppid', 'echo $PPID');
    const runner = createExecRunner({ binDirs: [dir], baseEnv: process.env, spawner: helper });
    const ppid = Number((await runner.run('ppid', { env: {}, stdin: '' })).stdout.trim());
    expect(ppid).toBe(helper.helperPid());
    expect(ppid).not.toBe(process.pid);
  });

  it("runs the daemon's own commands (nsenter, ip) from the helper, found on PATH, CommandError on failure", async () => {
    await script('ppid', 'echo $PPID');
    await script('fails', 'echo "no such netns" >&2; exit 3');
    const run = createSpawnerCommandRunner(helper, createPluginLookup(), { pathDirs: [dir] });
    const ppid = Number((await run(['ppid'])).stdout.trim());
    expect(ppid).toBe(helper.helperPid());
    expect(ppid).not.toBe(process.pid);
    await expect(run(['fails', '--net=/x'])).rejects.toMatchObject({
      code: 'COMMAND_FAILED',
      status: 3,
      argv: ['fails', '--net=/x'],
      stderr: 'no such netns\n',
    });
    await expect(run(['not-there'])).rejects.toMatchObject({ code: 'COMMAND_FAILED', status: null });
  });

  it('keeps every child apart when they finish out of order, and reuses slots past its table size', async () => {
    await script('nap', 'sleep "$1"; echo "$2"');
    const naps = Array.from({ length: 24 }, (_, i) =>
      helper.run(path.join(dir, 'nap'), {}, '', 10_000, [String(((i * 7) % 5) / 10), `child ${i}`]),
    );
    const outs = await Promise.all(naps);
    expect(outs.map((o) => o.stdout)).toEqual(Array.from({ length: 24 }, (_, i) => `child ${i}\n`));
    // 1,040 more than the helper’s 1,024 slots, 40 at a time: freed slots are found again.
    for (let k = 0; k < 26; k++) {
      const batch = await Promise.all(
        Array.from({ length: 40 }, () => helper.run('/bin/true', {}, '', 10_000)),
      );
      expect(batch.every((o) => o.exitCode === 0)).toBe(true);
    }
  }, 60_000);

  it('starts every plugin with no signal blocked or ignored (the helper blocks SIGCHLD and ignores SIGPIPE)', async () => {
    await script('sigs', 'grep -E "^Sig(Blk|Ign):" /proc/self/status');
    const out = await helper.run(path.join(dir, 'sigs'), {}, '', 5_000);
    expect(out.stdout).toBe('SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n');
  });

  it('reports a plugin that cannot be executed as a spawn failure', async () => {
    await writeFile(path.join(dir, 'noexec'), 'not a program');
    await chmod(path.join(dir, 'noexec'), 0o755);
    await expect(helper.run(path.join(dir, 'noexec'), {}, '', 5_000)).rejects.toMatchObject({
      code: 'spawn-failed',
      errno: 'ENOEXEC',
    });
  });

  it('start() runs the helper before the first call, once, and that call uses it', async () => {
    await script('ppid', 'echo $PPID');
    const own = createHelperSpawner({ helper: path.join(helperDir, 'netplumb-spawner') });
    try {
      expect(own.helperPid()).toBeUndefined();
      own.start();
      const pid = own.helperPid();
      expect(pid).toBeGreaterThan(0);
      own.start();
      expect(own.helperPid()).toBe(pid);
      expect(Number((await own.run(path.join(dir, 'ppid'), {}, '', 5_000)).stdout.trim())).toBe(pid);
    } finally {
      await own.close();
    }
  });

  it('fails the calls in flight when the helper dies, and starts a new one for the next call', async () => {
    await script('slow', 'exec sleep 5');
    const own = createHelperSpawner({ helper: path.join(helperDir, 'netplumb-spawner') });
    try {
      await script('ok', 'echo ok');
      expect((await own.run(path.join(dir, 'ok'), {}, '', 5_000)).stdout).toBe('ok\n');
      const first = own.helperPid() ?? 0;
      const inFlight = own.run(path.join(dir, 'slow'), {}, '', 10_000);
      process.kill(first, 'SIGKILL');
      await expect(inFlight).rejects.toMatchObject({ code: 'spawner-gone' });
      expect((await own.run(path.join(dir, 'ok'), {}, '', 5_000)).stdout).toBe('ok\n');
      expect(own.helperPid()).not.toBe(first);
    } finally {
      await own.close();
    }
  });
});

describe('netplumb-spawner version handshake', () => {
  it('refuses a helper that speaks another protocol version, saying how to rebuild it, and tries again on the next call', async () => {
    // A stand-in for a stale build: today's source with an older protocol number.
    const cc = path.join(dir, 'cc-v1');
    await writeFile(cc, '#!/bin/sh\nexec cc -DPROTOCOL_VERSION=1 "$@"\n');
    await chmod(cc, 0o755);
    const stale = await buildSpawner(path.join(dir, 'netplumb-spawner-v1'), { cc, force: true });
    const own = createHelperSpawner({ helper: stale.file });
    try {
      for (let i = 0; i < 2; i++) {
        const err: unknown = await own.run('/bin/true', {}, '', 5_000).catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 'spawner-mismatch' });
        expect((err as Error).message).toContain(`speaks protocol 1, this daemon needs ${PROTOCOL_VERSION}`);
        expect((err as Error).message).toContain('npm run build:shim');
        expect((err as Error).message).toContain(stale.file);
      }
    } finally {
      await own.close();
    }
  }, 60_000);

  it('refuses at once a helper that does not announce a version (a build from before the handshake)', async () => {
    // Answers the client's id-0 probe as a pre-handshake helper does (it echoes it: no hello first).
    await script('old-helper', 'exec cat');
    const own = createHelperSpawner({ helper: path.join(dir, 'old-helper') });
    try {
      const err: unknown = await own.run('/bin/true', {}, '', 5_000).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'spawner-mismatch' });
      // Told by the probe's answer ("built before the version handshake"), not by the hello timeout.
      expect((err as Error).message).toMatch(/built before the version handshake.*rebuild it/);
    } finally {
      await own.close();
    }
  });

  it('runs calls made before the hello arrived, in order', async () => {
    const own = createHelperSpawner({ helper: path.join(helperDir, 'netplumb-spawner') });
    try {
      const outs = await Promise.all(
        Array.from({ length: 5 }, (_, i) => own.run('/bin/echo', {}, '', 5_000, [`call ${i}`])),
      );
      expect(outs.map((o) => o.stdout)).toEqual(Array.from({ length: 5 }, (_, i) => `call ${i}\n`));
    } finally {
      await own.close();
    }
  });
});

describe('findPlugin', () => {
  it('takes the first directory of the list that has an executable of that name', async () => {
    const dirs = await Promise.all(
      ['a', 'b', 'c'].map((x) => mkdtemp(path.join(tmpdir(), `np-cni-find-${x}-`))),
    );
    const [a, b, c] = dirs as [string, string, string];
    try {
      // a: not executable (skipped), b and c: both have it; b comes first in the list.
      await writeFile(path.join(a, 'q'), '#!/bin/sh\n');
      await script('q', 'true', c);
      await script('q', 'true', b);
      expect(await findPlugin('q', [a, b, c])).toBe(path.join(b, 'q'));
      expect(await findPlugin('q', [c, b])).toBe(path.join(c, 'q'));
      await expect(findPlugin('q', [a])).rejects.toThrow(/failed to find plugin "q" in path/);
    } finally {
      await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    }
  });
});

describe('plugin lookup cache', () => {
  it('answers from the cache within the TTL and searches again after it', async () => {
    const late = await mkdtemp(path.join(tmpdir(), 'np-cni-exec4-'));
    try {
      await script('p', 'true', late);
      let t = 0;
      const lookup = createPluginLookup({ ttlMs: 1_000, now: () => t });
      expect(await lookup.find('p', [dir, late])).toBe(path.join(late, 'p'));
      await script('p', 'true');
      t = 999;
      expect(await lookup.find('p', [dir, late])).toBe(path.join(late, 'p'));
      t = 1_000;
      expect(await lookup.find('p', [dir, late])).toBe(path.join(dir, 'p'));
    } finally {
      await rm(late, { recursive: true, force: true });
    }
  });
});

describe('plugin output', () => {
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
