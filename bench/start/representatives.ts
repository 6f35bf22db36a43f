/**
 * Whether two nodes were representative at the same moment, from what each said of itself when
 * polled (its /api/status on its LAN address: role and how long it has had it). Pure, so it is
 * unit-tested on recorded timelines (test/bench/start.test.ts).
 *
 * A node that answers "representative, for t ms" to a request sent at `sent` and answered at
 * `done` took the role at some instant S in [sent - t, done - t], and held it at least from S to
 * the moment it answered (>= sent). Successive such answers with the same S are one period; it
 * is held for sure over [latest S, last such request's start], and perhaps over [earliest S,
 * the completion of the next answer that says otherwise (or of the last request)].
 *
 * A *certain* overlap is two nodes' sure spans overlapping: it happened, whatever the polling
 * missed. A *possible* one is only the wider spans overlapping: the polling cannot tell.
 */
import type { PollSample } from '../poll-line.js';

export interface RepresentativePeriod {
  node: string;
  /** Held for sure over [from, to]; null when one answer gave no span (to < from). */
  sure: { from: number; to: number } | null;
  /** Perhaps held over [from, to]. */
  possible: { from: number; to: number };
  answers: number;
}

export interface Overlap {
  a: string;
  b: string;
  from: number;
  to: number;
}

export interface RepresentativeOverlaps {
  /** Pairs of periods of two nodes that surely overlapped. */
  certain: Overlap[];
  /** Pairs that may have overlapped, beyond the certain ones. */
  possible: Overlap[];
}

export const TWO_REPRESENTATIVES_DEFINITION =
  'two representatives = two nodes holding the role at one moment, from each node\'s own /api/status (role, time in it) polled on its LAN address; certain when their answers prove it, possible when the polling cannot rule it out';

/** One node's periods as representative, from its samples (any order). */
export function representativePeriods(node: string, samples: readonly PollSample[]): RepresentativePeriod[] {
  const bySent = [...samples].sort((a, b) => a.sent - b.sent);
  const out: RepresentativePeriod[] = [];
  // The period being read: the bounds on its S, the last request that saw it, the latest
  // completion of an answer that saw it and of a request that got none.
  let cur: { lo: number; hi: number; lastSent: number; end: number; silentEnd: number; answers: number } | undefined;
  /** `end`: when it had ended for sure; undefined at the end of the samples (then perhaps only when the node fell silent). */
  const close = (end: number | undefined) => {
    if (!cur) return;
    out.push({
      node,
      sure: cur.hi <= cur.lastSent ? { from: cur.hi, to: cur.lastSent } : null,
      possible: { from: cur.lo, to: Math.max(cur.end, end ?? cur.silentEnd) },
      answers: cur.answers,
    });
    cur = undefined;
  };
  for (const s of bySent) {
    if (s.name === undefined) {
      // No answer says nothing about the role: the period may go on.
      if (cur) cur.silentEnd = Math.max(cur.silentEnd, s.done);
      continue;
    }
    if (s.role !== 'representative') {
      close(s.done);
      continue;
    }
    const t = s.roleForMs ?? 0;
    const lo = s.sent - t;
    const hi = s.done - t;
    // Another S: the earlier period ended before this one began.
    if (cur && (lo > cur.hi || hi < cur.lo)) close(hi);
    if (cur) {
      cur.lo = Math.max(cur.lo, lo);
      cur.hi = Math.min(cur.hi, hi);
      cur.lastSent = Math.max(cur.lastSent, s.sent);
      cur.end = Math.max(cur.end, s.done);
      cur.answers++;
    } else {
      cur = { lo, hi, lastSent: s.sent, end: s.done, silentEnd: s.done, answers: 1 };
    }
  }
  close(undefined);
  return out;
}

/** Every pair of periods of different nodes that overlap, certainly or possibly. */
export function representativeOverlaps(byNode: ReadonlyMap<string, readonly PollSample[]>): RepresentativeOverlaps {
  const periods = [...byNode].flatMap(([node, samples]) => representativePeriods(node, samples));
  const certain: Overlap[] = [];
  const possible: Overlap[] = [];
  for (let i = 0; i < periods.length; i++) {
    for (let j = i + 1; j < periods.length; j++) {
      const p = periods[i]!;
      const q = periods[j]!;
      if (p.node === q.node) continue;
      const sure = p.sure && q.sure ? intersect(p.sure, q.sure) : undefined;
      if (sure) {
        certain.push({ a: p.node, b: q.node, ...sure });
        continue;
      }
      const maybe = intersect(p.possible, q.possible);
      if (maybe) possible.push({ a: p.node, b: q.node, ...maybe });
    }
  }
  return { certain, possible };
}

/** The common part of two spans, when it is longer than nothing. */
function intersect(x: { from: number; to: number }, y: { from: number; to: number }): { from: number; to: number } | undefined {
  const from = Math.max(x.from, y.from);
  const to = Math.min(x.to, y.to);
  return to > from ? { from, to } : undefined;
}
