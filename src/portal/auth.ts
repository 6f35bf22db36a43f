import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { writeFileAtomic } from '../runtime/atomic-write.js';

/**
 * Who may see the portal. One password for the fleet, one session key for the fleet: browsers
 * send a host's cookies to every port of it, so a session made on the representative's port is
 * good on every node's own port when all nodes sign with the same key.
 *
 * - The password: FRONTDOOR_PASSWORD, else derived from the fleet secret (every node derives the
 *   same one), else made at random on first start and kept in the data directory (that node only).
 * - The session key: derived from the fleet secret, else random and kept beside the password;
 *   either way bound to the password, so a new password ends every session.
 */

export const SESSION_COOKIE = 'fd_session';
/** A session lasts this long; the browser is asked to keep it as long. */
export const SESSION_TTL_MS = 7 * 24 * 3600 * 1000;
const PASSWORD_FILE = 'portal-password';
const KEY_FILE = 'session-key';
const SALT = Buffer.from('frontdoor portal v1', 'utf8');

export interface PortalCredentials {
  password: string;
  /** Where the password came from: shown in `frontdoor status` and the log. */
  passwordSource: 'setting' | 'fleet-secret' | 'generated' | 'data-dir';
  sessionKey: Buffer;
  /**
   * Why a made password or session key could not be kept (a read-only or full data directory):
   * the node runs with it all the same, and makes another at its next start.
   */
  notKept?: string;
}

/** 20 characters from an alphabet without look-alikes: about 100 bits, typeable on a phone. */
function makePassword(bytes: Buffer): string {
  const alphabet = 'abcdefghijkmnpqrstuvwxyz23456789';
  let out = '';
  for (let i = 0; i < 20; i++) {
    out += alphabet[bytes[i]! % 32];
    if (i % 5 === 4 && i < 19) out += '-';
  }
  return out;
}

export async function resolveCredentials(opts: { password: string; secret: string; dataDir?: string }): Promise<PortalCredentials> {
  const creds = await resolveUnbound(opts);
  // The sessions' key depends on the password too: changing FRONTDOOR_PASSWORD (or the made one)
  // ends every session on every node at once, as a user expects of a password change.
  const sessionKey = createHmac('sha256', creds.sessionKey).update(`portal password ${creds.password}`, 'utf8').digest();
  return { ...creds, sessionKey };
}

async function resolveUnbound(opts: { password: string; secret: string; dataDir?: string }): Promise<PortalCredentials> {
  const fromSecret = (info: string, n: number) => Buffer.from(hkdfSync('sha256', Buffer.from(opts.secret, 'utf8'), SALT, info, n));
  const problems: string[] = [];
  const notKept = (why: string) => problems.push(why);
  let sessionKey: Buffer;
  if (opts.secret !== '') sessionKey = fromSecret('session key', 32);
  else sessionKey = Buffer.from(await kept(opts.dataDir, KEY_FILE, () => randomBytes(32).toString('hex'), notKept), 'hex');
  const extra = () => (problems.length > 0 ? { notKept: problems.join('; ') } : {});
  if (opts.password !== '') return { password: opts.password, passwordSource: 'setting', sessionKey, ...extra() };
  if (opts.secret !== '') return { password: makePassword(fromSecret('portal password', 20)), passwordSource: 'fleet-secret', sessionKey, ...extra() };
  let generated = false;
  const password = await kept(
    opts.dataDir,
    PASSWORD_FILE,
    () => {
      generated = true;
      return makePassword(randomBytes(20));
    },
    notKept,
  );
  return { password, passwordSource: generated ? 'generated' : 'data-dir', sessionKey, ...extra() };
}

/**
 * A value kept in the data directory (mode 600), made once. Without a directory: made each
 * start. A directory that cannot be written (read-only, full) is no reason not to run: the value
 * made is used, and `notKept` says why it was not kept.
 */
