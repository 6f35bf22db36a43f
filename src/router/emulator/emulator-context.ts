import type { Clock } from '../../runtime/clock.js';
import type { Logger } from '../../runtime/log.js';
import type { MappingTable } from './mapping-table.js';

/** The settings a running emulator reads on every request, so setQuirks() applies at once. */
export interface EmulatorSettings {
  address: string;
  wanAddress: string;
  upnp: boolean;
  natpmp: boolean;
  pcp: boolean;
  igdVersion: 1 | 2;
  secureMode: boolean;
  onlyPermanentLeases: boolean;
  minPort: number;
  locationHost: string | undefined;
  ssdpReplyPort: number | undefined;
  forward: boolean;
}

/** What the three protocol servers share: one table, one clock, one boot. */
export interface EmulatorContext {
  readonly settings: EmulatorSettings;
  readonly table: MappingTable;
  readonly clock: Clock;
  readonly logger: Logger;
  /** NAT-PMP / PCP epoch: whole seconds since start or the last reboot. */
  epochSeconds(): number;
  /** SSDP BOOTID.UPNP.ORG; changes on every reboot. */
  bootId(): number;
}

/**
 * miniupnpd's allow/deny rules, as the real-router notes configure them
 * (`allow 1024-65535 <lan> 1-65535`, then deny everything): the external port must be at least
 * minPort and the internal port non-zero.
 */
export function permitted(settings: EmulatorSettings, externalPort: number, internalPort: number): boolean {
  return externalPort >= settings.minPort && externalPort <= 65535 && internalPort >= 1 && internalPort <= 65535;
}
