// Netns liveness: sriov-cni treats "the owner's netns still opens" as "the VF is still in use".
import { open } from 'node:fs/promises';

/** True when `nsPath` can be opened (a named netns, or /proc/<pid>/ns/net of a live process). */
export async function netnsAlive(nsPath: string): Promise<boolean> {
  try {
    const handle = await open(nsPath, 'r');
    await handle.close();
    return true;
  } catch {
    return false;
  }
}
