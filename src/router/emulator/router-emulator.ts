import { randomUUID } from 'node:crypto';
import type { Clock } from '../../runtime/clock.js';
import type { Logger } from '../../runtime/log.js';
import type { Mapping } from '../types.js';
import type { EmulatorContext, EmulatorSettings } from './emulator-context.js';
import type { DeviceIds } from './igd-description.js';
import type { MappingEntry } from './mapping-table.js';
import { systemClock } from '../../runtime/clock.js';
import { silentLogger } from '../../runtime/log.js';
import { IgdServer } from './igd-server.js';
import { paths } from './igd-description.js';
import { assertLoopback } from './loopback.js';
import { MappingTable } from './mapping-table.js';
import { NatPmpPcpServer } from './natpmp-pcp-server.js';
import { SsdpResponder } from './ssdp-responder.js';
import { TcpForwarder } from './tcp-forwarder.js';

export interface RouterEmulatorOptions {
  /** LAN side address it listens on; loopback only. Default 127.0.0.1. */
  address?: string;
  /** What GetExternalIPAddress / NAT-PMP op 0 report, and where forwarders listen. Default 127.0.1.1. */
  wanAddress?: string;
  /** 0 (default) = any free port. */
  httpPort?: number;
  /** UDP port for unicast M-SEARCH; 0 (default) = any free (a real router uses 1900). */
  ssdpPort?: number;
  /** NAT-PMP + PCP UDP port; 0 (default) = any free (a real router uses 5351). */
  pmpPort?: number;
  upnp?: boolean;
  natpmp?: boolean;
  pcp?: boolean;
  /** 1 = a truly IGDv1-only router: v1 types, no AddAnyPortMapping / GetListOfPortMappings. */
  igdVersion?: 1 | 2;
  /** Default true: map only to the requester's own address, delete only own mappings. */
  secureMode?: boolean;
  /** Quirk: AddPortMapping with a lease other than 0 fails with 725. */
  onlyPermanentLeases?: boolean;
  /** Default 1024: lower external ports are refused, as miniupnpd's allow rules. */
  minPort?: number;
  /** Quirk: LOCATION names this host instead of `address`. */
  locationHost?: string;
  /** Quirk: answer M-SEARCH from this source port (0 = another free one) instead of the searched one. */
  ssdpReplyPort?: number;
  /** Really forward TCP: listen on wanAddress:externalPort and pipe to the internal client. */
  forward?: boolean;
  /**
   * How long the router says it has been up when it starts (its NAT-PMP/PCP epoch and UPnP
   * uptime), in seconds. Default 0: it has just started, and nodes wait a lease before claiming
   * the well-known port; the demo says 3600, a home router that has been up a while.
   */
  upSeconds?: number;
  clock?: Clock;
  logger?: Logger;
}

export type RouterQuirks = Partial<
  Pick<
    RouterEmulatorOptions,
    | 'upnp'
    | 'natpmp'
    | 'pcp'
    | 'igdVersion'
    | 'secureMode'
    | 'onlyPermanentLeases'
    | 'minPort'
    | 'locationHost'
    | 'ssdpReplyPort'
    | 'forward'
  >
>;

/**
 * A home router on loopback that speaks what miniupnpd 2.3.1 speaks: SSDP answers, the IGD
 * description and SOAP control, NAT-PMP and PCP, all over one mapping table. It lets
 * `frontdoor demo` run without a router and makes router-layer tests fast and deterministic
 * (leases run on the injected clock).
 */
export class RouterEmulator {
  private readonly settings: EmulatorSettings;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly table: MappingTable;
  private readonly ids: DeviceIds;
  private readonly wanted: { http: number; ssdp: number; pmp: number };
  private readonly igd: IgdServer;
  private readonly ssdp: SsdpResponder;
  private readonly pmp: NatPmpPcpServer;
  private readonly forwarders = new Map<string, TcpForwarder>();
  private epochOrigin: number;
  private readonly upMs: number;
  private boot = 1;
  private started = false;
  private starting: Promise<void> | undefined;

  constructor(options: RouterEmulatorOptions = {}) {
    const address = options.address ?? '127.0.0.1';
    const wanAddress = options.wanAddress ?? '127.0.1.1';
    assertLoopback('address', address);
    assertLoopback('wanAddress', wanAddress);
    if (options.locationHost !== undefined && options.locationHost.length === 0) {
      throw new RangeError('locationHost must not be empty');
    }
    this.settings = {
      address,
      wanAddress,
      upnp: options.upnp ?? true,
      natpmp: options.natpmp ?? true,
      pcp: options.pcp ?? true,
      igdVersion: options.igdVersion ?? 2,
      secureMode: options.secureMode ?? true,
      onlyPermanentLeases: options.onlyPermanentLeases ?? false,
      minPort: options.minPort ?? 1024,
      locationHost: options.locationHost,
      ssdpReplyPort: options.ssdpReplyPort,
      forward: options.forward ?? false,
    };
    this.clock = options.clock ?? systemClock;
    this.logger = (options.logger ?? silentLogger).child('router-emulator');
    this.wanted = { http: options.httpPort ?? 0, ssdp: options.ssdpPort ?? 0, pmp: options.pmpPort ?? 0 };
    this.upMs = Math.max(0, options.upSeconds ?? 0) * 1000;
    this.epochOrigin = this.clock.now() - this.upMs;
    this.table = new MappingTable(this.clock, {
      onAdd: (e) => this.onMappingAdded(e),
      onRemove: (e) => this.onMappingRemoved(e),
    });
    this.ids = newIds();
    const ctx: EmulatorContext = {
      settings: this.settings,
      table: this.table,
      clock: this.clock,
      logger: this.logger,
      epochSeconds: () => Math.max(0, Math.floor((this.clock.now() - this.epochOrigin) / 1000)),
      bootId: () => this.boot,
    };
    this.igd = new IgdServer(ctx, this.ids);
    this.ssdp = new SsdpResponder(ctx, this.ids, () => this.igd.port);
    this.pmp = new NatPmpPcpServer(ctx);
  }