async function kept(dir: string | undefined, name: string, make: () => string, notKept: (why: string) => void): Promise<string> {
  if (dir === undefined) return make();
  const file = join(dir, name);
  try {
    const v = (await readFile(file, 'utf8')).trim();
    if (v.length >= 16 && v.length <= 128) return v;
  } catch {
    // not made yet
  }
  const v = make();
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(file, `${v}\n`, { mode: 0o600 });
  } catch (err) {
    notKept(`${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return v;
}

/** The password file's path, for `frontdoor status`. */
export function passwordFile(dataDir: string): string {
  return join(dataDir, PASSWORD_FILE);
}

/** Compares in constant time whatever the lengths (hashes first, so the length leaks nothing). */
export function passwordMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** `v1.<expiry ms base36>.<nonce>.<mac>`: stateless, so any node with the key accepts it. */
export function signSession(key: Buffer, now: number, ttlMs = SESSION_TTL_MS): string {
  const body = `v1.${(now + ttlMs).toString(36)}.${randomBytes(9).toString('base64url')}`;
  return `${body}.${mac(key, body)}`;
}

export function verifySession(key: Buffer, token: string | undefined, now: number): boolean {
  if (token === undefined || token.length > 200) return false;
  const parts = token.split('.');
  if (parts.length !== 4 || parts[0] !== 'v1') return false;
  const [, exp, nonce, tag] = parts as [string, string, string, string];
  if (!/^[0-9a-z]{1,12}$/.test(exp) || !/^[A-Za-z0-9_-]{12}$/.test(nonce) || !/^[A-Za-z0-9_-]{43}$/.test(tag)) return false;
  const want = Buffer.from(mac(key, `v1.${exp}.${nonce}`), 'utf8');
  const got = Buffer.from(tag, 'utf8');
  if (!timingSafeEqual(want, got)) return false;
  return Number.parseInt(exp, 36) > now;
}

function mac(key: Buffer, body: string): string {
  return createHmac('sha256', key).update(body).digest('base64url');
}

/** The value of one cookie from a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/** `Authorization: Basic …` → the password when the user is `admin`, else undefined. */
export function basicAuthPassword(header: string | undefined): string | undefined {
  if (header === undefined || header.length > 1024) return undefined;
  const m = /^Basic ([A-Za-z0-9+/=]{1,1000})$/i.exec(header.trim());
  if (!m) return undefined;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = text.indexOf(':');
  if (i < 0 || text.slice(0, i) !== 'admin') return undefined;
  return text.slice(i + 1);
}

/** What a wrong password did to the throttle, for one log line per change rather than per guess. */
export type ThrottleChange = 'none' | 'address-blocked' | 'budget-spent';

/**
 * Wrong passwords per source network (an IPv4 /24, an IPv6 /64: one host rarely has more, and an
 * attacker with many addresses has them side by side): the first few (5) are compared at once;
 * from the fifth wrong one on, each costs a growing wait (1 s, 2 s, 4 s … up to 60 s) before
 * another attempt is even compared. Beside that, a budget for all networks together (60 wrong
 * passwords a minute): spent, every login waits until the minute is over, so addresses spread
 * over many networks gain nothing either. Sessions already made are not touched.
 *
 * Bounded in memory: past `maxEntries` the least recently seen network that is not blocked is
 * forgotten; a blocked one never is (forgetting it would unblock it). With every tracked network
 * blocked, a new one is not tracked and only the budget holds it.
 */
export class LoginThrottle {
  private readonly byNetwork = new Map<string, { failures: number; blockedUntil: number; lastSeen: number }>();
  private window = { start: Number.NEGATIVE_INFINITY, failures: 0 };
  constructor(
    private readonly now: () => number,
    private readonly free = 5,
    private readonly maxEntries = 10_000,
    private readonly budgetPerMinute = 60,
  ) {}

  /** Milliseconds this address must still wait; 0 = may try now. */
  waitMs(address: string): number {
    const now = this.now();
    const e = this.byNetwork.get(networkOf(address));
    const own = e === undefined ? 0 : Math.max(0, e.blockedUntil - now);
    const w = this.window;
    const global = w.failures >= this.budgetPerMinute ? Math.max(0, w.start + 60_000 - now) : 0;
    return Math.max(own, global);
  }

  failed(address: string): ThrottleChange {
    const now = this.now();
    let change: ThrottleChange = 'none';
    if (now - this.window.start >= 60_000) this.window = { start: now, failures: 0 };
    this.window.failures++;
    if (this.window.failures === this.budgetPerMinute) change = 'budget-spent';
    const key = networkOf(address);
    const known = this.byNetwork.get(key);
    const e = known ?? { failures: 0, blockedUntil: 0, lastSeen: now };
    e.failures++;
    e.lastSeen = now;
    if (e.failures >= this.free) {
      // Once the budget is spent its one line says everyone waits: no line per network after it.
      if (e.failures === this.free && this.window.failures < this.budgetPerMinute) change = 'address-blocked';
      e.blockedUntil = now + Math.min(60_000, 1000 * 2 ** Math.min(6, e.failures - this.free));
    }
    this.byNetwork.delete(key);
    if (known === undefined && this.byNetwork.size >= this.maxEntries && !this.forgetOne(now)) return change;
    this.byNetwork.set(key, e);
    return change;
  }

  succeeded(address: string): void {
    this.byNetwork.delete(networkOf(address));
  }

  get tracked(): number {
    return this.byNetwork.size;
  }

  /** Forgets the least recently seen network that is not blocked; false when all are. */
  private forgetOne(now: number): boolean {
    for (const [key, e] of this.byNetwork) {
      if (e.blockedUntil <= now) {
        this.byNetwork.delete(key);
        return true;
      }
    }
    return false;
  }
}

/** The /24 of an IPv4 address (also IPv4-mapped IPv6), the /64 of an IPv6 one; anything else as it is. */
export function networkOf(address: string): string {
  const lower = address.toLowerCase();
  const a = lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4 ? lower.slice(7) : lower;
  const v = isIP(a);
  if (v === 4) return `${a.slice(0, a.lastIndexOf('.'))}.0/24`;
  if (v !== 6) return address;
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const [head = '', tail] = a.split('::');
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? h : [...h, ...Array(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return `${all.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
