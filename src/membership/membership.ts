import type { NodeInfo, Received, Sender } from '../peers/messages.js';
import type { LanTransport } from '../peers/transport.js';
import type { Clock, Timer } from '../runtime/clock.js';
import type { Logger } from '../runtime/log.js';
import type { DirectoryEntry } from './directory.js';
import { Directory } from './directory.js';
import { Listeners } from '../runtime/listeners.js';

/**
 * Who is on the LAN: the directory the portal lists (claims 4, 8, 9), kept from what nodes say.
 * Every LAN message passes through here first: a node that said anything is alive, one that sent
 * its NodeInfo is (re)listed, one that withdrew leaves at once, one not heard from for the TTL
 * leaves (a crash sends no word), and a restarted process (new boot) replaces its old self. The
 * election gets the same messages afterwards, minus our own and those of a boot that withdrew.
 */

export type MembershipEvent =
  /** What a reader of the directory would see changed (a join, a leave, new info). */
  | { type: 'changed'; entries: DirectoryEntry[] }
  /** A node heard for the first time, or with a new boot (it restarted). */
  | { type: 'joined'; entry: DirectoryEntry; restarted: boolean }
  /** This node's own info changed (its public port, its name). */
  | { type: 'self'; info: NodeInfo };

export interface MembershipComponents {
  clock: Clock;
  transport: LanTransport;
  logger: Logger;
}

export interface MembershipInit {
  self: Sender;
  info: NodeInfo;
  /** The port other nodes reach this node's transport on (for its own entry). */
  lanPort?: number;
  /** Every node sends an unasked `reply` this often, so directories survive an election. */
  refreshIntervalMs: number;
  /** A node not heard from for this long leaves the directory. */
  directoryTtlMs: number;
}

export class Membership {
  private readonly clock: Clock;
  private readonly transport: LanTransport;
  private readonly log: Logger;
  private readonly listeners: Listeners<MembershipEvent>;
  private readonly selfId: Sender;
  private readonly lanPort: number;
  private readonly refreshIntervalMs: number;
  private readonly directoryTtlMs: number;
  private readonly dir = new Directory();
  /**
   * `id/boot` of processes that withdrew, with when and the withdraw's sequence number: their
   * late messages must not revive them. A message sent after the withdraw (a higher sequence
   * number, which the codec's replay window vouches for) does: a representative that could not
   * serve the portal withdraws from the role and stays on as a plain member.
   */
  private readonly withdrawn = new Map<string, { at: number; seq: number }>();
  private readonly handlers: Array<(msg: Received) => void> = [];
  private selfInfo: NodeInfo;
  private started = false;
  /** Leaving (a graceful stop under way): nothing more is said, not even an answer. */
  private leaving = false;
  private subscribed = false;
  private refreshTimer: Timer | undefined;
  private lastReplyAt = Number.NEGATIVE_INFINITY;

  constructor(components: MembershipComponents, init: MembershipInit) {
    this.clock = components.clock;
    this.transport = components.transport;
    this.log = components.logger.child('membership');
    this.listeners = new Listeners<MembershipEvent>(this.log, 'membership');
    this.selfId = { ...init.self };
    this.selfInfo = { ...init.info };
    this.lanPort = init.lanPort ?? 0;
    this.refreshIntervalMs = init.refreshIntervalMs;
    this.directoryTtlMs = init.directoryTtlMs;
  }

  get self(): Sender {
    return this.selfId;
  }

  get info(): NodeInfo {
    return this.selfInfo;
  }

  /** The nodes this node knows, itself included, sorted by id. */
  entries(): DirectoryEntry[] {
    return this.dir.entries();
  }

  get(id: string): DirectoryEntry | undefined {
    return this.dir.get(id);
  }

  /** Messages that passed: not our own, not from a process that withdrew. */
  onMessage(handler: (msg: Received) => void): void {
    this.handlers.push(handler);
  }

  on(listener: (e: MembershipEvent) => void): () => void {
    return this.listeners.add(listener);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    if (!this.subscribed) {
      // LanTransport has no way to unsubscribe; the handler checks `started` instead.
      this.transport.onMessage((msg) => this.handle(msg));
      this.subscribed = true;
    }
    this.dir.upsert(this.selfEntry());
    this.emit({ type: 'changed', entries: this.dir.entries() });
    this.sendReply();
    this.armRefresh();
  }

