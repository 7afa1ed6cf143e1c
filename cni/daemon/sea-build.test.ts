import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../test/support/bin.js';
import { buildSea, wrapTopLevelAwait } from './sea-build.js';

const run = promisify(execFile);

describe('wrapTopLevelAwait', () => {
  it('keeps the imports on top and moves the rest into an async IIFE', () => {
    const src =
      "import a from 'a';\nimport {\n  b,\n} from 'b';\nimport 'c';\n\nconst x = await a();\nawait b(x);\n";
    const out = wrapTopLevelAwait(src);
    expect(out.startsWith("import a from 'a';\nimport {\n  b,\n} from 'b';\nimport 'c';")).toBe(true);
    const body = out.slice(out.indexOf('void (async () => {'));
    expect(body).toContain('const x = await a();\nawait b(x);');
    expect(body).toContain('})().catch(');
    expect(out.indexOf("import 'c';")).toBeLessThan(out.indexOf('void (async'));
  });

  it('refuses an entry that exports (its exports would vanish into the function)', () => {
    expect(() => wrapTopLevelAwait("import a from 'a';\nexport const y = 1;\n")).toThrow(/must not export/);
  });
});

describe('single-executable netplumb-cni', () => {
  it('runs on a host without Node.js on PATH and answers VERSION', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'np-daemon-sea-'));
    try {
      const out = path.join(dir, 'netplumb-cni');
      await buildSea({ root: PROJECT_ROOT, entry: 'bin/netplumb-cni.ts', out });
      const child = run(out, [], { env: { CNI_COMMAND: 'VERSION' } });
      child.child.stdin?.end();
      const { stdout } = await child;
      expect(JSON.parse(stdout)).toMatchObject({
        supportedVersions: expect.arrayContaining(['0.3.0', '1.1.0']) as unknown,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
