// Builds netplumb's C programs into dist/ through the one C build (cni/daemon/c-build.ts):
// dist/shim/netplumb-shim and dist/spawner/netplumb-spawner, both static (a failed static link
// fails this script). Run by `npm run build:shim` (hack/build-shim.sh) and the Dockerfile.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { C_FLAGS } from '../cni/daemon/c-build.js';
import { buildShim } from '../cni/daemon/shim-build.js';
import { buildSpawner } from '../cni/daemon/spawner/build.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const shim = await buildShim(path.join(root, 'dist', 'shim', 'netplumb-shim'), { force: true });
const spawner = await buildSpawner(path.join(root, 'dist', 'spawner', 'netplumb-spawner'), { force: true });
process.stdout.write(`${shim.file}\n${spawner.file}\n(static; cc ${C_FLAGS.join(' ')})\n`);
