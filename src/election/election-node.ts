import type { NodeInfo, Received, Sender } from '../peers/messages.js';
import type { LanTransport } from '../peers/transport.js';
import type { Membership } from '../membership/membership.js';
import { PortConflictError } from '../router/errors.js';
import type { Mapping, MappingRequest, PortMapper } from '../router/types.js';
import type { Clock, Timer } from '../runtime/clock.js';
import type { Logger } from '../runtime/log.js';
import type { ElectionConfig, ElectionConfigInit } from './config.js';
import { electionConfig, settledTableAgeMs, validateElectionConfig } from './config.js';
import type { DepartureReason } from './detector.js';
import { DepartureDetector } from './detector.js';
import { callRouter } from './router-call.js';
import type { Ranked } from './rules.js';
import { compareCandidates, takeoverDelayMs } from './rules.js';

/**
 * The election of the representative: the node the router maps the well-known port to. The
 * router's mapping table is the lock (it grants an external port to one LAN host and answers
 * conflict to the others), so this state machine never decides alone who holds the port: it
 * decides when to ASK, and believes it holds the port only within the lease the router granted,
 * counted from the moment the request was sent. Everything it waits on comes from the injected
 * clock, transport, mapper and random source, so test/election/sim.ts replays it exactly.
 */

export type ElectionState = 'starting' | 'follower' | 'candidate' | 'representative' | 'stopped';

export interface RoleChange {
  from: ElectionState;
  to: ElectionState;
  /** Whom this node believes is representative after the change. */
  representative: string | undefined;
  reason: string;
}

export interface BecameRepresentative {
  term: number;
  mapping: Mapping;
  /** Clock time until which the node may believe it holds the port. */
  leaseUntil: number;
}

export interface ElectionHooks {
  onRoleChange?: (change: RoleChange) => void;
  /** Start serving the portal (and, later, take the floating LAN address). */
  onBecomeRepresentative?: (e: BecameRepresentative) => void | Promise<void>;
  /** Stop serving the portal; called before a graceful stop releases the port. */
  onStepDown?: (reason: string) => void | Promise<void>;
  /**
   * Floating mode: another node acted as representative with an older term and this one stays;
   * re-announce the address to the LAN (gratuitous ARP) so the router forwards to us.
   */
  onReassert?: () => void | Promise<void>;
}

export interface ElectionComponents {
  clock: Clock;
  transport: LanTransport;
  /** Who is on the LAN; every message reaches the election through it. */
  membership: Membership;
  portMapper: PortMapper;
  logger: Logger;
  random: () => number;
  /** The router's WAN address as this node knows it, told in inquiries and announces. */
  wanAddress?: () => string | undefined;
}

export interface ElectionInit extends ElectionHooks {
  config?: ElectionConfigInit;
  /** The local port the well-known port forwards to (the portal); default the node's own port. */
  portalPort?: number;
}

interface Candidacy {
  /** backoff: waiting to claim; window: claimed, listening for collisions; claiming: at the router. */
  phase: 'backoff' | 'yielding' | 'window' | 'claiming';
  attempt: number;
  /** The departed representative: it does not count when ranking. */
  excluded: string | undefined;
  yieldTo: string | undefined;
  routerFailures: number;
  /** Clock time before which the router is not asked (config.guardOldLease). */
  notBefore: number;
  /** Whether the departed representative named this node its heir, another node, or nobody. */
  heir: 'self' | 'other' | 'none';
}

type ClaimPurpose = 'start' | 'takeover' | 'renew' | 'check';

export class ElectionNode {
  readonly config: ElectionConfig;
  private readonly clock: Clock;
  private readonly transport: LanTransport;
  private readonly members: Membership;
  private readonly mapper: PortMapper;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly wanAddress: () => string | undefined;
  private readonly self: Sender;
  private readonly portalPort: number | undefined;
  private readonly hooks: ElectionHooks;
  private readonly detector: DepartureDetector;
  private readonly timers = new Map<string, Timer>();
  private started = false;
  private listening = false;
  private stopping: Promise<void> | undefined;
  /** While a floating-mode graceful stop waits for its heir to hold the address. */
  private handoverWaiter: { successor: string; done: () => void } | undefined;
  private current: ElectionState = 'stopped';
  private rep: string | undefined;
  /** When a representative (any, or ourselves) was last heard from or last were we one. */
  private repLastHeard = 0;
  private startedAt = 0;
  private lastClaimAt = Number.NEGATIVE_INFINITY;
  private cand: Candidacy | undefined;
  private termSeen = 0;
  private myTerm = 0;
  private mapping: Mapping | undefined;
  private leaseDeadline = 0;
  private claimInFlight = false;
  /** Whether this node may take the port at all (it can serve the portal); see setEligible. */
  private eligible = true;
  private recheck = false;
  /** As representative: the heir named in inquiries. As follower: the heir the representative named. */
  private heir: string | undefined;

