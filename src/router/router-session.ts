import { join } from 'node:path';
import type { Clock, Timer } from '../runtime/clock.js';
import type { Logger } from '../runtime/log.js';
import { bestMapper, discoverGateway } from './discover.js';
import type { DiscoverOptions, Discovery, ProtocolFamily } from './discover.js';
import { PortConflictError, RouterError } from './errors.js';
import { loadGatewayMemory, rememberedLocation, saveGatewayMemory } from './gateway-memory.js';
import { MappingKeeper } from './mapping-keeper.js';
import type { KeeperEvent } from './mapping-keeper.js';
import type { Mapping, MappingProtocolName, MappingRequest, PortMapper } from './types.js';
import { Listeners } from '../runtime/listeners.js';

/**
 * This node's link to the router: finds it (retrying while it does not answer, remembering it
 * for the next start), holds the one client everything else asks through, keeps every lease the
 * node holds at the router except the well-known port's (the election's lock: see
 * docs/design.md), and is the only look at the WAN address and the table. What it learns goes
 * out as events; it keeps none of it for anyone to read back.
 */

/** How often the WAN address and the table are read (also how soon a forgotten mapping is seen). */
export const ROUTER_CHECK_INTERVAL_MS = 10_000;
const RETRY_MS = [2_000, 5_000, 10_000, 30_000, 60_000];
const PAGE_PORT_TRIES = 32;
const PAGE_LEASE_S = 3600;

export type RouterSessionEvent =
  | { type: 'found'; protocol: MappingProtocolName; gateway: string; localAddress: string }
  /** What is wrong with the router as a user would read it; undefined: nothing (any more). */
  | { type: 'problem'; error: string | undefined }
  /** The public port the router gave this node's own page. */
  | { type: 'page'; publicPort: number }
  | { type: 'wan'; address: string }
  | { type: 'table'; mappings: Mapping[] };

export interface RouterSessionComponents {
  clock: Clock;
  logger: Logger;
  /** Discovery; the default asks the real network. */
  discover?: (opts: DiscoverOptions) => Promise<Discovery>;
}

/** How the router is looked for and asked: the node's router settings. */
export interface RouterOptions {
  protocols: readonly ProtocolFamily[];
  discoveryTimeoutMs: number;
  requestTimeoutMs: number;
  ssdpPort: number;
  natpmpPort: number;
  /** Multicast M-SEARCH too (off on loopback). */
  multicast: boolean;
}

export interface RouterSessionInit extends RouterOptions {
  gateway: string;
  localAddress: string;
  /** Where the router found last is kept; undefined keeps nothing. */
  dataDir?: string;
  /** The node's own page: its local port, and the public port it must never take. */
  page: { localPort: number; wellKnownPort: number; name: string };
}

/** A mapping for a moment (the ACME challenge port): kept alive while open, released on close. */
export interface TemporaryPorts {
  open(req: MappingRequest, signal?: AbortSignal): Promise<Mapping>;
  close(mapping: Mapping): Promise<void>;
}

export class RouterSession {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly listeners: Listeners<RouterSessionEvent>;
  private readonly discover: (opts: DiscoverOptions) => Promise<Discovery>;
  private readonly init: RouterSessionInit;
  private readonly abort = new AbortController();
  private current: PortMapper | undefined;
  private keeper: MappingKeeper | undefined;
  private retryTimer: Timer | undefined;
  private discoveryAttempt = 0;
  private pageAttempt = 0;
  private temporaries = 0;

  constructor(components: RouterSessionComponents, init: RouterSessionInit) {
    this.clock = components.clock;
    this.log = components.logger.child('router');
    this.listeners = new Listeners<RouterSessionEvent>(this.log, 'router session');
    this.discover = components.discover ?? discoverGateway;
    this.init = init;
  }

  /** The router's client, once found. */
  get mapper(): PortMapper | undefined {
    return this.current;
  }

