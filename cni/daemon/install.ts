// Host install of the CNI executables: each file is copied to a temp name in the target directory
// and renamed over the old one (a running executable is never opened for writing: no "text file
// busy"), and a manifest records what was installed with its digest, so uninstall removes exactly
// those files and leaves anything someone else put there since.
import { tempPathFor } from '../../lib/atomic-file.js';
import { NetplumbError } from '../../lib/errors.js';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

export const MANIFEST = '.netplumb-install.json';

export class InstallError extends NetplumbError {
  override readonly name = 'InstallError';
  declare readonly code: 'INSTALL_FAILED' | 'MANIFEST_INVALID';
  // eslint-disable-next-line @typescript-eslint/no-useless-constructor -- narrows the codes a caller may pass
  constructor(code: InstallError['code'], message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export interface InstallItem {
  /** File name in the target directory. */
  readonly name: string;
  /** Source file to copy. */
  readonly source: string;
}

const manifestSchema = z.strictObject({
  kind: z.literal('netplumbInstallV1'),
  files: z.array(
    z.strictObject({ name: z.string().regex(/^[^/]+$/), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
  ),
});
type Manifest = z.infer<typeof manifestSchema>;

/** SHA-256 of a file, streamed: the 100 MiB single executable is never held in memory whole. */
async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function readManifest(dir: string): Promise<Manifest | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dir, MANIFEST), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const parsed = manifestSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new InstallError(
      'MANIFEST_INVALID',
      `${path.join(dir, MANIFEST)} is not a netplumb install manifest: ${parsed.error.message}`,
    );
  }
  return parsed.data;
}

async function atomicWrite(file: string, write: (tmp: string) => Promise<void>, mode: number): Promise<void> {
  const tmp = tempPathFor(file);
  try {
    await write(tmp);
    await chmod(tmp, mode);
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** Installs `items` into `dir`; returns the installed names. Files of an earlier install not in `items` are removed. */
export async function install(dir: string, items: readonly InstallItem[]): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const previous = await readManifest(dir);
  const files: Manifest['files'] = [];
  for (const item of items) {
    const target = path.join(dir, item.name);
    try {
      await atomicWrite(target, (tmp) => copyFile(item.source, tmp), 0o755);
    } catch (err) {
      throw new InstallError(
        'INSTALL_FAILED',
        `cannot install ${item.source} as ${target}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    files.push({ name: item.name, sha256: await fileSha256(target) });
  }
  const manifest: Manifest = { kind: 'netplumbInstallV1', files };
  await atomicWrite(
    path.join(dir, MANIFEST),
    (tmp) => writeFile(tmp, `${JSON.stringify(manifest, null, 2)}\n`),
    0o644,
  );
  for (const old of previous?.files ?? []) {
    if (!items.some((i) => i.name === old.name)) await removeIfOurs(dir, old);
  }
  return files.map((f) => f.name);
}

async function removeIfOurs(
  dir: string,
  f: Manifest['files'][number],
): Promise<'removed' | 'changed' | 'absent'> {
  const file = path.join(dir, f.name);
  let digest: string;
  try {
    digest = await fileSha256(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw err;
  }
  if (digest !== f.sha256) return 'changed';
  await unlink(file);
  return 'removed';
}

export interface UninstallReport {
  readonly removed: string[];
  /** Replaced by someone else since the install: left in place. */
  readonly kept: string[];
}

/** Removes what the manifest in `dir` lists (if unchanged), then the manifest. */
export async function uninstall(dir: string): Promise<UninstallReport> {
  const manifest = await readManifest(dir);
  const report = { removed: [] as string[], kept: [] as string[] };
  if (manifest === undefined) return report;
  for (const f of manifest.files) {
    const r = await removeIfOurs(dir, f);
    if (r === 'removed') report.removed.push(f.name);
    if (r === 'changed') report.kept.push(f.name);
  }
  await unlink(path.join(dir, MANIFEST));
  return report;
}