  constructor(components: ElectionComponents, init: ElectionInit) {
    this.config = electionConfig(init.config);
    validateElectionConfig(this.config);
    this.clock = components.clock;
    this.transport = components.transport;
    this.members = components.membership;
    this.mapper = components.portMapper;
    this.log = components.logger.child('election');
    this.random = components.random;
    this.wanAddress = components.wanAddress ?? (() => undefined);
    this.self = { ...this.members.self };
    this.portalPort = init.portalPort;
    this.hooks = {
      onRoleChange: init.onRoleChange,
      onBecomeRepresentative: init.onBecomeRepresentative,
      onStepDown: init.onStepDown,
      onReassert: init.onReassert,
    };
    this.detector = new DepartureDetector(
      { clock: this.clock, transport: this.transport, random: this.random },
      { config: this.config, onDeparture: (id, reason) => this.onDeparture(id, reason) },
    );
  }

  get id(): string {
    return this.self.id;
  }

  get state(): ElectionState {
    return this.current;
  }

  /** Whom this node believes is representative (itself included), if anyone. */
  get representative(): string | undefined {
    return this.rep;
  }

  /** The term of the current representative as far as this node knows. */
  get term(): number {
    return this.current === 'representative' ? this.myTerm : this.termSeen;
  }

  /** While representative: the clock time until which it may believe it holds the port. */
  get leaseUntil(): number | undefined {
    return this.current === 'representative' ? this.leaseDeadline : undefined;
  }

  /** As representative, the heir it names; as follower, the heir its representative named. */
  get heirId(): string | undefined {
    return this.heir;
  }

  /**
   * The router's table as the router session last listed it (claims 6, 20). A representative
   * that is not in it (a rebooted router, another host shown) claims again now rather than at
   * the next renewal, so the gap in which a newcomer could take the port stays short.
   */
  checkRouterTable(list: readonly Mapping[]): void {
    if (!this.started || this.current !== 'representative') return;
    const mine = list.find((m) => m.externalPort === this.config.wellKnownPort && m.protocol === this.config.protocol);
    if (mine === undefined || mine.internalClient !== this.mapper.localAddress) {
      this.log.warn('the router table does not show our mapping; claiming again', { holder: mine?.internalClient ?? 'none' });
      this.claimPort('check');
    }
  }

  /**
   * Whether this node may become representative: one that cannot serve the portal (another
   * program holds its port) must never hold the well-known port, or the internet would see that
   * program. Ineligible, it follows whoever is representative and never claims.
   */
  setEligible(eligible: boolean, reason = eligible ? 'can serve the portal again' : 'cannot serve the portal'): void {
    if (this.eligible === eligible) return;
    this.eligible = eligible;
    this.log.info(eligible ? 'may take the well-known port again' : 'will not take the well-known port', { reason });
    if (!this.started) return;
    if (!eligible && this.current === 'candidate') this.becomeLeaderless(reason);
    else if (eligible && this.current === 'follower' && this.rep === undefined) {
      this.after('leaderless', this.config.leaderlessTimeoutMs, () => this.leaderless());
    }
  }

  /**
   * The representative cannot do its job (its portal will not open): it gives the role up as a
   * graceful stop would (stops believing, releases the port, withdraws naming its heir) and stays
   * on as a member that does not claim, so the heir takes over at once.
   */
  resign(reason: string): void {
    this.setEligible(false, reason);
    if (!this.started || this.current !== 'representative') return;
    const mapping = this.mapping;
    const successor = this.heir ?? '';
    this.stepDown(reason);
    void (async () => {
      if (!this.config.floating && mapping !== undefined) {
        await callRouter(this.clock, this.config.routerTimeoutMs, 'release well-known port', (signal) => this.mapper.release(mapping, signal)).catch(
          (err: unknown) => this.log.warn('could not release the well-known port; it stays until its lease ends', { error: err }),
        );
      }
      for (let i = 0; i < 3; i++) this.transport.broadcast({ type: 'withdraw', wasRepresentative: true, successor });
      this.log.warn('gave up the representative role', { reason, ...(successor ? { successor } : {}) });
    })();
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.stopping = undefined;
    if (!this.listening) {
      // Membership has no way to unsubscribe; the handlers check `started` instead.
      this.members.onMessage((msg) => this.handle(msg));
      this.members.on((e) => {
        // A newcomer is listening before it claims; telling it now, not at the next inquiry,
        // keeps it from claiming a port a rebooted router has just forgotten.
        if (e.type === 'joined' || e.type === 'self') this.sendAnnounce();
      });
      this.listening = true;
    }
    this.rep = undefined;
    this.startedAt = this.clock.now();
    this.setState('starting', 'start');
    // Listening first lets a newcomer find a live representative without touching the router:
    // after a router reboot the port is free, and a newcomer grabbing it would depose a
    // representative that does not know yet.
    this.after('startup', this.config.startupListenMs, () => this.startupListened());
    // A second unasked reply halfway: the representative announces on hearing a newcomer, and
    // one lost reply should not leave the newcomer to guess.
    this.after('rejoin', this.config.startupListenMs / 2, () => {
      if (this.current === 'starting') this.members.sendReply();
    });
    if (!this.config.floating) void this.claimEarlyOnASettledRouter(this.startedAt);
  }

