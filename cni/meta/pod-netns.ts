// What ADD checks in the pod netns before the first side effect (Multus validates the netns and
// `validateIfName`s each interface): the netns opens, and no requested interface name is taken.
import { createCommandRunner, type CommandRunner } from '../../lib/command.js';
import { CniError, CniErrorCode } from '../errors.js';

export interface PodNetns {
  /** Interface names in the netns; throws CniError InvalidNetNs when it cannot be entered. */
  linkNames(netns: string): Promise<string[]>;
}

export function createIproute2PodNetns(run: CommandRunner = createCommandRunner()): PodNetns {
  return {
    async linkNames(netns) {
      let stdout: string;
      try {
        ({ stdout } = await run(['nsenter', `--net=${netns}`, 'ip', '-j', 'link', 'show']));
      } catch (err) {
        throw new CniError(
          CniErrorCode.InvalidNetNs,
          `CNI_NETNS ${netns} is not a network namespace that can be entered: ${(err as Error).message}`,
          { cause: err },
        );
      }
      const links = JSON.parse(stdout) as { ifname?: unknown }[];
      return links.map((l) => (typeof l.ifname === 'string' ? l.ifname : '')).filter((n) => n !== '');
    },
  };
}

/**
 * Starts listing the pod's interfaces at once (the listing is a process start: it overlaps the API
 * reads that come before the check) and answers that listing on the first `linkNames(netns)`; a
 * later call, or one for another netns, lists again. A listing that fails is reported only when it is
 * asked for (never as an unhandled rejection).
 */
export function prefetchLinkNames(port: PodNetns, netns: string): PodNetns {
  let early: Promise<string[]> | undefined = netns === '' ? undefined : port.linkNames(netns);
  early?.catch(() => undefined);
  return {
    linkNames(n) {
      const listed = n === netns ? early : undefined;
      early = undefined;
      return listed ?? port.linkNames(n);
    },
  };
}

/** Fails (code 7) when an interface the plan would create already exists in the pod. */
export async function checkPodNetns(
  port: PodNetns,
  netns: string,
  wanted: readonly { readonly name: string; readonly ifname: string }[],
): Promise<void> {
  if (netns === '') {
    throw new CniError(
      CniErrorCode.InvalidEnvironmentVariables,
      'CNI_NETNS is empty: ADD needs the pod netns',
    );
  }
  const present = new Set(await port.linkNames(netns));
  for (const w of wanted) {
    if (!present.has(w.ifname)) continue;
    throw new CniError(
      CniErrorCode.InvalidNetworkConfig,
      `interface ${w.ifname} (network "${w.name}") already exists in ${netns}: pick another "interface" or DEL the earlier attachment`,
    );
  }
}
