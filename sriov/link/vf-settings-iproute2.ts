// PfVfSettings over iproute2: `ip link set dev <pf> vf N …` and `ip -json link show dev <pf>`.
// PFs live in the host netns, so no netns switching here.
import { CommandError, createCommandRunner } from '../../lib/command.js';
import type { CommandRunner } from '../../lib/command.js';
import { classifyIpError } from './iproute2.js';
import { LinkError, LinkErrorCode } from './link-ops.js';
import { describeVfChange, pfLinkJson, vfChangeArgs, vfSettingsFromIpJson } from './vf-settings.js';
import type { PfVfSettings } from './vf-settings.js';

export function createIproute2VfSettings(deps: { run?: CommandRunner } = {}): PfVfSettings {
  const run = deps.run ?? createCommandRunner();

  async function ip(argv: string[], what: string): Promise<string> {
    try {
      return (await run(['ip', ...argv])).stdout;
    } catch (error) {
      const stderr = error instanceof CommandError ? error.stderr : String(error);
      throw new LinkError(classifyIpError(stderr), `${what}: ${stderr.trim()}`, { cause: error });
    }
  }

  return {
    async read(pf, vf) {
      const out = await ip(['-json', 'link', 'show', 'dev', pf], `read VF table of ${pf}`);
      let raw: unknown;
      try {
        raw = JSON.parse(out);
      } catch (error) {
        throw new LinkError(LinkErrorCode.BAD_OUTPUT, `read VF table of ${pf}: not JSON`, { cause: error });
      }
      const parsed = pfLinkJson.safeParse(raw);
      if (!parsed.success) {
        throw new LinkError(LinkErrorCode.BAD_OUTPUT, `read VF table of ${pf}: ${parsed.error.message}`);
      }
      const entry = parsed.data[0]?.vfinfo_list?.find((e) => e.vf === vf);
      if (entry === undefined) {
        throw new LinkError(LinkErrorCode.NOT_FOUND, `PF ${pf} reports no VF ${vf} in its vfinfo_list`);
      }
      return vfSettingsFromIpJson(entry);
    },
    async set(pf, vf, change) {
      await ip(['link', 'set', 'dev', pf, ...vfChangeArgs(vf, change)], describeVfChange(pf, vf, change));
    },
  };
}