  private startupListened(): void {
    if (!this.eligible) {
      this.becomeLeaderless('this node cannot serve the portal');
      return;
    }
    // Floating: the router grants the address's mapping to whoever holds the address, so it
    // cannot pick one of two starters; the LAN claim does.
    if (this.config.floating) this.startCandidacy('no representative heard at start', undefined, true);
    else this.claimPort('start');
  }

  /**
   * The listen at start guards one case: the router lost its table (a reboot) and a live
   * representative has not noticed yet, so the port looks free. A representative believes it
   * holds the port at most one lease past its last renewal, and a reachable one restores its
   * mapping within a router check, well inside that. So when the router says it has kept its
   * table for longer than a lease (plus the listen, for slack), a free port is free for
   * everyone: the claim goes out at once, and the router, the lock, picks one of the starters.
   * Where the router can list, the port must also be missing from its table, so a router that
   * lets one host overwrite another's mapping is not used to depose a live representative.
   * A router whose table is younger than that (it has just restarted) is not claimed from before
   * its table is that old, heard representative or not: listening alone cannot tell a lost
   * datagram from a LAN without a representative, and waiting out the lease can.
   */
  private async claimEarlyOnASettledRouter(startedAt: number): Promise<void> {
    const mapper = this.mapper;
    const cfg = this.config;
    const age = await this.routerTableWait();
    let held = false;
    // Asked after the age: until the router is found, a pending mapper cannot say it can list.
    if (age !== undefined && mapper.canList) {
      try {
        const listed = await callRouter(this.clock, cfg.routerTimeoutMs, 'router table', (signal) => mapper.list(signal));
        held = listed.some((m) => m.externalPort === cfg.wellKnownPort && m.protocol === cfg.protocol);
      } catch (err) {
        this.log.debug('router did not list its table; listening first', { error: err });
        return;
      }
    }
    if (!this.started || this.startedAt !== startedAt || this.current !== 'starting' || !this.eligible) return;
    if (age === undefined || held) {
      this.log.debug('listening before claiming', { routerTableAgeS: age?.ageS, portHeld: held });
      return;
    }
    const { waitMs } = age;
    if (waitMs <= 0) {
      this.cancel('startup');
      this.claimPort('start');
      return;
    }
    const listenLeftMs = startedAt + cfg.startupListenMs - this.clock.now();
    if (waitMs <= listenLeftMs) return;
    this.log.info('the router restarted a moment ago: waiting before claiming the well-known port', {
      routerUpS: age.ageS,
      waitMs: Math.round(waitMs),
    });
    this.after('startup', waitMs, () => this.startupListened());
  }

  /**
   * Stops the node. Graceful: stops serving, releases the well-known mapping and tells the LAN,
   * in that order and before resolving, since the container dies right after and the next node
   * must find the port free when it hears the withdraw.
   */
  stop(opts: { graceful?: boolean } = {}): Promise<void> {
    if (this.stopping !== undefined) return this.stopping;
    if (!this.started) return Promise.resolve();
    const graceful = opts.graceful ?? true;
    this.started = false;
    const wasRep = this.current === 'representative';
    const mapping = this.mapping;
    const successor = wasRep ? (this.heir ?? '') : '';
    this.cancelAll();
    this.detector.unwatch();
    this.cand = undefined;
    this.mapping = undefined;
    this.rep = undefined;
    this.setState('stopped', graceful ? 'graceful stop' : 'stop');
    this.stopping = (async () => {
      if (graceful && wasRep && successor !== '' && this.config.floating) {
        await this.handOver(successor);
        return;
      }
      if (wasRep) await this.runHook('onStepDown', () => this.hooks.onStepDown?.('stopped'));
      if (!graceful) return;
      if (wasRep && mapping !== undefined) {
        try {
          await callRouter(this.clock, this.config.routerTimeoutMs, 'release well-known port', (signal) =>
            this.mapper.release(mapping, signal),
          );
        } catch (err) {
          this.log.warn('could not release the well-known port; it stays until its lease ends', {
            error: err,
          });
        }
      }
      // Three copies: it is the last thing this process says, and with withdrawal as the only
      // detection means a lost withdraw would leave the LAN waiting forever.
      for (let i = 0; i < 3; i++) this.transport.broadcast({ type: 'withdraw', wasRepresentative: wasRep, successor });
      this.log.info('withdrew from the LAN', { wasRepresentative: wasRep, ...(successor ? { successor } : {}) });
    })();
    return this.stopping;
  }

