import { createSocket } from 'node:dgram';
import type { RemoteInfo, Socket } from 'node:dgram';
import { isIP } from 'node:net';

import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/log.js';
import { checkKey, decodeMessage, encodeMessage } from './codec.js';
import { PeerProtocolError, PeerTransportError } from './errors.js';
import type { PeerProtocolErrorCode } from './errors.js';
import type { Envelope, PeerMessage, Received, Sender } from './messages.js';
import { ReplayWindow } from './replay-window.js';
import type { ReplayVerdict } from './replay-window.js';
import type { LanTransport } from './transport.js';

/** Unassigned in the IANA registry (range 4852-4866), below every OS's ephemeral range. */
export const DEFAULT_PEER_PORT = 4862;
/** RFC 2365 IPv4 Local Scope (239.255.0.0/16): never forwarded off the site; 70.68 = "FD". */
export const DEFAULT_GROUP = '239.255.70.68';
export const DEFAULT_BROADCAST_ADDRESS = '255.255.255.255';

export type LanMode = 'multicast' | 'broadcast' | 'unicast';

export interface PeerAddress {
  address: string;
  /** Default: the transport's own port. */
  port?: number;
}

export interface UdpTransportComponents {
  logger: Logger;
  /** Monotonic; paces the drop log. */
  clock: Clock;
  /** Wall clock in ms for `sentAt` and the replay window's skew check. Default Date.now. */
  wallClock?: () => number;
}

export interface UdpTransportInit {
  self: Sender;
  /** From deriveKey(); null = no fleet secret (unauthenticated, the caller warns). */
  key: Buffer | null;
  mode: LanMode;
  /**
   * Default 0.0.0.0: on Linux a socket bound to a unicast address receives neither multicast
   * nor broadcast, and one socket must take the group's traffic and the unicast fallback's.
   */
  bindAddress?: string;
  port?: number;
  group?: string;
  /** Broadcast mode's target. Prefer the subnet's (192.168.1.255): Linux sends 255.255.255.255 only out of the default route's interface. */
  broadcastAddress?: string;
  /** The LAN interface's own IPv4 address: where to join the group and send multicast from. */
  interfaceAddress?: string;
  /** Default 1: LAN messages must never cross a router. Also applied to unicast. */
  ttl?: number;
  /** Static unicast peers (unicast mode, and fallback in the other modes). */
  peers?: PeerAddress[];
  /**
   * Default true: broadcast() also unicasts to every known peer, because home Wi-Fi access
   * points and IGMP-snooping switches lose multicast. Receivers drop the second copy as a
   * duplicate (counted, logged at debug only).
   */
  unicastFallback?: boolean;
  maxSkewMs?: number;
  /** Peers learnt from received messages, least recently heard forgotten first. Default 256. */
  maxLearntPeers?: number;
  /** A drop reason from one source is logged at most once per this interval. Default 10 min. */
  logIntervalMs?: number;
}

export type DropReason =
  | PeerProtocolErrorCode
  | 'FD_PEER_DUPLICATE'
  | 'FD_PEER_TOO_OLD'
  | 'FD_PEER_SKEW'
  /** Our id with another boot: a cloned SD card (same machine-id) or our own previous run. */
  | 'FD_PEER_ID_CONFLICT';

export interface UdpTransportStats {
  /** Datagrams handed to the socket (one broadcast() may be several). */
  sent: number;
  sendErrors: number;
  received: number;
  delivered: number;
  /** Our own multicast/broadcast coming back: expected, not a drop. */
  ownLoopback: number;
  dropped: Partial<Record<DropReason, number>>;
  knownPeers: number;
}

const VERDICT_REASON: Record<Exclude<ReplayVerdict, 'ok'>, DropReason> = {
  duplicate: 'FD_PEER_DUPLICATE',
  'too-old': 'FD_PEER_TOO_OLD',
  skew: 'FD_PEER_SKEW',
};

