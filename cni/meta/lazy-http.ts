// node:http and node:https, loaded on first use (createRequire): a short-lived process that talks to
// the API through kube-wire.ts never needs them, and loading them is ~1.5 ms of its start.
import type http from 'node:http';
import type https from 'node:https';
import { createRequire } from 'node:module';

const builtin = createRequire(import.meta.url);

export const httpModule = (): typeof http => builtin('node:http') as typeof http;
export const httpsModule = (): typeof https => builtin('node:https') as typeof https;
