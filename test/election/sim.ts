import type { ElectionConfig, ElectionConfigInit } from '../../src/election/config.js';
import { electionConfig } from '../../src/election/config.js';
import { ElectionNode } from '../../src/election/election-node.js';
import { deviceRank } from '../../src/election/rules.js';
import { Membership } from '../../src/membership/membership.js';
import { MappingKeeper } from '../../src/router/mapping-keeper.js';
import { ROUTER_CHECK_INTERVAL_MS } from '../../src/router/router-session.js';
import type { NodeInfo, PeerMessage, Received } from '../../src/peers/messages.js';
import type { LanTransport } from '../../src/peers/transport.js';
import { PortConflictError } from '../../src/router/errors.js';
import type { Mapping, MappingRequest, PortMapper, TransportProtocol } from '../../src/router/types.js';
import type { Clock, Timer } from '../../src/runtime/clock.js';
import type { LogFields, Logger } from '../../src/runtime/log.js';

/**
 * A deterministic discrete-event simulation of one home LAN: N frontdoor nodes, a lossy LAN with
 * partitions, and a router whose mapping table is a real lock with leases. Time advances
 * instantly from event to event; every random choice (the LAN's and the nodes') comes from one
 * seeded PRNG, so a seed replays exactly. Invariants are checked after every event.
 */

/** mulberry32: tiny, fast, good enough to drive a simulation, and the same on every machine. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One boot of one node: when it dies, its timers and the messages addressed to it vanish. */
interface Owner {
  alive: boolean;
  name: string;
}

interface SimEvent {
  at: number;
  seq: number;
  fn: () => void;
  owner: Owner | undefined;
  label: string;
  cancelled: boolean;
}

/** Binary heap on (time, insertion order): ties fire in the order they were scheduled. */
class EventQueue {
  private heap: SimEvent[] = [];
  get size(): number {
    return this.heap.length;
  }
  push(e: SimEvent): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  peek(): SimEvent | undefined {
    return this.heap[0];
  }
  pop(): SimEvent | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

export type HostStatus = 'down' | 'up' | 'stopping' | 'crashed' | 'stopped';

export class Host {
  node: ElectionNode | undefined;
  members: Membership | undefined;
  status: HostStatus = 'down';
  boot: Owner = { alive: false, name: '' };
  boots = 0;
  seq = 0;
  handler: ((msg: Received) => void) | undefined;
  constructor(
    readonly index: number,
    readonly id: string,
    readonly address: string,
    readonly info: NodeInfo,
  ) {}
  get up(): boolean {
    return this.status === 'up';
  }
}

export interface Violation {
  at: number;
  kind: 'safety' | 'liveness' | 'directory';
  detail: string;
}

export interface WorldOptions {
  seed: number;
  nodes: number;
  config?: ElectionConfigInit;
  /** Per-message loss probability on the LAN (0-0.3 in the scenarios). */
  loss?: number;
  /** LAN delay: base plus uniform jitter, in ms. */
  delayMs?: number;
  jitterMs?: number;
  /** Router latency each way is uniform in [1, this] ms. */
  routerLatencyMs?: number;
  canList?: boolean;
  /** For testing the checker: a router that grants a taken port anyway. */
  brokenRouter?: boolean;
  /**
   * How long the router has kept its table when the world starts (ms; default an hour, as a home
   * router has); it says so in whole seconds (tableAge), counted from 0 again at each reboot.
   * 0: it has just started, so starters listen first. undefined-like (-1): it never says.
   */
  routerUpMs?: number;
  /** Keep node debug lines in the trace. */
  verbose?: boolean;
  traceLimit?: number;
}

const LAN_PORT = 7447;
export const WAN_ADDRESS = '203.0.114.1';

export class World {
  now = 0;
  readonly rng: () => number;
  readonly config: ElectionConfig;
  readonly hosts: Host[] = [];
  readonly router: SimRouter;
  readonly violations: Violation[] = [];
  /** Who the router-confirmed representative was over time (undefined: nobody). */
  readonly repChanges: Array<{ at: number; id: string | undefined }> = [];
  loss: number;
  eventsRun = 0;
  /** Set when a promise the nodes wait on was settled during the current event. */
  asyncWork = false;
  /** The trace when the first violation was seen. */
  firstViolationTrace: string[] | undefined;
  /** Messages handed to the LAN, by "broadcast <type>" or "unicast <type>": the bench's message rate. */
  readonly sent = new Map<string, number>();
  /** The same messages by sender id. */
  readonly sentBy = new Map<string, number>();
  /** Each follower turning candidate (the representative seen gone, or none known), when and why: the bench's detection times. */
  readonly departures: Array<{ at: number; id: string; reason: string }> = [];
  private readonly queue = new EventQueue();
  private seq = 0;
  private readonly delayMs: number;
  private readonly jitterMs: number;
  private readonly group = new Map<string, number>();
  private readonly trace: string[] = [];
  private readonly traceLimit: number;
  private readonly verbose: boolean;
  private lastRep: string | undefined;

