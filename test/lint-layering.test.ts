// The lint rules the README's "Layout" promises are real: a deliberate import cycle and a
// deliberate wrong-way import (sriov/ → cni/) fail `eslint`, a clean file passes.
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ESLint } from 'eslint';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from './support/bin.js';

const probe = path.join(PROJECT_ROOT, 'sriov', `lint-probe-${randomBytes(4).toString('hex')}`);
const files = {
  'a.ts': "import { b } from './b.js';\nexport const a = (): number => b() + 1;\n",
  'b.ts': "import { a } from './a.js';\nexport const b = (): number => (a.length > 0 ? 1 : 0);\n",
  'wrong-way.ts': "import { CniError } from '../../cni/errors.js';\nexport const e = CniError;\n",
  'clean.ts':
    "import { systemClock } from '../../lib/clock.js';\nexport const now = (): number => systemClock.now();\n",
};

async function rulesFor(file: string): Promise<string[]> {
  // The probe folder is in the config's ignores (so `eslint .` elsewhere never sees it): lint it anyway.
  const eslint = new ESLint({ cwd: PROJECT_ROOT, ignore: false });
  const [result] = await eslint.lintFiles([path.join(probe, file)]);
  return (result?.messages ?? []).map((m) => m.ruleId ?? m.message);
}

beforeAll(async () => {
  await mkdir(probe, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(probe, name), text);
});
afterAll(async () => {
  await rm(probe, { recursive: true, force: true });
});

describe('lint enforces the layering', () => {
  it('fails on a two-file import cycle', async () => {
    expect(await rulesFor('a.ts')).toContain('import-x/no-cycle');
  }, 120_000);
  it('fails on a wrong-way import (sriov/ importing cni/)', async () => {
    expect(await rulesFor('wrong-way.ts')).toContain('import-x/no-restricted-paths');
  }, 120_000);
  it('passes a file that imports downwards', async () => {
    expect(await rulesFor('clean.ts')).toEqual([]);
  }, 120_000);
});
