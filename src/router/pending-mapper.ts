import { AbortedError, RouterError } from './errors.js';
import type { BindOptions, Mapping, MappingProtocolName, MappingRequest, PortMapper } from './types.js';

/**
 * A PortMapper for a router not found yet: calls wait until it is (or their signal gives up),
 * then go to the client made for it. The election starts listening on the LAN while discovery
 * runs, instead of after it; its first claim simply waits for the router, under the deadline
 * it gives every router call.
 */
export class PendingMapper implements PortMapper {
  private inner: PortMapper | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(private readonly fallback: { gateway: string; localAddress: string }) {}

  /** The router is found: `mapper` serves every call from now on, the waiting ones first. */
  resolve(mapper: PortMapper): void {
    if (this.inner !== undefined) return;
    this.inner = mapper;
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  get protocol(): MappingProtocolName {
    return this.inner?.protocol ?? 'upnp-igd2';
  }

  get gateway(): string {
    return this.inner?.gateway ?? this.fallback.gateway;
  }

  get localAddress(): string {
    return this.inner?.localAddress ?? this.fallback.localAddress;
  }

  get canList(): boolean {
    return this.inner?.canList ?? false;
  }

  async externalAddress(signal?: AbortSignal): Promise<string> {
    return (await this.ready(signal)).externalAddress(signal);
  }

  async claim(req: MappingRequest, signal?: AbortSignal): Promise<Mapping> {
    return (await this.ready(signal)).claim(req, signal);
  }

  async claimAny(req: MappingRequest, signal?: AbortSignal): Promise<Mapping> {
    return (await this.ready(signal)).claimAny(req, signal);
  }

  async release(mapping: Pick<Mapping, 'protocol' | 'externalPort' | 'internalPort'>, signal?: AbortSignal): Promise<void> {
    return (await this.ready(signal)).release(mapping, signal);
  }

  async list(signal?: AbortSignal): Promise<Mapping[]> {
    return (await this.ready(signal)).list(signal);
  }

  async tableAge(signal?: AbortSignal): Promise<number | undefined> {
    const inner = await this.ready(signal);
    return inner.tableAge === undefined ? undefined : inner.tableAge(signal);
  }

  bindTo(localAddress: string, opts?: BindOptions): PortMapper {
    if (this.inner === undefined) throw new RouterError('FD_NO_GATEWAY', 'no router found yet');
    return this.inner.bindTo(localAddress, opts);
  }

  /** The client made for the router is closed by whoever made it. */
  close(): void {
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  private ready(signal: AbortSignal | undefined): Promise<PortMapper> {
    if (this.inner !== undefined) return Promise.resolve(this.inner);
    return new Promise((resolve, reject) => {
      const settle = () => {
        this.waiters.delete(settle);
        signal?.removeEventListener('abort', settle);
        if (this.inner !== undefined) resolve(this.inner);
        else reject(signal?.reason instanceof Error ? signal.reason : new AbortedError());
      };
      if (signal?.aborted) return settle();
      this.waiters.add(settle);
      signal?.addEventListener('abort', settle, { once: true });
    });
  }
}