  /** A graceful stop begins: the node says nothing more, so nobody lists it again. */
  leave(): void {
    this.leaving = true;
  }

  stop(): void {
    this.started = false;
    this.refreshTimer?.cancel();
    this.refreshTimer = undefined;
  }

  /** This node's page moved (claim 2's other port) or its name changed: tell everyone. */
  updateInfo(patch: Partial<NodeInfo>): void {
    this.selfInfo = { ...this.selfInfo, ...patch };
    if (!this.started) return;
    this.dir.upsert(this.selfEntry());
    this.emit({ type: 'changed', entries: this.dir.entries() });
    this.sendReply();
    this.emit({ type: 'self', info: this.selfInfo });
  }

  /** Claim 4's answer, also sent unasked at start and every refresh interval. */
  sendReply(): void {
    if (this.leaving) return;
    this.lastReplyAt = this.clock.now();
    this.transport.broadcast({ type: 'reply', node: this.selfInfo });
  }

  private handle(msg: Received): void {
    if (!this.started) return;
    const { from, body } = msg;
    if (from.id === this.selfId.id) return;
    const key = `${from.id}/${from.boot}`;
    const gone = this.withdrawn.get(key);
    if (gone !== undefined) {
      if (body.type === 'withdraw' || msg.seq <= gone.seq) return;
      this.withdrawn.delete(key);
      this.log.info('node stays on as a member after leaving the role', { node: from.id });
    }
    if (body.type === 'withdraw') {
      this.withdrawn.set(key, { at: this.clock.now(), seq: msg.seq });
      const known = this.dir.get(from.id);
      if (known !== undefined && known.boot === from.boot && this.dir.remove(from.id)) {
        this.emit({ type: 'changed', entries: this.dir.entries() });
      }
    } else if (body.type === 'reply' || body.type === 'announce' || body.type === 'claim') {
      this.note(msg, body.node);
    } else {
      this.dir.touch(from.id, from.boot, this.clock.now());
    }
    for (const h of this.handlers) h(msg);
    // After the election saw the inquiry: answering is the last thing done with it.
    if (body.type === 'inquiry' && this.started) this.sendReply();
  }

  private note(msg: Received, info: NodeInfo): void {
    const { from } = msg;
    const old = this.dir.get(from.id);
    const entry: DirectoryEntry = {
      id: from.id,
      boot: from.boot,
      info,
      address: msg.address,
      port: msg.port,
      lastSeen: this.clock.now(),
      self: false,
    };
    if (!this.dir.upsert(entry)) return;
    const restarted = old !== undefined && old.boot !== from.boot;
    if (restarted) this.log.info('node restarted', { node: from.id });
    else if (old === undefined) this.log.debug('node joined', { node: from.id, name: info.name });
    this.emit({ type: 'changed', entries: this.dir.entries() });
    if (old === undefined || restarted) this.emit({ type: 'joined', entry, restarted });
  }

  /** Unasked replies and the TTL sweep: the directory must live through an election. */
  private refresh(): void {
    const now = this.clock.now();
    if (now - this.lastReplyAt >= this.refreshIntervalMs * 0.9) this.sendReply();
    const gone = this.dir.expire(now, this.directoryTtlMs);
    if (gone.length > 0) {
      this.log.info('nodes left (not heard from)', { nodes: gone });
      this.emit({ type: 'changed', entries: this.dir.entries() });
    }
    for (const [key, w] of this.withdrawn) {
      if (now - w.at > this.directoryTtlMs) this.withdrawn.delete(key);
    }
    this.armRefresh();
  }

  private armRefresh(): void {
    this.refreshTimer?.cancel();
    this.refreshTimer = this.clock.setTimeout(() => {
      if (this.started) this.refresh();
    }, this.refreshIntervalMs);
  }

  private selfEntry(): DirectoryEntry {
    return {
      id: this.selfId.id,
      boot: this.selfId.boot,
      info: this.selfInfo,
      address: this.selfInfo.addresses[0] ?? '',
      port: this.lanPort,
      lastSeen: this.clock.now(),
      self: true,
    };
  }

  private emit(e: MembershipEvent): void {
    this.listeners.emit(e);
  }
}