  async start(signal?: AbortSignal): Promise<void> {
    if (this.started) return;
    if (this.starting !== undefined) return this.starting;
    signal?.throwIfAborted();
    this.starting = (async () => {
      try {
        if (this.settings.upnp) {
          await this.igd.start(this.wanted.http);
          await this.ssdp.start(this.wanted.ssdp);
        }
        if (this.settings.natpmp || this.settings.pcp) await this.pmp.start(this.wanted.pmp);
        signal?.throwIfAborted();
        this.epochOrigin = this.clock.now() - this.upMs;
        this.started = true;
        this.logger.info('router emulator started', { address: this.settings.address, ...this.ports });
      } catch (err) {
        await this.closeAll();
        throw err;
      } finally {
        this.starting = undefined;
      }
    })();
    return this.starting;
  }

  async stop(): Promise<void> {
    if (this.starting !== undefined) await this.starting.catch(() => {});
    if (!this.started) return;
    this.started = false;
    await this.closeAll();
  }

  get ports(): { http: number; ssdp: number; pmp: number } {
    return { http: this.igd.port, ssdp: this.ssdp.port, pmp: this.pmp.port };
  }

  /** The device description URL, as SSDP announces it (locationHost when that quirk is on). */
  get location(): string {
    return `http://${this.settings.locationHost ?? this.settings.address}:${this.igd.port}${paths.rootDesc}`;
  }

  mappings(): Mapping[] {
    return this.table.list().map((e) => this.table.toMapping(e));
  }

  /** Power cycle: every mapping gone, the NAT-PMP/PCP epoch back to 0, a new SSDP boot id. */
  reboot(): void {
    this.table.clear();
    this.epochOrigin = this.clock.now();
    this.boot++;
    this.logger.info('router emulator rebooted', { bootId: this.boot });
  }

  /** The provider gave the router another WAN address. Forwarders move with it. */
  setWanAddress(addr: string): void {
    assertLoopback('wanAddress', addr);
    if (addr === this.settings.wanAddress) return;
    this.settings.wanAddress = addr;
    if (this.settings.forward) {
      this.stopForwarders();
      for (const e of this.table.list()) this.onMappingAdded(e);
    }
  }

  /** Switches behaviour at run time. Services switched on here start only with the next start(). */
  setQuirks(quirks: RouterQuirks): void {
    const defined = Object.fromEntries(Object.entries(quirks).filter(([, v]) => v !== undefined)) as RouterQuirks;
    if ('locationHost' in quirks && quirks.locationHost === undefined) this.settings.locationHost = undefined;
    if ('ssdpReplyPort' in quirks && quirks.ssdpReplyPort === undefined) this.settings.ssdpReplyPort = undefined;
    const wasForwarding = this.settings.forward;
    Object.assign(this.settings, defined);
    if (wasForwarding && !this.settings.forward) this.stopForwarders();
    if (!wasForwarding && this.settings.forward) for (const e of this.table.list()) this.onMappingAdded(e);
  }

  private async closeAll(): Promise<void> {
    this.table.dispose();
    this.stopForwarders();
    await Promise.all([this.igd.stop(), this.ssdp.stop(), this.pmp.stop()]);
  }

  private onMappingAdded(e: MappingEntry): void {
    if (!this.settings.forward || e.protocol !== 'TCP') return;
    if (!this.started && this.starting === undefined) return;
    const key = `${e.protocol}/${e.externalPort}`;
    if (this.forwarders.has(key)) return;
    const fwd = new TcpForwarder(this.logger, this.settings.wanAddress, e.externalPort, () => {
      const cur = this.table.get(e.protocol, e.externalPort);
      return cur === undefined ? undefined : { host: cur.internalClient, port: cur.internalPort };
    });
    this.forwarders.set(key, fwd);
    void fwd.start().then((ok) => {
      if (!ok && this.forwarders.get(key) === fwd) this.forwarders.delete(key);
    });
  }

  private onMappingRemoved(e: MappingEntry): void {
    const key = `${e.protocol}/${e.externalPort}`;
    const fwd = this.forwarders.get(key);
    if (fwd === undefined) return;
    // A renewal replaces the entry with the same key: keep the listener then.
    queueMicrotask(() => {
      if (this.table.get(e.protocol, e.externalPort) !== undefined && this.settings.forward) return;
      if (this.forwarders.get(key) !== fwd) return;
      this.forwarders.delete(key);
      void fwd.stop();
    });
  }

  private stopForwarders(): void {
    for (const f of this.forwarders.values()) void f.stop();
    this.forwarders.clear();
  }
}

function newIds(): DeviceIds {
  // miniupnpd derives the three UDNs from one configured uuid by bumping its last digit.
  const base = randomUUID();
  const bump = (n: number) => base.slice(0, -1) + ((Number.parseInt(base.slice(-1), 16) + n) % 16).toString(16);
  return { igd: base, wan: bump(1), wcd: bump(2) };
}
