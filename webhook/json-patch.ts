// RFC 6902 JSON Patch operations and RFC 6901 pointers: a key such as `intel.com/pool` becomes the
// token `intel.com~1pool` (`~` → `~0` first, then `/` → `~1`). Pure.
import type { JsonValue } from '../lib/json.js';

export type PatchOperation =
  | { readonly op: 'add'; readonly path: string; readonly value: JsonValue }
  | { readonly op: 'replace'; readonly path: string; readonly value: JsonValue };

/** One RFC 6901 reference token. */
export function escapePointerToken(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** `['spec', 'containers', 0, 'resources']` → `/spec/containers/0/resources`. */
export function pointer(tokens: readonly (string | number)[]): string {
  return tokens.map((t) => `/${typeof t === 'number' ? String(t) : escapePointerToken(t)}`).join('');
}
