// network-resources-injector's runtime switches, read from the ConfigMap it watches
// (`nri-control-switches`, key `config.json`, in the webhook's namespace), so an NRI user's
// ConfigMap keeps working unchanged:
//   {"features": {"enableHugePageDownApi": true, "enableHonorExistingResources": false},
//    "user-defined-injections": {"<pod label>": {"op": "add", "path": "/metadata/annotations",
//                                                "value": {"<annotation>": "<value>"}}}}
// A feature set in the map overrides the command line; one absent from it (or the whole ConfigMap
// absent, or a config.json that does not parse) takes the command-line value. Pure.
import { z } from 'zod';
import type { MutationOptions } from './mutate.js';
import type { UserInjection } from './user-injections.js';

export const CONTROL_SWITCHES_CONFIGMAP = 'nri-control-switches';
export const CONTROL_SWITCHES_KEY = 'config.json';
/** An operator's ConfigMap, but still bounded: more injections than this are ignored (said). */
const MAX_INJECTIONS = 64;

export interface ControlSwitches {
  /** `features.enableHugePageDownApi`: hugepages files (and the podnetinfo volume) on or off. */
  readonly hugepages: boolean | undefined;
  /** `features.enableHonorExistingResources`. */
  readonly honorExistingResources: boolean | undefined;
  readonly injections: readonly UserInjection[];
  /** What was ignored, for the log. */
  readonly problems: readonly string[];
}

export const NO_SWITCHES: ControlSwitches = {
  hugepages: undefined,
  honorExistingResources: undefined,
  injections: [],
  problems: [],
};

const configSchema = z.object({
  features: z.record(z.string(), z.unknown()).optional(),
  'user-defined-injections': z.record(z.string(), z.unknown()).optional(),
});

const injectionSchema = z.object({
  op: z.literal('add'),
  path: z.literal('/metadata/annotations'),
  value: z.record(z.string().min(1).max(317), z.string()),
});

function feature(features: Record<string, unknown> | undefined, key: string, problems: string[]) {
  const v = features?.[key];
  if (v === undefined || typeof v === 'boolean') return v;
  problems.push(`features.${key}: not true/false, ignored`);
  return undefined;
}

function injectionsOf(raw: Record<string, unknown> | undefined, problems: string[]): UserInjection[] {
  const out: UserInjection[] = [];
  for (const [label, value] of Object.entries(raw ?? {})) {
    const parsed = injectionSchema.safeParse(value);
    if (!parsed.success) {
      problems.push(
        `user-defined-injections.${label}: ignored (only {"op": "add", "path": "/metadata/annotations", "value": {name: string}} is supported)`,
      );
    } else if (out.length >= MAX_INJECTIONS) {
      problems.push(`user-defined-injections.${label}: ignored (more than ${MAX_INJECTIONS})`);
    } else out.push({ label, annotations: parsed.data.value });
  }
  return out;
}

/** Reads the ConfigMap's `data` (undefined: the ConfigMap does not exist). */
export function parseControlSwitches(data: Readonly<Record<string, string>> | undefined): ControlSwitches {
  const text = data?.[CONTROL_SWITCHES_KEY];
  if (data === undefined) return NO_SWITCHES;
  if (text === undefined) return { ...NO_SWITCHES, problems: [`no ${CONTROL_SWITCHES_KEY} key`] };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ...NO_SWITCHES, problems: [`${CONTROL_SWITCHES_KEY} is not JSON: ${(err as Error).message}`] };
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    return {
      ...NO_SWITCHES,
      problems: [`${CONTROL_SWITCHES_KEY}: "features" and "user-defined-injections" must be objects`],
    };
  }
  const problems: string[] = [];
  const { features } = parsed.data;
  return {
    hugepages: feature(features, 'enableHugePageDownApi', problems),
    honorExistingResources: feature(features, 'enableHonorExistingResources', problems),
    injections: injectionsOf(parsed.data['user-defined-injections'], problems),
    problems,
  };
}

/** The options of the next admission: the command line's, overridden by the switches that are set. */
export function applySwitches(base: MutationOptions, s: ControlSwitches): MutationOptions {
  if (s === NO_SWITCHES) return base;
  const hugepages = s.hugepages ?? base.downwardApiHugepages ?? false;
  return {
    ...base,
    downwardApi: base.downwardApi || s.hugepages === true,
    downwardApiHugepages: hugepages,
    honorExistingResources: s.honorExistingResources ?? base.honorExistingResources ?? false,
    userInjections: [...(base.userInjections ?? []), ...s.injections],
  };
}