  constructor(readonly opts: WorldOptions) {
    this.rng = mulberry32(opts.seed);
    this.config = electionConfig(opts.config);
    this.loss = opts.loss ?? 0;
    this.delayMs = opts.delayMs ?? 1;
    this.jitterMs = opts.jitterMs ?? 5;
    this.traceLimit = opts.traceLimit ?? 4000;
    this.verbose = opts.verbose ?? false;
    this.router = new SimRouter(this, opts.routerLatencyMs ?? 20, opts.canList ?? true, opts.brokenRouter ?? false, opts.routerUpMs ?? 3_600_000);
    // Public ports in a shuffled order, so rule `ports` is not the same as ordering by id.
    const ports = Array.from({ length: opts.nodes }, (_, i) => 8081 + i);
    for (let i = ports.length - 1; i > 0; i--) {
      const j = Math.floor(this.rng() * (i + 1));
      [ports[i], ports[j]] = [ports[j]!, ports[i]!];
    }
    for (let i = 0; i < opts.nodes; i++) {
      const id = `n${i}`;
      const address = `192.168.77.${10 + i}`;
      const info: NodeInfo = {
        name: `node-${i}`,
        addresses: [address],
        localPort: 80,
        publicPort: ports[i]!,
        camera: i % 2 === 0,
        rank: deviceRank(`device-${opts.seed}-${i}`),
      };
      this.hosts.push(new Host(i, id, address, info));
      this.group.set(address, 0);
    }
  }

  // ---- scheduling --------------------------------------------------------------------

  schedule(delay: number, fn: () => void, owner: Owner | undefined, label: string): SimEvent {
    const e: SimEvent = { at: this.now + Math.max(0, delay), seq: this.seq++, fn, owner, label, cancelled: false };
    this.queue.push(e);
    return e;
  }

  /** A fault or an action of the test at absolute time `at`. */
  at(at: number, label: string, fn: () => void): void {
    this.schedule(at - this.now, fn, undefined, label);
  }

  clockFor(owner: Owner): Clock {
    return {
      now: () => this.now,
      setTimeout: (fn: () => void, ms: number): Timer => {
        const e = this.schedule(ms, fn, owner, `timer ${owner.name}`);
        return {
          cancel: () => {
            e.cancelled = true;
          },
        };
      },
    };
  }

