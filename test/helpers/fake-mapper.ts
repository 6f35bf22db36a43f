import { ListingUnsupportedError, PortConflictError, RouterTimeoutError } from '../../src/router/errors.js';
import type { Mapping, MappingProtocolName, MappingRequest, PortMapper } from '../../src/router/types.js';

/**
 * An in-memory router table behind the PortMapper interface, for fast unit tests of code that
 * uses a mapper (the real clients are tested against the emulator and miniupnpd). Several
 * FakeMappers may share one table, each as a different LAN host.
 */
export class FakeTable {
  readonly entries = new Map<string, Mapping>();
  wanAddress = '203.0.114.1';
  key(protocol: string, port: number): string {
    return `${protocol}/${port}`;
  }
  flush(): void {
    this.entries.clear();
  }
}

export class FakeMapper implements PortMapper {
  readonly protocol: MappingProtocolName;
  readonly gateway = '192.168.77.1';
  readonly canList: boolean;
  calls: string[] = [];
  /** When set, every call fails with a timeout (the router is unreachable). */
  unreachable = false;
  closed = false;

  constructor(
    readonly table: FakeTable,
    readonly localAddress: string,
    opts: { protocol?: MappingProtocolName } = {},
  ) {
    this.protocol = opts.protocol ?? 'upnp-igd2';
    this.canList = this.protocol.startsWith('upnp');
  }

  private check(what: string): void {
    this.calls.push(what);
    if (this.unreachable) throw new RouterTimeoutError(`${what}: no answer`);
  }

  async externalAddress(): Promise<string> {
    this.check('externalAddress');
    return this.table.wanAddress;
  }

  async claim(req: MappingRequest): Promise<Mapping> {
    this.check(`claim ${req.externalPort}`);
    const k = this.table.key(req.protocol, req.externalPort);
    const held = this.table.entries.get(k);
    const client = req.internalClient ?? this.localAddress;
    if (held && held.internalClient !== client) throw new PortConflictError(req.externalPort);
    const m: Mapping = {
      protocol: req.protocol,
      externalPort: req.externalPort,
      internalClient: client,
      internalPort: req.internalPort,
      leaseSeconds: req.leaseSeconds,
      description: req.description,
      enabled: true,
      remoteHost: '',
      via: this.protocol,
    };
    this.table.entries.set(k, m);
    return m;
  }

  async claimAny(req: MappingRequest): Promise<Mapping> {
    this.check(`claimAny ${req.externalPort}`);
    for (let p = req.externalPort; p < 65536; p++) {
      const held = this.table.entries.get(this.table.key(req.protocol, p));
      if (!held || held.internalClient === (req.internalClient ?? this.localAddress)) {
        this.calls.pop();
        return this.claim({ ...req, externalPort: p });
      }
    }
    throw new PortConflictError(req.externalPort);
  }

  async release(m: Pick<Mapping, 'protocol' | 'externalPort'>): Promise<void> {
    this.check(`release ${m.externalPort}`);
    const k = this.table.key(m.protocol, m.externalPort);
    if (this.table.entries.get(k)?.internalClient === this.localAddress) this.table.entries.delete(k);
  }

  async list(): Promise<Mapping[]> {
    this.check('list');
    if (!this.canList) throw new ListingUnsupportedError(this.protocol);
    return [...this.table.entries.values()];
  }

  /** Another host's view of the same table: a request from `localAddress` maps to it. */
  bindTo(localAddress: string): FakeMapper {
    return new FakeMapper(this.table, localAddress, { protocol: this.protocol });
  }

  close(): void {
    this.closed = true;
  }
}
