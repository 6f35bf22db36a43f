import { readFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import type { Clock, Timer } from '../runtime/clock.js';
import { CodedError } from '../runtime/errors.js';
import type { Logger } from '../runtime/log.js';
import { ipv4ToInt, maskOf, networkOf } from '../router/wan-address.js';
import type { CommandResult, CommandRunner } from './command-runner.js';

export type { CommandResult, CommandRunner, StartedCommand } from './command-runner.js';

/**
 * A floating LAN address: a spare address of the home LAN that the representative adds to its
 * interface, so the router's mapping of the well-known port points at an address that moves
 * between hosts instead of at one host. A router in secure mode maps a port only to the address
 * a request came from; sending the request from the floating address makes it the mapping's
 * internal client (see bound-mapper.ts). When the representative dies, the next one adds the
 * address and sends a gratuitous ARP; the router then forwards the same mapping to the new host,
 * without waiting for the dead holder's lease on the router.
 *
 * The address is added with a lifetime (Linux deletes an IPv4 address whose valid_lft runs out)
 * and refreshed well before it runs out: the lifetime is a lease on the address, so a holder
 * that is SIGKILLed or freezes loses it by itself within `lifetimeSeconds`.
 */

export type FloatingAddressErrorCode = 'FD_FLOATING_NOT_PERMITTED' | 'FD_FLOATING_COMMAND_MISSING' | 'FD_FLOATING_FAILED';

export class FloatingAddressError extends CodedError<FloatingAddressErrorCode> {}

const OFF_HINT = 'or set the floating address off (FRONTDOOR_FLOATING_ADDRESS=off)';
const PRIVILEGE_HINT =
  'run frontdoor as root, or its container privileged with host networking (balena: privileged: true and network_mode: host)';

export interface FloatingAddressComponents {
  run: CommandRunner;
  clock: Clock;
  logger: Logger;
}

export interface FloatingAddressInit {
  address: string;
  prefixLength: number;
  interface: string;
  /** The lease on the address: Linux removes it this long after the last refresh. Default 2 s. */
  lifetimeSeconds?: number;
  /** How often the holder refreshes the lifetime; must be well under it. Default 500 ms. */
  refreshMs?: number;
  /** Gratuitous ARPs per take/announce (one a second). Default 1. */
  arpCount?: number;
  /**
   * Called when a refresh finds the address gone from the interface (its lifetime ran out while
   * refreshes failed or the process stalled, or someone removed it). The address is not held any
   * more when this runs; taking it again is the caller's decision.
   */
  onLost?: (reason: string) => void;
}

export const FLOATING_DEFAULTS = {
  lifetimeSeconds: 2,
  refreshMs: 500,
  arpCount: 1,
} as const;

export class FloatingAddress {
  readonly address: string;
  readonly prefixLength: number;
  readonly interface: string;
  readonly lifetimeSeconds: number;
  readonly refreshMs: number;
  private readonly run: CommandRunner;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly arpCount: number;
  private readonly onLost: ((reason: string) => void) | undefined;
  private isHeld = false;
  private timer: Timer | undefined;
  /** Failed refreshes in a row; logged when the streak starts and when it ends. */
  private failures = 0;
  /** Address changes one at a time: a refresh must never re-add what drop just removed. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(components: FloatingAddressComponents, init: FloatingAddressInit) {
    if (!isIPv4(init.address)) throw new TypeError(`floating address must be IPv4: ${init.address}`);
    if (!Number.isInteger(init.prefixLength) || init.prefixLength < 1 || init.prefixLength > 32) {
      throw new RangeError(`floating address prefix length must be 1..32: ${init.prefixLength}`);
    }
    // An interface name is one argv element for `ip`; refuse anything that is not a plain name.
    if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(init.interface)) {
      throw new TypeError(`not an interface name: ${JSON.stringify(init.interface)}`);
    }
    const lifetime = init.lifetimeSeconds ?? FLOATING_DEFAULTS.lifetimeSeconds;
    const refreshMs = init.refreshMs ?? FLOATING_DEFAULTS.refreshMs;
    if (!Number.isInteger(lifetime) || lifetime < 1) {
      throw new RangeError(`floating address lifetime must be a whole number of seconds >= 1: ${lifetime}`);
    }
    if (!(refreshMs > 0) || refreshMs * 2 > lifetime * 1000) {
      throw new RangeError(
        `floating address refresh interval ${refreshMs} ms must be positive and at most half the lifetime (${lifetime} s)`,
      );
    }
    const arpCount = init.arpCount ?? FLOATING_DEFAULTS.arpCount;
    if (!Number.isInteger(arpCount) || arpCount < 1 || arpCount > 10) {
      throw new RangeError(`arpCount must be 1..10: ${arpCount}`);
    }
    this.address = init.address;
    this.prefixLength = init.prefixLength;
    this.interface = init.interface;
    this.lifetimeSeconds = lifetime;
    this.refreshMs = refreshMs;
    this.arpCount = arpCount;
    this.onLost = init.onLost;
    this.run = components.run;
    this.clock = components.clock;
    this.log = components.logger.child('floating');
  }

  /** Whether this process holds the address (took it, and neither dropped nor lost it since). */
  get held(): boolean {
    return this.isHeld;
  }

  private get cidr(): string {
    return `${this.address}/${this.prefixLength}`;
  }

  /**
   * Adds the address with its lifetime, tells the LAN (one gratuitous ARP) and starts refreshing.
   * Resolves once the ARP has been started (arping sends it within milliseconds, then waits a
   * second for replies it will not get; that second is not waited for when the runner can
   * `start`). Taking an address already held renews it and announces it again.
   */
  take(signal?: AbortSignal): Promise<void> {
    return this.exclusive(async () => {
      await this.ip(this.lifetimeArgs('replace'), 'take the floating address', signal);
      try {
        await this.arp('announce the floating address', signal);
      } catch (err) {
        // Not announced: do not leave it behind half taken (its lifetime would end it anyway).
        if (!this.isHeld) await this.removeQuietly();
        throw err;
      }
      const again = this.isHeld;
      this.isHeld = true;
      this.failures = 0;
      this.schedule();
      if (!again) {
        this.log.info('floating address taken', {
          address: this.address,
          interface: this.interface,
          lifetimeSeconds: this.lifetimeSeconds,
        });
      }
    });
  }

  /** Another gratuitous ARP for the held address (after a split brain, to win the router back). */
  announce(signal?: AbortSignal): Promise<void> {
    return this.exclusive(async () => {
      if (!this.isHeld) {
        throw new FloatingAddressError('FD_FLOATING_FAILED', `cannot announce ${this.address}: it is not held (take it first)`);
      }
      await this.arp('announce the floating address', signal);
    });
  }

  /** Stops refreshing and removes the address. An address that is already gone is not an error. */
  drop(signal?: AbortSignal): Promise<void> {
    return this.exclusive(async () => {
      const was = this.isHeld;
      this.stopHolding();
      const removed = await this.remove(this.prefixLength, signal);
      if (was || removed) this.log.info('floating address dropped', { address: this.address, interface: this.interface });
    });
  }

  /**
   * At process start: removes the address if this host has it (with any prefix length), since a
   * previous run may have been killed while holding it. Resolves with whether anything was
   * removed. Also stops holding, should this process hold it.
   */
  clearStale(signal?: AbortSignal): Promise<boolean> {
    return this.exclusive(async () => {
      this.stopHolding();
      let removed = false;
      for (const prefix of await this.prefixesOnInterface(signal)) {
        if (await this.remove(prefix, signal)) removed = true;
      }
      if (removed) {
        this.log.info('removed a floating address left by an earlier run', { address: this.address, interface: this.interface });
      }
      return removed;
    });
  }

  /** Whether the address is on the interface now (`ip -o -4 addr show dev IF`), whoever added it. */
  async isPresent(signal?: AbortSignal): Promise<boolean> {
    return (await this.prefixesOnInterface(signal)).length > 0;
  }

  private lifetimeArgs(verb: 'replace'): string[] {
    const l = String(this.lifetimeSeconds);
    return ['addr', verb, this.cidr, 'dev', this.interface, 'valid_lft', l, 'preferred_lft', l];
  }

  private schedule(): void {
    this.timer?.cancel();
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      void this.exclusive(() => this.refresh()).catch((err: unknown) => {
        this.log.error('floating address refresh crashed', { error: err });
      });
    }, this.refreshMs);
  }

  private stopHolding(): void {
    this.isHeld = false;
    this.timer?.cancel();
    this.timer = undefined;
  }

  /**
   * One refresh: is the address still there (Linux deletes it when its lifetime ran out), then the
   * lifetime renewed. `ip addr change` would not do as the check: for IPv4 it adds an address
   * that is missing (measured), so a lost address would silently come back.
   */
  private async refresh(): Promise<void> {
    if (!this.isHeld) return;
    // A refresh slower than the lifetime is no refresh: give up on it and try again.
    const deadline = new AbortController();
    const t = this.clock.setTimeout(
      () =>
        deadline.abort(
          new FloatingAddressError('FD_FLOATING_FAILED', `refresh took longer than the lifetime (${this.lifetimeSeconds} s)`),
        ),
      this.lifetimeSeconds * 1000,
    );
    try {
      const present = (await this.prefixesOnInterface(deadline.signal)).includes(this.prefixLength);
      if (!present) {
        this.lost(`${this.cidr} is no longer on ${this.interface}`);
        return;
      }
      await this.ip(this.lifetimeArgs('replace'), 'refresh the floating address', deadline.signal);
      if (this.failures > 0) {
        this.log.info('floating address refresh works again', { address: this.address, failed: this.failures });
      }
      this.failures = 0;
    } catch (err) {
      this.failures++;
      if (this.failures === 1) {
        this.log.warn('floating address refresh failed; retrying', {
          address: this.address,
          error: err,
          lifetimeSeconds: this.lifetimeSeconds,
        });
      }
    } finally {
      t.cancel();
    }
    if (this.isHeld) this.schedule();
  }

  private lost(reason: string): void {
    this.stopHolding();
    this.log.warn('floating address lost', { address: this.address, reason });
    try {
      this.onLost?.(reason);
    } catch (err) {
      this.log.error('onLost callback threw', { error: err });
    }
  }

  /** `ip -o -4 addr show dev IF`: the prefix lengths our address has on the interface. */
  private async prefixesOnInterface(signal?: AbortSignal): Promise<number[]> {
    const r = await this.ip(['-o', '-4', 'addr', 'show', 'dev', this.interface], 'list the addresses', signal);
    return parseAddressPrefixes(r.stdout, this.address);
  }

  /** Removes address/prefix; false when it was not there. */
  private async remove(prefix: number, signal?: AbortSignal): Promise<boolean> {
    const argv = ['ip', 'addr', 'del', `${this.address}/${prefix}`, 'dev', this.interface];
    const r = await this.exec(argv, 'remove the floating address', signal);
    if (r.code === 0) return true;
    if (isNotThere(r.stderr)) {
      this.log.debug('floating address was not there', { address: this.address, stderr: firstLine(r.stderr) });
      return false;
    }
    throw commandError(argv, r, 'remove the floating address', this.interface);
  }

  private async removeQuietly(): Promise<void> {
    try {
      await this.remove(this.prefixLength);
    } catch (err) {
      this.log.debug('could not remove the half-taken floating address', { error: err });
    }
  }

  private async ip(args: readonly string[], what: string, signal?: AbortSignal): Promise<CommandResult> {
    const argv = ['ip', ...args];
    const r = await this.exec(argv, what, signal);
    if (r.code !== 0) throw commandError(argv, r, what, this.interface);
    return r;
  }

  private async exec(argv: readonly string[], what: string, signal?: AbortSignal): Promise<CommandResult> {
    try {
      return await this.run(argv, signal);
    } catch (err) {
      throw spawnError(argv, err, what, signal);
    }
  }

  /**
   * One gratuitous ARP (`arping -U`: a request whose sender and target are the address), so the
   * router and the LAN hosts point the address at our MAC at once. With a runner that can
   * `start`, resolves once arping runs and reports its exit only in the log.
   */
  private async arp(what: string, signal?: AbortSignal): Promise<void> {
    const argv = ['arping', '-U', '-c', String(this.arpCount), '-I', this.interface, this.address];
    const start = this.run.start;
    if (start === undefined) {
      const r = await this.exec(argv, what, signal);
      if (r.code !== 0) throw commandError(argv, r, what, this.interface);
      return;
    }
    let started: Awaited<ReturnType<NonNullable<CommandRunner['start']>>>;
    try {
      started = await start.call(this.run, argv, signal);
    } catch (err) {
      throw spawnError(argv, err, what, signal);
    }
    void started.result.then(
      (r) => {
        if (r.code !== 0) {
          this.log.warn('gratuitous ARP failed', { error: commandError(argv, r, what, this.interface) });
        }
      },
      (err: unknown) => {
        if (!signal?.aborted) this.log.warn('gratuitous ARP failed', { error: err });
      },
    );
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => {});
    return next;
  }
}

