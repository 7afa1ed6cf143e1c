// admission.k8s.io/v1 AdmissionReview in, AdmissionReview out. Any body is answered: a body that is
// not an AdmissionReview v1 is a 400 with a JSON reason; a Pod CREATE gets the patch and warnings of
// computeMutation; everything else is allowed unchanged.
import { formatIssues } from '../lib/config-path.js';
import { z } from 'zod';
import type { JsonObject } from '../lib/json.js';
import { applySwitches } from './control-switches.js';
import type { ControlSwitches } from './control-switches.js';
import {
  AdmissionDenial,
  computeMutation,
  defaultNetworkOf,
  nadKey,
  networksOf,
  targetContainer,
} from './mutate.js';
import type { Mutation, MutationOptions, NadLookup } from './mutate.js';
import { podView } from './pod.js';
import { injectedAnnotations, withInjected } from './user-injections.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';
/** Kubernetes truncates long warnings and many of them; keep them readable. */
const MAX_WARNINGS = 16;
const MAX_WARNING_CHARS = 256;

const reviewSchema = z.object({
  apiVersion: z.literal(ADMISSION_API_VERSION),
  kind: z.literal('AdmissionReview'),
  request: z.object({
    uid: z.string().min(1).max(128),
    kind: z.object({ group: z.string(), version: z.string(), kind: z.string() }),
    operation: z.string(),
    namespace: z.string().optional(),
    object: z.unknown(),
  }),
});

export type Outcome = 'mutated' | 'unchanged' | 'skipped' | 'denied' | 'invalid';

export interface ReviewResult {
  readonly status: number;
  readonly body: JsonObject;
  readonly outcome: Outcome;
  readonly mutation?: Mutation;
}

export interface ReviewDeps {
  /** The command line's options. */
  readonly options: MutationOptions;
  /** The ConfigMap's switches now (read at each admission, so a change applies to the next one). */
  readonly switches?: () => ControlSwitches;
  /** A fresh lookup function per admission (see NadSource.session). */
  readonly lookups: () => (namespace: string, name: string) => NadLookup | Promise<NadLookup>;
}

function invalid(reason: string): ReviewResult {
  return { status: 400, body: { error: reason.slice(0, 512) }, outcome: 'invalid' };
}

function respond(uid: string, response: JsonObject): JsonObject {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response: { uid, ...response } };
}

function clip(warnings: readonly string[]): string[] {
  const out = warnings.slice(0, MAX_WARNINGS);
  if (warnings.length > MAX_WARNINGS)
    out[MAX_WARNINGS - 1] = `… and ${warnings.length - MAX_WARNINGS + 1} more warnings`;
  return out
    .map((w) => `netplumb-webhook: ${w}`)
    .map((w) => (w.length > MAX_WARNING_CHARS ? `${w.slice(0, MAX_WARNING_CHARS - 1)}…` : w));
}

function parseReview(text: string): z.infer<typeof reviewSchema> | string {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return `body is not JSON: ${(err as Error).message}`;
  }
  const parsed = reviewSchema.safeParse(raw);
  if (!parsed.success) {
    return `not an ${ADMISSION_API_VERSION} AdmissionReview: ${formatIssues(parsed.error.issues)}`;
  }
  return parsed.data;
}

/** Each distinct NAD once; cache hits come back synchronously, only misses are awaited (in parallel). */
async function lookupAll(
  deps: ReviewDeps,
  keys: readonly { namespace: string; name: string }[],
): Promise<Map<string, NadLookup>> {
  const lookup = deps.lookups();
  const out = new Map<string, NadLookup>();
  const pending: Promise<void>[] = [];
  for (const k of keys) {
    const key = nadKey(k);
    if (out.has(key)) continue;
    const r = lookup(k.namespace, k.name);
    if (r instanceof Promise) {
      out.set(key, { kind: 'unavailable', reason: 'not looked up' });
      pending.push(
        r.then((v) => {
          out.set(key, v);
        }),
      );
    } else out.set(key, r);
  }
  if (pending.length > 0) await Promise.all(pending);
  return out;
}

/** Answers one request body (the raw text the apiserver POSTed); throws only on a bug. */
export async function handleReview(text: string, deps: ReviewDeps): Promise<ReviewResult> {
  const review = parseReview(text);
  if (typeof review === 'string') return invalid(review);
  const { request } = review;
  const isPodCreate =
    request.kind.group === '' && request.kind.kind === 'Pod' && request.operation === 'CREATE';
  if (!isPodCreate) return { status: 200, body: respond(request.uid, { allowed: true }), outcome: 'skipped' };
  const pod = podView(request.object, request.namespace ?? '');
  const options = deps.switches === undefined ? deps.options : applySwitches(deps.options, deps.switches());
  try {
    const selections = networksOf(pod, options);
    const cluster = defaultNetworkOf(pod, options);
    targetContainer(withInjected(pod, injectedAnnotations(pod, options.userInjections)));
    const wanted = cluster === undefined ? selections : [...selections, cluster];
    const mutation = computeMutation(pod, selections, await lookupAll(deps, wanted), options, cluster);
    const response: JsonObject = { allowed: true };
    if (mutation.patch.length > 0) {
      response['patchType'] = 'JSONPatch';
      response['patch'] = Buffer.from(JSON.stringify(mutation.patch)).toString('base64');
    }
    if (mutation.warnings.length > 0) response['warnings'] = clip(mutation.warnings);
    const outcome = mutation.patch.length > 0 ? 'mutated' : 'unchanged';
    return { status: 200, body: respond(request.uid, response), outcome, mutation };
  } catch (err) {
    if (!(err instanceof AdmissionDenial)) throw err;
    const status = { code: 400, reason: 'BadRequest', message: `netplumb-webhook: ${err.message}` };
    return { status: 200, body: respond(request.uid, { allowed: false, status }), outcome: 'denied' };
  }
}