  async runUntil(t: number): Promise<void> {
    for (;;) {
      const e = this.queue.peek();
      if (e === undefined || e.at > t) break;
      this.queue.pop();
      if (e.cancelled || (e.owner !== undefined && !e.owner.alive)) continue;
      this.now = e.at;
      this.eventsRun++;
      this.note(e.label);
      e.fn();
      // Router answers (and aborted router calls) settle promises: let every continuation run, at
      // this instant, before looking at the world. Other events are synchronous, and skipping the
      // turn of the event loop for them makes the simulation several times faster.
      if (this.asyncWork) {
        this.asyncWork = false;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      this.check();
    }
    this.now = Math.max(this.now, t);
  }

  // ---- trace ---------------------------------------------------------------------------

  note(line: string): void {
    if (this.trace.length >= this.traceLimit) this.trace.shift();
    this.trace.push(`${this.now.toFixed(1).padStart(9)} ${line}`);
  }

  traceLines(): string[] {
    return [...this.trace];
  }

  private loggerFor(host: Host, boot: string): Logger {
    const line = (level: string, msg: string, fields?: LogFields): void => {
      if (level === 'debug' && !this.verbose) return;
      this.note(`${host.id}/${boot} ${level} ${msg}${fields ? ` ${JSON.stringify(fields)}` : ''}`);
    };
    const logger: Logger = {
      debug: (m, f) => line('debug', m, f),
      info: (m, f) => line('info', m, f),
      warn: (m, f) => line('warn', m, f),
      error: (m, f) => line('error', m, f),
      child: () => logger,
    };
    return logger;
  }

  // ---- nodes ---------------------------------------------------------------------------

  /** Boots host `i` (a new process: new boot id, fresh state). */
  boot(i: number): ElectionNode {
    const host = this.hosts[i]!;
    if (host.status === 'up' || host.status === 'stopping') throw new Error(`${host.id} is already running`);
    host.boots++;
    const bootName = `b${host.boots}`;
    host.boot = { alive: true, name: `${host.id}/${bootName}` };
    host.status = 'up';
    host.seq = 0;
    host.handler = undefined;
    const owner = host.boot;
    const transport: LanTransport = {
      broadcast: (body) => this.send(host, owner, body, undefined),
      unicast: (body, address) => this.send(host, owner, body, address),
      onMessage: (h) => {
        if (owner === host.boot) host.handler = h;
      },
      close: () => {},
    };
    const clock = this.clockFor(owner);
    const logger = this.loggerFor(host, bootName);
    const config = electionConfig(this.opts.config);
    const members = new Membership(
      { clock, transport, logger },
      { self: { id: host.id, boot: bootName }, info: host.info, lanPort: LAN_PORT, refreshIntervalMs: config.refreshIntervalMs, directoryTtlMs: config.directoryTtlMs },
    );
    const portMapper = this.router.mapperFor(host, owner);
    // The router session's periodic look at the table, as a node runs it: a representative
    // missing from it claims again.
    const poll = new MappingKeeper({ mapper: portMapper, clock, logger }, { checkIntervalMs: ROUTER_CHECK_INTERVAL_MS });
    const node = new ElectionNode(
      { clock, transport, membership: members, portMapper, logger, random: this.rng },
      {
        config: this.opts.config,
        onBecomeRepresentative: () => poll.checkNow(),
        onRoleChange: (c) => {
          if (c.from === 'follower' && c.to === 'candidate') this.departures.push({ at: this.now, id: host.id, reason: c.reason });
        },
      },
    );
    poll.on((e) => {
      if (e.type === 'table') node.checkRouterTable(e.mappings);
    });
    host.node = node;
    host.members = members;
    this.note(`${host.id} boots (${bootName})`);
    members.start();
    node.start();
    poll.start();
    return node;
  }

  /** No more messages or timers: the process is gone without a word. */
  crash(i: number): void {
    const host = this.hosts[i]!;
    if (host.status !== 'up' && host.status !== 'stopping') return;
    host.boot.alive = false;
    host.status = 'crashed';
    this.note(`${host.id} CRASHES`);
  }

  /** stop({graceful}) as the container's SIGTERM handler would; the process ends when it resolves. */
  stop(i: number, graceful = true): void {
    const host = this.hosts[i]!;
    if (host.status !== 'up' || host.node === undefined) return;
    host.status = 'stopping';
    this.note(`${host.id} stops (graceful=${graceful})`);
    const owner = host.boot;
    this.asyncWork = true;
    void host.node.stop({ graceful }).then(() => {
      this.asyncWork = true;
      if (host.boot !== owner) return;
      owner.alive = false;
      host.status = 'stopped';
    });
  }

  // ---- LAN -----------------------------------------------------------------------------

  /** Partitions: each group hears only itself; the router sits with group `routerGroup`. */
  partition(groups: number[][], routerGroup = 0): void {
    for (const h of this.hosts) this.group.set(h.address, -1 - h.index);
    groups.forEach((g, gi) => {
      for (const i of g) this.group.set(this.hosts[i]!.address, gi);
    });
    this.router.group = routerGroup;
    this.note(`partition ${JSON.stringify(groups)} router with group ${routerGroup}`);
  }

  heal(): void {
    for (const h of this.hosts) this.group.set(h.address, 0);
    this.router.group = 0;
    this.note('partition healed');
  }

  groupOf(address: string): number {
    return this.group.get(address) ?? 0;
  }

  private send(from: Host, owner: Owner, body: PeerMessage, to: string | undefined): void {
    if (!owner.alive) return;
    const kind = `${to === undefined ? 'broadcast' : 'unicast'} ${body.type}`;
    this.sent.set(kind, (this.sent.get(kind) ?? 0) + 1);
    this.sentBy.set(from.id, (this.sentBy.get(from.id) ?? 0) + 1);
    const seq = ++from.seq;
    const sentAt = this.now;
    const g = this.groupOf(from.address);
    for (const target of this.hosts) {
      if (target === from || (to !== undefined && target.address !== to)) continue;
      if (target.status !== 'up' || this.groupOf(target.address) !== g) continue;
      if (this.rng() < this.loss) continue;
      const targetOwner = target.boot;
      const msg: Received = {
        from: { id: from.id, boot: owner.name.slice(from.id.length + 1) },
        seq,
        sentAt,
        body: structuredClone(body),
        address: from.address,
        port: LAN_PORT,
      };
      const delay = this.delayMs + this.rng() * this.jitterMs;
      this.schedule(
        delay,
        () => {
          if (target.boot === targetOwner) target.handler?.(msg);
        },
        targetOwner,
        `msg ${body.type} ${from.id}->${target.id}`,
      );
    }
  }

  // ---- invariants ----------------------------------------------------------------------

  private violate(kind: Violation['kind'], detail: string): void {
    // One record per distinct problem and instant is enough; the trace has the rest.
    const last = this.violations[this.violations.length - 1];
    if (last !== undefined && last.detail === detail) return;
    this.violations.push({ at: this.now, kind, detail });
    this.note(`VIOLATION ${kind}: ${detail}`);
    if (this.firstViolationTrace === undefined) this.firstViolationTrace = this.traceLines();
  }

  /** Safety, after every event. */
  check(): void {
    const port = this.config.wellKnownPort;
    const holder = this.router.holder(port);
    let reps = 0;
    let serving: string | undefined;
    for (const h of this.hosts) {
      if (h.status !== 'up' || h.node?.state !== 'representative') continue;
      reps++;
      if (holder !== undefined && holder !== h.address) {
        this.violate('safety', `${h.id} believes it is representative while the router maps the port to ${holder}`);
      }
      const until = this.router.grantedUntil.get(h.address) ?? Number.NEGATIVE_INFINITY;
      if (this.now >= until) {
        this.violate('safety', `${h.id} believes it is representative beyond its lease (ended at ${until})`);
      }
      if (holder === h.address) serving = h.id;
    }
    if (reps > 1) this.violate('safety', `${reps} nodes believe they are representative`);
    if (reps !== 1) serving = undefined;
    if (serving !== this.lastRep) {
      this.lastRep = serving;
      this.repChanges.push({ at: this.now, id: serving });
    }
  }

  /** The one representative that every live node agrees on, or undefined. */
  agreedRepresentative(): string | undefined {
    const live = this.hosts.filter((h) => h.up);
    const reps = live.filter((h) => h.node?.state === 'representative');
    if (reps.length !== 1) return undefined;
    const rep = reps[0]!;
    if (this.router.holder(this.config.wellKnownPort) !== rep.address) return undefined;
    return live.every((h) => h.node?.representative === rep.id) ? rep.id : undefined;
  }

  /** Liveness and directory convergence, at the end of a quiet period. */
  checkSettled(): void {
    const live = this.hosts.filter((h) => h.up);
    if (live.length === 0) return;
    const reps = live.filter((h) => h.node?.state === 'representative').map((h) => h.id);
    if (reps.length !== 1) {
      this.violate('liveness', `${reps.length} representatives after the quiet period (${reps.join(',')})`);
    } else if (this.agreedRepresentative() === undefined) {
      const views = live.map((h) => `${h.id}:${h.node?.state}->${h.node?.representative ?? '-'}`).join(' ');
      this.violate('liveness', `nodes do not agree on representative ${reps[0]}: ${views}`);
    }
    const want = live
      .map((h) => h.id)
      .sort()
      .join(',');
    for (const h of live) {
      const got = (h.members?.entries() ?? []).map((e) => e.id).join(',');
      if (got !== want) this.violate('directory', `${h.id} knows [${got}], live nodes are [${want}]`);
    }
  }

  /** Time of the first change to a serving representative other than `old` at or after `from`. */
  failoverAfter(from: number, old: string | undefined): number | undefined {
    for (const c of this.repChanges) {
      if (c.at >= from && c.id !== undefined && c.id !== old) return c.at - from;
    }
    return undefined;
  }

  /** The first follower turning candidate at or after `from`. */
  departureAfter(from: number): { afterMs: number; reason: string } | undefined {
    const d = this.departures.find((x) => x.at >= from);
    return d && { afterMs: d.at - from, reason: d.reason };
  }

  /** How many times the serving representative changed identity at or after `from`. */
  flapsAfter(from: number): number {
    let n = 0;
    let prev: string | undefined;
    for (const c of this.repChanges) {
      if (c.id === undefined) continue;
      if (c.at >= from && prev !== undefined && c.id !== prev) n++;
      prev = c.id;
    }
    return n;
  }

  upIndexes(): number[] {
    return this.hosts.filter((h) => h.up).map((h) => h.index);
  }

  /** Index of the host currently serving as representative, if any. */
  representativeIndex(): number | undefined {
    const h = this.hosts.find((x) => x.up && x.node?.state === 'representative');
    return h?.index;
  }
}

interface SimMapping {
  host: string;
  externalPort: number;
  internalPort: number;
  protocol: TransportProtocol;
  expiresAt: number;
  description: string;
}

/**
 * The router: a mapping table that is a lock (conflict for another host, renewal by the same
 * host), leases that expire on the simulation clock, a reboot that forgets everything, and calls
 * that never answer when the caller is cut off (the caller's own timeout ends them).
 */
export class SimRouter {
  private readonly table = new Map<string, SimMapping>();
  /** For the safety check: the end of the latest lease granted to each host (survives reboots). */
  readonly grantedUntil = new Map<string, number>();
  readonly cut = new Set<string>();
  group = 0;
  reboots = 0;

