import { SupervisorResponseError } from './errors.js';

/**
 * The supervisor's answers, checked against its documentation (balena-supervisor docs/API.md):
 * `/ping` says "OK"; `/v1/device` is a JSON object whose fields "may be missing or null";
 * `/v2/device/name` is `{"status":"success","deviceName":"..."}`. Pure functions of status and
 * body, so a property test can feed them anything: they return a typed value or throw
 * SupervisorResponseError, nothing else.
 */

/** The fields of GET /v1/device we know; any other, or one of another type, is left out. */
export interface SupervisorDevice {
  apiPort?: number;
  commit?: string;
  ipAddresses?: string[];
  macAddresses?: string[];
  status?: string;
  downloadProgress?: number | null;
  osVersion?: string;
  supervisorVersion?: string;
  updatePending?: boolean;
  updateDownloaded?: boolean;
  updateFailed?: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function text(status: number, body: Uint8Array, what: string): string {
  if (status === 401) throw new SupervisorResponseError(`${what}: the supervisor refused the API key (401)`, status);
  if (status !== 200) throw new SupervisorResponseError(`${what}: HTTP ${status}${snippet(body)}`, status);
  try {
    return utf8.decode(body);
  } catch {
    throw new SupervisorResponseError(`${what}: the body is not UTF-8`, status);
  }
}

/** A short, printable piece of an error body for the log (supervisor errors are plain text). */
function snippet(body: Uint8Array): string {
  const s = Buffer.from(body.subarray(0, 200))
    .toString('utf8')
    .replace(/[^\x20-\x7e]/g, ' ')
    .trim()
    .slice(0, 80);
  return s ? ` (${s})` : '';
}

function jsonObject(status: number, body: Uint8Array, what: string): Record<string, unknown> {
  const t = text(status, body, what);
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    throw new SupervisorResponseError(`${what}: the body is not JSON`, status);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SupervisorResponseError(`${what}: the body is not a JSON object`, status);
  return v as Record<string, unknown>;
}

export function parsePing(status: number, body: Uint8Array): true {
  if (text(status, body, 'GET /ping').trim() !== 'OK') throw new SupervisorResponseError('GET /ping: the answer is not OK', status);
  return true;
}

export function parseDeviceName(status: number, body: Uint8Array): string {
  const o = jsonObject(status, body, 'GET /v2/device/name');
  if (o['status'] !== 'success') throw new SupervisorResponseError('GET /v2/device/name: status is not "success"', status);
  const name = o['deviceName'];
  if (typeof name !== 'string' || name.trim() === '') throw new SupervisorResponseError('GET /v2/device/name: no deviceName', status);
  return name;
}

export function parseDevice(status: number, body: Uint8Array): SupervisorDevice {
  const o = jsonObject(status, body, 'GET /v1/device');
  const str = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
  const bool = (k: string) => (typeof o[k] === 'boolean' ? (o[k] as boolean) : undefined);
  const list = (k: string) => str(k)?.split(/\s+/).filter(Boolean);
  const out: SupervisorDevice = {};
  const port = o['api_port'];
  if (typeof port === 'number' && Number.isInteger(port) && port > 0 && port < 65536) out.apiPort = port;
  const set = <K extends keyof SupervisorDevice>(k: K, v: SupervisorDevice[K] | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  set('commit', str('commit'));
  set('ipAddresses', list('ip_address'));
  set('macAddresses', list('mac_address'));
  set('status', str('status'));
  const progress = o['download_progress'];
  if (progress === null || (typeof progress === 'number' && Number.isFinite(progress))) out.downloadProgress = progress;
  set('osVersion', str('os_version'));
  set('supervisorVersion', str('supervisor_version'));
  set('updatePending', bool('update_pending'));
  set('updateDownloaded', bool('update_downloaded'));
  set('updateFailed', bool('update_failed'));
  return out;
}
