import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireLock } from './lock.js';
import { systemClock } from '../../lib/clock.js';
import type { Clock } from '../../lib/clock.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'np-sriovcni-lock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('acquireLock', () => {
  it('serialises holders: the second waits until the first releases', async () => {
    const first = await acquireLock(dir, 'vf');
    const order: string[] = [];
    const second = acquireLock(dir, 'vf').then((l) => {
      order.push('second');
      return l;
    });
    await new Promise((r) => setTimeout(r, 50));
    order.push('first-release');
    await first.release();
    await (await second).release();
    expect(order).toEqual(['first-release', 'second']);
  });

  it('breaks a lock left by a dead process', async () => {
    const child = spawn(process.execPath, ['-e', '']);
    const pid = child.pid!;
    await new Promise((r) => child.on('close', r));
    await writeFile(path.join(dir, 'vf.lock'), `${pid} 12345 deadbeef\n`);
    const lock = await acquireLock(dir, 'vf', { timeoutMs: 1000 });
    expect(await readFile(lock.file, 'utf8')).toMatch(new RegExp(`^${process.pid} `));
    await lock.release();
  });

  it('treats a live pid with another start time as a reused pid (stale)', async () => {
    await writeFile(path.join(dir, 'vf.lock'), `${process.pid} 1 cafe\n`);
    const lock = await acquireLock(dir, 'vf', { timeoutMs: 1000 });
    await lock.release();
  });

  it('times out against a live holder, naming it', async () => {
    const held = await acquireLock(dir, 'vf');
    let now = 0;
    const clock: Clock = { ...systemClock, now: () => now, sleep: (ms) => ((now += ms), Promise.resolve()) };
    await expect(acquireLock(dir, 'vf', { clock, timeoutMs: 500 })).rejects.toThrow(
      new RegExp(`held by pid ${process.pid}`),
    );
    await held.release();
  });

  it('release never removes a lock someone else took after it', async () => {
    const a = await acquireLock(dir, 'vf');
    await rm(a.file);
    const b = await acquireLock(dir, 'vf');
    await a.release();
    expect(await readFile(b.file, 'utf8')).not.toBe('');
    await b.release();
  });
});
