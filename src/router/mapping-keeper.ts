import type { Clock, Timer } from '../runtime/clock.js';
import type { Logger } from '../runtime/log.js';
import { silentLogger } from '../runtime/log.js';
import { asRouterError, PortConflictError, RouterError } from './errors.js';
import type { Mapping, MappingRequest, PortMapper } from './types.js';
import { Listeners } from '../runtime/listeners.js';

/**
 * Keeps this node's mappings alive at the router: renews before the lease ends, and re-claims
 * when the router forgot them. Routers forget in two ways we can see: a reboot (NAT-PMP/PCP
 * epoch going back, reported by the clients through `routerReset`; on UPnP, the mapping missing
 * from the listed table) and a WAN address change (many routers drop the table with the old
 * address). Both end in a re-claim, and the caller hears about it through events.
 *
 * Its periodic check is the node's only look at the router's WAN address and table: the
 * `wan` and `table` events carry what it read to whoever shows or decides on them.
 */

export type KeeperEvent =
  | { type: 'claimed'; id: string; mapping: Mapping }
  | { type: 'renewed'; id: string; mapping: Mapping }
  /** The router no longer had it (reboot, table flushed); a re-claim follows. */
  | { type: 'lost'; id: string; reason: string }
  /** A specific port is held by someone else. For `any` mappings the keeper moves on by itself. */
  | { type: 'conflict'; id: string; error: PortConflictError }
  | { type: 'moved'; id: string; from: number; mapping: Mapping }
  | { type: 'wan-changed'; from: string | undefined; to: string }
  /** Every successful read of the WAN address (the first one included). */
  | { type: 'wan'; address: string }
  /** The router's whole table, where the router can list it. */
  | { type: 'table'; mappings: Mapping[] }
  | { type: 'router-reset'; reason: string }
  | { type: 'error'; id?: string; error: RouterError };

export type KeepMode = 'specific' | 'any';

interface Entry {
  id: string;
  request: MappingRequest;
  mode: KeepMode;
  mapping: Mapping | undefined;
  timer: Timer | undefined;
  failures: number;
}

export interface MappingKeeperInit {
  /** Renew when this fraction of the granted lease has passed. */
  renewFraction?: number;
  /** How often to check the WAN address and the table (also the renewal period of permanent leases). */
  checkIntervalMs?: number;
  retryMinMs?: number;
  retryMaxMs?: number;
}

export class MappingKeeper {
  private readonly mapper: PortMapper;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly listeners: Listeners<KeeperEvent>;
  private readonly renewFraction: number;
  private readonly checkIntervalMs: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly entries = new Map<string, Entry>();
  private checkTimer: Timer | undefined;
  private checking: Promise<void> | undefined;
  private checkAgain = false;
  private wanAddress: string | undefined;
  private stopped = false;

  constructor(
    components: { mapper: PortMapper; clock: Clock; logger?: Logger },
    init: MappingKeeperInit = {},
  ) {
    this.mapper = components.mapper;
    this.clock = components.clock;
    this.log = components.logger ?? silentLogger;
    this.listeners = new Listeners<KeeperEvent>(this.log, 'keeper');
    this.renewFraction = init.renewFraction ?? 0.5;
    this.checkIntervalMs = init.checkIntervalMs ?? 30_000;
    this.retryMinMs = init.retryMinMs ?? 1_000;
    this.retryMaxMs = init.retryMaxMs ?? 30_000;
  }

  on(listener: (e: KeeperEvent) => void): () => void {
    return this.listeners.add(listener);
  }

  get externalAddress(): string | undefined {
    return this.wanAddress;
  }

  mapping(id: string): Mapping | undefined {
    return this.entries.get(id)?.mapping;
  }

  /**
   * Claims now and keeps the mapping. A `specific` claim that meets a conflict rejects with
   * PortConflictError and is not kept: who holds a specific port is the caller's decision.
   */
  async add(id: string, request: MappingRequest, mode: KeepMode, signal?: AbortSignal): Promise<Mapping> {
    if (this.stopped) throw new RouterError('FD_ABORTED', 'the mapping keeper is stopped');
    if (this.entries.has(id)) throw new Error(`mapping ${id} is already kept`);
    const entry: Entry = { id, request, mode, mapping: undefined, timer: undefined, failures: 0 };
    const mapping = await this.claimEntry(entry, signal);
    entry.mapping = mapping;
    this.entries.set(id, entry);
    this.emit({ type: 'claimed', id, mapping });
    this.schedule(entry);
    this.startChecks();
    return mapping;
  }

