// hack/mknode: writes simulated nodes with sriov/simulated-node.ts (see the shell wrapper).
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { entryExists as exists } from '../lib/fs.js';
import { generatedNode, isNodePresetName, NODE_PRESETS } from '../sim/simulated-node-presets.js';
import { SimulatedNodeError } from '../sim/simulated-node.js';
import type { SimulatedNodeBuilder } from '../sim/simulated-node.js';
import type { SystemOptions } from '../sim/simulated-system.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'nodes');

function count(flag: string) {
  return (raw: string): number => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${flag} takes a non-negative integer`);
    return n;
  };
}

function parseSystem(raw: string): SystemOptions {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new InvalidArgumentError('--system takes a JSON object, e.g. \'{"cmdline":"root=/dev/sda1"}\'');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new InvalidArgumentError('--system takes a JSON object');
  return parsed;
}

function withSystem(builder: SimulatedNodeBuilder, flags: Flags): SimulatedNodeBuilder {
  return flags.system === undefined ? builder : builder.system(flags.system);
}

async function writeNode(builder: SimulatedNodeBuilder, out: string, force: boolean): Promise<void> {
  if (await exists(out)) {
    if (!force) {
      program.error(`error: ${out} exists; pass --force to replace it`);
      return;
    }
    await rm(out, { recursive: true, force: true });
  }
  const node = await builder.write(out);
  process.stderr.write(
    `mknode: ${out}: ${node.pfAddresses.length} PFs, ${node.vfAddresses.length} VFs (sysfs ${node.sysfsRoot}, links ${node.linksFile})\n`,
  );
}

interface Flags {
  readonly pfs?: number;
  readonly vfs?: number;
  readonly preset?: string;
  readonly out?: string;
  readonly fixtures?: boolean;
  readonly force?: boolean;
  readonly system?: SystemOptions;
}

const program = new Command('mknode')
  .description(
    'Write a simulated node: <out>/sys (kernel-style sysfs with real symlinks) and <out>/links.json',
  )
  .option('--pfs <n>', 'generated node: number of PFs', count('--pfs'))
  .option('--vfs <n>', 'generated node: VFs per PF', count('--vfs'))
  .option('--preset <name>', `a named node: ${Object.keys(NODE_PRESETS).join(', ')}`)
  .option('--out <dir>', 'folder to write (must not exist unless --force)')
  .option(
    '--fixtures',
    `regenerate every preset under ${path.relative(ROOT, FIXTURES)}/<name> (implies --force)`,
  )
  .option('--force', 'replace an existing --out folder')
  .option(
    '--system <json>',
    'node-wide facts as JSON (sim/simulated-system.ts SystemOptions), e.g. \'{"isolatedCpus":"2-7","modules":[]}\'',
    parseSystem,
  )
  .action(async (flags: Flags) => {
    if (flags.fixtures === true) {
      for (const [name, preset] of Object.entries(NODE_PRESETS)) {
        await writeNode(preset(), path.join(FIXTURES, name), true);
      }
      return;
    }
    const out = flags.out;
    if (out === undefined) {
      program.error('error: --out <dir> is required (or use --fixtures)');
      return;
    }
    const preset = flags.preset;
    if (preset !== undefined && (flags.pfs !== undefined || flags.vfs !== undefined)) {
      program.error('error: --preset describes the whole node; drop --pfs/--vfs or drop --preset');
      return;
    }
    if (preset !== undefined) {
      if (!isNodePresetName(preset)) {
        program.error(
          `error: --preset ${preset}: unknown; use one of ${Object.keys(NODE_PRESETS).join(', ')}`,
        );
        return;
      }
      await writeNode(withSystem(NODE_PRESETS[preset](), flags), path.resolve(out), flags.force === true);
      return;
    }
    if (flags.pfs === undefined) {
      program.error('error: give --pfs N [--vfs M], --preset NAME, or --fixtures');
      return;
    }
    await writeNode(
      withSystem(generatedNode({ pfs: flags.pfs, vfs: flags.vfs ?? 0 }), flags),
      path.resolve(out),
      flags.force === true,
    );
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // Builder input errors (e.g. --pfs out of range) are user errors: one line, no stack.
  if (!(err instanceof SimulatedNodeError)) throw err;
  program.error(`error: ${err.message}`);
}
