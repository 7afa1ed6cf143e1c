// Builds the self-contained host executables into dist/sea/ (npm run build:sea): `netplumb install`
// ships them to hosts without Node.js. Also builds the C launcher into dist/shim/.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSea } from '../cni/daemon/sea-build.js';
import { buildShim } from '../cni/daemon/shim-build.js';

let root = path.dirname(fileURLToPath(import.meta.url));
while (path.basename(root) === 'hack' || path.basename(root) === 'dist') root = path.dirname(root);

const shim = await buildShim(path.join(root, 'dist', 'shim', 'netplumb-shim'), { force: true });
process.stdout.write(`${shim.file} (${shim.static ? 'static' : 'dynamic'})\n`);
const out = path.join(root, 'dist', 'sea', 'netplumb-cni');
const size = await buildSea({ root, entry: 'bin/netplumb-cni.ts', out });
process.stdout.write(`${out} (${(size / 2 ** 20).toFixed(0)} MiB)\n`);
