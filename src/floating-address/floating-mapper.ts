import { readFile, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { PortConflictError } from '../router/errors.js';
import type { BindOptions, Mapping, MappingRequest, PortMapper } from '../router/types.js';
import type { Logger } from '../runtime/log.js';
import type { FloatingAddress } from './floating-address.js';

/**
 * The well-known port's `PortMapper` when the port is mapped to the floating address: a claim
 * first takes the address (so the next request can leave from it), then asks the router through
 * a client bound to it; a release drops the address after the router forgot the mapping. The
 * election uses it as it uses any mapper; `localAddress` is the floating address, so the
 * representative's table check looks for the right internal client.
 */
export class FloatingMapper implements PortMapper {
  readonly protocol: PortMapper['protocol'];
  readonly gateway: string;
  readonly localAddress: string;
  readonly canList: boolean;
  private readonly base: PortMapper;
  private readonly bound: PortMapper;
  private readonly floating: FloatingAddress;
  private readonly log: Logger;
  private readonly onTaking: (() => Promise<void>) | undefined;
  private readonly onGaveUp: (() => Promise<void>) | undefined;

  /**
   * `bound` is `base.bindTo(floating.address)`; `base` reads the WAN address and table.
   * `onTaking` runs before the address is taken: the router forwards to us from our gratuitous
   * ARP on, so whatever answers there (the portal) must listen by then. `onGaveUp` undoes it when
   * the claim fails.
   */
  constructor(
    components: { logger: Logger },
    init: { base: PortMapper; bound: PortMapper; floating: FloatingAddress; onTaking?: () => Promise<void>; onGaveUp?: () => Promise<void> },
  ) {
    this.base = init.base;
    this.bound = init.bound;
    this.floating = init.floating;
    this.onTaking = init.onTaking;
    this.onGaveUp = init.onGaveUp;
    this.log = components.logger;
    this.protocol = init.base.protocol;
    this.gateway = init.base.gateway;
    this.localAddress = init.floating.address;
    this.canList = init.base.canList;
  }

  externalAddress(signal?: AbortSignal): Promise<string> {
    return this.base.externalAddress(signal);
  }

  list(signal?: AbortSignal): Promise<Mapping[]> {
    return this.base.list(signal);
  }

  async claim(req: MappingRequest, signal?: AbortSignal): Promise<Mapping> {
    return this.withAddress((s) => this.bound.claim(req, s), signal);
  }

  async claimAny(req: MappingRequest, signal?: AbortSignal): Promise<Mapping> {
    return this.withAddress((s) => this.bound.claimAny(req, s), signal);
  }

  async release(mapping: Pick<Mapping, 'protocol' | 'externalPort' | 'internalPort'>, signal?: AbortSignal): Promise<void> {
    try {
      if (this.floating.held) await this.bound.release(mapping, signal);
    } finally {
      await this.floating.drop(signal).catch((err: unknown) => this.log.warn('could not drop the floating address', { error: err }));
    }
  }

  /**
   * The base's client bound to `localAddress`: taking and dropping the floating address belong
   * to this mapper alone, so a mapper from another address is a plain one.
   */
  bindTo(localAddress: string, opts?: BindOptions): PortMapper {
    return this.base.bindTo(localAddress, opts);
  }

  close(): void {
    this.bound.close();
  }

  private async withAddress(ask: (signal?: AbortSignal) => Promise<Mapping>, signal?: AbortSignal): Promise<Mapping> {
    const taken = !this.floating.held;
    if (taken) {
      await this.onTaking?.();
      try {
        await this.floating.take(signal);
      } catch (err) {
        await this.onGaveUp?.();
        throw err;
      }
    }
    try {
      // Just taken: the router may still map the address to the old holder's MAC for a few ms
      // (our gratuitous ARP is on its way), and a SYN-ACK sent there is lost to a 1 s TCP
      // retransmit. A second request a little later, on a new connection, meets the new entry.
      return taken ? await hedged(ask, HEDGE_AFTER_MS, signal) : await ask(signal);
    } catch (err) {
      // Another host maps the port to its own address (a node without the floating address, or
      // a foreign program): holding the address would only black-hole LAN traffic to it.
      if (taken && err instanceof PortConflictError) {
        await this.floating.drop().catch(() => {});
        await this.onGaveUp?.();
      }
      throw err;
    }
  }
}

const HEDGE_AFTER_MS = 100;

/** `ask` now and, if it has not settled after `afterMs`, once more; the first answer wins. */
function hedged<T>(ask: (signal?: AbortSignal) => Promise<T>, afterMs: number, signal?: AbortSignal): Promise<T> {
  const first = new AbortController();
  const second = new AbortController();
  const link = (c: AbortController) => (signal ? AbortSignal.any([signal, c.signal]) : c.signal);
  return new Promise<T>((resolve, reject) => {
    let pending = 1;
    let firstError: unknown;
    let settled = false;
    const done = (err: unknown, value?: T) => {
      if (settled) return;
      if (err === undefined) {
        settled = true;
        clearTimeout(timer);
        first.abort();
        second.abort();
        resolve(value as T);
        return;
      }
      firstError ??= err;
      if (--pending === 0 && !timerPending) {
        settled = true;
        reject(firstError);
      }
    };
    let timerPending = true;
    const timer = setTimeout(() => {
      timerPending = false;
      if (settled) return;
      if (pending === 0) {
        settled = true;
        reject(firstError);
        return;
      }
      pending++;
      ask(link(second)).then((v) => done(undefined, v), (e: unknown) => done(e ?? new Error('failed')));
    }, afterMs);
    ask(link(first)).then(
      (v) => done(undefined, v),
      (e: unknown) => {
        // A refusal is an answer: no point asking again.
        if (!timerPending || e instanceof PortConflictError) {
          clearTimeout(timer);
          timerPending = false;
        }
        done(e ?? new Error('failed'));
      },
    );
  });
}

/** The interface and prefix length of one of this host's IPv4 addresses. */
export function interfaceOf(address: string): { interface: string; prefixLength: number; address: string } | undefined {
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family === 'IPv4' && a.address === address && a.cidr) {
        return { interface: name, prefixLength: Number(a.cidr.split('/')[1]), address };
      }
    }
  }
  return undefined;
}

/**
 * Sets `arp_announce` to 2 on the interface: ARP requests this host sends name its primary
 * address as the sender, never the floating one. With the default (0), a representative cut off
 * and plugged back asks for the router's MAC from the floating address (its renewal is the
 * packet), the router's neighbour entry for the address flips to this host, and when this host
 * steps down for the newer term the router keeps sending the portal's traffic to a host that no
 * longer has the address, until the entry times out. The same setting keepalived's docs give for
 * a virtual address. Returns the previous value, or undefined when it could not be set.
 */
export async function preferPrimaryArpSource(iface: string): Promise<string | undefined> {
  if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(iface)) return undefined;
  const path = `/proc/sys/net/ipv4/conf/${iface}/arp_announce`;
  try {
    const before = (await readFile(path, 'utf8')).trim();
    if (before !== '2') await writeFile(path, '2\n');
    return before;
  } catch {
    return undefined;
  }
}
