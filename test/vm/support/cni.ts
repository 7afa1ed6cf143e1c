// Runs a CNI plugin executable the way a container runtime does: CNI_* env, config on stdin,
// result (or error JSON) on stdout, exit code.
import { spawn } from 'node:child_process';

export interface CniCall {
  readonly command: 'ADD' | 'DEL' | 'CHECK' | 'VERSION';
  readonly containerId: string;
  readonly netns?: string;
  readonly ifname?: string;
  readonly args?: string;
  readonly path?: string;
  readonly env?: Readonly<Record<string, string>>;
}

export interface CniOutcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed as JSON, or null when it was empty. */
  readonly json: Record<string, unknown> | null;
}

export function execCni(plugin: string, call: CniCall, config: object): Promise<CniOutcome> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerId,
    CNI_IFNAME: call.ifname ?? 'net1',
    CNI_PATH: call.path ?? '/usr/lib/cni',
    ...(call.netns === undefined ? {} : { CNI_NETNS: call.netns }),
    ...(call.args === undefined ? {} : { CNI_ARGS: call.args }),
    ...call.env,
  };
  return new Promise((resolve, reject) => {
    const child = spawn(plugin, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      let json: Record<string, unknown> | null = null;
      try {
        json = stdout.trim() === '' ? null : (JSON.parse(stdout) as Record<string, unknown>);
      } catch {
        json = null;
      }
      resolve({ code, stdout, stderr, json });
    });
    child.stdin.end(JSON.stringify(config));
  });
}

/** Fails with the plugin's stderr and stdout when it did not exit 0. */
export function expectSuccess(outcome: CniOutcome, what: string): Record<string, unknown> {
  if (outcome.code !== 0) {
    throw new Error(`${what} exited ${outcome.code}: ${outcome.stdout} ${outcome.stderr}`);
  }
  return outcome.json ?? {};
}