  on(listener: (e: RouterSessionEvent) => void): () => void {
    return this.listeners.add(listener);
  }

  /**
   * Looks for the router once; resolves when it is found or, if nothing answered, once the next
   * try is planned. Mapping the node's page and the checks start as soon as it is found.
   */
  async start(): Promise<void> {
    await this.find();
  }

  /** A look at the WAN address and the table now, besides the periodic ones. */
  checkNow(): void {
    this.keeper?.checkNow();
  }

  /** Ports kept at the router only while open; each open one has its own id in the keeper. */
  readonly temporary: TemporaryPorts = {
    open: async (req, signal) => {
      const keeper = this.keeper;
      if (keeper === undefined) throw new RouterError('FD_NO_GATEWAY', 'no router found yet');
      const id = `temporary-${++this.temporaries}-${req.externalPort}`;
      const mapping = await keeper.add(id, req, 'specific', signal);
      this.ids.set(mapping, id);
      return mapping;
    },
    close: async (mapping) => {
      const id = this.ids.get(mapping);
      this.ids.delete(mapping);
      if (id !== undefined && this.keeper !== undefined) await this.keeper.remove(id);
    },
  };

  private readonly ids = new WeakMap<Mapping, string>();

  /** Ends discovery and the page's claim now; what is kept stays until `stop`. */
  cancel(): void {
    this.abort.abort(new Error('stopping'));
    this.retryTimer?.cancel();
  }

  /** Graceful: releases every mapping it keeps (bounded by the caller's deadline). */
  async stop(opts: { release: boolean; signal?: AbortSignal }): Promise<void> {
    this.cancel();
    await this.keeper?.stop({ release: opts.release, ...(opts.signal ? { signal: opts.signal } : {}) }).catch((err: unknown) => {
      this.log.warn("could not release this node's own port", { error: err });
    });
    this.current?.close();
  }

  private emit(e: RouterSessionEvent): void {
    this.listeners.emit(e);
  }

  private memoryFile(): string | undefined {
    return this.init.dataDir === undefined ? undefined : join(this.init.dataDir, 'gateway.json');
  }

  private async find(): Promise<void> {
    const o = this.init;
    const memoryFile = this.memoryFile();
    const memory = memoryFile === undefined ? undefined : await loadGatewayMemory(memoryFile).catch(() => undefined);
    let mapper: PortMapper;
    try {
      const knownLocation = rememberedLocation(memory, o.gateway, o.localAddress);
      const d = await this.discover({
        gateway: o.gateway,
        localAddress: o.localAddress,
        protocols: o.protocols,
        timeoutMs: o.discoveryTimeoutMs,
        requestTimeoutMs: o.requestTimeoutMs,
        ssdpPort: o.ssdpPort,
        natpmpPort: o.natpmpPort,
        multicast: o.multicast,
        ...(knownLocation === undefined ? {} : { knownLocation }),
        onReset: (reason) => this.keeper?.routerReset(reason),
        signal: this.abort.signal,
        logger: this.log,
        clock: this.clock,
      });
      if (this.abort.signal.aborted) {
        for (const m of d.mappers) m.close();
        return;
      }
      mapper = bestMapper(d);
      for (const m of d.mappers) if (m !== mapper) m.close();
      this.log.info('router found', { protocol: mapper.protocol, gateway: d.gateway });
      if (memoryFile !== undefined) {
        saveGatewayMemory(memoryFile, d).catch((err: unknown) => this.log.warn('could not save the router for next start', { file: memoryFile, error: err }));
      }
    } catch (err) {
      if (this.abort.signal.aborted) return;
      const error = err instanceof Error ? err.message : String(err);
      const wait = RETRY_MS[Math.min(this.discoveryAttempt, RETRY_MS.length - 1)]!;
      this.discoveryAttempt++;
      this.emit({ type: 'problem', error });
      this.log.warn('no router answered; the node serves its page on the LAN and keeps looking', { error: err, retryInMs: wait });
      this.retryTimer = this.clock.setTimeout(() => {
        this.find().catch((e: unknown) => this.log.error('router search failed', { error: e }));
      }, wait);
      return;
    }
    this.current = mapper;
    const keeper = new MappingKeeper({ mapper, clock: this.clock, logger: this.log.child('keeper') }, { checkIntervalMs: ROUTER_CHECK_INTERVAL_MS });
    this.keeper = keeper;
    keeper.on((e) => this.onKeeperEvent(keeper, e));
    this.emit({ type: 'problem', error: undefined });
    this.emit({ type: 'found', protocol: mapper.protocol, gateway: mapper.gateway, localAddress: mapper.localAddress });
    keeper.start();
    keeper.checkNow();
    void this.claimPagePort(keeper);
  }

