import type { Envelope } from './messages.js';

/** What the window says about a message; only 'ok' changes its state. */
export type ReplayVerdict = 'ok' | 'duplicate' | 'too-old' | 'skew';

export interface ReplayWindowInit {
  /** How far `sentAt` may be from the receiver's wall clock, either way. Default 120 s. */
  maxSkewMs?: number;
  /** Senders (device ids) remembered; the least recently heard is forgotten first. Default 256. */
  maxSenders?: number;
  /** Boots remembered per sender; a node that restarts often keeps only its latest. Default 4. */
  maxBootsPerSender?: number;
}

export const REPLAY_DEFAULTS = {
  maxSkewMs: 120_000,
  maxSenders: 256,
  maxBootsPerSender: 4,
} as const;

/** RFC 4303 3.4.3 recommends at least 32; 64 tolerates the reordering of a busy Wi-Fi link. */
export const WINDOW_SIZE = 64;
const WINDOW_BITS = BigInt(WINDOW_SIZE);
const WINDOW_MASK = (1n << WINDOW_BITS) - 1n;

interface BootWindow {
  /** Highest seq accepted. */
  top: number;
  /** Bit i set = seq (top - i) accepted; bit 0 is `top` itself. */
  bitmap: bigint;
}

/**
 * Anti-replay for authenticated messages, keyed by (sender id, boot): the highest seq seen plus
 * a 64-entry sliding bitmap (IPsec style), so reordered packets pass and duplicates do not.
 *
 * The bitmap alone forgets everything when this node restarts, and a sender's earlier boots are
 * forgotten when memory runs out; the wall-clock check closes both gaps, so a captured message
 * can only be replayed while its `sentAt` is within `maxSkewMs` of our clock (and then only
 * once per window state). Pure: the caller passes the time.
 */
export class ReplayWindow {
  private readonly maxSkewMs: number;
  private readonly maxSenders: number;
  private readonly maxBoots: number;
  /** Map iteration order is insertion order: re-inserting on use makes the first entry the LRU. */
  private readonly senders = new Map<string, Map<string, BootWindow>>();

  constructor(init: ReplayWindowInit = {}) {
    this.maxSkewMs = positive(init.maxSkewMs, REPLAY_DEFAULTS.maxSkewMs, 'maxSkewMs');
    this.maxSenders = positive(init.maxSenders, REPLAY_DEFAULTS.maxSenders, 'maxSenders');
    this.maxBoots = positive(init.maxBootsPerSender, REPLAY_DEFAULTS.maxBootsPerSender, 'maxBootsPerSender');
  }

  /** Checks `env` against the window at wall-clock time `nowMs` and records it when 'ok'. */
  accept(env: Pick<Envelope, 'from' | 'seq' | 'sentAt'>, nowMs: number): ReplayVerdict {
    if (!(Math.abs(env.sentAt - nowMs) <= this.maxSkewMs)) return 'skew';
    const { id, boot } = env.from;
    const seq = env.seq;

    let boots = this.senders.get(id);
    const w = boots?.get(boot);
    if (w !== undefined && seq <= w.top) {
      const offset = w.top - seq;
      if (offset >= WINDOW_SIZE) return 'too-old';
      const bit = 1n << BigInt(offset);
      if ((w.bitmap & bit) !== 0n) return 'duplicate';
      w.bitmap |= bit;
    } else if (w !== undefined) {
      const shift = seq - w.top;
      w.bitmap = shift >= WINDOW_SIZE ? 1n : ((w.bitmap << BigInt(shift)) | 1n) & WINDOW_MASK;
      w.top = seq;
    }

    // Touch (or create) the entries so the LRU order follows what we hear.
    if (boots === undefined) {
      boots = new Map();
    } else {
      this.senders.delete(id);
    }
    this.senders.set(id, boots);
    if (w === undefined) {
      boots.set(boot, { top: seq, bitmap: 1n });
    } else {
      boots.delete(boot);
      boots.set(boot, w);
    }
    evictOldest(boots, this.maxBoots);
    evictOldest(this.senders, this.maxSenders);
    return 'ok';
  }

  /** What is held, to check the memory bound. */
  size(): { senders: number; boots: number } {
    let boots = 0;
    for (const b of this.senders.values()) boots += b.size;
    return { senders: this.senders.size, boots };
  }
}

function evictOldest<K, V>(map: Map<K, V>, max: number): void {
  while (map.size > max) {
    const first = map.keys().next();
    if (first.done) return;
    map.delete(first.value);
  }
}

function positive(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback;
  if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`ReplayWindow ${name} must be a positive number`);
  return v;
}
