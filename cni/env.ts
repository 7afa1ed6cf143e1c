// The CNI_* environment of a plugin invocation, validated with the spec's required-variable rules
// (SPEC.md "Parameters"): ADD/CHECK need CONTAINERID, NETNS, IFNAME; DEL needs CONTAINERID and
// IFNAME (NETNS optional); GC needs PATH; VERSION and STATUS need only COMMAND.
import { CniError, CniErrorCode } from './errors.js';

export const CniCommand = {
  Add: 'ADD',
  Del: 'DEL',
  Check: 'CHECK',
  Version: 'VERSION',
  Status: 'STATUS',
  Gc: 'GC',
} as const;
export type CniCommand = (typeof CniCommand)[keyof typeof CniCommand];

const COMMANDS: readonly string[] = Object.values(CniCommand);

export function isCniCommand(v: string): v is CniCommand {
  return COMMANDS.includes(v);
}

/** One `K=V` pair of CNI_ARGS, in order. */
export type CniArg = readonly [key: string, value: string];

export interface CniEnv {
  readonly command: CniCommand;
  /** Empty for VERSION/STATUS/GC. */
  readonly containerId: string;
  /** Undefined when CNI_NETNS is unset or empty (allowed for DEL). */
  readonly netns: string | undefined;
  readonly ifname: string;
  readonly args: readonly CniArg[];
  readonly path: readonly string[];
}

type EnvMap = Readonly<Record<string, string | undefined>>;

const REQUIRED: Record<CniCommand, readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
  GC: ['CNI_PATH'],
  VERSION: [],
  STATUS: [],
};

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Linux interface-name rules: 1..15 bytes, not `.`/`..`, no `/`, `:` or whitespace. */
export function interfaceNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (Buffer.byteLength(name) > 15) return `is longer than 15 characters`;
  if (name === '.' || name === '..') return `may not be "." or ".."`;
  if (/[/:\s]/.test(name)) return `may not contain "/", ":" or whitespace`;
  return undefined;
}

/** Parses `K=V;K2=V2` (the value may itself contain `=`); empty items are skipped. */
export function parseCniArgs(raw: string | undefined): CniArg[] {
  if (raw === undefined || raw.trim() === '') return [];
  const out: CniArg[] = [];
  for (const item of raw.split(';')) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) {
      throw new CniError(
        CniErrorCode.InvalidEnvironmentVariables,
        `CNI_ARGS: invalid pair "${item}" (expected KEY=VALUE items separated by ";")`,
      );
    }
    out.push([item.slice(0, eq), item.slice(eq + 1)]);
  }
  return out;
}

export function formatCniArgs(args: readonly CniArg[]): string {
  return args.map(([k, v]) => `${k}=${v}`).join(';');
}

/** Last value of `key` in CNI_ARGS, if any. */
export function cniArg(args: readonly CniArg[], key: string): string | undefined {
  let found: string | undefined;
  for (const [k, v] of args) if (k === key) found = v;
  return found;
}

/** Validates the CNI_* variables; throws CniError 4 naming every missing or invalid variable. */
export function parseCniEnv(env: EnvMap): CniEnv {
  const command = env['CNI_COMMAND'];
  if (command === undefined || command === '') {
    throw new CniError(
      CniErrorCode.InvalidEnvironmentVariables,
      'required env variables [CNI_COMMAND] missing',
    );
  }
  if (!isCniCommand(command)) {
    throw new CniError(
      CniErrorCode.InvalidEnvironmentVariables,
      `unknown CNI_COMMAND "${command}" (expected one of ${COMMANDS.join(', ')})`,
    );
  }
  const missing = REQUIRED[command].filter((k) => (env[k] ?? '') === '');
  if (missing.length > 0) {
    throw new CniError(
      CniErrorCode.InvalidEnvironmentVariables,
      `required env variables [${missing.join(',')}] missing for ${command}`,
    );
  }
  const containerId = env['CNI_CONTAINERID'] ?? '';
  const ifname = env['CNI_IFNAME'] ?? '';
  if (command === 'ADD' || command === 'DEL' || command === 'CHECK') {
    if (!CONTAINER_ID.test(containerId)) {
      throw new CniError(
        CniErrorCode.InvalidEnvironmentVariables,
        `CNI_CONTAINERID "${containerId}" is invalid: it must start with a letter or digit and contain only letters, digits, "_", "." and "-"`,
      );
    }
    const problem = interfaceNameProblem(ifname);
    if (problem !== undefined) {
      throw new CniError(CniErrorCode.InvalidEnvironmentVariables, `CNI_IFNAME "${ifname}" ${problem}`);
    }
  }
  const netns = env['CNI_NETNS'];
  return {
    command,
    containerId,
    netns: netns === undefined || netns === '' ? undefined : netns,
    ifname,
    args: parseCniArgs(env['CNI_ARGS']),
    path: (env['CNI_PATH'] ?? '').split(':').filter((p) => p !== ''),
  };
}
