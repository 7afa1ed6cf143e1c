// How the CNI daemon starts a delegate, the alternatives side by side (`npm run bench -- daemon`):
//   child_process: Node's spawn, which fork()s this process (page tables of its whole heap) and
//                  blocks the event loop until the child has exec'd;
//   netplumb-spawner: the daemon's helper (cni/daemon/spawner), posix_spawn from a tiny process.
// This process first grows to a daemon-like size (~100 MiB RSS of heap and buffers) so the fork
// costs what it costs in the daemon. Each way runs the same executable (a Debian CNI plugin's
// VERSION) n times at concurrency 1 and 16; reported: per-call latency and how long the event loop
// was blocked (perf_hooks event-loop delay, max and p99), which is what delays every other request.
// The whole-pod comparison (floor / thick / thin) is bench/cni-pod.ts.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { buildSpawner } from '../cni/daemon/spawner/build.js';
import { createHelperSpawner } from '../cni/daemon/spawner/client.js';
import { childProcessSpawner } from '../cni/exec.js';
import type { ProcessSpawner } from '../cni/exec.js';
import { CNI_BIN, pct } from './cni-pod-support.js';
import type { Reporter } from './types.js';

/** ~100 MiB of live heap objects and touched buffers, like the daemon before issue 16. */
function ballast(): unknown[] {
  const objects = Array.from({ length: 600_000 }, (_, i) => ({ i, s: `item-${i}`, a: [i, i + 1] }));
  return [objects, Buffer.alloc(48 << 20, 1)];
}

interface Phase {
  readonly perCallMs: number[];
  readonly loopMaxMs: number;
  readonly loopP99Ms: number;
}

async function phase(spawner: ProcessSpawner, n: number, c: number): Promise<Phase> {
  const file = path.join(CNI_BIN, 'macvlan');
  const env = { CNI_COMMAND: 'VERSION', PATH: '/usr/bin:/bin' };
  const perCallMs: number[] = [];
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  let next = 0;
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (next < n) {
        next++;
        const t0 = performance.now();
        const r = await spawner.run(file, env, '{"cniVersion":"1.0.0"}', 30_000);
        if (r.exitCode !== 0) throw new Error(`macvlan VERSION failed: ${r.stderr}`);
        perCallMs.push(performance.now() - t0);
      }
    }),
  );
  h.disable();
  return { perCallMs, loopMaxMs: h.max / 1e6, loopP99Ms: h.percentile(99) / 1e6 };
}

export async function run(report: Reporter): Promise<void> {
  const keep = ballast();
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'np-bench-spawn-'));
  const helper = createHelperSpawner({
    helper: (await buildSpawner(path.join(tmp, 'netplumb-spawner'))).file,
  });
  try {
    const rssMiB = process.memoryUsage().rss / 2 ** 20;
    const ways: [string, ProcessSpawner][] = [
      ['child_process (fork of this process)', childProcessSpawner],
      ['netplumb-spawner (posix_spawn helper)', helper],
    ];
    for (const c of [1, 16]) {
      const n = c === 1 ? 100 : 320;
      const results: Phase[] = [];
      // Interleaved in halves so that machine load hits both ways alike.
      for (let half = 0; half < 2; half++) {
        for (const [i, [, s]] of ways.entries()) {
          const p = await phase(s, n / 2, c);
          const prev = results[i];
          results[i] =
            prev === undefined
              ? p
              : {
                  perCallMs: [...prev.perCallMs, ...p.perCallMs],
                  loopMaxMs: Math.max(prev.loopMaxMs, p.loopMaxMs),
                  loopP99Ms: Math.max(prev.loopP99Ms, p.loopP99Ms),
                };
        }
      }
      const base = pct(results[1]?.perCallMs ?? [], 50);
      for (const [i, [name]] of ways.entries()) {
        const r = results[i];
        if (r === undefined) continue;
        report({
          name: `delegate start, c=${c}: ${name}`,
          medianMs: pct(r.perCallMs, 50),
          p99Ms: pct(r.perCallMs, 99),
          samples: r.perCallMs.length,
          extra: {
            eventLoopBlockedMaxMs: r.loopMaxMs,
            eventLoopDelayP99Ms: r.loopP99Ms,
            vsSpawner: `${(pct(r.perCallMs, 50) / base).toFixed(2)}x`,
            processRssMiB: rssMiB,
            load1: os.loadavg()[0] ?? 0,
          },
        });
      }
    }
  } finally {
    await helper.close();
    await rm(tmp, { recursive: true, force: true });
    keep.length = 0;
  }
}
