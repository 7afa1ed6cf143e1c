// Netns liveness: sriov-cni treats "the owner's netns still opens" as "the VF is still in use".
// Opening is not enough: a runtime may leave the (unmounted, empty) pin file behind, so the path
// must also be an nsfs inode.
import { statfs } from 'node:fs/promises';

const NSFS_MAGIC = 0x6e736673;

/** True when `nsPath` is a live network namespace (a pinned netns, or /proc/<pid>/ns/net of a live process). */
export async function netnsAlive(nsPath: string): Promise<boolean> {
  if (nsPath === '') return false;
  try {
    return (await statfs(nsPath)).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}
