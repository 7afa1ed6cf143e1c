// What `netplumb doctor` prints: a table for people (one line per check, its fix below it) and
// the `--json` document for automation.
import type { HostInfo } from '../node-info.js';
import { exitCodeOf } from './check.js';
import type { Check, CheckStatus } from './check.js';

export interface DoctorDocument {
  readonly host: HostInfo & { readonly origin: string };
  readonly checks: readonly Check[];
  readonly summary: Readonly<Record<CheckStatus, number>>;
  /** 0 all passed, 1 warnings, 2 at least one failure. */
  readonly exitCode: 0 | 1 | 2;
}

export function doctorDocument(
  host: HostInfo & { readonly origin: string },
  checks: readonly Check[],
): DoctorDocument {
  const summary = { pass: 0, warn: 0, fail: 0 };
  for (const c of checks) summary[c.status]++;
  return { host, checks, summary, exitCode: exitCodeOf(checks) };
}

const MARK: Readonly<Record<CheckStatus, string>> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL' };

export function hostLine(h: HostInfo & { readonly origin: string }): string {
  const gib = h.memTotalBytes === null ? '?' : (h.memTotalBytes / 2 ** 30).toFixed(1);
  const topo = `${h.sockets ?? '?'} sockets, ${h.cores ?? '?'} cores, ${h.threads ?? '?'} threads`;
  return `${h.os ?? 'unknown OS'}, kernel ${h.kernel ?? '?'}, ${h.cpuModel ?? 'unknown CPU'} (${topo}), ${gib} GiB (${h.origin})`;
}

export function renderDoctor(doc: DoctorDocument): string {
  const idWidth = Math.max(5, ...doc.checks.map((c) => c.id.length));
  const lines = [`node: ${hostLine(doc.host)}`, ''];
  for (const c of doc.checks) {
    lines.push(`${MARK[c.status]}  ${c.id.padEnd(idWidth)}  ${c.fact}`);
    if (c.fix !== null) lines.push(`${' '.repeat(idWidth + 8)}fix: ${c.fix}`);
  }
  const s = doc.summary;
  const verdict = ['ready', 'ready, with warnings', 'not ready'][doc.exitCode];
  lines.push('', `${verdict ?? ''}: ${s.pass} pass, ${s.warn} warn, ${s.fail} fail`);
  return `${lines.join('\n')}\n`;
}
