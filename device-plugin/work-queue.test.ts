import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createWorkQueue } from './work-queue.js';

describe('createWorkQueue', () => {
  it('runs queued work one at a time, in order, and a failure neither stops the queue nor reaches background callers', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'error' }, { write: (l: string) => lines.push(l) });
    const q = createWorkQueue(log);
    const events: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const first = q.serial(async () => {
      events.push('a start');
      await gate;
      events.push('a end');
      return 1;
    });
    q.background('b', () => {
      events.push('b');
      return Promise.reject(new Error('boom'));
    });
    const third = q.serial(() => {
      events.push('c');
      return Promise.resolve(3);
    });
    await Promise.resolve();
    expect(events).toEqual(['a start']);
    release();
    expect(await first).toBe(1);
    expect(await third).toBe(3);
    expect(events).toEqual(['a start', 'a end', 'b', 'c']);
    expect(lines.join('')).toContain('"msg":"b failed"');
    await expect(q.serial(() => Promise.reject(new Error('to the caller')))).rejects.toThrow('to the caller');
  });
});