  /**
   * The node's own public port (claim 2's "another port"): the same number as the local port
   * when free, else the next ones. Never "any port": a router's free-port choice can be the
   * well-known port while no representative holds it, and the election would later take it over.
   */
  private async claimPagePort(keeper: MappingKeeper): Promise<void> {
    const { localPort, wellKnownPort, name } = this.init.page;
    const signal = this.abort.signal;
    const candidates: number[] = [];
    for (let p = localPort; candidates.length < PAGE_PORT_TRIES && p <= 65535; p++) if (p !== wellKnownPort) candidates.push(p);
    let last: unknown;
    for (const externalPort of candidates) {
      if (signal.aborted) return;
      try {
        await keeper.add(
          'page',
          { externalPort, internalPort: localPort, protocol: 'TCP', leaseSeconds: PAGE_LEASE_S, description: `frontdoor ${routerSafe(name)}` },
          'specific',
          signal,
        );
        if (this.pageAttempt > 0) this.emit({ type: 'problem', error: undefined });
        this.pageAttempt = 0;
        return;
      } catch (err) {
        last = err;
        if (!(err instanceof PortConflictError)) break;
      }
    }
    if (signal.aborted) return;
    const error = `could not map this node's page: ${last instanceof Error ? last.message : String(last)}`;
    // A router busy at start (a timeout) must not leave the node without a link for good.
    const wait = RETRY_MS[Math.min(this.pageAttempt, RETRY_MS.length - 1)]!;
    this.pageAttempt++;
    this.emit({ type: 'problem', error });
    this.log.warn("could not map this node's page; it is reachable on the LAN only until a retry succeeds", { error: last, retryInMs: wait });
    this.retryTimer?.cancel();
    this.retryTimer = this.clock.setTimeout(() => {
      this.claimPagePort(keeper).catch((e: unknown) => this.log.error('page mapping retry failed', { error: e }));
    }, wait);
  }

  private onKeeperEvent(keeper: MappingKeeper, e: KeeperEvent): void {
    switch (e.type) {
      case 'claimed':
      case 'moved':
        if (e.id !== 'page') return;
        this.log.info("this node's page is mapped", { publicPort: e.mapping.externalPort });
        this.emit({ type: 'page', publicPort: e.mapping.externalPort });
        return;
      case 'wan':
        this.emit({ type: 'wan', address: e.address });
        return;
      case 'table':
        this.emit({ type: 'table', mappings: e.mappings });
        return;
      case 'conflict':
        // Another host took our port while the router had forgotten us (a reboot): pick anew.
        if (e.id === 'page') {
          this.log.warn("this node's public port was taken by another host; choosing another", { port: e.error.externalPort });
          void keeper
            .remove('page')
            .catch(() => {})
            .then(() => this.claimPagePort(keeper));
        }
        return;
      case 'error':
        this.log.warn("router error while keeping this node's port", { error: e.error });
        return;
      default:
        return;
    }
  }
}

/** The name as a router's admin page may show it unescaped: letters, digits, space, . _ - only. */
function routerSafe(name: string): string {
  return name.replace(/[^A-Za-z0-9 ._-]/g, '').slice(0, 40) || 'node';
}