  /**
   * Floating mode's graceful stop, make before break: tell the heir first and keep serving until
   * it says it holds the address (its announce), then stop serving and drop the address. The
   * router's mapping is the address's, so nothing is released; for a moment both hosts have the
   * address and the router follows the heir's gratuitous ARP. Bounded: a heir that never answers
   * costs `handoverTimeoutMs`, then this node steps down anyway and the others elect as usual.
   */
  private async handOver(successor: string): Promise<void> {
    const heard = new Promise<boolean>((resolve) => {
      const timer = this.clock.setTimeout(() => {
        this.handoverWaiter = undefined;
        resolve(false);
      }, this.config.handoverTimeoutMs);
      this.handoverWaiter = {
        successor,
        done: () => {
          timer.cancel();
          this.handoverWaiter = undefined;
          resolve(true);
        },
      };
    });
    for (let i = 0; i < 3; i++) this.transport.broadcast({ type: 'withdraw', wasRepresentative: true, successor });
    const ok = await heard;
    if (ok) this.log.info('handed the port over', { successor });
    else this.log.warn('the heir did not take over in time; stepping down anyway', { successor, waitedMs: this.config.handoverTimeoutMs });
    await this.runHook('onStepDown', () => this.hooks.onStepDown?.('stopped'));
    // Once more after the step-down: a heir that missed the first ones hears it now.
    if (!ok) this.transport.broadcast({ type: 'withdraw', wasRepresentative: true, successor: '' });
    this.log.info('withdrew from the LAN', { wasRepresentative: true, successor });
  }

  // ---- messages -------------------------------------------------------------------------

  private handle(msg: Received): void {
    const w = this.handoverWaiter;
    if (w !== undefined && msg.from.id === w.successor && (msg.body.type === 'announce' || msg.body.type === 'inquiry')) w.done();
    if (!this.started) return;
    const { from, body } = msg;
    this.detector.heard(from.id, msg.address, msg.port);
    if (from.id === this.rep) this.repLastHeard = this.clock.now();
    switch (body.type) {
      case 'inquiry':
        // Membership answers it, after us.
        this.onRepresentativeSeen(msg, undefined);
        if (this.rep === from.id && this.current === 'follower') this.heir = body.heir || undefined;
        break;
      case 'announce':
        this.onRepresentativeSeen(msg, body.term);
        if (this.rep === from.id && this.current === 'follower') this.heir = body.heir || undefined;
        break;
      case 'claim':
        this.onClaim(msg);
        break;
      case 'withdraw':
        this.onWithdraw(msg, body.wasRepresentative, body.successor);
        break;
      case 'probe':
        this.transport.unicast({ type: 'probe-ack', nonce: body.nonce }, msg.address, msg.port);
        break;
      case 'probe-ack':
        this.detector.acked(body.nonce);
        break;
      case 'reply':
        break;
    }
  }

  /** An inquiry or announce: `msg.from` says it is representative. */
  private onRepresentativeSeen(msg: Received, term: number | undefined): void {
    const id = msg.from.id;
    if (term !== undefined && term > this.termSeen) this.termSeen = term;
    if (this.current === 'representative') {
      if (this.config.floating) {
        this.settleByTerm(msg, term);
        return;
      }
      // Two nodes believe they hold the port (a healed partition, a rebooted router). Only the
      // router knows: claim again; the loser's claim meets a conflict and it steps down.
      this.log.info('another node acts as representative; asking the router', { other: id });
      this.claimPort('check');
      return;
    }
    this.follow(id, msg.address, msg.port, `${msg.body.type} from ${id}`);
  }

  /**
   * Floating mode's split brain: both hold the address and the router cannot tell them apart.
   * The newer term wins (ties: the lower id); the other steps down and drops the address. An
   * inquiry carries no term, so it only gets our announce, which settles it on the other side.
   */
  private settleByTerm(msg: Received, term: number | undefined): void {
    const other = msg.from.id;
    const mine = this.myTerm;
    if (term !== undefined && (term > mine || (term === mine && other < this.self.id))) {
      this.log.warn('another representative has a newer term; stepping down', { other, term, mine });
      this.stepDown(`representative ${other} has a newer term`);
      this.follow(other, msg.address, msg.port, `announce from ${other} (term ${term})`);
      return;
    }
    this.log.warn('another node acts as representative with an older or unknown term; keeping the role', { other, term, mine });
    this.sendAnnounce();
    // Only against a term known to be older: a gratuitous ARP answering a bare inquiry could pull
    // the router to us just before our announce makes us step down for a newer term.
    if (term !== undefined) void this.runHook('onReassert', () => this.hooks.onReassert?.());
  }

  private onClaim(msg: Received): void {
    const id = msg.from.id;
    if (msg.body.type !== 'claim') return;
    switch (this.current) {
      case 'representative':
        // A follower thinks we are gone. Answer at once so it yields, and renew now: if the router
        // rebooted, this is the moment to re-create the mapping before the claimer asks for it.
        this.sendAnnounce();
        this.claimPort('check');
        return;
      case 'follower':
        if (this.rep === undefined) this.after('leaderless', this.config.leaderlessTimeoutMs, () => this.leaderless());
        return;
      case 'candidate':
        this.onRivalClaim(id, msg.body.node);
        return;
      case 'starting':
        // A takeover is under way: the old holder may still believe in its lease, so claiming
        // now could only be granted by a router that forgot it. Wait like everyone else.
        this.cancel('startup');
        this.becomeLeaderless(`takeover by ${id} under way`);
        return;
      default:
        return;
    }
  }