  /** Stops keeping a mapping and releases it at the router. */
  async remove(id: string, signal?: AbortSignal): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    entry.timer?.cancel();
    if (entry.mapping) await this.mapper.release(entry.mapping, signal);
  }

  /** Called when a client sees the router's epoch go back: every mapping is gone. */
  routerReset(reason: string): void {
    if (this.stopped) return;
    this.log.warn('router lost its mappings; claiming them again', { reason });
    this.emit({ type: 'router-reset', reason });
    for (const e of this.entries.values()) {
      this.emit({ type: 'lost', id: e.id, reason });
      this.renewSoon(e, 0);
    }
  }

  /** Starts the periodic checks even with no mapping kept (they start with the first `add` too). */
  start(): void {
    this.startChecks();
  }

  /**
   * A check now (a new representative wants the table on its page at once), besides the
   * periodic ones. One in flight at a time: asked during one, it runs once more after it.
   */
  checkNow(): void {
    if (this.stopped) return;
    if (this.checking !== undefined) {
      this.checkAgain = true;
      return;
    }
    this.checking = this.check()
      .catch((e: unknown) => this.emit({ type: 'error', error: asRouterError(e, 'router check') }))
      .finally(() => {
        this.checking = undefined;
        if (this.checkAgain) {
          this.checkAgain = false;
          this.checkNow();
        }
      });
  }

  /** Compares the WAN address and, where the router can list, looks for our mappings in its table. */
  async check(signal?: AbortSignal): Promise<void> {
    const addr = await this.mapper.externalAddress(signal);
    if (this.stopped) return;
    if (this.wanAddress !== undefined && addr !== this.wanAddress) {
      this.log.warn('router WAN address changed; claiming mappings again', { from: this.wanAddress, to: addr });
      this.emit({ type: 'wan-changed', from: this.wanAddress, to: addr });
      this.wanAddress = addr;
      this.emit({ type: 'wan', address: addr });
      for (const e of this.entries.values()) this.renewSoon(e, 0);
      return;
    }
    this.wanAddress = addr;
    this.emit({ type: 'wan', address: addr });
    if (!this.mapper.canList) return;
    const table = await this.mapper.list(signal);
    if (this.stopped) return;
    this.emit({ type: 'table', mappings: table });
    for (const e of this.entries.values()) {
      const m = e.mapping;
      if (!m) continue;
      const present = table.some(
        (t) => t.protocol === m.protocol && t.externalPort === m.externalPort && t.internalClient === m.internalClient,
      );
      if (!present) {
        const reason = `external port ${m.externalPort} is missing from the router's table`;
        this.log.warn('mapping missing at the router; claiming it again', { id: e.id, port: m.externalPort });
        this.emit({ type: 'lost', id: e.id, reason });
        this.renewSoon(e, 0);
      }
    }
  }

  /** Stops every timer; with `release`, removes our mappings from the router (bounded by `signal`). */
  async stop(opts: { release?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.checkTimer?.cancel();
    const entries = [...this.entries.values()];
    this.entries.clear();
    for (const e of entries) e.timer?.cancel();
    if (opts.release) {
      await Promise.allSettled(
        entries.filter((e) => e.mapping).map((e) => this.mapper.release(e.mapping!, opts.signal)),
      );
    }
  }

  private async claimEntry(entry: Entry, signal?: AbortSignal): Promise<Mapping> {
    // Renewing an `any` mapping asks for the port it already has, so links stay valid.
    const wanted = entry.mapping?.externalPort ?? entry.request.externalPort;
    const req = { ...entry.request, externalPort: wanted };
    if (entry.mode === 'specific') return this.mapper.claim(req, signal);
    if (entry.mapping) {
      try {
        return await this.mapper.claim(req, signal);
      } catch (e) {
        if (!(e instanceof PortConflictError)) throw e;
      }
    }
    return this.mapper.claimAny(req, signal);
  }

  private schedule(entry: Entry): void {
    const lease = entry.mapping?.leaseSeconds ?? 0;
    const ms = lease > 0 ? Math.max(1000, lease * 1000 * this.renewFraction) : this.checkIntervalMs;
    this.renewSoon(entry, ms);
  }

  private renewSoon(entry: Entry, ms: number): void {
    entry.timer?.cancel();
    entry.timer = this.clock.setTimeout(() => {
      void this.renew(entry);
    }, ms);
  }

  private async renew(entry: Entry): Promise<void> {
    if (this.stopped || this.entries.get(entry.id) !== entry) return;
    const before = entry.mapping;
    try {
      const mapping = await this.claimEntry(entry);
      if (this.stopped || this.entries.get(entry.id) !== entry) return;
      entry.mapping = mapping;
      entry.failures = 0;
      if (before && before.externalPort !== mapping.externalPort) {
        this.log.info('mapping moved to another external port', { id: entry.id, from: before.externalPort, to: mapping.externalPort });
        this.emit({ type: 'moved', id: entry.id, from: before.externalPort, mapping });
      } else {
        this.emit({ type: 'renewed', id: entry.id, mapping });
      }
      this.schedule(entry);
    } catch (e) {
      if (this.stopped || this.entries.get(entry.id) !== entry) return;
      entry.failures++;
      if (e instanceof PortConflictError) {
        this.emit({ type: 'conflict', id: entry.id, error: e });
      } else {
        const err = asRouterError(e, 'renewal');
        if (entry.failures === 1) this.log.warn('could not renew a mapping; retrying', { id: entry.id, error: err });
        this.emit({ type: 'error', id: entry.id, error: err });
      }
      const backoff = Math.min(this.retryMaxMs, this.retryMinMs * 2 ** Math.min(entry.failures - 1, 10));
      this.renewSoon(entry, backoff);
    }
  }

  private startChecks(): void {
    if (this.checkTimer || this.stopped) return;
    const tick = () => {
      this.checkTimer = this.clock.setTimeout(() => {
        this.checkNow();
        tick();
      }, this.checkIntervalMs);
    };
    tick();
  }

  private emit(e: KeeperEvent): void {
    this.listeners.emit(e);
  }
}
