/**
 * Runs failover trials for one subject in a fresh test bed: meter up, subject up, then per case
 * `trials` times: wait until the service is steady on the host `current()` names, wait a random
 * fraction of a second, inject the fault on that host, wait for another host to answer (the
 * outage), restore (the subject's restore resolves once it has settled). Everything it starts
 * dies with the test bed, which is closed whatever happens.
 */
import { createTestbed } from '../../test/testbed/testbed.js';
import type { Host, Testbed } from '../../test/testbed/testbed.js';
import { OutageMeter } from './meter.js';
import { monoMs } from './outage.js';
import type { Outage } from './outage.js';
import { FAILOVER_CASES } from './subject.js';
import type { FailoverCase, FailoverSubject } from './subject.js';

export interface HarnessOptions {
  /** Per case; default 5. */
  trials?: number;
  cases?: readonly FailoverCase[];
  /** How long the service must be answered by one host before a fault; default 1000 ms. */
  steadyMs?: number;
  /**
   * After the service is steady, wait a random 0..phaseJitterMs before the fault, so that it hits
   * a random phase of whatever periodic work the subject does (VRRP adverts every second,
   * heartbeats). Without it every fault would come at the same moment after the previous
   * take-over, and a crash outage would measure one phase only (seen: keepalived's crash outage
   * then sat at 3.5-3.6 s instead of spreading over 2.6-3.6 s). Default 1000 ms.
   */
  phaseJitterMs?: number;
  /** Longest wait for another host to answer after a fault; default 30 s. */
  recoveryTimeoutMs?: number;
  /** Longest wait for someone to serve steadily (at start, after a restore); default 60 s. */
  restoreTimeoutMs?: number;
  /** Progress lines (one per trial). */
  log?: (line: string) => void;
}

export interface Trial {
  case: FailoverCase;
  failed: string;
  /** How long the subject's fault call took (the instant is taken at its start unless it says). */
  injectMs: number;
  /** The fault instant the subject gave, after the start of its call (0 when it gave none). */
  faultOffsetMs: number;
  /** The random wait between steady service and the fault (phaseJitterMs). */
  phaseDelayMs: number;
  outage?: Outage;
  /** Why the trial has no outage figure (no recovery within the timeout...). */
  error?: string;
}

export interface SubjectResult {
  subject: string;
  describe: Partial<Record<FailoverCase, string>>;
  trials: Trial[];
  /** Test bed set-up + subject start until steady, ms. */
  startMs: number;
  totalMs: number;
  /** The meter's clock check: ms from a ping written to its stamp in the WAN namespace. */
  meterPingMs: number;
  /** Set when the subject could not be run to the end; trials done so far are kept. */
  error?: string;
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = monoMs() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (monoMs() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function runSubject(subject: FailoverSubject, opts: HarnessOptions = {}): Promise<SubjectResult> {
  const trials = opts.trials ?? 5;
  const steadyMs = opts.steadyMs ?? 1000;
  const log = opts.log ?? (() => {});
  const t0 = monoMs();
  const result: SubjectResult = {
    subject: subject.name,
    describe: subject.describe ?? {},
    trials: [],
    startMs: 0,
    totalMs: 0,
    meterPingMs: Number.NaN,
  };
  let tb: Testbed | undefined;
  let meter: OutageMeter | undefined;
  try {
    tb = await createTestbed({ mode: 'igd2', hosts: subject.hosts ?? 3 });
    const bed = tb;
    const m = await OutageMeter.start(bed, { url: `http://${subject.auth ? `${subject.auth}@` : ''}${bed.wanAddress}:${subject.publicPort ?? 8080}${subject.path ?? '/'}` });
    meter = m;
    result.meterPingMs = m.pingMs;
    await subject.start(bed);
    const settleMs = opts.restoreTimeoutMs ?? 60_000;
    /** The serving host, once the meter has seen only it answer for steadyMs. */
    const steadyServer = async (): Promise<Host> => {
      const server = await until(`${subject.name}: someone serving`, settleMs, () => subject.current(bed));
      await m.waitSteady(server.name, steadyMs, settleMs);
      return server;
    };
    const first = await steadyServer();
    result.startMs = monoMs() - t0;
    log(`${subject.name}: up in ${result.startMs.toFixed(0)} ms, ${first.name} serving`);
    for (const kind of opts.cases ?? FAILOVER_CASES) {
      for (let i = 0; i < trials; i++) {
        const master = await steadyServer();
        const phaseDelayMs = Math.random() * (opts.phaseJitterMs ?? 1000);
        await new Promise((r) => setTimeout(r, phaseDelayMs));
        const before = monoMs();
        const said = await (kind === 'graceful' ? subject.graceful(bed, master) : subject.crash(bed, master));
        const injectMs = monoMs() - before;
        const faultAt = typeof said === 'number' ? said : before;
        const trial: Trial = { case: kind, failed: master.name, injectMs, faultOffsetMs: faultAt - before, phaseDelayMs };
        try {
          trial.outage = await m.waitRecovery(faultAt, master.name, opts.recoveryTimeoutMs ?? 30_000);
          const o = trial.outage;
          log(
            `${subject.name} ${kind} #${i + 1} on ${master.name} (fault at steady + ${phaseDelayMs.toFixed(0)} ms): outage ${o.outageMs.toFixed(0)} ms (${o.recoveredBy} answered; gap ${o.gapMs.toFixed(0)} ms, ` +
              `${o.failedRequests} requests failed ${JSON.stringify(o.errors)}, ${o.oldHostAnswers} late answers from ${master.name})`,
          );
        } catch (err) {
          trial.error = (err as Error).message;
          log(`${subject.name} ${kind} #${i + 1}: ${trial.error}`);
        }
        result.trials.push(trial);
        // The next trial waits for steady service from whoever serves then.
        await subject.restore(bed, master, kind);
      }
    }
  } catch (err) {
    result.error = err instanceof Error ? `${err.message}${tb ? `\n${tb.explain(20)}` : ''}` : String(err);
    log(`${subject.name}: stopped: ${result.error}`);
  } finally {
    meter?.stop();
    if (tb) {
      await subject.stop(tb).catch(() => {});
      await tb.close();
    }
    result.totalMs = monoMs() - t0;
  }
  return result;
}
