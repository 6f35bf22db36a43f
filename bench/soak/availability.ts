/**
 * What the internet client saw of the portal over a run, from the poller's samples
 * (../poll-process.ts). Pure, so it is unit-tested on recorded timelines.
 *
 * Definitions (printed with the figures):
 * - availability = good answers / requests sent; a good answer is HTTP 200 with /api/status JSON;
 * - an outage is a run of consecutive failed requests (in the order they were sent) between two
 *   good ones; it lasts from the first failed request's start to the completion of the next good
 *   answer, so it is known to within one poll interval. A run still failing at the end is `open`;
 * - a failover seen is two successive good answers naming different nodes.
 */
import type { PollSample } from '../poll-line.js';

export interface Outage {
  from: number;
  to: number;
  ms: number;
  failed: number;
  /** Still failing when the samples end. */
  open: boolean;
  /** The node that answered last before it, and first after. */
  before: string | null;
  after: string | null;
}

export interface Availability {
  polls: number;
  good: number;
  availabilityPct: number;
  /** Good answers from a node that did not call itself representative. */
  notRepresentative: number;
  outages: Outage[];
  maxOutageMs: number;
  /** Representative changes, in order. */
  changes: Array<{ at: number; from: string; to: string }>;
  servedBy: Record<string, number>;
  errors: Record<string, number>;
}

export const AVAILABILITY_DEFINITION =
  'availability = good answers (HTTP 200 from /api/status) / requests sent; an outage runs from the first failed request to the next good answer; a failover seen = two successive good answers from different nodes';

export function summarize(samples: readonly PollSample[]): Availability {
  const byStart = [...samples].sort((a, b) => a.sent - b.sent);
  const outages: Outage[] = [];
  const changes: Availability['changes'] = [];
  const servedBy: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let good = 0;
  let notRepresentative = 0;
  let lastName: string | null = null;
  let run: { from: number; failed: number; before: string | null } | undefined;
  for (const s of byStart) {
    if (s.name === undefined) {
      const why = s.err ?? 'unknown';
      errors[why] = (errors[why] ?? 0) + 1;
      if (run) run.failed++;
      else run = { from: s.sent, failed: 1, before: lastName };
      continue;
    }
    good++;
    servedBy[s.name] = (servedBy[s.name] ?? 0) + 1;
    if (s.role !== undefined && s.role !== 'representative') notRepresentative++;
    if (run) {
      outages.push({ from: run.from, to: s.done, ms: s.done - run.from, failed: run.failed, open: false, before: run.before, after: s.name });
      run = undefined;
    }
    if (lastName !== null && s.name !== lastName) changes.push({ at: s.done, from: lastName, to: s.name });
    lastName = s.name;
  }
  if (run) {
    const end = Math.max(...byStart.map((s) => s.done));
    outages.push({ from: run.from, to: end, ms: end - run.from, failed: run.failed, open: true, before: run.before, after: null });
  }
  return {
    polls: byStart.length,
    good,
    availabilityPct: byStart.length === 0 ? 0 : (100 * good) / byStart.length,
    notRepresentative,
    outages,
    maxOutageMs: outages.reduce((m, o) => Math.max(m, o.ms), 0),
    changes,
    servedBy,
    errors,
  };
}
