import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GEN_DIR, generateProto, listFiles } from '../hack/gen-proto.js';

describe('proto/gen', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('is exactly what `npm run gen:proto` produces from the .proto files', async () => {
    const out = await mkdtemp(path.join(tmpdir(), 'np-dp-gen-'));
    dirs.push(out);
    await generateProto(out);
    const fresh = await listFiles(out);
    expect(await listFiles(GEN_DIR)).toEqual(fresh);
    expect(fresh.length).toBe(3);
    for (const file of fresh) {
      const want = await readFile(path.join(out, file), 'utf8');
      const have = await readFile(path.join(GEN_DIR, file), 'utf8');
      expect(have, `proto/gen/${file} is stale: run npm run gen:proto`).toBe(want);
    }
  });
});
