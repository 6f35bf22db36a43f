/**
 * `npm run bench -- failover [--trials=N] [--subject=name,...]` (or FAILOVER_TRIALS=N): how long
 * the public port is out of service, seen from the internet, when the host serving it stops
 * (graceful) or vanishes (crash), for each subject in a fresh test bed with a real router.
 * keepalived is the reference (what standard tools give today); frontdoor is measured beside it.
 * Needs root (network namespaces). Definitions: bench/failover/outage.ts.
 */
import { canRunTestbed } from '../test/testbed/testbed.js';
import { runSubject } from './failover/harness.js';
import type { SubjectResult } from './failover/harness.js';
import { keepalivedSubject } from './failover/keepalived.js';
import { frontdoorSubject } from './failover/frontdoor.js';
import { OUTAGE_DEFINITION, monoMs } from './failover/outage.js';
import { FAILOVER_CASES } from './failover/subject.js';
import type { FailoverCase, FailoverSubject } from './failover/subject.js';
import { fmt, median } from './stats.js';

/** frontdoor's targets (ms, median): the bench says whether they are met. */
export const FAILOVER_GOALS: Record<FailoverCase, number> = { graceful: 150, crash: 1000 };

/** Measured by hand on this topology (shared notes, real-router.md): keepalived 100/90, advert 1 s. */
const REFERENCE = 'keepalived by hand (notes/real-router.md): graceful 774 ms, crash 3807 ms (medians of 5)';

const CASE_LABEL: Record<FailoverCase, string> = { graceful: 'graceful stop', crash: 'crash (link down)' };

/**
 * ===== The subjects measured, in order. =====
 * Add frontdoor's here (a FailoverSubject, bench/failover/subject.ts), e.g.
 *   subjects.push(frontdoorSubject());
 * `--subject=keepalived,frontdoor` picks among them by name.
 */
function assembleSubjects(): FailoverSubject[] {
  // frontdoor as shipped with a floating address, keepalived as the reference, and frontdoor on
  // the router lease alone (no NET_ADMIN) to show what the floating address buys.
  const subjects: FailoverSubject[] = [frontdoorSubject(), keepalivedSubject(), frontdoorSubject({ floating: 'off' })];
  return subjects;
}

function option(args: string[], name: string): string | undefined {
  return args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

export async function run(args: string[]): Promise<void> {
  const can = canRunTestbed();
  if (!can.ok) {
    console.log(`failover benchmark skipped: needs root and network namespaces (${can.reason})`);
    return;
  }
  const trials = Number(option(args, 'trials') ?? process.env['FAILOVER_TRIALS'] ?? 5);
  if (!Number.isInteger(trials) || trials < 1) throw new Error(`trials must be a positive integer, got ${trials}`);
  const wanted = option(args, 'subject')?.split(',');
  const subjects = assembleSubjects().filter((s) => !wanted || wanted.includes(s.name));
  if (subjects.length === 0) throw new Error(`no subject named ${wanted?.join(',')}`);
  const t0 = monoMs();
  const results: SubjectResult[] = [];
  for (const s of subjects) {
    results.push(await runSubject(s, { trials, log: (l) => console.log(`  ${l}`) }));
  }
  console.log('');
  console.log(report(results, trials));
  console.log(`whole bench: ${((monoMs() - t0) / 1000).toFixed(1)} s`);
  if (results.some((r) => r.error)) process.exitCode = 1;
}

export function report(results: readonly SubjectResult[], trials: number): string {
  const lines = [
    `failover: ${trials} trials per case, each subject in a fresh test bed (miniupnpd, 3 LAN hosts); the WAN client`,
    '  starts GET http://<router WAN>:<port>/ every 20 ms (new connection, 150 ms timeout); each fault comes',
    '  after 1 s of steady answers from the serving host plus a random 0-1000 ms (a random phase of any heartbeat)',
    `  ${OUTAGE_DEFINITION}`,
    '',
    `${'subject'.padEnd(16)}${'case'.padEnd(20)}${'median'.padStart(9)}${'min'.padStart(9)}${'max'.padStart(9)}${'trials'.padStart(8)}   gap median  how`,
  ];
  for (const r of results) {
    for (const c of FAILOVER_CASES) {
      const ts = r.trials.filter((t) => t.case === c);
      if (ts.length === 0) continue;
      const xs = ts.flatMap((t) => (t.outage ? [t.outage.outageMs] : []));
      const gaps = ts.flatMap((t) => (t.outage ? [t.outage.gapMs] : []));
      const failed = ts.length - xs.length;
      const cell = (v: number | undefined) => (v === undefined ? '-' : fmt(v)).padStart(9);
      lines.push(
        `${r.subject.padEnd(16)}${CASE_LABEL[c].padEnd(20)}${cell(xs.length ? median(xs) : undefined)}${cell(xs.length ? Math.min(...xs) : undefined)}` +
          `${cell(xs.length ? Math.max(...xs) : undefined)}${`${xs.length}${failed ? ` (+${failed} no recovery)` : ''}`.padStart(8)}` +
          `   ${(gaps.length ? fmt(median(gaps)) : '-').padStart(10)}  ${r.describe[c] ?? ''}`,
      );
    }
  }
  for (const r of results) {
    // How far the fault instant T lies after the start of the subject's fault call: 0 when the
    // subject gave no better instant (then the call's own duration is the uncertainty).
    const offsets = FAILOVER_CASES.flatMap((c) => {
      const ts = r.trials.filter((t) => t.case === c);
      if (ts.length === 0) return [];
      const off = median(ts.map((t) => t.faultOffsetMs)).toFixed(1);
      return [`${c} T = call start + ${off} ms (call ${median(ts.map((t) => t.injectMs)).toFixed(1)} ms)`];
    });
    lines.push(
      `${r.subject}: set-up ${fmt(r.startMs)}, total ${(r.totalMs / 1000).toFixed(1)} s, meter ping ${r.meterPingMs.toFixed(2)} ms; ` +
        offsets.join('; ') +
        (r.error ? `\n  ERROR: ${r.error.split('\n')[0]}` : ''),
    );
  }
  lines.push(`reference: ${REFERENCE}`);
  lines.push(`goal for frontdoor (median): graceful <= ${FAILOVER_GOALS.graceful} ms, crash <= ${FAILOVER_GOALS.crash} ms`);
  for (const r of results.filter((x) => x.subject === 'frontdoor')) {
    const verdicts = FAILOVER_CASES.map((c) => {
      const xs = r.trials.flatMap((t) => (t.case === c && t.outage ? [t.outage.outageMs] : []));
      if (xs.length === 0) return `${c}: no figure`;
      const m = median(xs);
      return `${c} ${fmt(m)} ${m <= FAILOVER_GOALS[c] ? 'met' : 'MISSED'}`;
    });
    lines.push(`frontdoor against the goal: ${verdicts.join(', ')}`);
  }
  return lines.join('\n');
}