/** Says what to do about it; the log line is the user's only clue. */
const DROP_HINT: Partial<Record<DropReason, string>> = {
  FD_PEER_BAD_MAC: 'message failed authentication: is the fleet secret the same on every node?',
  FD_PEER_NO_MAC: 'a node without the fleet secret is sending: set the secret on it',
  FD_PEER_UNEXPECTED_MAC: 'other nodes use a fleet secret and this node has none: set it here',
  FD_PEER_VERSION: 'a node speaks another protocol version: update every node to the same release',
  FD_PEER_UNKNOWN_TYPE: 'a node sends a message type this version does not know: update this node',
  FD_PEER_SKEW: "a node's clock differs from ours by more than the allowed skew: is NTP running on both?",
  FD_PEER_ID_CONFLICT: 'another node uses this node\'s id: cloned SD card? regenerate /etc/machine-id on one of them',
  FD_PEER_TOO_OLD: 'message arrived after 64 newer ones from the same node (replay or extreme reordering)',
};

const MAX_LOG_KEYS = 1024;

/**
 * The LAN over UDP (claim 5: broadcast, multicast or unicast). Every datagram goes through the
 * codec (size, version, HMAC, schema), then the replay window; whatever fails is dropped and
 * counted, and what passes is delivered with its source address.
 */
export class UdpTransport implements LanTransport {
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly wallClock: () => number;
  private readonly self: Sender;
  private readonly key: Buffer | null;
  private readonly mode: LanMode;
  private readonly bindAddress: string;
  private readonly port: number;
  private readonly group: string;
  private readonly broadcastAddress: string;
  private readonly interfaceAddress: string | undefined;
  private readonly ttl: number;
  private readonly staticPeers: ReadonlyArray<{ address: string; port: number }>;
  private readonly unicastFallback: boolean;
  private readonly maxLearntPeers: number;
  private readonly logIntervalMs: number;

  private readonly window: ReplayWindow;
  private readonly handlers: Array<(msg: Received) => void> = [];
  /** By sender id, so a node that changes address is replaced, not added. */
  private readonly learnt = new Map<string, { address: string; port: number }>();
  private readonly logged = new Map<string, { at: number; suppressed: number }>();
  private readonly counters = { sent: 0, sendErrors: 0, received: 0, delivered: 0, ownLoopback: 0 };
  private readonly dropped: Partial<Record<DropReason, number>> = {};
  private socket: Socket | undefined;
  private starting: Promise<void> | undefined;
  private closed = false;
  private seq = 0;

  constructor(components: UdpTransportComponents, init: UdpTransportInit) {
    this.log = components.logger;
    this.clock = components.clock;
    this.wallClock = components.wallClock ?? Date.now;
    this.self = init.self;
    this.key = init.key;
    this.mode = init.mode;
    this.bindAddress = init.bindAddress ?? '0.0.0.0';
    this.port = init.port ?? DEFAULT_PEER_PORT;
    this.group = init.group ?? DEFAULT_GROUP;
    this.broadcastAddress = init.broadcastAddress ?? DEFAULT_BROADCAST_ADDRESS;
    this.interfaceAddress = init.interfaceAddress;
    this.ttl = init.ttl ?? 1;
    this.unicastFallback = init.unicastFallback ?? true;
    this.maxLearntPeers = init.maxLearntPeers ?? 256;
    this.logIntervalMs = init.logIntervalMs ?? 600_000;
    this.window = new ReplayWindow(init.maxSkewMs === undefined ? {} : { maxSkewMs: init.maxSkewMs });

    if (isIP(this.bindAddress) !== 4) throw badConfig('bindAddress', this.bindAddress);
    if (!isPort(this.port, 0)) throw badConfig('port', String(this.port));
    if (this.mode !== 'multicast' && this.mode !== 'broadcast' && this.mode !== 'unicast') {
      throw badConfig('mode', String(this.mode));
    }
    if (this.mode === 'multicast' && !isMulticast(this.group)) throw badConfig('group', this.group);
    if (this.mode === 'broadcast' && isIP(this.broadcastAddress) !== 4) {
      throw badConfig('broadcastAddress', this.broadcastAddress);
    }
    if (this.interfaceAddress !== undefined && isIP(this.interfaceAddress) !== 4) {
      throw badConfig('interfaceAddress', this.interfaceAddress);
    }
    if (!Number.isInteger(this.ttl) || this.ttl < 1 || this.ttl > 255) throw badConfig('ttl', String(this.ttl));
    this.staticPeers = (init.peers ?? []).map((p) => {
      const port = p.port ?? this.port;
      if (isIP(p.address) !== 4 || !isPort(port, 1)) throw badConfig('peer', `${p.address}:${port}`);
      return { address: p.address, port };
    });
    // Fails now, at configuration, rather than on every datagram.
    checkKey(this.key);
  }

