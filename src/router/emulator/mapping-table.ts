import type { Clock, Timer } from '../../runtime/clock.js';
import type { Mapping, MappingProtocolName, TransportProtocol } from '../types.js';

/** One redirect rule as miniupnpd keeps it (netfilter rule + its lease timestamp). */
export interface MappingEntry {
  protocol: TransportProtocol;
  externalPort: number;
  internalClient: string;
  internalPort: number;
  description: string;
  /** Clock time (ms) the lease ends; 0 = permanent. */
  expiresAt: number;
  via: MappingProtocolName;
}

export interface MappingTableEvents {
  onAdd?: (entry: MappingEntry) => void;
  onRemove?: (entry: MappingEntry) => void;
}

/** Timers longer than this are re-armed: Node fires a setTimeout above 2^31-1 ms at once. */
const maxTimerMs = 2 ** 30;

/**
 * The router's port-mapping table: the lock on each (protocol, external port). Leases run on the
 * injected clock; an expired rule is gone for every reader at once, whether or not its timer has
 * fired yet (miniupnpd only sweeps now and then, but a client cannot observe the difference).
 */
export class MappingTable {
  private readonly clock: Clock;
  private readonly events: MappingTableEvents;
  /** Insertion order is the order of GetGenericPortMappingEntry indexes, as netfilter lists rules. */
  private readonly entries = new Map<string, MappingEntry>();
  private timer: Timer | undefined;
  private timerAt = 0;

  constructor(clock: Clock, events: MappingTableEvents = {}) {
    this.clock = clock;
    this.events = events;
  }

  get(protocol: TransportProtocol, externalPort: number): MappingEntry | undefined {
    this.sweep();
    return this.entries.get(key(protocol, externalPort));
  }

  /** Adds or replaces the rule for (protocol, externalPort). */
  set(entry: MappingEntry): void {
    this.sweep();
    const k = key(entry.protocol, entry.externalPort);
    const old = this.entries.get(k);
    if (old !== undefined) {
      this.entries.delete(k);
      this.events.onRemove?.(old);
    }
    this.entries.set(k, { ...entry });
    this.events.onAdd?.(entry);
    this.arm();
  }

  delete(protocol: TransportProtocol, externalPort: number): boolean {
    this.sweep();
    const k = key(protocol, externalPort);
    const old = this.entries.get(k);
    if (old === undefined) return false;
    this.entries.delete(k);
    this.events.onRemove?.(old);
    this.arm();
    return true;
  }

  /** The table in index order. */
  list(): MappingEntry[] {
    this.sweep();
    return [...this.entries.values()].map((e) => ({ ...e }));
  }

  get size(): number {
    this.sweep();
    return this.entries.size;
  }

  clear(): void {
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const e of all) this.events.onRemove?.(e);
    this.arm();
  }

  /** Seconds left on a lease, as miniupnpd reports NewLeaseDuration; 0 for permanent. */
  remainingSeconds(entry: MappingEntry): number {
    if (entry.expiresAt === 0) return 0;
    return Math.max(0, Math.ceil((entry.expiresAt - this.clock.now()) / 1000));
  }

  toMapping(entry: MappingEntry): Mapping {
    return {
      protocol: entry.protocol,
      externalPort: entry.externalPort,
      internalClient: entry.internalClient,
      internalPort: entry.internalPort,
      leaseSeconds: this.remainingSeconds(entry),
      description: entry.description,
      enabled: true,
      remoteHost: '',
      via: entry.via,
    };
  }

  /** Stops the expiry timer; the entries stay (used by stop()). */
  dispose(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = 0;
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [k, e] of this.entries) {
      if (e.expiresAt !== 0 && e.expiresAt <= now) {
        this.entries.delete(k);
        this.events.onRemove?.(e);
      }
    }
  }

  private arm(): void {
    let next = 0;
    for (const e of this.entries.values()) {
      if (e.expiresAt !== 0 && (next === 0 || e.expiresAt < next)) next = e.expiresAt;
    }
    if (next === this.timerAt && this.timer !== undefined) return;
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = 0;
    if (next === 0) return;
    const delay = Math.min(Math.max(0, next - this.clock.now()), maxTimerMs);
    this.timerAt = next;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.timerAt = 0;
      this.sweep();
      this.arm();
    }, delay);
  }
}

function key(protocol: TransportProtocol, port: number): string {
  return `${protocol}/${port}`;
}