  constructor(
    private readonly world: World,
    private readonly maxLatencyMs: number,
    private readonly canList: boolean,
    private readonly broken: boolean,
    upMs: number,
  ) {
    this.says = upMs >= 0;
    this.tableSince = -Math.max(0, upMs);
  }

  /** Whether the router tells its table's age, and since when it has kept that table. */
  private readonly says: boolean;
  private tableSince: number;

  reboot(): void {
    this.table.clear();
    this.tableSince = this.world.now;
    this.reboots++;
    this.world.note('ROUTER REBOOTS (all mappings gone)');
  }

  reachable(address: string): boolean {
    return !this.cut.has(address) && this.world.groupOf(address) === this.group;
  }

  private current(protocol: string, port: number): SimMapping | undefined {
    const key = `${protocol}/${port}`;
    const m = this.table.get(key);
    if (m !== undefined && this.world.now >= m.expiresAt) {
      this.table.delete(key);
      return undefined;
    }
    return m;
  }

  /** The LAN address the router forwards `port` (TCP) to right now. */
  holder(port: number): string | undefined {
    return this.current('TCP', port)?.host;
  }

  private toMapping(m: SimMapping, leaseSeconds: number): Mapping {
    return {
      protocol: m.protocol,
      externalPort: m.externalPort,
      internalClient: m.host,
      internalPort: m.internalPort,
      leaseSeconds,
      description: m.description,
      enabled: true,
      remoteHost: '',
      via: 'upnp-igd2',
    };
  }

