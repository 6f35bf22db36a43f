import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isIPv4 } from 'node:net';
import { writeFileAtomic } from '../runtime/atomic-write.js';
import type { Discovery } from './discover.js';
import type { MappingProtocolName } from './types.js';

/**
 * What answered last time, kept in the data directory so a restarting node reaches the router
 * without waiting for a search (Tailscale's portmapper keeps its probe result the same way). It
 * is a hint, never trusted: discovery still searches beside it, and a stale entry costs nothing
 * but a failed fetch.
 */
export interface GatewayMemory {
  gateway: string;
  localAddress: string;
  protocol: MappingProtocolName;
  /** UPnP only: the device description URL. */
  location?: string;
  savedAt: string;
}

const MAX_FILE_BYTES = 4096;
const PROTOCOLS: readonly string[] = ['upnp-igd2', 'upnp-igd1', 'natpmp', 'pcp'];

/** Reads a memory file's text; anything that is not a sound entry gives undefined. */
export function parseGatewayMemory(text: string): GatewayMemory | undefined {
  if (text.length > MAX_FILE_BYTES) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.gateway !== 'string' || !isIPv4(o.gateway)) return undefined;
  if (typeof o.localAddress !== 'string' || !isIPv4(o.localAddress)) return undefined;
  if (typeof o.protocol !== 'string' || !PROTOCOLS.includes(o.protocol)) return undefined;
  if (typeof o.savedAt !== 'string' || o.savedAt.length > 40) return undefined;
  const m: GatewayMemory = {
    gateway: o.gateway,
    localAddress: o.localAddress,
    protocol: o.protocol as MappingProtocolName,
    savedAt: o.savedAt,
  };
  if (o.location !== undefined) {
    // Only a plain http URL on the gateway itself: a memory file must not be a way to make the
    // node fetch from anywhere else.
    if (typeof o.location !== 'string' || o.location.length > 1024) return undefined;
    let url: URL;
    try {
      url = new URL(o.location);
    } catch {
      return undefined;
    }
    if (url.protocol !== 'http:' || url.hostname !== o.gateway) return undefined;
    m.location = url.href;
  }
  return m;
}

export async function loadGatewayMemory(file: string): Promise<GatewayMemory | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : parseGatewayMemory(text);
}

/** Keeps the best answer of a discovery; written atomically, so a crash leaves the old file or the new. */
export async function saveGatewayMemory(file: string, d: Discovery, now = new Date()): Promise<void> {
  const best = d.probes[0];
  if (!best) return;
  const m: GatewayMemory = {
    gateway: d.gateway,
    localAddress: d.localAddress,
    protocol: best.protocol,
    ...(best.location ? { location: best.location } : {}),
    savedAt: now.toISOString(),
  };
  await mkdir(dirname(file), { recursive: true });
  await writeFileAtomic(file, `${JSON.stringify(m)}\n`, { mode: 0o600 });
}

/** The remembered description URL, when it is for the same gateway and local address. */
export function rememberedLocation(m: GatewayMemory | undefined, gateway: string, localAddress: string): string | undefined {
  return m && m.gateway === gateway && m.localAddress === localAddress ? m.location : undefined;
}
