/**
 * What a failover costs a user on the internet, computed from what the WAN-side meter saw
 * (../poll-process.ts). Pure: a recorded timeline in, figures out, so it is unit-tested without a
 * network.
 *
 * The clock: every time here is CLOCK_MONOTONIC in milliseconds (`monoMs()`). Network namespaces
 * do not have their own clocks (only a time namespace would, and `ip netns exec` does not make
 * one), so the meter in the WAN namespace, the bench process in the root namespace and anything
 * run in a LAN host read the same clock: a fault instant taken in the bench process can be
 * compared directly with the meter's timestamps, with sub-millisecond resolution. The bench
 * checks this at start (a ping through the meter's stdin must come back stamped between send and
 * receipt).
 */

/** Milliseconds of CLOCK_MONOTONIC (shared by all processes of this machine), microsecond resolution. */
export function monoMs(): number {
  // Number(hrtime) would lose precision after ~104 days of uptime; dividing first does not.
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

/** One request of the meter: a new TCP connection, `GET /`, `Connection: close`. */
export interface Sample {
  /** When the request was started. */
  sent: number;
  /** When the answer was complete, or the request failed or timed out. */
  done: number;
  /** A good answer: HTTP 200 whose body names the host that served it. */
  ok: boolean;
  /** The serving host's label (the body's first line), for good answers. */
  host?: string;
  /** Why it failed: an errno code (ECONNREFUSED...), `timeout`, or `HTTP <status>`. */
  err?: string;
}

/**
 * The definition the bench prints and the tests hold it to.
 *
 * outage = R - T, where T is the fault instant (the moment the fault was injected: the signal
 * sent, the cable pulled) and R the moment the first good answer completed, after T, that came
 * from a host OTHER than the one that failed. Answers the failed host still gives after T (its
 * server may run on while its address moves away) do not end the outage: the service has failed
 * over only once someone else serves it. The meter starts a request every 20 ms whatever the
 * others do (each with a 150 ms timeout), so R is known to within ~20 ms plus one round trip.
 */
export const OUTAGE_DEFINITION =
  'outage = from the fault instant T (signal sent / link set down, CLOCK_MONOTONIC) to the first good ' +
  'answer (HTTP 200, body = serving host) completed after T by a host OTHER than the failed one; ' +
  'gap = the longest silence between good answers (any host) around it';

export interface Outage {
  /** R - T (see OUTAGE_DEFINITION). */
  outageMs: number;
  /** Host that answered at R. */
  recoveredBy: string;
  /** R, on the monotonic clock. */
  recoveredAt: number;
  /**
   * The longest time without any good answer, between the last good answer at or before T and R:
   * what a user refreshing the page sees. Smaller than outageMs when the failed host answered on
   * for a while after T; at least the polling interval even without a fault.
   */
  gapMs: number;
  /** Requests started in [T, R) that got no good answer. */
  failedRequests: number;
  /** Good answers the failed host still gave after T (before R). */
  oldHostAnswers: number;
  /** Errors seen among the failed requests, with counts (`ECONNREFUSED: 3, timeout: 12`). */
  errors: Record<string, number>;
}

/**
 * The outage for a fault at `faultAt` on host `failedHost`, or undefined when no other host has
 * answered since. `samples` in any order.
 */
export function computeOutage(samples: readonly Sample[], faultAt: number, failedHost: string): Outage | undefined {
  let recovery: Sample | undefined;
  for (const s of samples) {
    if (s.ok && s.host !== undefined && s.host !== failedHost && s.done >= faultAt) {
      if (!recovery || s.done < recovery.done) recovery = s;
    }
  }
  if (!recovery) return undefined;
  const end = recovery.done;
  let lastGoodBefore = Number.NEGATIVE_INFINITY;
  const goodTimes: number[] = [];
  let failedRequests = 0;
  let oldHostAnswers = 0;
  const errors: Record<string, number> = {};
  for (const s of samples) {
    if (s.ok && s.done <= faultAt && s.done > lastGoodBefore) lastGoodBefore = s.done;
    if (s.ok && s.done > faultAt && s.done < end) {
      goodTimes.push(s.done);
      if (s.host === failedHost) oldHostAnswers++;
    }
    if (!s.ok && s.sent >= faultAt && s.sent < end) {
      failedRequests++;
      const e = s.err ?? 'error';
      errors[e] = (errors[e] ?? 0) + 1;
    }
  }
  const start = Number.isFinite(lastGoodBefore) ? lastGoodBefore : faultAt;
  const times = [start, ...goodTimes.sort((a, b) => a - b), end];
  let gapMs = 0;
  for (let i = 1; i < times.length; i++) gapMs = Math.max(gapMs, times[i]! - times[i - 1]!);
  return {
    outageMs: end - faultAt,
    recoveredBy: recovery.host!,
    recoveredAt: end,
    gapMs,
    failedRequests,
    oldHostAnswers,
    errors,
  };
}

/**
 * Whether the service is steady on `host` as of the newest sample: every request that completed
 * in the last `windowMs` (and at least one request started that long ago) was a good answer from
 * `host`. `samples` in completion order, as the meter reports them.
 */
export function isSteady(samples: readonly Sample[], host: string, windowMs: number): boolean {
  const last = samples.at(-1);
  if (!last) return false;
  const from = last.done - windowMs;
  for (let i = samples.length - 1; i >= 0; i--) {
    const s = samples[i]!;
    if (!s.ok || s.host !== host) return false;
    if (s.sent <= from) return true;
  }
  return false;
}
