import { createSocket } from 'node:dgram';
import type { RemoteInfo } from 'node:dgram';
import { systemClock } from '../../runtime/clock.js';
import type { Clock, Timer } from '../../runtime/clock.js';
import { silentLogger } from '../../runtime/log.js';
import type { Logger } from '../../runtime/log.js';
import { abortReason } from '../abort.js';
import { BadResponseError, RouterError } from '../errors.js';

export const SSDP_MULTICAST_ADDRESS = '239.255.255.250';
export const SSDP_PORT = 1900;
/** miniupnpd never sends more than 1 KiB; anything much larger is not a search answer. */
export const MAX_SSDP_RESPONSE_BYTES = 8192;
const MAX_LOCATION_CHARS = 1024;
const MAX_FIELD_CHARS = 512;

/** The search targets, best first. */
export const IGD_SEARCH_TARGETS = [
  'urn:schemas-upnp-org:device:InternetGatewayDevice:2',
  'urn:schemas-upnp-org:device:InternetGatewayDevice:1',
  'urn:schemas-upnp-org:service:WANIPConnection:2',
  'urn:schemas-upnp-org:service:WANIPConnection:1',
] as const;

export interface SsdpResponse {
  /** The device description URL, an absolute http: URL (checked, not yet trusted: see location-policy). */
  location: string;
  st: string;
  usn: string;
  server: string;
  /** CACHE-CONTROL max-age, when present and numeric. */
  maxAgeSeconds: number | undefined;
  /** 2 when ST names IGD:2 or WANIPConnection:2, 1 for the v1 types, undefined for anything else. */
  igdVersion: 1 | 2 | undefined;
  /** All headers, names lower-cased, each value at most 512 characters. */
  headers: ReadonlyMap<string, string>;
  /** Who sent the datagram ('' when parsed outside a search). */
  address: string;
  port: number;
  /** Milliseconds from the start of the search to this answer. */
  elapsedMs: number;
}

/**
 * Parses one answer to an M-SEARCH. Any bytes give a value or a BadResponseError; the fields of
 * the value are bounded.
 */
export function parseSsdpResponse(
  buf: Buffer,
  from?: { address: string; port: number; elapsedMs?: number },
): SsdpResponse {
  if (buf.length > MAX_SSDP_RESPONSE_BYTES) {
    throw new BadResponseError(`SSDP answer of ${buf.length} bytes exceeds ${MAX_SSDP_RESPONSE_BYTES}`);
  }
  const lines = buf.toString('latin1').split(/\r?\n/);
  const status = lines[0] ?? '';
  if (!/^HTTP\/1\.[01] 200(?: |$)/i.test(status)) {
    throw new BadResponseError(`not an SSDP search answer: ${JSON.stringify(status.slice(0, 64))}`);
  }
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    if (line === '') break;
    const colon = line.indexOf(':');
    // Lenient on junk lines: a stray line must not hide the router, LOCATION is what matters.
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (name === '' || headers.has(name)) continue;
    headers.set(name.slice(0, MAX_FIELD_CHARS), line.slice(colon + 1).trim().slice(0, MAX_FIELD_CHARS));
  }
  const location = headers.get('location') ?? '';
  if (location === '') throw new BadResponseError('SSDP answer without LOCATION');
  if (location.length > MAX_LOCATION_CHARS) throw new BadResponseError('SSDP LOCATION too long');
  let url: URL;
  try {
    url = new URL(location);
  } catch (err) {
    throw new BadResponseError(`SSDP LOCATION is not a URL: ${JSON.stringify(location.slice(0, 64))}`, { cause: err });
  }
  if (url.protocol !== 'http:' || url.hostname === '') {
    throw new BadResponseError(`SSDP LOCATION is not an http: URL: ${JSON.stringify(location.slice(0, 64))}`);
  }
  const st = headers.get('st') ?? '';
  const maxAge = /max-age\s*=\s*(\d{1,9})/i.exec(headers.get('cache-control') ?? '');
  return {
    location: url.href,
    st,
    usn: headers.get('usn') ?? '',
    server: headers.get('server') ?? '',
    maxAgeSeconds: maxAge ? Number(maxAge[1]) : undefined,
    igdVersion: versionOfSearchTarget(st),
    headers,
    address: from?.address ?? '',
    port: from?.port ?? 0,
    elapsedMs: from?.elapsedMs ?? 0,
  };
}

export function versionOfSearchTarget(st: string): 1 | 2 | undefined {
  const m = /^urn:schemas-upnp-org:(?:device:InternetGatewayDevice|service:WANIPConnection|service:WANPPPConnection):(\d+)$/.exec(
    st.trim(),
  );
  if (!m) return undefined;
  return Number(m[1]) >= 2 ? 2 : 1;
}

export function buildMSearch(st: string, host: string, port: number, mx: number): Buffer {
  return Buffer.from(
    `M-SEARCH * HTTP/1.1\r\nHOST: ${host}:${port}\r\nMAN: "ssdp:discover"\r\nMX: ${mx}\r\nST: ${st}\r\n\r\n`,
    'latin1',
  );
}

export interface SearchIgdOptions {
  /** The LAN address to search from; the socket is bound to it. */
  localAddress: string;
  /** The default gateway; it gets a unicast M-SEARCH too and its answers are preferred. */
  gateway?: string;
  /** The whole search; it ends earlier when the gateway answered. Default 2000 ms. */
  timeoutMs?: number;
  /** Send to 239.255.255.250:1900. Default true; tests on loopback turn it off. */
  multicast?: boolean;
  /** Port of the unicast M-SEARCH to the gateway; default 1900 (the emulator uses another). */
  ssdpPort?: number;
  /** With a gateway, the multicast search follows the unicast one after this delay. Default 100 ms. */
  multicastDelayMs?: number;
  /** Delays of the resends after the first burst. Default [250, 750]. */
  resendAfterMs?: readonly number[];
  /**
   * After an IGD:1-only answer from the gateway, how long to wait for an IGD:2 one before
   * finishing. Default 300 ms.
   */
  settleMs?: number;
  signal?: AbortSignal;
  onResponse?: (r: SsdpResponse) => void;
  clock?: Clock;
  logger?: Logger;
}

