// Builds the self-contained host executables into dist/sea/ (npm run build:sea): `netplumb install`
// ships them to hosts without Node.js. dist/sea/netplumb-cni-node is the Node single executable and
// dist/sea/netplumb-cni the static launcher the runtime runs (it starts netplumb-spawner, then
// becomes netplumb-cni-node). Also builds the C launcher of daemon mode into dist/shim/.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSea } from '../cni/daemon/sea-build.js';
import { buildShim } from '../cni/daemon/shim-build.js';
import { buildLauncher } from '../cni/daemon/spawner/build.js';

let root = path.dirname(fileURLToPath(import.meta.url));
while (path.basename(root) === 'hack' || path.basename(root) === 'dist') root = path.dirname(root);

const shim = await buildShim(path.join(root, 'dist', 'shim', 'netplumb-shim'), { force: true });
process.stdout.write(`${shim.file} (${shim.static ? 'static' : 'dynamic'})\n`);
const launcher = await buildLauncher(path.join(root, 'dist', 'sea', 'netplumb-cni'), { force: true });
process.stdout.write(`${launcher.file} (static)\n`);
const out = path.join(root, 'dist', 'sea', 'netplumb-cni-node');
const size = await buildSea({ root, entry: 'bin/netplumb-cni.ts', out });
process.stdout.write(`${out} (${(size / 2 ** 20).toFixed(0)} MiB)\n`);
