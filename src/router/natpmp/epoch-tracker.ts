import type { Logger } from '../../runtime/log.js';

/**
 * Router reboot detection from the "seconds since start of epoch" that every NAT-PMP and PCP
 * answer carries. A gateway that reboots (or flushes its table) restarts that count, and with
 * it every mapping we hold is gone; the clients call `onReset` so mappings are made again
 * before anyone notices.
 *
 * The rule is the RFCs': between two answers the gateway's count must advance by at least a
 * fraction of the time our own (monotonic) clock saw pass, less 2 seconds of slack for
 * rounding and queueing. NAT-PMP (RFC 6886 3.6) asks for 7/8; PCP (RFC 6887 8.5) for 15/16
 * and also flags a count that runs much faster than ours.
 */
export interface EpochTrackerInit {
  /** Least fraction of client-elapsed time the gateway's count must advance: 7/8 or 15/16. */
  minRate: number;
  /** RFC 6887 8.5's second test: the gateway's count may not outrun ours by more than 1/16. */
  checkFastServer: boolean;
}

const SLACK_SECONDS = 2;

/** Says once, in the log and to the owner's callback, that the router lost its mappings. */
export function announceReset(
  log: Logger,
  gateway: string,
  reason: string,
  onReset: ((reason: string) => void) | undefined,
): void {
  log.warn('the router lost its port mappings', { gateway, reason });
  try {
    onReset?.(reason);
  } catch (err) {
    log.error('onReset callback threw', { error: err });
  }
}

export class EpochTracker {
  private readonly minRate: number;
  private readonly checkFastServer: boolean;
  private prevServer: number | undefined;
  private prevClientMs = 0;

  constructor(init: EpochTrackerInit) {
    this.minRate = init.minRate;
    this.checkFastServer = init.checkFastServer;
  }

  /**
   * Records one answer. Returns why the gateway must have lost its state, or undefined when
   * the epoch is consistent (or this is the first answer).
   */
  observe(serverEpoch: number, clientNowMs: number): string | undefined {
    const prev = this.prevServer;
    const prevClient = this.prevClientMs;
    this.prevServer = serverEpoch;
    this.prevClientMs = clientNowMs;
    if (prev === undefined) return undefined;
    const clientDelta = Math.max(0, (clientNowMs - prevClient) / 1000);
    const serverDelta = serverEpoch - prev;
    if (serverEpoch + SLACK_SECONDS < prev + clientDelta * this.minRate) {
      return serverDelta < 0
        ? `router epoch went back from ${prev} s to ${serverEpoch} s: it restarted and lost its mappings`
        : `router epoch advanced ${serverDelta} s while ${Math.round(clientDelta)} s passed: it restarted and lost its mappings`;
    }
    if (this.checkFastServer && clientDelta + SLACK_SECONDS < serverDelta - serverDelta / 16) {
      return `router epoch advanced ${serverDelta} s while only ${Math.round(clientDelta)} s passed: its state was reset`;
    }
    return undefined;
  }

  /** Forgets the baseline (a new gateway, or after close). */
  clear(): void {
    this.prevServer = undefined;
    this.prevClientMs = 0;
  }
}