/** The prefix lengths `address` has in `ip -o -4 addr show` output. */
export function parseAddressPrefixes(text: string, address: string): number[] {
  const out: number[] = [];
  for (const line of text.split('\n')) {
    for (const m of line.matchAll(/\binet (\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})\b/g)) {
      if (m[1] === address) out.push(Number(m[2]));
    }
  }
  return out;
}

/** `ip addr del` of an address that is not there: iproute2 6.x, then older wording. */
function isNotThere(stderr: string): boolean {
  return /Address not found|Cannot assign requested address|Cannot find device/i.test(stderr);
}

function firstLine(s: string): string {
  return (s.trim().split('\n')[0] ?? '').slice(0, 300);
}

function toolOf(argv: readonly string[]): string {
  return argv[0] ?? '?';
}

/** A command that ran and failed, as a FloatingAddressError that says what to do. */
export function commandError(argv: readonly string[], r: CommandResult, what: string, iface: string): FloatingAddressError {
  const tool = toolOf(argv);
  const said = firstLine(r.stderr) || firstLine(r.stdout) || '(no message)';
  const cmd = argv.join(' ');
  if (/Operation not permitted|Permission denied/i.test(r.stderr)) {
    const cap = tool === 'arping' ? `sending ARP on ${iface} needs NET_RAW` : `changing addresses on ${iface} needs NET_ADMIN`;
    return new FloatingAddressError('FD_FLOATING_NOT_PERMITTED', `${what}: \`${cmd}\`: ${said}: ${cap}: ${PRIVILEGE_HINT}, ${OFF_HINT}`);
  }
  const deviceMissing = /Cannot find device|does not exist|not available/i.test(r.stderr);
  const hint = deviceMissing ? `: there is no interface ${iface} here; check --interface` : '';
  return new FloatingAddressError('FD_FLOATING_FAILED', `${what}: \`${cmd}\` exited ${r.code}: ${said}${hint}`);
}

