// Node discovery on a generated 1,024-VF node (8 PFs × 128 VFs): full discoverNode (sysfs +
// links.json) and the one-VF readVf lookup. Baseline in the same run: the SRIOV-DP way of mapping
// a VF to its PF (GetVFID: for every VF, glob the PF's virtfn* links and resolve each one until
// the VF's address turns up), doing the same per-device reads otherwise — O(VFs²) per PF.
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { discoverNode, readVf } from '../sriov/discover.js';
import { generatedNode } from '../sim/simulated-node-presets.js';
import { fileVfState } from '../sriov/vf-state.js';
import type { Reporter } from './types.js';

const PFS = 8;
const VFS = 128;
const RUNS = 25;
const BASELINE_RUNS = 5;

function sortedCopy(xs: readonly number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}
function quantile(xs: readonly number[], q: number): number {
  const s = sortedCopy(xs);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

async function sample(runs: number, f: () => unknown, cpu?: number[]): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c = process.cpuUsage();
    const t = performance.now();
    await f();
    out.push(performance.now() - t);
    const used = process.cpuUsage(c);
    cpu?.push((used.user + used.system) / 1000);
  }
  return out;
}

interface BaselineVf {
  pciAddress: string;
  pf: string;
  index: number;
  pfNetdev: string | undefined;
}

// SRIOV-DP's per-VF steps (pkg/utils: GetPfAddr, GetVFID, GetPfName), with the same attribute
// reads as our discovery so the difference is the mapping strategy.
function baselineDiscovery(sysfsRoot: string): BaselineVf[] {
  const bus = path.join(sysfsRoot, 'bus/pci/devices');
  const out: BaselineVf[] = [];
  for (const address of readdirSync(bus)) {
    const dev = path.join(bus, address);
    const modalias = readFileSync(path.join(dev, 'modalias'), 'latin1');
    if (!modalias.includes('bc02')) continue;
    readFileSync(path.join(dev, 'numa_node'), 'latin1');
    const physfn = path.join(dev, 'physfn');
    if (!existsSync(physfn)) continue;
    readlinkSync(path.join(dev, 'driver'));
    readlinkSync(path.join(dev, 'iommu_group'));
    const pf = path.basename(readlinkSync(physfn));
    const vfReal = realpathSync(dev);
    let index = -1;
    for (const e of readdirSync(physfn)) {
      if (!e.startsWith('virtfn')) continue;
      if (realpathSync(path.join(physfn, e)) === vfReal) {
        index = Number(e.slice(6));
        break;
      }
    }
    const pfNetdev = readdirSync(path.join(physfn, 'net'))[0];
    out.push({ pciAddress: address, pf, index, pfNetdev });
  }
  return out;
}

export async function run(report: Reporter): Promise<void> {
  // sysfs lives in memory; a tmpfs tree is the fair stand-in (a disk-backed one measures the disk).
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = await mkdtemp(path.join(base, 'np-node-bench-'));
  try {
    const node = await generatedNode({ pfs: PFS, vfs: VFS }).write(path.join(dir, 'node'));
    const discover = () => discoverNode({ sysfsRoot: node.sysfsRoot, vfState: fileVfState(node.linksFile) });
    const check = await discover();
    const vfCount = check.pfs.reduce((n, p) => n + p.vfs.length, 0);
    if (vfCount !== PFS * VFS || check.warnings.length > 0) {
      throw new Error(
        `discovery saw ${vfCount} VFs and ${check.warnings.length} warnings on the generated node`,
      );
    }
    const baselineCheck = baselineDiscovery(node.sysfsRoot);
    if (baselineCheck.length !== PFS * VFS || baselineCheck.some((v) => v.index < 0)) {
      throw new Error('baseline did not map every VF');
    }

    await sample(3, discover);
    // CPU time next to wall time: on a busy machine the wall clock mostly measures the wait for a core.
    const fullCpu: number[] = [];
    const full = await sample(RUNS, discover, fullCpu);
    const sysfsOnly = await sample(RUNS, () => discoverNode({ sysfsRoot: node.sysfsRoot, vfState: null }));
    const baseline = await sample(BASELINE_RUNS, () => baselineDiscovery(node.sysfsRoot));
    const fullMedian = quantile(full, 0.5);
    const baselineMedian = quantile(baseline, 0.5);
    report({
      name: `discovery: ${PFS} PFs × ${VFS} VFs (${PFS * VFS} VFs)`,
      medianMs: fullMedian,
      p99Ms: quantile(full, 0.99),
      samples: full.length,
      goal: '≤ 100 ms',
      goalMet: fullMedian <= 100,
      extra: {
        cpuMedianMs: quantile(fullCpu, 0.5),
        sysfsOnlyMedianMs: quantile(sysfsOnly, 0.5),
        baselinePerVfRescanMedianMs: baselineMedian,
        baselineSamples: baseline.length,
        speedupVsBaseline: baselineMedian / fullMedian,
        tree: base === '/dev/shm' ? 'tmpfs' : 'tmpdir',
      },
    });

    // One VF late in the last PF: the case where a per-VF virtfn scan costs the most.
    const last = check.pfs.at(-1)?.vfs.at(-1);
    if (!last) throw new Error('no VF to look up');
    const lookup = await sample(RUNS * 4, () => readVf(node.sysfsRoot, last.pciAddress));
    const scanOne = await sample(RUNS * 4, () => {
      const physfn = path.join(node.sysfsRoot, 'bus/pci/devices', last.pciAddress, 'physfn');
      const vfReal = realpathSync(path.join(node.sysfsRoot, 'bus/pci/devices', last.pciAddress));
      return readdirSync(physfn).find(
        (e) => e.startsWith('virtfn') && realpathSync(path.join(physfn, e)) === vfReal,
      );
    });
    const lookupMedian = quantile(lookup, 0.5);
    report({
      name: `readVf: VF ${last.index} of ${last.pfNetdev ?? last.pfPciAddress}`,
      medianMs: lookupMedian,
      p99Ms: quantile(lookup, 0.99),
      samples: lookup.length,
      extra: {
        baselineVirtfnScanMedianMs: quantile(scanOne, 0.5),
        ratioVsBaseline: quantile(scanOne, 0.5) / lookupMedian,
      },
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
