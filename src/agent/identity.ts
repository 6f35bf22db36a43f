import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';

/**
 * Who this node is: the name users see, and the device value the id and the device rule come
 * from. balena injects both (BALENA_DEVICE_NAME_AT_INIT, BALENA_DEVICE_UUID); off balena the
 * host's own name and /etc/machine-id stand in, so the same program runs anywhere.
 */
export interface Identity {
  name: string;
  /** Where the name came from, for `frontdoor status` and the start log line. */
  nameSource: 'setting' | 'supervisor' | 'balena' | 'hostname';
  deviceValue: string;
  deviceSource: 'setting' | 'balena' | 'machine-id' | 'random';
  /** The LAN id: the device value hashed, so the LAN never sees the UUID or machine-id. */
  id: string;
}

const MAX_NAME = 63;

/** Unprintable characters and surrounding space removed, cut to the protocol's 63 code points. */
export function cleanName(raw: string): string {
  // What the LAN protocol refuses in a name (docs/protocol.md): control, format (bidi overrides,
  // zero-width), surrogate, private-use and line/paragraph separator characters. A name with one
  // would make every message this node sends fail to encode.
  const s = raw.replace(/[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Zl}\p{Zp}]/gu, '').trim();
  return [...s].slice(0, MAX_NAME).join('').trim();
}

export function nodeIdOf(deviceValue: string): string {
  return createHash('sha256').update(`frontdoor-id:${deviceValue}`).digest('hex').slice(0, 16);
}

export interface IdentitySources {
  name: string;
  deviceId: string;
  env: NodeJS.ProcessEnv;
  readMachineId?: () => string | undefined;
  hostName?: () => string;
}

export function resolveIdentity(src: IdentitySources): Identity {
  let name = cleanName(src.name);
  let nameSource: Identity['nameSource'] = 'setting';
  if (name === '') {
    name = cleanName(src.env.BALENA_DEVICE_NAME_AT_INIT ?? '');
    nameSource = 'balena';
  }
  if (name === '') {
    name = cleanName((src.hostName ?? hostname)()) || 'frontdoor';
    nameSource = 'hostname';
  }
  let deviceValue = src.deviceId.trim();
  let deviceSource: Identity['deviceSource'] = 'setting';
  if (deviceValue === '') {
    deviceValue = (src.env.BALENA_DEVICE_UUID ?? '').trim();
    deviceSource = 'balena';
  }
  if (deviceValue === '') {
    deviceValue = (src.readMachineId ?? readMachineId)() ?? '';
    deviceSource = 'machine-id';
  }
  if (deviceValue === '') {
    // Without any device value the node still runs; only the device rule's order changes per start.
    deviceValue = randomBytes(16).toString('hex');
    deviceSource = 'random';
  }
  return { name, nameSource, deviceValue, deviceSource, id: nodeIdOf(deviceValue) };
}

/**
 * The identity with the device's current name as balena's supervisor gives it (it follows a rename
 * in the dashboard; BALENA_DEVICE_NAME_AT_INIT does not). A name the user set wins; a name that
 * cleans to nothing changes nothing.
 */
export function withCurrentName(identity: Identity, raw: string): Identity {
  if (identity.nameSource === 'setting') return identity;
  const name = cleanName(raw);
  if (name === '') return identity;
  return { ...identity, name, nameSource: 'supervisor' };
}

function readMachineId(): string | undefined {
  for (const p of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      const v = readFileSync(p, 'utf8').trim();
      if (/^[0-9a-f]{32}$/i.test(v)) return v;
    } catch {
      // try the next
    }
  }
  return undefined;
}

/** The data directory: the setting, else balena's persistent /data, else the user's state dir. */
export function resolveDataDir(setting: string, env: NodeJS.ProcessEnv = process.env): string {
  if (setting !== '') return setting;
  if (existsSync('/data')) {
    try {
      accessSync('/data', constants.W_OK);
      return '/data/frontdoor';
    } catch {
      // not ours to write
    }
  }
  const base = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(base, 'frontdoor');
}
