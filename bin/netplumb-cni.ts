#!/usr/bin/env node
// Entry of the `netplumb-cni` meta-plugin executable (config `"type": "netplumb"`). A CNI runtime
// starts it once per call, so it answers what needs no plugin (the about line outside a call, and
// VERSION) from a module graph of a few constants, and loads the plugin (bin/netplumb-cni-main.ts:
// pino, zod, the delegate runner; the API client on first use) only for a real call.
import { aboutOutsideCniCall, versionWithoutPlugin } from '../cni/about.js';
import { SPEC_VERSIONS } from '../cni/version.js';

if (aboutOutsideCniCall('netplumb-cni', process.argv.slice(2), process.env)) process.exit(0);
const version = versionWithoutPlugin(process.env, SPEC_VERSIONS);
if (version !== undefined) process.stdout.write(`${version}\n`);
else {
  await (await import('./netplumb-cni-main.js')).main();
  // The answer is written (stdout and the logs are synchronous) and nothing is left to do: exit now,
  // without tearing the environment and the heap down first (~30 ms of a CNI call, per call).
  process.exit();
}