  private onWithdraw(msg: Received, wasRepresentative: boolean, successor: string): void {
    const { id } = msg.from;
    if (this.rep === id && this.current === 'follower') {
      // The last word wins over the last inquiry's: the representative may have just renamed.
      if (successor !== '') this.heir = successor;
      if (this.config.detection.withdrawal) {
        this.detector.withdrew(id);
      } else {
        this.log.debug('representative withdrew; withdrawal detection is off', { node: id, wasRepresentative });
      }
    } else if (this.cand?.phase === 'yielding' && this.cand.yieldTo === id) {
      this.cand.attempt++;
      this.backoff();
    } else if (this.cand !== undefined && this.cand.excluded === id && wasRepresentative && this.config.detection.withdrawal) {
      // Taken for gone (a false alarm under loss) before its withdraw came: the withdraw follows
      // its release, so it believes in no lease any more and there is none to wait out.
      this.cand.notBefore = 0;
    }
  }

  // ---- follower ------------------------------------------------------------------------

  private follow(id: string, address: string, port: number, reason: string): void {
    const changed = this.rep !== id;
    this.repLastHeard = this.clock.now();
    this.cand = undefined;
    this.cancel('takeover', 'retry', 'leaderless', 'startup');
    this.rep = id;
    this.detector.watch(id, address, port);
    if (this.current !== 'follower') this.setState('follower', reason);
    else if (changed) {
      this.log.info('following a new representative', { representative: id });
      this.emitRole('follower', 'follower', reason);
    }
  }

  private becomeLeaderless(reason: string): void {
    this.cand = undefined;
    this.cancel('takeover', 'retry');
    this.detector.unwatch();
    this.rep = undefined;
    if (this.current !== 'follower') this.setState('follower', reason);
    this.after('leaderless', this.config.leaderlessTimeoutMs, () => this.leaderless());
  }

  private leaderless(): void {
    if (this.current === 'follower' && this.rep === undefined) this.startCandidacy('no representative heard', undefined, false);
  }

  private onDeparture(id: string, reason: DepartureReason): void {
    if (this.current !== 'follower' || this.rep !== id) return;
    this.log.info('representative departed', { representative: id, detectedBy: reason });
    this.startCandidacy(`representative departed (${reason})`, id, reason === 'withdrawal');
  }

  // ---- takeover (claims 10-13) ---------------------------------------------------------

  private startCandidacy(reason: string, departed: string | undefined, withdrew: boolean): void {
    if (!this.eligible) {
      // Follows whoever takes over; checks again after the leaderless wait.
      this.becomeLeaderless(`${reason}; this node cannot serve the portal`);
      return;
    }
    this.detector.unwatch();
    this.cancel('leaderless');
    this.rep = undefined;
    const cfg = this.config;
    // A withdraw comes after the release, so the old holder believes nothing any more. Otherwise
    // it may still believe until its last renewal + lease, and we may have heard it last just
    // before that renewal: one inquiry interval covers the gap.
    const notBefore =
      withdrew || !cfg.guardOldLease || cfg.floating
        ? 0
        : Math.max(this.repLastHeard, this.startedAt) + cfg.leaseMs + cfg.inquiryIntervalMs;
    const heir =
      !cfg.heir || this.heir === undefined || this.heir === departed ? 'none' : this.heir === this.self.id ? 'self' : 'other';
    this.heir = undefined;
    this.cand = { phase: 'backoff', attempt: 0, excluded: departed, yieldTo: undefined, routerFailures: 0, notBefore, heir };
    this.setState('candidate', reason);
    this.backoff();
  }

  private backoff(): void {
    const c = this.cand;
    if (c === undefined) return;
    c.phase = 'backoff';
    c.yieldTo = undefined;
    this.cancel('retry');
    const known: Ranked[] = this.members
      .entries()
      .filter((e) => e.id !== c.excluded)
      .map((e) => ({ id: e.id, info: e.info }));
    let delay = takeoverDelayMs(this.config, this.ranked(), known, c.attempt, this.random);
    if (c.attempt === 0 && c.heir === 'self') delay = 0;
    else if (c.attempt === 0 && c.heir === 'other') delay += this.config.heirGraceMs;
    this.after('takeover', delay, () => this.sendClaim());
  }

  private sendClaim(): void {
    const c = this.cand;
    if (c === undefined) return;
    if (c.attempt === 0 && c.heir === 'self') {
      // Named by the departed representative: the others hold back, so no collision to wait for.
      c.phase = 'claiming';
      this.broadcastClaim();
      this.log.info('claiming the well-known port as heir', { waitMs: Math.max(0, c.notBefore - this.clock.now()) });
      this.askRouter(c);
      return;
    }
    c.phase = 'window';
    this.broadcastClaim();
    this.after('takeover', this.config.collisionWindowMs, () => {
      if (this.cand !== c || c.phase !== 'window') return;
      c.phase = 'claiming';
      const waitMs = Math.max(0, c.notBefore - this.clock.now());
      this.log.info('claiming the well-known port', { attempt: c.attempt, rule: this.config.rule, waitMs });
      this.askRouter(c);
    });
  }