/** A command that could not run at all. Aborts are passed through as they are. */
function spawnError(argv: readonly string[], err: unknown, what: string, signal?: AbortSignal): unknown {
  if (signal?.aborted) return signal.reason;
  const code = (err as { code?: unknown } | null)?.code;
  const tool = toolOf(argv);
  if (code === 'ENOENT') {
    const pkg = tool === 'arping' ? 'iputils-arping' : tool === 'ip' ? 'iproute2' : tool;
    return new FloatingAddressError(
      'FD_FLOATING_COMMAND_MISSING',
      `${what}: \`${tool}\` is not installed: install it (Debian: apt-get install ${pkg}), ${OFF_HINT}`,
      { cause: err },
    );
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new FloatingAddressError('FD_FLOATING_NOT_PERMITTED', `${what}: cannot run \`${tool}\`: ${String(err)}: ${PRIVILEGE_HINT}, ${OFF_HINT}`, {
      cause: err,
    });
  }
  return new FloatingAddressError('FD_FLOATING_FAILED', `${what}: \`${argv.join(' ')}\`: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
  });
}

/* ---------------------------------------------------------------------------------------------- */

export interface LocalInterface {
  /** This node's own LAN address. */
  address: string;
  prefixLength: number;
  interface: string;
  /** The router's LAN address, when known: refused as a floating address too. */
  gateway?: string | undefined;
}

export interface FloatingSetting {
  address: string;
  prefixLength: number;
  interface: string;
}

/**
 * Checks the user's floating address setting against this node's interface. 'off' (any case)
 * gives undefined; an IPv4 address must be a host address of the local subnet other than our
 * own (and the gateway's, when given). Throws an Error that names the problem otherwise.
 */
export function resolveFloatingSetting(value: string, local: LocalInterface): FloatingSetting | undefined {
  const v = value.trim();
  if (v.toLowerCase() === 'off') return undefined;
  if (v.toLowerCase() === 'auto') {
    throw new Error("floating address 'auto' is not supported yet: give a spare address of your LAN, or off");
  }
  if (!isIPv4(v)) throw new Error(`floating address ${JSON.stringify(value.slice(0, 100))} is neither off nor an IPv4 address`);
  if (!isIPv4(local.address)) throw new Error(`this node's address ${JSON.stringify(local.address)} is not IPv4`);
  const p = local.prefixLength;
  if (!Number.isInteger(p) || p < 0 || p > 32) throw new Error(`prefix length ${p} of ${local.interface} is not 0..32`);
  const subnet = `${intToIpv4(networkOf(ipv4ToInt(local.address), p))}/${p}`;
  if (p >= 31) {
    throw new Error(`${local.interface} is a /${p} (${subnet}): it has no spare address for a floating address; set it off`);
  }
  const a = ipv4ToInt(v);
  const mask = maskOf(p);
  const network = networkOf(ipv4ToInt(local.address), p);
  if (networkOf(a, p) !== network) {
    throw new Error(`floating address ${v} is not in this node's subnet ${subnet} on ${local.interface}: pick a spare address of that subnet`);
  }
  if (a === network) throw new Error(`floating address ${v} is the network address of ${subnet}: pick a host address`);
  if (a === (network | ~mask) >>> 0) throw new Error(`floating address ${v} is the broadcast address of ${subnet}: pick a host address`);
  if (a === ipv4ToInt(local.address)) {
    throw new Error(`floating address ${v} is this node's own address: pick a spare address no host uses`);
  }
  if (local.gateway !== undefined && isIPv4(local.gateway) && a === ipv4ToInt(local.gateway)) {
    throw new Error(`floating address ${v} is the router's address: pick a spare address no host uses`);
  }
  return { address: v, prefixLength: p, interface: local.interface };
}

function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
}

