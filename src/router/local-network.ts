import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { BadResponseError, NoGatewayError } from './errors.js';

/**
 * Where the router is and which of our addresses faces it. Routers in secure mode only map to
 * the address a request came from, so every later socket binds to `localAddress`.
 */
export interface LocalNetwork {
  gateway: string;
  localAddress: string;
  interface: string | undefined;
}

export interface DefaultRoute {
  interface: string;
  gateway: string;
  metric: number;
}

const MAX_ROUTE_TABLE = 256 * 1024;

/**
 * Parses Linux's /proc/net/route: hex little-endian addresses, one route a line. Returns the
 * default routes (destination 0, mask 0, RTF_GATEWAY set) ordered by metric.
 */
export function parseProcNetRoute(text: string): DefaultRoute[] {
  if (text.length > MAX_ROUTE_TABLE) throw new BadResponseError('/proc/net/route is larger than expected');
  const routes: DefaultRoute[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, dest, gw, flags, , , metric, mask] = f as [string, string, string, string, string, string, string, string];
    if (!/^[0-9A-Fa-f]{8}$/.test(dest) || !/^[0-9A-Fa-f]{8}$/.test(gw) || !/^[0-9A-Fa-f]{8}$/.test(mask)) continue;
    if (!/^[0-9A-Fa-f]{1,4}$/.test(flags) || !/^\d{1,10}$/.test(metric)) continue;
    const RTF_UP = 0x1;
    const RTF_GATEWAY = 0x2;
    const fl = Number.parseInt(flags, 16);
    if (dest !== '00000000' || mask !== '00000000' || (fl & RTF_UP) === 0 || (fl & RTF_GATEWAY) === 0) continue;
    routes.push({ interface: iface, gateway: hexToIPv4(gw), metric: Number(metric) });
  }
  return routes.sort((a, b) => a.metric - b.metric);
}

function hexToIPv4(hex: string): string {
  const n = Number.parseInt(hex, 16);
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join('.');
}

/** The local address the kernel would use to reach `gateway`. A connected UDP socket sends nothing. */
export function localAddressFor(gateway: string, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4');
    const done = (err: Error | null, addr?: string) => {
      signal?.removeEventListener('abort', onAbort);
      sock.close();
      if (err) reject(err);
      else resolve(addr!);
    };
    const onAbort = () => done(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    sock.on('error', (e) => done(new NoGatewayError(`no route to the gateway ${gateway}: ${e.message}`, { cause: e })));
    sock.connect(9, gateway, () => done(null, sock.address().address));
  });
}

export interface ResolveLocalNetworkOptions {
  /** Explicit gateway; otherwise the default route's. */
  gateway?: string | undefined;
  /** Explicit local address; otherwise the one facing the gateway. */
  localAddress?: string | undefined;
  /** An interface name: its first IPv4 address is the local address. */
  interface?: string | undefined;
  signal?: AbortSignal;
  /** For tests. */
  routeTable?: () => Promise<string>;
}

export async function resolveLocalNetwork(opts: ResolveLocalNetworkOptions = {}): Promise<LocalNetwork> {
  let gateway = opts.gateway;
  let iface = opts.interface;
  if (!gateway) {
    const table = await (opts.routeTable ?? (() => readFile('/proc/net/route', 'utf8')))().catch(() => '');
    const routes = parseProcNetRoute(table).filter((r) => !iface || r.interface === iface);
    if (routes.length === 0) {
      throw new NoGatewayError(
        iface ? `interface ${iface} has no default route: set --gateway` : 'this host has no default route: set --gateway',
      );
    }
    gateway = routes[0]!.gateway;
    iface ??= routes[0]!.interface;
  }
  if (!isIPv4(gateway)) throw new NoGatewayError(`gateway ${gateway} is not an IPv4 address`);
  let localAddress = opts.localAddress;
  if (!localAddress && opts.interface) {
    const addrs = networkInterfaces()[opts.interface]?.filter((a) => a.family === 'IPv4' && !a.internal);
    if (!addrs?.length) throw new NoGatewayError(`interface ${opts.interface} has no IPv4 address`);
    localAddress = addrs[0]!.address;
  }
  localAddress ??= await localAddressFor(gateway, opts.signal);
  return { gateway, localAddress, interface: iface };
}