  /** The claimant's router claim, held back until the old holder's lease must have ended. */
  private askRouter(c: Candidacy): void {
    const wait = c.notBefore - this.clock.now();
    // Under 1 ms counts as done: now + (t - now) can round below t, and re-arming forever at the
    // same instant would hang the node.
    if (wait < 1) {
      if (this.config.floating || this.mapper.tableAge === undefined) this.claimPort('takeover');
      else void this.claimUnlessRouterJustRestarted(c);
      return;
    }
    // Keep claiming on the LAN meanwhile so the others keep yielding.
    this.after('retry', Math.min(wait, this.config.retryIntervalMs), () => {
      if (this.cand !== c || c.phase !== 'claiming') return;
      this.broadcastClaim();
      this.askRouter(c);
    });
  }

  /**
   * A takeover claim on a router that lost its table less than a lease (plus the listen) ago
   * waits until then: a representative this node could not hear (a partition just healed) may
   * still believe it holds the port, and the router forgot that it does. The cost is one router
   * request before the claim; a router that does not answer it is claimed from as before.
   */
  private async claimUnlessRouterJustRestarted(c: Candidacy): Promise<void> {
    const waitMs = (await this.routerTableWait())?.waitMs ?? 0;
    if (!this.started || this.cand !== c || c.phase !== 'claiming') return;
    if (waitMs <= 0) {
      this.claimPort('takeover');
      return;
    }
    this.log.info('the router restarted a moment ago: waiting before claiming the well-known port', { waitMs: Math.round(waitMs) });
    c.notBefore = this.clock.now() + waitMs;
    this.askRouter(c);
  }

  /**
   * The router's table age (s), and how long until it is older than a lease plus the listen
   * (0 or less: it is); undefined when the router does not say or does not answer.
   */
  private async routerTableWait(): Promise<{ ageS: number; waitMs: number } | undefined> {
    const mapper = this.mapper;
    if (mapper.tableAge === undefined) return undefined;
    try {
      const ageS = await callRouter(this.clock, this.config.routerTimeoutMs, 'router table age', (signal) => mapper.tableAge!(signal));
      return ageS === undefined ? undefined : { ageS, waitMs: settledTableAgeMs(this.config) - ageS * 1000 };
    } catch (err) {
      this.log.debug('router did not say how old its table is', { error: err });
      return undefined;
    }
  }

  private broadcastClaim(): void {
    this.lastClaimAt = this.clock.now();
    this.transport.broadcast({ type: 'claim', node: this.members.info, attempt: this.cand?.attempt ?? 0 });
  }

  private onRivalClaim(id: string, info: NodeInfo): void {
    const c = this.cand;
    if (c === undefined) return;
    const rule = this.config.rule;
    const better = rule !== 'random' && compareCandidates(rule, { id, info }, this.ranked()) < 0;
    switch (c.phase) {
      case 'backoff':
      case 'yielding':
        this.yieldTo(id);
        return;
      case 'window':
        if (rule === 'random') {
          this.log.info('claim collision; backing off again', { other: id, attempt: c.attempt });
          c.attempt++;
          this.backoff();
        } else if (better) {
          this.yieldTo(id);
        }
        // Otherwise our claim stands: the rival hears it within its own window and yields.
        return;
      case 'claiming':
        if (better) this.yieldTo(id);
        // Repeat our claim so the rival yields, but rarely: two claimants answering each other's
        // every claim would flood the LAN.
        else if (this.clock.now() - this.lastClaimAt >= this.config.collisionWindowMs) this.broadcastClaim();
        return;
    }
  }

  private yieldTo(id: string): void {
    const c = this.cand;
    if (c === undefined) return;
    if (c.phase !== 'yielding') this.log.debug('yielding to a claimer', { claimer: id });
    c.phase = 'yielding';
    c.yieldTo = id;
    this.cancel('retry');
    // Claimants repeat their claim at every router retry; silence for this long means it failed.
    this.after('takeover', this.config.yieldTimeoutMs, () => {
      if (this.cand !== c) return;
      this.log.info('claimer did not become representative; resuming', { claimer: id });
      c.attempt++;
      this.backoff();
    });
  }

  // ---- the router lock -----------------------------------------------------------------

