import { BadResponseError } from '../errors.js';

const MAX_UI4 = 4_294_967_295;

/**
 * GetStatusInfo's NewUptime: seconds (a ui4) since the connection came up, which on miniupnpd is
 * since the daemon started (and so since its table was last empty). Absent or empty: the router
 * does not say (undefined). Anything but decimal digits in range is a BadResponseError.
 */
export function parseUptime(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t === '') return undefined;
  if (!/^[0-9]{1,10}$/.test(t)) throw new BadResponseError(`GetStatusInfo: NewUptime is not a number of seconds: ${JSON.stringify(t.slice(0, 32))}`);
  const n = Number(t);
  if (n > MAX_UI4) throw new BadResponseError(`GetStatusInfo: NewUptime ${t} is out of range`);
  return n;
}