  private grant(host: string, req: MappingRequest, port: number): Mapping {
    const m: SimMapping = {
      host,
      externalPort: port,
      internalPort: req.internalPort,
      protocol: req.protocol,
      expiresAt: req.leaseSeconds > 0 ? this.world.now + req.leaseSeconds * 1000 : Number.POSITIVE_INFINITY,
      description: req.description,
    };
    this.table.set(`${req.protocol}/${port}`, m);
    if (port === this.world.config.wellKnownPort && req.protocol === 'TCP') this.grantedUntil.set(host, m.expiresAt);
    return this.toMapping(m, req.leaseSeconds);
  }

  /** One request/answer exchange, with latency both ways and loss when cut off. */
  private call<T>(host: Host, owner: Owner, what: string, op: () => T, signal?: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const onAbort = (): void => {
        if (settled) return;
        settled = true;
        this.world.asyncWork = true;
        reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      if (!this.reachable(host.address)) return;
      const w = this.world;
      const lat = () => 1 + w.rng() * (this.maxLatencyMs - 1);
      w.schedule(
        lat(),
        () => {
          if (!this.reachable(host.address)) return;
          let outcome: { ok: true; value: T } | { ok: false; error: unknown };
          try {
            outcome = { ok: true, value: op() };
          } catch (error) {
            outcome = { ok: false, error };
          }
          w.note(`router ${what} from ${host.id}: ${outcome.ok ? 'ok' : (outcome.error as Error).name}`);
          w.schedule(
            lat(),
            () => {
              if (settled || !this.reachable(host.address)) return;
              settled = true;
              w.asyncWork = true;
              signal?.removeEventListener('abort', onAbort);
              if (outcome.ok) resolve(outcome.value);
              else reject(outcome.error);
            },
            owner,
            `router answer ${what} -> ${host.id}`,
          );
        },
        undefined,
        `router gets ${what} from ${host.id}`,
      );
    });
  }