  private claimPort(purpose: ClaimPurpose): void {
    if (!this.started) return;
    if (this.claimInFlight) {
      if (purpose === 'check') this.recheck = true;
      return;
    }
    this.claimInFlight = true;
    // The lease runs from when the router acted, which is after we sent: counting from the send
    // keeps our belief inside the router's whatever the latency.
    const sentAt = this.clock.now();
    const req: MappingRequest = {
      externalPort: this.config.wellKnownPort,
      internalPort: this.portalPort ?? this.members.info.localPort,
      protocol: this.config.protocol,
      leaseSeconds: this.config.leaseMs / 1000,
      description: `frontdoor representative ${this.self.id}`,
    };
    callRouter(this.clock, this.config.routerTimeoutMs, 'claim well-known port', (signal) =>
      this.mapper.claim(req, signal),
    )
      .then(
        (m) => {
          this.claimInFlight = false;
          this.onGranted(m, sentAt, purpose);
        },
        (err: unknown) => {
          this.claimInFlight = false;
          this.onClaimFailed(err, purpose);
        },
      )
      .then(() => {
        if (this.recheck && this.current === 'representative' && !this.claimInFlight) {
          this.recheck = false;
          this.claimPort('check');
        }
      })
      .catch((err: unknown) => this.log.error('election bug in claim handling', { error: err }));
  }

  private onGranted(mapping: Mapping, sentAt: number, purpose: ClaimPurpose): void {
    if (!this.started) {
      // Granted after we stopped: hand it back so nobody waits a whole lease for a dead node.
      callRouter(this.clock, this.config.routerTimeoutMs, 'release', (s) => this.mapper.release(mapping, s)).catch(
        () => {},
      );
      return;
    }
    if (this.current !== 'representative' && !this.mayTakeGrant(purpose)) {
      // A renewal that outlived the role (stepped down on a conflict, a newer term or the lease
      // while the request hung), or a floating takeover overtaken by another representative's
      // announce: the role stays ended. Taking it back here would depose whoever holds it now.
      this.log.info('a late grant from the router is not taken: the role ended meanwhile', { purpose });
      if (this.config.floating) void this.runHook('onStepDown', () => this.hooks.onStepDown?.('late grant'));
      else callRouter(this.clock, this.config.routerTimeoutMs, 'release', (s) => this.mapper.release(mapping, s)).catch(() => {});
      return;
    }
    const cfg = this.config;
    const granted = mapping.leaseSeconds > 0 ? Math.min(mapping.leaseSeconds * 1000, cfg.leaseMs) : cfg.leaseMs;
    const now = this.clock.now();
    const deadline = sentAt + granted - cfg.leaseMarginMs;
    if (deadline <= now) {
      this.log.warn('the router answered too late to trust the lease', { purpose, latencyMs: now - sentAt });
      if (this.current === 'representative' && now >= this.leaseDeadline) this.stepDown('lease expired');
      return;
    }
    this.mapping = mapping;
    this.leaseDeadline = deadline;
    this.after('deadline', deadline - now, () => this.stepDown('lease expired without renewal'));
    this.after('renew', Math.max(0, sentAt + granted * cfg.renewFraction - now), () => this.claimPort('renew'));
    if (this.current !== 'representative') this.becomeRepresentative(purpose);
    else if (purpose === 'check') this.sendAnnounce();
  }

  /**
   * Whether a grant may make this node representative: only a claim made to become one, and (in
   * floating mode, where the router grants every holder of the address) only while no other
   * representative is followed.
   */
  private mayTakeGrant(purpose: ClaimPurpose): boolean {
    if (purpose === 'renew' || purpose === 'check') return false;
    if (this.config.floating) return this.current === 'candidate' || (this.current === 'starting' && this.rep === undefined);
    return true;
  }

  private onClaimFailed(err: unknown, purpose: ClaimPurpose): void {
    if (!this.started) return;
    const conflict = err instanceof PortConflictError || (err as { code?: unknown })?.code === 'FD_PORT_CONFLICT';
    const cfg = this.config;
    if (this.current === 'representative') {
      if (conflict) {
        this.log.warn('the router maps the well-known port to another node; stepping down', { purpose });
        this.stepDown('router maps the port to another node');
        return;
      }
      this.log.warn('could not renew the well-known port; keeping the role until the lease ends', {
        error: err,
        leaseLeftMs: this.leaseDeadline - this.clock.now(),
      });
      if (this.clock.now() + cfg.retryIntervalMs < this.leaseDeadline) {
        this.after('renew', cfg.retryIntervalMs, () => this.claimPort('renew'));
      }
      return;
    }
    if (this.current === 'starting') {
      if (!conflict) this.log.warn('router unreachable at start; waiting for a representative', { error: err });
      this.becomeLeaderless(conflict ? 'port held by another node' : 'router unreachable');
      return;
    }
    const c = this.cand;
    if (this.current !== 'candidate' || c === undefined || c.phase !== 'claiming') return;
    c.routerFailures = conflict ? 0 : c.routerFailures + 1;
    if (c.routerFailures >= cfg.routerGiveUpAfter) {
      // Let a node that can reach the router have a go rather than hold everyone back.
      this.log.warn('cannot reach the router; giving up the claim', { error: err });
      this.becomeLeaderless('router unreachable');
      return;
    }
    if (conflict) this.log.debug('well-known port still held (old lease); retrying', { retryMs: cfg.retryIntervalMs });
    this.after('retry', cfg.retryIntervalMs, () => {
      if (this.cand !== c || c.phase !== 'claiming') return;
      this.broadcastClaim();
      this.askRouter(c);
    });
  }