  /** Binds the socket (and joins the group). Idempotent; aborting `signal` cancels the bind. */
  start(signal?: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(new PeerTransportError('FD_PEER_CLOSED', 'transport is closed'));
    this.starting ??= this.bind(signal);
    return this.starting;
  }

  /** Where the socket is bound (the real port when `port` was 0). */
  address(): { address: string; port: number } {
    if (this.socket === undefined) throw new PeerTransportError('FD_PEER_NOT_STARTED', 'transport not started');
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  broadcast(body: PeerMessage): void {
    const targets = new Map<string, { address: string; port: number }>();
    const add = (t: { address: string; port: number }) => targets.set(`${t.address}|${t.port}`, t);
    if (this.mode === 'multicast') add({ address: this.group, port: this.port });
    if (this.mode === 'broadcast') add({ address: this.broadcastAddress, port: this.port });
    if (this.mode === 'unicast' || this.unicastFallback) {
      for (const p of this.staticPeers) add(p);
      for (const p of this.learnt.values()) add(p);
    }
    this.send(body, [...targets.values()]);
  }

  unicast(body: PeerMessage, address: string, port: number): void {
    if (isIP(address) !== 4 || !isPort(port, 1)) throw new PeerTransportError('FD_PEER_BAD_ADDRESS', `invalid unicast destination ${address}:${port}`);
    this.send(body, [{ address, port }]);
  }

  onMessage(handler: (msg: Received) => void): void {
    this.handlers.push(handler);
  }

  /** Idempotent. Sends after close are ignored: the election's last timers may still fire. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const socket = this.socket;
    this.socket = undefined;
    // Closing the socket leaves the multicast group too.
    socket?.close();
  }

  stats(): UdpTransportStats {
    return { ...this.counters, dropped: { ...this.dropped }, knownPeers: this.learnt.size };
  }

  private async bind(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) throw new PeerTransportError('FD_PEER_ABORTED', 'start aborted', { cause: signal.reason });
    // Several frontdoor processes on one host (tests, a dev box) share the group's port.
    const socket = createSocket({ type: 'udp4', reuseAddr: this.mode !== 'unicast' });
    socket.on('message', (buf, rinfo) => this.receive(buf, rinfo));
    try {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(new PeerTransportError('FD_PEER_ABORTED', 'start aborted', { cause: signal?.reason }));
        const cleanup = () => {
          signal?.removeEventListener('abort', onAbort);
          socket.off('error', onError);
        };
        const onError = (err: Error) => {
          cleanup();
          reject(new PeerTransportError('FD_PEER_BIND', `cannot bind ${this.bindAddress}:${this.port}: ${err.message}`, { cause: err }));
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        socket.once('error', onError);
        socket.bind({ address: this.bindAddress, port: this.port }, () => {
          cleanup();
          resolve();
        });
      });
      if (this.closed) throw new PeerTransportError('FD_PEER_CLOSED', 'transport closed while starting');
      socket.setTTL(this.ttl);
      if (this.mode === 'multicast') {
        socket.setMulticastTTL(this.ttl);
        // On: a second frontdoor on the same host must hear us; our own copies are dropped by id+boot.
        socket.setMulticastLoopback(true);
        if (this.interfaceAddress !== undefined) socket.setMulticastInterface(this.interfaceAddress);
        socket.addMembership(this.group, this.interfaceAddress);
      } else if (this.mode === 'broadcast') {
        socket.setBroadcast(true);
      }
    } catch (err) {
      socket.close();
      if (err instanceof PeerTransportError) throw err;
      throw new PeerTransportError('FD_PEER_BIND', `cannot set up ${this.mode} on ${this.group}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    socket.on('error', (err) => this.log.error('socket error', { error: err }));
    this.socket = socket;
    this.log.info('listening', {
      mode: this.mode,
      address: this.bindAddress,
      port: socket.address().port,
      authenticated: this.key !== null,
    });
  }

  private send(body: PeerMessage, targets: Array<{ address: string; port: number }>): void {
    if (this.closed) return;
    const socket = this.socket;
    if (socket === undefined) throw new PeerTransportError('FD_PEER_NOT_STARTED', 'send before start()');
    const env: Envelope = { from: this.self, seq: this.seq + 1, sentAt: Math.round(this.wallClock()), body };
    // Throws on a body the peers would reject: a bug in the caller, not a network condition.
    const buf = encodeMessage(env, this.key);
    this.seq = env.seq;
    for (const t of targets) {
      this.counters.sent++;
      socket.send(buf, t.port, t.address, (err) => {
        if (err === null || err === undefined) return;
        this.counters.sendErrors++;
        // A Wi-Fi link going down fails every send: once per destination per interval.
        this.logOnce(`send|${(err as NodeJS.ErrnoException).code}`, t.address, 'warn', 'send failed', {
          destination: `${t.address}:${t.port}`,
          error: err,
        });
      });
    }
  }

  private receive(buf: Buffer, rinfo: RemoteInfo): void {
    this.counters.received++;
    let env: Envelope;
    try {
      env = decodeMessage(buf, this.key);
    } catch (err) {
      if (err instanceof PeerProtocolError) {
        this.drop(err.code, rinfo, { detail: err.message });
        return;
      }
      throw err;
    }
    if (env.from.id === this.self.id) {
      if (env.from.boot === this.self.boot) {
        this.counters.ownLoopback++;
        return;
      }
      this.drop('FD_PEER_ID_CONFLICT', rinfo, { id: env.from.id });
      return;
    }
    const now = this.wallClock();
    const verdict = this.window.accept(env, now);
    if (verdict !== 'ok') {
      const fields = verdict === 'skew' ? { id: env.from.id, offsetMs: Math.round(env.sentAt - now) } : { id: env.from.id };
      this.drop(VERDICT_REASON[verdict], rinfo, fields);
      return;
    }
    if (env.body.type === 'withdraw') {
      this.learnt.delete(env.from.id);
    } else {
      this.learnt.delete(env.from.id);
      this.learnt.set(env.from.id, { address: rinfo.address, port: rinfo.port });
      while (this.learnt.size > this.maxLearntPeers) this.learnt.delete(this.learnt.keys().next().value!);
    }
    this.counters.delivered++;
    const msg: Received = { ...env, address: rinfo.address, port: rinfo.port };
    for (const h of this.handlers) {
      try {
        h(msg);
      } catch (err) {
        // A throw here would surface as an uncaught exception from the socket and end the process.
        this.logOnce('handler', 'local', 'error', 'message handler threw', { error: err });
      }
    }
  }

  private drop(reason: DropReason, rinfo: RemoteInfo, fields: Record<string, unknown>): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
    // Duplicates are the normal price of unicastFallback; not worth a warning.
    const level = reason === 'FD_PEER_DUPLICATE' ? 'debug' : 'warn';
    this.logOnce(reason, rinfo.address, level, DROP_HINT[reason] ?? 'dropped a datagram', {
      reason,
      source: `${rinfo.address}:${rinfo.port}`,
      ...fields,
    });
  }

  /**
   * Once per (reason, source address) per interval, with the count of what was held back: a
   * flood of bad datagrams must not become a flood of log lines. The source port is left out of
   * the key because a sender's ephemeral ports would defeat it.
   */
  private logOnce(
    reason: string,
    source: string,
    level: 'debug' | 'warn' | 'error',
    msg: string,
    fields: Record<string, unknown>,
  ): void {
    const key = `${reason}|${source}`;
    const now = this.clock.now();
    const seen = this.logged.get(key);
    if (seen !== undefined && now - seen.at < this.logIntervalMs) {
      seen.suppressed++;
      return;
    }
    const suppressed = seen?.suppressed ?? 0;
    this.logged.delete(key);
    this.logged.set(key, { at: now, suppressed: 0 });
    // Spoofed source addresses could grow this map without end; forget the oldest keys.
    while (this.logged.size > MAX_LOG_KEYS) this.logged.delete(this.logged.keys().next().value!);
    this.log[level](msg, suppressed > 0 ? { ...fields, suppressed } : fields);
  }
}

function isMulticast(a: string): boolean {
  const first = Number(a.split('.')[0]);
  return isIP(a) === 4 && first >= 224 && first <= 239;
}

function isPort(p: number, min: number): boolean {
  return Number.isInteger(p) && p >= min && p <= 65535;
}

function badConfig(what: string, value: string): PeerTransportError {
  return new PeerTransportError('FD_PEER_BAD_CONFIG', `invalid ${what}: ${value}`);
}
