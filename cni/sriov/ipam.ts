// IPAM delegation: the IPAM plugin named by `ipam.type` gets the complete network config on
// stdin and the same CNI_* environment (SPEC.md "Delegated plugins"), run through the CNI core's
// PluginRunner (a real exec of /usr/lib/cni/host-local, static, … in tests and production).
import { CniError, CniErrorCode } from '../errors.js';
import { checkPluginOutput } from '../exec.js';
import type { PluginRunner } from '../exec.js';
import { decodeResult } from '../result.js';
import type { CniResult } from '../result.js';

export type CniEnvMap = Readonly<Record<string, string | undefined>>;

export interface Ipam {
  add(type: string, stdin: string, env: CniEnvMap, cniVersion: string): Promise<CniResult>;
  del(type: string, stdin: string, env: CniEnvMap): Promise<void>;
  check(type: string, stdin: string, env: CniEnvMap): Promise<void>;
}

export function createIpam(runner: PluginRunner): Ipam {
  async function call(command: string, type: string, stdin: string, env: CniEnvMap): Promise<string> {
    const out = await runner.run(type, { env: { ...env, CNI_COMMAND: command }, stdin });
    return checkPluginOutput(type, out);
  }
  return {
    async add(type, stdin, env, cniVersion) {
      const text = await call('ADD', type, stdin, env);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (error) {
        throw new CniError(CniErrorCode.DecodingFailure, `IPAM plugin "${type}" printed no JSON result`, {
          cause: error,
        });
      }
      const result = decodeResult(json, cniVersion);
      if (result.ips.length === 0) {
        throw new CniError(
          CniErrorCode.InvalidNetworkConfig,
          `ipam: plugin "${type}" returned no IP address; give it a range/addresses or remove "ipam"`,
        );
      }
      return result;
    },
    async del(type, stdin, env) {
      await call('DEL', type, stdin, env);
    },
    async check(type, stdin, env) {
      await call('CHECK', type, stdin, env);
    },
  };
}
