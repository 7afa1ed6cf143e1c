// The `default-route` request of the networks annotation: after every delegate ran, the pod's
// default route of that family goes through the requested gateway on that attachment's interface
// (Multus SetDefaultGW/DeleteDefaultGW), and the routes in the results say so. Route changes run
// in the pod netns through a small port (iproute2 via nsenter in production).
import { createCommandRunner, type CommandRunner } from '../../lib/command.js';
import { CniError, CniErrorCode } from '../errors.js';
import { ipFamily } from '../result.js';
import type { CniResult, CniRoute } from '../result.js';

export interface PodRoutes {
  /** Removes every default route of `family` in the netns, then adds `default via gw dev ifname`. */
  replaceDefault(netns: string, family: 4 | 6, ifname: string, gw: string): Promise<void>;
}

export function createIproute2PodRoutes(run: CommandRunner = createCommandRunner()): PodRoutes {
  return {
    async replaceDefault(netns, family, ifname, gw) {
      const ip = (...args: string[]) => run(['nsenter', `--net=${netns}`, 'ip', `-${family}`, ...args]);
      try {
        for (let i = 0; i < 16; i++) {
          const { stdout } = await ip('route', 'show', 'default');
          if (stdout.trim() === '') break;
          await ip('route', 'del', 'default');
        }
        await ip('route', 'add', 'default', 'via', gw, 'dev', ifname);
      } catch (err) {
        throw new CniError(
          CniErrorCode.Internal,
          `cannot set the IPv${family} default route via ${gw} dev ${ifname} in ${netns}: ${(err as Error).message}`,
          { cause: err },
        );
      }
    },
  };
}

const defaultDst = (family: 4 | 6) => (family === 4 ? '0.0.0.0/0' : '::/0');

/** Results with the default routes of `family` moved to the attachment that asked for them. Pure. */
export function moveDefaultRoute(
  results: readonly CniResult[],
  target: number,
  family: 4 | 6,
  gw: string,
): CniResult[] {
  return results.map((r, i) => {
    const kept = r.routes.filter(
      (x) => !(x.dst === defaultDst(family) || (x.dst === 'default' && ipFamily(gw) === family)),
    );
    const routes: CniRoute[] = i === target ? [...kept, { dst: defaultDst(family), gw }] : kept;
    return { ...r, routes };
  });
}
