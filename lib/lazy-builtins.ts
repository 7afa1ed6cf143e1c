// Node built-ins loaded on first use (createRequire) instead of at a module's top level: a
// short-lived process pays for a module only when it runs the code that needs it. node:http and
// node:https: a thin call that talks to the API through cni/meta/kube-wire.ts never needs them
// (~1.5 ms of its start). node:child_process: a thin call started by the netplumb-cni launcher runs
// everything through netplumb-spawner (~1 ms of its start, with the node:dgram it pulls in).
import type childProcess from 'node:child_process';
import type http from 'node:http';
import type https from 'node:https';
import { createRequire } from 'node:module';

const builtin = createRequire(import.meta.url);

export const httpModule = (): typeof http => builtin('node:http') as typeof http;
export const httpsModule = (): typeof https => builtin('node:https') as typeof https;
export const childProcessModule = (): typeof childProcess =>
  builtin('node:child_process') as typeof childProcess;
