import type { Clock } from '../../runtime/clock.js';
import { BadResponseError, RouterError, UpnpError } from '../errors.js';
import { httpRequest } from './http-request.js';
import { child, clip, elementNames, escapeXml, isElement, parseXml, text } from './xml.js';
import type { XmlNode } from './xml.js';

/** A GetListOfPortMappings answer of 1000 entries is ~400 KB; more than 1 MiB is cut off. */
export const MAX_SOAP_RESPONSE_BYTES = 1024 * 1024;
const MAX_ARGS = 64;
const MAX_ARG_CHARS = 1024 * 1024;
const MAX_DESCRIPTION_CHARS = 256;

export type SoapArgs = ReadonlyArray<readonly [name: string, value: string | number]>;

export type SoapOutcome =
  | { kind: 'response'; args: ReadonlyMap<string, string> }
  | { kind: 'fault'; errorCode: number; errorDescription: string };

export function buildSoapEnvelope(serviceType: string, action: string, args: SoapArgs): string {
  const body = args.map(([name, value]) => `<${name}>${escapeXml(String(value))}</${name}>`).join('');
  return (
    '<?xml version="1.0"?>\r\n' +
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
    's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
    `<s:Body><u:${action} xmlns:u="${escapeXml(serviceType)}">${body}</u:${action}></s:Body></s:Envelope>`
  );
}

/**
 * Reads a SOAP answer: the output arguments of `action`, or the UPnP fault. Any string gives a
 * value or a BadResponseError; argument values are strings (the router's spelling kept).
 */
export function parseSoapResponse(xml: string, action: string): SoapOutcome {
  const doc = parseXml(xml, `${action} answer`, MAX_SOAP_RESPONSE_BYTES);
  const body = child(child(doc, 'Envelope'), 'Body');
  if (!isElement(body)) throw new BadResponseError(`${action} answer: no SOAP Body`);

  const fault = child(body, 'Fault');
  if (fault !== undefined) {
    const upnpError = child(child(fault, 'detail'), 'UPnPError');
    const codeText = text(child(upnpError, 'errorCode')).trim();
    const errorCode = /^\d{1,6}$/.test(codeText) ? Number(codeText) : 0;
    const description = text(child(upnpError, 'errorDescription')).trim() || text(child(fault, 'faultstring')).trim();
    return { kind: 'fault', errorCode, errorDescription: clip(description, MAX_DESCRIPTION_CHARS) };
  }

  // Routers spell the response element `<u:ActionResponse>`; a few vary its case or name, so
  // the first element of the body is taken when the exact name is missing.
  let response: XmlNode | undefined = child(body, `${action}Response`);
  if (response === undefined) {
    const wanted = `${action}response`.toLowerCase();
    const names = elementNames(body);
    const name = names.find((n) => n.toLowerCase() === wanted) ?? names[0];
    response = name === undefined ? undefined : child(body, name);
  }
  if (response === undefined) throw new BadResponseError(`${action} answer: empty SOAP Body`);
  const args = new Map<string, string>();
  for (const name of elementNames(response)) {
    if (args.size >= MAX_ARGS) break;
    args.set(name, clip(text(child(response, name)), MAX_ARG_CHARS));
  }
  return { kind: 'response', args };
}

export interface SoapCallOptions {
  controlUrl: string;
  serviceType: string;
  action: string;
  args: SoapArgs;
  localAddress?: string;
  timeoutMs: number;
  clock: Clock;
  maxBytes?: number;
  signal?: AbortSignal;
}

/**
 * One action. Resolves with the output arguments; a UPnP fault rejects with UpnpError (the
 * caller maps the codes it knows), the wire with RouterError/RouterTimeoutError/BadResponseError.
 */
export async function soapCall(opts: SoapCallOptions): Promise<ReadonlyMap<string, string>> {
  const res = await httpRequest({
    url: opts.controlUrl,
    method: 'POST',
    headers: {
      'content-type': 'text/xml; charset="utf-8"',
      soapaction: `"${opts.serviceType}#${opts.action}"`,
    },
    body: buildSoapEnvelope(opts.serviceType, opts.action, opts.args),
    localAddress: opts.localAddress,
    maxBytes: opts.maxBytes ?? MAX_SOAP_RESPONSE_BYTES,
    timeoutMs: opts.timeoutMs,
    clock: opts.clock,
    what: opts.action,
    signal: opts.signal,
  });
  let outcome: SoapOutcome;
  try {
    outcome = parseSoapResponse(res.body, opts.action);
  } catch (err) {
    // A 500 with no SOAP in it (some routers on an unknown action) or a 401/404 is the router
    // saying no, not garbage; only a 200 that does not parse is a bad response.
    if (res.status !== 200) {
      throw new RouterError('FD_ROUTER_ERROR', `${opts.action} failed: HTTP ${res.status}`, { cause: err });
    }
    throw err;
  }
  if (outcome.kind === 'fault') throw new UpnpError(outcome.errorCode, outcome.errorDescription, opts.action);
  if (res.status !== 200) throw new RouterError('FD_ROUTER_ERROR', `${opts.action} failed: HTTP ${res.status}`);
  return outcome.args;
}
