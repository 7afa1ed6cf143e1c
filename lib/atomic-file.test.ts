import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempPathFor, writeFileAtomic, writeFileAtomicSync } from './atomic-file.js';

describe('writeFileAtomic', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'np-atomic-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('replaces the content and leaves no temp file behind', async () => {
    const file = path.join(dir, 'f.json');
    await writeFileAtomic(file, 'one');
    await writeFileAtomic(file, 'two', { mode: 0o600 });
    expect(await readFile(file, 'utf8')).toBe('two');
    expect(await readdir(dir)).toEqual(['f.json']);
  });

  it('keeps concurrent writers of one file from sharing a temp file', async () => {
    const file = path.join(dir, 'f');
    const texts = Array.from({ length: 20 }, (_, i) => `writer-${i}`.repeat(1000));
    await Promise.all(texts.map((t) => writeFileAtomic(file, t)));
    expect(texts).toContain(await readFile(file, 'utf8'));
    expect(await readdir(dir)).toEqual(['f']);
  });

  it('creates the parent directory only when asked', async () => {
    const file = path.join(dir, 'a', 'b', 'f');
    await expect(writeFileAtomic(file, 'x')).rejects.toMatchObject({ code: 'ENOENT' });
    await writeFileAtomic(file, 'x', { createDir: true });
    expect((await stat(file)).isFile()).toBe(true);
  });

  it('gives a directory it creates the dirMode asked for', async () => {
    const file = path.join(dir, 'private', 'f');
    await writeFileAtomic(file, 'x', { createDir: true, dirMode: 0o700 });
    expect((await stat(path.dirname(file))).mode & 0o777).toBe(0o700);
  });
});

describe('writeFileAtomicSync', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'np-atomic-sync-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('replaces the content with the mode asked for and leaves no temp file behind', async () => {
    const file = path.join(dir, 'f.json');
    writeFileAtomicSync(file, 'one');
    writeFileAtomicSync(file, 'two', { mode: 0o600 });
    expect(await readFile(file, 'utf8')).toBe('two');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['f.json']);
  });

  it('creates the parent directory only when asked', async () => {
    const file = path.join(dir, 'a', 'b', 'f');
    expect(() => {
      writeFileAtomicSync(file, 'x');
    }).toThrow(expect.objectContaining({ code: 'ENOENT' }) as Error);
    writeFileAtomicSync(file, 'x', { createDir: true });
    expect((await stat(file)).isFile()).toBe(true);
  });

  it('gives a directory it creates the dirMode asked for', async () => {
    const file = path.join(dir, 'private', 'f');
    writeFileAtomicSync(file, 'x', { createDir: true, dirMode: 0o700 });
    expect((await stat(path.dirname(file))).mode & 0o777).toBe(0o700);
  });

  it('removes its temp file when the rename fails', async () => {
    const file = path.join(dir, 'taken');
    await mkdir(path.join(file, 'child'), { recursive: true });
    expect(() => {
      writeFileAtomicSync(file, 'x');
    }).toThrow();
    expect(await readdir(dir)).toEqual(['taken']);
  });
});

describe('tempPathFor', () => {
  it('gives two writers of the same file, in one process, different temp names next to it', () => {
    const a = tempPathFor('/x/y/file.json');
    const b = tempPathFor('/x/y/file.json');
    expect(a).not.toBe(b);
    expect(path.dirname(a)).toBe('/x/y');
  });
});
