// netplumb webhook admission latency for a pod with 10 networks (10 NADs, 4 device pools, Downward
// API on), over HTTPS with a keep-alive client as the apiserver uses, in one run:
// - cached: NADs from the informer cache, the webhook in the bench process like the API server of
//   the baseline (so both see the same scheduling) — goal p99 ≤ 5 ms. It shares its heap with
//   client-node, the fake API server and the uncached webhook: their collections pause it too;
// - cached, own process: the same webhook in its own Node process, logging at info as deployed
//   (bench/webhook-child.ts), with its own GC pauses and event-loop delay: on a loaded machine its
//   tail is the scheduler's (a process woken per request);
// - uncached: a webhook with an empty cache, so each of the 10 NADs is read from the (fake, local)
//   API server: what a webhook without an informer pays;
// - baseline: one API round trip (GET of one NAD through client-node against the same API server);
// - the decision alone: handleReview in-process (no TLS/HTTP), the webhook's own cost.
// All five are interleaved per round (after a warm-up) so load drift on the shared machine hits
// them alike; the load average and the webhook process's GC pauses are printed with the figures.
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent } from 'node:https';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { createKubeClient } from '../cni/meta/kube-client-node.js';
import type { NadInfo } from '../cni/meta/kube.js';
import { startFakeApiServer } from '../sim/apiserver.js';
import { httpsRequest, memoryNadWatch, writeSecretDir } from '../test/support/webhook.js';
import { createCertificates } from '../webhook/certs.js';
import { handleReview } from '../webhook/review.js';
import { createNadSource } from '../webhook/nad-source.js';
import { startWebhook } from '../webhook/webhook.js';
import type { Reporter } from './types.js';
import type { ChildStart, ChildStats } from './webhook-child.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROUNDS = 2000;
const WARMUP = 200;
const NETWORKS = 10;
const SNI = 'netplumb-webhook.netplumb.svc';

function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? 0;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

function nads(): NadInfo[] {
  return Array.from({ length: NETWORKS }, (_, i) => ({
    namespace: 'default',
    name: `net-${i}`,
    config: JSON.stringify({ cniVersion: '1.0.0', name: `net-${i}`, type: 'sriov', vlan: 100 + i }),
    annotations: { 'k8s.v1.cni.cncf.io/resourceName': `intel.com/pool_${i % 4}` },
  }));
}

async function reviewBody(): Promise<string> {
  const review = JSON.parse(
    await readFile(path.join(ROOT, 'webhook', 'testdata', 'admission-review-v1.json'), 'utf8'),
  ) as { request: { object: { metadata: { annotations: Record<string, string> } } } };
  review.request.object.metadata.annotations['k8s.v1.cni.cncf.io/networks'] = nads()
    .map((n) => n.name)
    .join(',');
  return JSON.stringify(review);
}

/** Answers of the child's IPC channel, in order. */
function nextMessage(child: ChildProcess): Promise<unknown> {
  return new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => {
      reject(new Error(`webhook child exited ${String(code)}`));
    });
  });
}

async function startChild(start: ChildStart): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(path.join(ROOT, 'bench', 'webhook-child.ts'), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, NETPLUMB_BENCH_WEBHOOK_CHILD: '1' },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const ready = nextMessage(child);
  child.send(start);
  const { port } = (await ready) as { port: number };
  return { child, port };
}