  /** `addr`: the address requests come from (another of the host's own, for bindTo). */
  mapperFor(host: Host, owner: Owner, addr = host.address): PortMapper {
    return {
      protocol: 'upnp-igd2',
      gateway: '192.168.77.1',
      localAddress: addr,
      canList: this.canList,
      externalAddress: (signal) => this.call(host, owner, 'external-address', () => WAN_ADDRESS, signal),
      claim: (req, signal) =>
        this.call(
          host,
          owner,
          `claim ${req.externalPort}`,
          () => {
            const m = this.current(req.protocol, req.externalPort);
            if (m !== undefined && m.host !== addr && !this.broken) throw new PortConflictError(req.externalPort);
            return this.grant(addr, req, req.externalPort);
          },
          signal,
        ),
      claimAny: (req, signal) =>
        this.call(
          host,
          owner,
          'claim-any',
          () => {
            let port = req.externalPort;
            while (this.current(req.protocol, port) !== undefined) port++;
            return this.grant(addr, req, port);
          },
          signal,
        ),
      release: (mapping, signal) =>
        this.call(
          host,
          owner,
          `release ${mapping.externalPort}`,
          () => {
            const m = this.current(mapping.protocol, mapping.externalPort);
            if (m !== undefined && m.host === addr) this.table.delete(`${mapping.protocol}/${mapping.externalPort}`);
          },
          signal,
        ),
      list: (signal) =>
        this.call(
          host,
          owner,
          'list',
          () => {
            const out: Mapping[] = [];
            for (const m of [...this.table.values()]) {
              const cur = this.current(m.protocol, m.externalPort);
              if (cur !== undefined) out.push(this.toMapping(cur, 0));
            }
            return out;
          },
          signal,
        ),
      ...(this.says
        ? {
            tableAge: (signal?: AbortSignal) =>
              this.call(host, owner, 'table-age', () => Math.floor((this.world.now - this.tableSince) / 1000), signal),
          }
        : {}),
      bindTo: (local) => this.mapperFor(host, owner, local),
      close: () => {},
    };
  }
}
