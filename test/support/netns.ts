// Real kernel objects for tests: named netns and veth pairs standing in for VF netdevs.
// Names carry a caller prefix and a random suffix so parallel test files never collide.
import { randomBytes } from 'node:crypto';
import { createCommandRunner } from '../../lib/command.js';

const run = createCommandRunner();

export function uniqueName(prefix: string): string {
  const name = `${prefix}${randomBytes(3).toString('hex')}`;
  if (name.length > 15) throw new Error(`interface name ${name} exceeds 15 characters; shorten the prefix`);
  return name;
}

export interface TestNetns {
  readonly name: string;
  readonly path: string;
  remove(): Promise<void>;
}

export async function createTestNetns(prefix: string): Promise<TestNetns> {
  const name = uniqueName(prefix);
  await run(['ip', 'netns', 'add', name]);
  return {
    name,
    path: `/run/netns/${name}`,
    async remove() {
      await run(['ip', 'netns', 'del', name]).catch(() => undefined);
    },
  };
}

export interface TestVeth {
  /** The end left in the host netns (the "VF netdev"). */
  readonly name: string;
  readonly peer: string;
  remove(): Promise<void>;
}

/** A veth pair in the host netns; `remove` deletes it wherever the host end is now (if still here). */
export async function createTestVeth(prefix: string): Promise<TestVeth> {
  const name = uniqueName(prefix);
  const peer = uniqueName(prefix);
  await run(['ip', 'link', 'add', name, 'type', 'veth', 'peer', 'name', peer]);
  return {
    name,
    peer,
    async remove() {
      await run(['ip', 'link', 'del', peer]).catch(() => undefined);
      await run(['ip', 'link', 'del', name]).catch(() => undefined);
    },
  };
}
