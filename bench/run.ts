// `npm run bench`: runs every benchmark module in this folder (or those named on the command line)
// and prints medians, p99s, ratios and whether each goal was met. `--json` prints machine output.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchModule, BenchResult } from './types.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ext = path.extname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const json = args.includes('--json');
const only = args.filter((a) => !a.startsWith('--'));

function isBenchModule(value: unknown): value is BenchModule {
  return (
    typeof value === 'object' && value !== null && typeof (value as { run?: unknown }).run === 'function'
  );
}

function fmt(ms: number | undefined): string {
  if (ms === undefined) return '';
  return ms >= 100 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3);
}

const files = (await readdir(here))
  .filter(
    (f) => f.endsWith(ext) && !f.endsWith(`.d${ext}`) && !['run', 'types'].includes(path.basename(f, ext)),
  )
  .filter((f) => only.length === 0 || only.includes(path.basename(f, ext)))
  .sort();

const results: { module: string; result: BenchResult }[] = [];
let failed = false;
for (const file of files) {
  const module = path.basename(file, ext);
  const loaded: unknown = await import(pathToFileURL(path.join(here, file)).href);
  if (!isBenchModule(loaded)) continue;
  if (!json) process.stdout.write(`\n# ${module}\n`);
  try {
    await loaded.run((result) => {
      results.push({ module, result });
      if (json) return;
      const goal = result.goal ? ` goal ${result.goal}: ${result.goalMet === false ? 'MISSED' : 'met'}` : '';
      const p99 = result.p99Ms === undefined ? '' : `  p99 ${fmt(result.p99Ms)} ms`;
      const extra = Object.entries(result.extra ?? {})
        .map(([k, v]) => `${k}=${typeof v === 'number' ? fmt(v) : v}`)
        .join('  ');
      process.stdout.write(
        `  ${result.name.padEnd(52)} median ${fmt(result.medianMs).padStart(8)} ms${p99}  (n=${result.samples})${goal}${extra ? `\n      ${extra}` : ''}\n`,
      );
    });
  } catch (err) {
    failed = true;
    process.stderr.write(
      `bench ${module} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
  }
}
if (json) process.stdout.write(`${JSON.stringify({ node: process.version, results }, null, 2)}\n`);
process.exitCode = failed ? 1 : 0;
