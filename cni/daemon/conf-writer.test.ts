import { mkdtemp, readFile, rm, stat, writeFile, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createConfWriter } from './conf-writer.js';
import type { ConfWriter } from './conf-writer.js';
import { createReadiness } from './readiness.js';

let dir: string;
let writer: ConfWriter | undefined;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'np-daemon-conf-'));
});
afterEach(async () => {
  writer?.stop();
  await rm(dir, { recursive: true, force: true });
});

const primary = (name: string, caps: Record<string, boolean> = {}): string =>
  JSON.stringify({ cniVersion: '1.0.0', name, plugins: [{ type: 'bridge', capabilities: caps }] });

// 20 s (was 5 s): fs watch events and reconciliation on a loaded machine.
async function until(fn: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const readConf = async (): Promise<
  { plugins: { clusterNetwork: string; capabilities?: object }[] } | undefined
> => {
  const t = await readFile(path.join(dir, '00-netplumb.conflist'), 'utf8').catch(() => undefined);
  return t === undefined ? undefined : (JSON.parse(t) as { plugins: { clusterNetwork: string }[] });
};

describe('CNI config writer', () => {
  it('waits for the readiness indicator, then writes 00-netplumb.conflist (0600) from the first config', async () => {
    const indicator = path.join(dir, 'ready');
    await writeFile(path.join(dir, '20-b.conflist'), primary('b'));
    await writeFile(path.join(dir, '10-a.conflist'), primary('a', { portMappings: true }));
    const readiness = createReadiness();
    writer = createConfWriter({
      confDir: dir,
      socketPath: '/run/x.sock',
      readinessIndicator: indicator,
      readiness,
      logger: pino({ level: 'silent' }),
    });
    await writer.start();
    expect(await readConf()).toBeUndefined();
    expect(readiness.pending()).toEqual([`cni-config: waiting for readiness indicator ${indicator}`]);
    await writeFile(indicator, '');
    await until(async () => (await readConf()) !== undefined);
    expect((await readConf())!.plugins[0]).toMatchObject({
      clusterNetwork: path.join(dir, '10-a.conflist'),
      capabilities: { portMappings: true },
    });
    expect((await stat(path.join(dir, '00-netplumb.conflist'))).mode & 0o777).toBe(0o600);
    expect(readiness.ready).toBe(true);
  });

  it('regenerates when the primary changes and removes the config when the indicator disappears', async () => {
    const indicator = path.join(dir, 'ready');
    await writeFile(indicator, '');
    await writeFile(path.join(dir, '10-a.conflist'), primary('a'));
    const readiness = createReadiness();
    writer = createConfWriter({
      confDir: dir,
      socketPath: '/s',
      readinessIndicator: indicator,
      readiness,
      logger: pino({ level: 'silent' }),
    });
    await writer.start();
    expect((await readConf())!.plugins[0]!.capabilities).toBeUndefined();
    await writeFile(path.join(dir, '10-a.conflist'), primary('a', { bandwidth: true }));
    await until(async () => (await readConf())?.plugins[0]?.capabilities !== undefined);
    await writeFile(path.join(dir, '05-first.conf'), '{"cniVersion":"0.4.0","name":"f","type":"ptp"}');
    await until(
      async () => (await readConf())?.plugins[0]?.clusterNetwork.endsWith('05-first.conf') === true,
    );
    await unlink(indicator);
    await until(async () => (await readConf()) === undefined);
    expect(readiness.ready).toBe(false);
  });

  it('keeps the last good config when the primary becomes unreadable, and says why it is not ready', async () => {
    await writeFile(path.join(dir, '10-a.conflist'), primary('a'));
    const readiness = createReadiness();
    writer = createConfWriter({
      confDir: dir,
      socketPath: '/s',
      readiness,
      logger: pino({ level: 'silent' }),
    });
    await writer.start();
    const good = await readConf();
    await writeFile(path.join(dir, '10-a.conflist'), '{"cniVersion": "1.0.0", "na');
    await writer.sync();
    expect(await readConf()).toEqual(good);
    expect(readiness.pending()[0]).toContain('10-a.conflist is not valid JSON');
  });

  it('removes exactly its own file on uninstall', async () => {
    await writeFile(path.join(dir, '10-a.conflist'), primary('a'));
    writer = createConfWriter({
      confDir: dir,
      socketPath: '/s',
      readiness: createReadiness(),
      logger: pino({ level: 'silent' }),
    });
    await writer.start();
    await writer.remove();
    expect(await readConf()).toBeUndefined();
    expect(await readFile(path.join(dir, '10-a.conflist'), 'utf8')).toBe(primary('a'));
  });
});
