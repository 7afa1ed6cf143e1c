import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildStaticC, CBuildError, isStaticBinary } from './c-build.js';
import { shimSource } from './shim-build.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'np-cbuild-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('buildStaticC', () => {
  it('builds the launcher statically', async () => {
    const out = path.join(dir, 'shim');
    await buildStaticC(shimSource(), out, { force: true });
    expect(await isStaticBinary(out)).toBe(true);
  });

  it('fails the build when the link silently comes out dynamic, and leaves no temp file', async () => {
    // A compiler wrapper that drops -static, as a toolchain without a static libc would behave.
    const cc = path.join(dir, 'cc-dynamic');
    await writeFile(
      cc,
      '#!/bin/sh\nargs=""\nfor a in "$@"; do [ "$a" = -static ] || args="$args $a"; done\nexec cc $args\n',
    );
    await chmod(cc, 0o755);
    const out = path.join(dir, 'dyn');
    await expect(buildStaticC(shimSource(), out, { cc, force: true })).rejects.toBeInstanceOf(CBuildError);
    expect(existsSync(out)).toBe(false);
  });
});
