/**
 * Load generator of the portal bench, in its own process (forked with IPC): it never shares an
 * event loop with a server or with another generator. Takes one LoadSpec at a time: answers
 * {started: true} when the run is under way, then its LoadResult (or {error}); {cmd: 'stop'}
 * ends the current run early. Ends when the parent goes away, and after 10 minutes whatever
 * happens.
 *
 * Latencies come from autocannon's per-response event (fractional ms, every status), not from its
 * histogram (whole ms, 2xx only): on loopback many answers take well under a millisecond.
 */
import autocannon from 'autocannon';

export interface LoadSpec {
  url: string;
  connections: number;
  durationS: number;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
}

export interface LoadResult {
  durationS: number;
  /** Answers per status code. */
  codes: Record<string, number>;
  /** 2xx answers per second over the run. */
  okPerS: number;
  /** All answers per second over the run. */
  allPerS: number;
  /** Latency of 2xx answers, ms (NaN when none). */
  okP50: number;
  okP99: number;
  /** Latency of every answer, ms. */
  allP50: number;
  allP99: number;
  errors: number;
  timeouts: number;
}

if (!process.send) {
  process.stderr.write('load.js is forked by bench/portal.js\n');
  process.exit(2);
}
process.on('disconnect', () => process.exit(0));
setTimeout(() => process.exit(3), 600_000).unref();

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

class Series {
  private xs = new Float64Array(1 << 16);
  n = 0;
  push(x: number): void {
    if (this.n === this.xs.length) {
      const bigger = new Float64Array(this.xs.length * 2);
      bigger.set(this.xs);
      this.xs = bigger;
    }
    this.xs[this.n++] = x;
  }
  sorted(): Float64Array {
    return this.xs.slice(0, this.n).sort();
  }
}

let current: autocannon.Instance | undefined;
process.on('message', (m: LoadSpec | { cmd: 'stop' }) => {
  if ('cmd' in m) current?.stop();
  else runOne(m);
});

function runOne(spec: LoadSpec): void {
  const ok = new Series();
  const all = new Series();
  const codes: Record<string, number> = {};
  const t0 = performance.now();
  const instance = autocannon(
    {
      url: spec.url,
      connections: spec.connections,
      duration: spec.durationS,
      method: spec.method ?? 'GET',
      ...(spec.headers ? { headers: spec.headers } : {}),
      ...(spec.body !== undefined ? { body: spec.body } : {}),
      timeout: 10,
      // The run ends at the first sample tick after its duration (or a stop): tick every 100 ms,
      // not every second, so a run lasts its duration and not up to a second more.
      sampleInt: 100,
    },
    (err, r) => {
      const durationS = (performance.now() - t0) / 1000;
      current = undefined;
      if (err) {
        process.send!({ error: String(err) });
        return;
      }
      const okSorted = ok.sorted();
      const allSorted = all.sorted();
      const result: LoadResult = {
        durationS,
        codes,
        okPerS: ok.n / durationS,
        allPerS: all.n / durationS,
        okP50: percentile(okSorted, 0.5),
        okP99: percentile(okSorted, 0.99),
        allP50: percentile(allSorted, 0.5),
        allP99: percentile(allSorted, 0.99),
        errors: r.errors,
        timeouts: r.timeouts,
      };
      process.send!(result);
    },
  );
  current = instance;
  instance.on('start', () => process.send!({ started: true }));
  instance.on('response', (_client, statusCode, _bytes, ms) => {
    codes[statusCode] = (codes[statusCode] ?? 0) + 1;
    all.push(ms);
    if (statusCode >= 200 && statusCode < 300) ok.push(ms);
  });
}
