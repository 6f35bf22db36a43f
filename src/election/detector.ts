import type { LanTransport } from '../peers/transport.js';
import type { Clock, Timer } from '../runtime/clock.js';
import type { ElectionConfig } from './config.js';

/** Which enabled means noticed that the representative is gone (claims 14, 15, 16). */
export type DepartureReason = 'withdrawal' | 'silence' | 'probe';

export interface DetectorComponents {
  clock: Clock;
  transport: LanTransport;
  random: () => number;
}

export interface DetectorInit {
  config: ElectionConfig;
  onDeparture: (id: string, reason: DepartureReason) => void;
}

/**
 * A follower's watch on one representative. Each enabled means runs on its own, so any one of
 * them alone still ends in a takeover. Any message from the representative counts as a sign of
 * life for every means: under 30 % loss a probe answer alone is too easy to lose, and a
 * representative that still sends inquiries is not gone whatever happened to our probe.
 */
export class DepartureDetector {
  private readonly clock: Clock;
  private readonly transport: LanTransport;
  private readonly random: () => number;
  private readonly config: ElectionConfig;
  private readonly onDeparture: (id: string, reason: DepartureReason) => void;
  private target: { id: string; address: string; port: number } | undefined;
  private lastHeard = 0;
  private silenceTimer: Timer | undefined;
  private probeTimer: Timer | undefined;
  private probeTimeoutTimer: Timer | undefined;
  private pendingNonce: string | undefined;
  private answered = true;
  private misses = 0;
  private nonces = 0;

  constructor(components: DetectorComponents, init: DetectorInit) {
    this.clock = components.clock;
    this.transport = components.transport;
    this.random = components.random;
    this.config = init.config;
    this.onDeparture = init.onDeparture;
  }

  /** The representative being watched, if any. */
  get watching(): string | undefined {
    return this.target?.id;
  }

  /** Starts (or restarts) watching `id`; the clock of every means starts now. */
  watch(id: string, address: string, port: number): void {
    if (this.target?.id === id) {
      this.target.address = address;
      this.target.port = port;
      return;
    }
    this.unwatch();
    this.target = { id, address, port };
    this.lastHeard = this.clock.now();
    this.misses = 0;
    this.answered = true;
    const { detection } = this.config;
    if (detection.silence) this.armSilence(this.config.silenceTimeoutMs);
    if (detection.probe) {
      // Spread the followers' probes over the interval rather than all at once.
      this.probeTimer = this.clock.setTimeout(() => this.probeTick(), this.random() * this.config.probeIntervalMs);
    }
  }

  unwatch(): void {
    this.target = undefined;
    this.silenceTimer?.cancel();
    this.probeTimer?.cancel();
    this.probeTimeoutTimer?.cancel();
    this.silenceTimer = this.probeTimer = this.probeTimeoutTimer = undefined;
    this.pendingNonce = undefined;
  }

  /** Any message from `id`. */
  heard(id: string, address?: string, port?: number): void {
    if (this.target?.id !== id) return;
    this.lastHeard = this.clock.now();
    this.answered = true;
    this.misses = 0;
    if (address !== undefined && port !== undefined) {
      this.target.address = address;
      this.target.port = port;
    }
  }

  acked(nonce: string): void {
    if (nonce === this.pendingNonce) {
      this.answered = true;
      this.misses = 0;
    }
  }

  withdrew(id: string): void {
    if (this.target?.id === id && this.config.detection.withdrawal) this.depart('withdrawal');
  }

  private armSilence(ms: number): void {
    this.silenceTimer = this.clock.setTimeout(() => {
      const quiet = this.clock.now() - this.lastHeard;
      // Within 1 ms counts as elapsed: now + (t - now) can round below t.
      if (quiet >= this.config.silenceTimeoutMs - 1) this.depart('silence');
      // Re-arming from the last message rather than on every message keeps one timer per follower.
      else this.armSilence(this.config.silenceTimeoutMs - quiet);
    }, ms);
  }

  private probeTick(): void {
    const target = this.target;
    if (target === undefined) return;
    // Heard within the interval (its inquiry, usually): that is the answer a probe would bring,
    // so none is sent, and the next look is just after the representative's next message is due
    // (a tenth of an interval of slack). A settled LAN then carries no probes at all, which
    // halves what each node sends and wakes up for, while a representative that falls silent is
    // probed about as soon after its last message as a probe on a fixed beat would be.
    const quiet = this.clock.now() - this.lastHeard;
    if (quiet < this.config.probeIntervalMs) {
      this.probeTimer = this.clock.setTimeout(() => this.probeTick(), this.config.probeIntervalMs * 1.1 - quiet);
      return;
    }
    this.probeTimer = this.clock.setTimeout(() => this.probeTick(), this.config.probeIntervalMs);
    const nonce = `${(this.random() * 2 ** 32) >>> 0}.${++this.nonces}`;
    this.pendingNonce = nonce;
    this.answered = false;
    this.transport.unicast({ type: 'probe', nonce }, target.address, target.port);
    this.probeTimeoutTimer = this.clock.setTimeout(() => {
      if (this.answered) return;
      this.misses++;
      if (this.misses >= this.config.probeMisses) this.depart('probe');
    }, this.config.probeTimeoutMs);
  }

  private depart(reason: DepartureReason): void {
    const id = this.target?.id;
    if (id === undefined) return;
    this.unwatch();
    this.onDeparture(id, reason);
  }
}