/* ---------------------------------------------------------------------------------------------- */

export type FloatingCapability = { ok: true } | { ok: false; reason: string };

const CAP_NET_ADMIN = 12;

export interface CapabilityOptions {
  /** For tests: the text of /proc/self/status. */
  readStatus?: () => Promise<string>;
  signal?: AbortSignal;
}

/** Whether the effective capability set in /proc/self/status text has `bit`. */
export function hasCapability(status: string, bit: number): boolean | undefined {
  const m = /^CapEff:\s*([0-9a-fA-F]{1,16})\s*$/m.exec(status);
  if (!m) return undefined;
  return ((BigInt(`0x${m[1]}`) >> BigInt(bit)) & 1n) === 1n;
}

/**
 * Whether this process can hold a floating address: CAP_NET_ADMIN in its effective set (root
 * outside a container has it; root in an unprivileged container does not), and `ip` and
 * `arping` installed.
 */
export async function floatingCapability(run: CommandRunner, opts: CapabilityOptions = {}): Promise<FloatingCapability> {
  let status: string;
  try {
    status = await (opts.readStatus ?? (() => readFile('/proc/self/status', 'utf8')))();
  } catch (err) {
    return { ok: false, reason: `cannot read /proc/self/status (${err instanceof Error ? err.message : String(err)}): a floating address needs Linux` };
  }
  const admin = hasCapability(status, CAP_NET_ADMIN);
  if (admin === undefined) return { ok: false, reason: 'no CapEff line in /proc/self/status: a floating address needs Linux' };
  if (!admin) {
    return { ok: false, reason: `this process lacks NET_ADMIN, needed to add an address: ${PRIVILEGE_HINT}, ${OFF_HINT}` };
  }
  for (const [tool, pkg] of [
    ['ip', 'iproute2'],
    ['arping', 'iputils-arping'],
  ] as const) {
    try {
      const r = await run([tool, '-V'], opts.signal);
      if (r.code !== 0) return { ok: false, reason: `\`${tool} -V\` exited ${r.code}: ${firstLine(r.stderr) || '(no message)'}` };
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if ((err as { code?: unknown } | null)?.code === 'ENOENT') {
        return { ok: false, reason: `\`${tool}\` is not installed (Debian: apt-get install ${pkg}), ${OFF_HINT}` };
      }
      return { ok: false, reason: `cannot run \`${tool}\`: ${err instanceof Error ? err.message : String(err)}` };
    }
  }
  return { ok: true };
}
