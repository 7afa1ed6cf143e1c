// Small file-system questions asked in several layers, answered one way.
import { access, lstat } from 'node:fs/promises';

/** Whether `p` exists (following symlinks: a dangling link does not exist). */
export async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** Whether `p` exists as a directory entry, a dangling symlink included. */
export async function entryExists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}