  // ---- representative ------------------------------------------------------------------

  private becomeRepresentative(purpose: ClaimPurpose): void {
    this.cand = undefined;
    this.detector.unwatch();
    this.cancel('takeover', 'retry', 'leaderless', 'startup');
    this.myTerm = Math.max(this.myTerm, this.termSeen) + 1;
    this.termSeen = this.myTerm;
    this.rep = this.self.id;
    this.heir = undefined;
    this.setState('representative', purpose === 'start' ? 'router granted the port at start' : 'router granted the port');
    this.log.info('became representative', {
      term: this.myTerm,
      port: this.config.wellKnownPort,
      leaseLeftMs: this.leaseDeadline - this.clock.now(),
    });
    this.inquire();
    this.sendAnnounce();
    this.after('announce', this.config.announceIntervalMs, () => this.announceTick());
    const mapping = this.mapping;
    if (mapping !== undefined) {
      const e: BecameRepresentative = { term: this.myTerm, mapping, leaseUntil: this.leaseDeadline };
      void this.runHook('onBecomeRepresentative', () => this.hooks.onBecomeRepresentative?.(e));
    }
  }

  private stepDown(reason: string): void {
    if (this.current !== 'representative') return;
    this.cancel('inquiry', 'announce', 'renew', 'deadline');
    this.repLastHeard = this.clock.now();
    this.mapping = undefined;
    this.leaseDeadline = 0;
    this.log.warn('stepped down as representative', { reason });
    this.becomeLeaderless(reason);
    void this.runHook('onStepDown', () => this.hooks.onStepDown?.(reason));
  }

  private inquire(): void {
    if (this.current !== 'representative') return;
    this.heir = this.chooseHeir();
    this.transport.broadcast({
      type: 'inquiry',
      publicPort: this.config.wellKnownPort,
      wanAddress: this.wanAddress() ?? '',
      heir: this.heir ?? '',
    });
    this.after('inquiry', this.config.inquiryIntervalMs, () => this.inquire());
  }

  private announceTick(): void {
    this.sendAnnounce();
    this.after('announce', this.config.announceIntervalMs, () => this.announceTick());
  }

  private sendAnnounce(): void {
    if (this.current !== 'representative') return;
    this.transport.broadcast({
      type: 'announce',
      publicPort: this.config.wellKnownPort,
      wanAddress: this.wanAddress() ?? '',
      node: this.members.info,
      term: this.myTerm,
      heir: this.heir ?? '',
    });
  }

  /** The rule applied in advance, among members that answered the last few inquiries. */
  private chooseHeir(): string | undefined {
    if (!this.config.heir) return undefined;
    const now = this.clock.now();
    const all = this.members.entries().filter((e) => !e.self);
    const fresh = all.filter((e) => now - e.lastSeen <= 3 * this.config.inquiryIntervalMs);
    const pool = fresh.length > 0 ? fresh : all;
    if (pool.length === 0) return undefined;
    const rule = this.config.rule;
    if (rule === 'random') {
      // Keep the heir while it answers: a new draw every second would make no difference to
      // fairness and would make a crash right after a redraw race two heirs' views.
      if (this.heir !== undefined && pool.some((e) => e.id === this.heir)) return this.heir;
      return pool[Math.floor(this.random() * pool.length)]!.id;
    }
    let best = pool[0]!;
    for (const e of pool) if (compareCandidates(rule, { id: e.id, info: e.info }, { id: best.id, info: best.info }) < 0) best = e;
    return best.id;
  }

  private ranked(): Ranked {
    return { id: this.self.id, info: this.members.info };
  }

  // ---- plumbing ------------------------------------------------------------------------

  private setState(to: ElectionState, reason: string): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    if (to === 'representative' || from === 'representative' || to === 'stopped') {
      this.log.info('role changed', { from, to, reason });
    } else {
      this.log.debug('role changed', { from, to, reason });
    }
    this.emitRole(from, to, reason);
  }

  private emitRole(from: ElectionState, to: ElectionState, reason: string): void {
    const change: RoleChange = { from, to, representative: this.rep, reason };
    try {
      this.hooks.onRoleChange?.(change);
    } catch (err) {
      this.log.error('onRoleChange hook failed', { error: err });
    }
  }

  private async runHook(name: string, fn: () => void | Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.log.error(`${name} hook failed`, { error: err });
    }
  }

  private after(name: string, ms: number, fn: () => void): void {
    this.timers.get(name)?.cancel();
    const timer = this.clock.setTimeout(() => {
      if (this.timers.get(name) === timer) this.timers.delete(name);
      if (this.started) fn();
    }, Math.max(0, ms));
    this.timers.set(name, timer);
  }

  private cancel(...names: string[]): void {
    for (const name of names) {
      this.timers.get(name)?.cancel();
      this.timers.delete(name);
    }
  }

  private cancelAll(): void {
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
  }
}