export async function run(report: Reporter): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'netplumb-bench-webhook-'));
  const bundle = createCertificates({
    service: 'netplumb-webhook',
    namespace: 'netplumb',
    days: 1,
    now: new Date(),
  });
  const files = await writeSecretDir(dir, bundle);
  const api = await startFakeApiServer();
  for (const n of nads()) api.addNad(n.namespace, n.name, n.config, { ...n.annotations });
  const live = createKubeClient(await api.writeKubeconfig(path.join(dir, 'kubeconfig')));
  const common = {
    logger: pino({ level: 'silent' }),
    tls: { ...files, minVersion: 'TLSv1.2' as const, ciphers: undefined },
    listen: { host: '127.0.0.1', port: 0 },
    live,
    options: { downwardApi: true, namespaceIsolation: false, globalNamespaces: ['default'] },
    defaultMetrics: false,
  };
  const cached = await startWebhook({ ...common, nads: memoryNadWatch(nads()) });
  const own = await startChild({ ...files, nads: nads(), options: common.options });
  const uncached = await startWebhook({
    ...common,
    nads: memoryNadWatch(),
    timing: { maxLivePerReview: NETWORKS },
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const body = await reviewBody();
  const admit = async (port: number) => {
    const a = await httpsRequest(port, { ca: bundle.caCert, servername: SNI, body, agent });
    if (a.status !== 200 || !a.body.includes('"patchType":"JSONPatch"'))
      throw new Error(`bad answer: ${a.body}`);
  };
  // The decision alone (parse, lookups from the cache, patch), in-process: no TLS, no HTTP.
  const source = createNadSource({
    watch: memoryNadWatch(nads()),
    live: undefined,
    liveTimeoutMs: 1,
    maxLivePerReview: 0,
  });
  const decide = () => handleReview(body, { options: common.options, lookups: () => source.session() });
  const samples = {
    own: [] as number[],
    cached: [] as number[],
    uncached: [] as number[],
    api: [] as number[],
    decide: [] as number[],
  };
  const load = [loadavg()[0] ?? 0];
  let stats: ChildStats | undefined;
  try {
    for (let i = 0; i < WARMUP + ROUNDS; i++) {
      if (i === WARMUP) {
        const measuring = nextMessage(own.child);
        own.child.send('measure');
        await measuring;
      }
      const o = await timed(() => admit(own.port));
      const c = await timed(() => admit(cached.port));
      const u = await timed(() => admit(uncached.port));
      const g = await timed(() => live.getNad('default', 'net-0'));
      const d = await timed(decide);
      if (i < WARMUP) continue;
      samples.own.push(o);
      samples.decide.push(d);
      samples.cached.push(c);
      samples.uncached.push(u);
      samples.api.push(g);
    }
    const done = nextMessage(own.child);
    own.child.send('stop');
    stats = (await done) as ChildStats;
    load.push(loadavg()[0] ?? 0);
  } finally {
    if (own.child.exitCode === null && stats === undefined) own.child.kill('SIGKILL');
    agent.destroy();
    await Promise.all([cached.stop(), uncached.stop()]);
    await api.stop();
    await rm(dir, { recursive: true, force: true });
  }
  const baseline = percentile(samples.api, 50);
  const baselineP99 = percentile(samples.api, 99);
  const p99 = percentile(samples.cached, 99);
  const loadText = load.map((l) => l.toFixed(1)).join('→');
  report({
    name: `webhook: admission, ${NETWORKS} networks, NAD cache`,
    medianMs: percentile(samples.cached, 50),
    p99Ms: p99,
    samples: samples.cached.length,
    extra: {
      'p99/API-round-trip-p99': p99 / baselineP99,
      p999: percentile(samples.cached, 99.9),
      load: loadText,
    },
    goal: 'p99 ≤ 5 ms',
    goalMet: p99 <= 5,
  });
  report({
    name: 'webhook: the same, own process (as deployed)',
    medianMs: percentile(samples.own, 50),
    p99Ms: percentile(samples.own, 99),
    samples: samples.own.length,
    extra: {
      p999: percentile(samples.own, 99.9),
      'its GCs': stats.gcCount,
      'GC max ms': stats.gcMaxMs,
      'event-loop delay max ms': stats.loopDelayMaxMs,
    },
  });
  report({
    name: `webhook: admission, ${NETWORKS} networks, no cache (live GETs)`,
    medianMs: percentile(samples.uncached, 50),
    p99Ms: percentile(samples.uncached, 99),
    samples: samples.uncached.length,
  });
  report({
    name: `webhook: the decision alone (in-process), ${NETWORKS} networks`,
    medianMs: percentile(samples.decide, 50),
    p99Ms: percentile(samples.decide, 99),
    samples: samples.decide.length,
  });
  report({
    name: 'baseline: one API round trip (GET NAD, client-node)',
    medianMs: baseline,
    p99Ms: baselineP99,
    samples: samples.api.length,
    extra: { load: loadText },
  });
}