/**
 * Searches for Internet Gateway Devices and resolves with the distinct answers (one per LOCATION,
 * first arrival kept), in arrival order. Resolves early once the gateway gave an IGD:2 answer.
 * Resolves with [] when nothing answered; rejects only on abort or when the socket cannot be
 * bound.
 */
export function searchIgd(opts: SearchIgdOptions): Promise<SsdpResponse[]> {
  const clock = opts.clock ?? systemClock;
  const log = (opts.logger ?? silentLogger).child('ssdp');
  const timeoutMs = opts.timeoutMs ?? 2000;
  const ssdpPort = opts.ssdpPort ?? SSDP_PORT;
  const resends = opts.resendAfterMs ?? [250, 750];
  const settleMs = opts.settleMs ?? 300;
  const multicastDelayMs = opts.multicastDelayMs ?? 100;
  const signal = opts.signal;

  return new Promise<SsdpResponse[]>((resolve, reject) => {
    // A bad port would otherwise throw inside a socket callback, out of the caller's reach.
    if (!Number.isInteger(ssdpPort) || ssdpPort < 1 || ssdpPort > 65535) {
      reject(new RangeError(`SSDP port must be 1-65535, got ${ssdpPort}`));
      return;
    }
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const start = clock.now();
    const found = new Map<string, SsdpResponse>();
    const timers: Timer[] = [];
    let settleTimer: Timer | undefined;
    let done = false;
    const socket = createSocket({ type: 'udp4', reuseAddr: false });

    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      for (const t of timers) t.cancel();
      settleTimer?.cancel();
      signal?.removeEventListener('abort', onAbort);
      try {
        socket.close();
      } catch {
        // already closed
      }
      if (err) reject(err);
      else resolve([...found.values()]);
    };
    const onAbort = () => finish(abortReason(signal!));
    signal?.addEventListener('abort', onAbort, { once: true });

    const send = (to: { multicast: boolean; unicast: boolean }) => {
      if (done) return;
      const destinations: Array<[string, number]> = [];
      if (to.multicast && opts.multicast !== false) destinations.push([SSDP_MULTICAST_ADDRESS, SSDP_PORT]);
      if (to.unicast && opts.gateway) destinations.push([opts.gateway, ssdpPort]);
      for (const [host, port] of destinations) {
        for (const st of IGD_SEARCH_TARGETS) {
          // The HOST header names the multicast group even on the unicast copy, as UDA 1.1 asks;
          // MX 1 keeps routers that delay by a random part of MX quick.
          socket.send(buildMSearch(st, SSDP_MULTICAST_ADDRESS, SSDP_PORT, 1), port, host, (err) => {
            if (err && !done) log.debug('M-SEARCH not sent', { to: `${host}:${port}`, error: err });
          });
        }
      }
    };

    socket.on('error', (err) => {
      finish(new RouterError('FD_ROUTER_ERROR', `SSDP search from ${opts.localAddress}: ${err.message}`, { cause: err }));
    });
    // Quirk: some routers answer from a port other than 1900 (an ephemeral one), so the source
    // port of an answer is not checked; the answer is judged by its content and its address.
    socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      if (done) return;
      let r: SsdpResponse;
      try {
        r = parseSsdpResponse(msg, { address: rinfo.address, port: rinfo.port, elapsedMs: clock.now() - start });
      } catch (err) {
        log.debug('ignored SSDP datagram', { from: rinfo.address, error: err });
        return;
      }
      const known = found.get(r.location);
      if (known) {
        // Same device answering another search target: keep the first arrival, but learn that it
        // speaks IGD:2 if this answer says so.
        if (r.igdVersion === 2 && known.igdVersion !== 2) found.set(r.location, { ...known, igdVersion: 2 });
      } else {
        found.set(r.location, r);
        opts.onResponse?.(r);
      }
      if (opts.gateway !== undefined && rinfo.address === opts.gateway) {
        if (r.igdVersion === 2) finish();
        else if (settleTimer === undefined) settleTimer = clock.setTimeout(() => finish(), settleMs);
      }
    });

    socket.bind({ address: opts.localAddress, port: 0, exclusive: true }, () => {
      if (done) return;
      if (opts.multicast !== false) {
        try {
          socket.setMulticastInterface(opts.localAddress);
          // UDA 1.1: TTL 2 by default; the router is one hop away.
          socket.setMulticastTTL(2);
        } catch (err) {
          log.debug('multicast setup failed', { error: err });
        }
      }
      // Unicast to the gateway first: most routers answer it at once, while a multicast search
      // costs them more (miniupnpd answered a multicast burst ~100 ms later, and held its NAT-PMP
      // answers back meanwhile). Routers that answer multicast only get it a moment later.
      const both = { multicast: true, unicast: true };
      if (opts.gateway) {
        send({ multicast: false, unicast: true });
        timers.push(clock.setTimeout(() => send({ multicast: true, unicast: false }), multicastDelayMs));
      } else {
        send(both);
      }
      // The LAN loses datagrams (Wi-Fi, a busy router): resend a couple of times.
      for (const ms of resends) timers.push(clock.setTimeout(() => send(both), ms));
      timers.push(clock.setTimeout(() => finish(), timeoutMs));
    });
  });
}
