import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

import { PeerProtocolError } from './errors.js';
import type { Envelope, NodeInfo, PeerMessage, PeerMessageType, Sender } from './messages.js';

/**
 * The wire format of docs/protocol.md: an 8-byte header, a JSON body, and (with a fleet key) a
 * 16-byte HMAC-SHA256 tag over both.
 *
 *   0      4        5      6            8              8+n          8+n+16
 *   | FDLP | version | flags | bodyLength | body (JSON) | tag (if flags & 1) |
 *
 * JSON rather than binary: the body is a handful of strings, a size limit keeps it bounded,
 * and a capture is readable in tcpdump -A when a user sends us one.
 */

export const MAGIC = Buffer.from('FDLP', 'latin1');
export const PROTOCOL_VERSION = 1;
export const FLAG_TAGGED = 0x01;
export const HEADER_BYTES = 8;
/** HMAC-SHA256 truncated to 128 bits (as in RFC 4868's HMAC-SHA-256-128 for IPsec). */
export const TAG_BYTES = 16;
/**
 * 1200 bytes fits the IPv6 minimum MTU (1280) less IPv6 and UDP headers, so no datagram is ever
 * fragmented: a lost fragment loses the whole message, and some home Wi-Fi drops fragments.
 */
export const MAX_DATAGRAM_BYTES = 1200;
/**
 * The body's limit is the same with and without a key, so whether a message fits never depends
 * on whether the fleet has a secret.
 */
export const MAX_BODY_BYTES = MAX_DATAGRAM_BYTES - HEADER_BYTES - TAG_BYTES;
export const MAX_ADDRESSES = 6;
export const MAX_NAME_CHARS = 63;
export const KEY_BYTES = 32;

const HKDF_SALT = Buffer.from('frontdoor fleet secret', 'utf8');
/** The version is in the label so a future protocol version gets an unrelated key. */
const HKDF_INFO = Buffer.from('frontdoor/peers/v1/hmac-sha256', 'utf8');

/**
 * The MAC key of the fleet. HKDF separates the key from the secret (the secret may be reused for
 * other purposes, e.g. the portal) but does not slow down guessing: the secret must be long and
 * random, since anyone on the LAN can capture a tagged datagram and test guesses offline.
 */
export function deriveKey(secret: string): Buffer {
  if (typeof secret !== 'string' || secret.length === 0) {
    throw new PeerProtocolError('FD_PEER_BAD_SECRET', 'the fleet secret must be a non-empty string');
  }
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), HKDF_SALT, HKDF_INFO, KEY_BYTES));
}

export function encodeMessage(env: Envelope, key: Buffer | null): Buffer {
  checkKey(key);
  // Only the known fields go on the wire: an election object with extra properties (or a
  // Received with address/port) must neither leak them nor change the size.
  let json: string;
  try {
    json = JSON.stringify(project(env));
  } catch (err) {
    // BigInt or a cycle somewhere the caller should not have put it.
    throw new PeerProtocolError('FD_PEER_MALFORMED', 'envelope is not serializable', { cause: err });
  }
  const body = Buffer.from(json, 'utf8');
  // Size before schema, so an overlong field is reported as what it would break on the wire.
  if (body.length > MAX_BODY_BYTES) {
    throw new PeerProtocolError(
      'FD_PEER_TOO_LARGE',
      `message body is ${body.length} bytes, the limit is ${MAX_BODY_BYTES}`,
    );
  }
  // Validate what the receiver will parse, not the object we were given: JSON drops undefined
  // and turns NaN into null, and a sender must never send what its peers will reject.
  parseEnvelope(JSON.parse(json));

  const tagged = key !== null;
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length + (tagged ? TAG_BYTES : 0));
  MAGIC.copy(out, 0);
  out[4] = PROTOCOL_VERSION;
  out[5] = tagged ? FLAG_TAGGED : 0;
  out.writeUInt16BE(body.length, 6);
  body.copy(out, HEADER_BYTES);
  if (tagged) tag(key, out.subarray(0, HEADER_BYTES + body.length)).copy(out, HEADER_BYTES + body.length);
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Checks run cheapest first and everything after the fixed header is authenticated before it
 * is parsed, so garbage and floods cost a length compare or one HMAC, never a JSON parse.
 */
export function decodeMessage(buf: Buffer, key: Buffer | null): Envelope {
  checkKey(key);
  if (buf.length > MAX_DATAGRAM_BYTES) {
    throw new PeerProtocolError('FD_PEER_TOO_LARGE', `datagram of ${buf.length} bytes, limit ${MAX_DATAGRAM_BYTES}`);
  }
  if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new PeerProtocolError('FD_PEER_BAD_MAGIC', 'not a frontdoor datagram');
  }
  if (buf.length < HEADER_BYTES) throw new PeerProtocolError('FD_PEER_MALFORMED', 'truncated header');
  const version = buf[4]!;
  if (version !== PROTOCOL_VERSION) {
    throw new PeerProtocolError('FD_PEER_VERSION', `protocol version ${version}, this node speaks ${PROTOCOL_VERSION}`);
  }
  const flags = buf[5]!;
  if ((flags & ~FLAG_TAGGED) !== 0) throw new PeerProtocolError('FD_PEER_MALFORMED', 'reserved flag bits set');
  const tagged = (flags & FLAG_TAGGED) !== 0;
  if (key !== null && !tagged) {
    throw new PeerProtocolError('FD_PEER_NO_MAC', 'untagged message but this node has a fleet secret');
  }
  if (key === null && tagged) {
    throw new PeerProtocolError('FD_PEER_UNEXPECTED_MAC', 'tagged message but this node has no fleet secret');
  }
  let end = buf.length;
  if (key !== null) {
    if (buf.length < HEADER_BYTES + TAG_BYTES) throw new PeerProtocolError('FD_PEER_MALFORMED', 'truncated tag');
    end = buf.length - TAG_BYTES;
    const expected = tag(key, buf.subarray(0, end));
    if (!timingSafeEqual(expected, buf.subarray(end))) {
      throw new PeerProtocolError('FD_PEER_BAD_MAC', 'message authentication failed');
    }
  }
  const bodyLength = buf.readUInt16BE(6);
  if (HEADER_BYTES + bodyLength !== end) {
    throw new PeerProtocolError('FD_PEER_MALFORMED', `body length ${bodyLength} does not match the datagram`);
  }
  if (bodyLength > MAX_BODY_BYTES) {
    throw new PeerProtocolError('FD_PEER_TOO_LARGE', `body of ${bodyLength} bytes, limit ${MAX_BODY_BYTES}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(buf.subarray(HEADER_BYTES, end)));
  } catch (err) {
    throw new PeerProtocolError('FD_PEER_MALFORMED', 'body is not UTF-8 JSON', { cause: err });
  }
  return parseEnvelope(value);
}

/** Throws FD_PEER_BAD_KEY unless `key` is null or a deriveKey() result; for checking configuration early. */
export function checkKey(key: Buffer | null): void {
  if (key !== null && (!Buffer.isBuffer(key) || key.length !== KEY_BYTES)) {
    throw new PeerProtocolError('FD_PEER_BAD_KEY', `the fleet key must be ${KEY_BYTES} bytes from deriveKey()`);
  }
}

function tag(key: Buffer, data: Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest().subarray(0, TAG_BYTES);
}

// ---- schema ------------------------------------------------------------------------------

type Kind = 'id' | 'optid' | 'name' | 'ip' | 'wan' | 'port' | 'count' | 'bool' | 'addresses' | 'node';
type FieldsOf<T> = { [K in Exclude<keyof T, 'type'>]-?: Kind };

/** One table drives projection and validation; `satisfies` keeps it in step with messages.ts. */
const BODY_FIELDS = {
  claim: { node: 'node', attempt: 'count' },
  inquiry: { publicPort: 'port', wanAddress: 'wan', heir: 'optid' },
  reply: { node: 'node' },
  announce: { publicPort: 'port', wanAddress: 'wan', node: 'node', term: 'count', heir: 'optid' },
  withdraw: { wasRepresentative: 'bool', successor: 'optid' },
  probe: { nonce: 'id' },
  'probe-ack': { nonce: 'id' },
} as const satisfies { [T in PeerMessageType]: FieldsOf<Extract<PeerMessage, { type: T }>> };

const NODE_FIELDS = {
  name: 'name',
  addresses: 'addresses',
  localPort: 'port',
  publicPort: 'port',
  camera: 'bool',
  rank: 'id',
} as const satisfies FieldsOf<NodeInfo>;

const SENDER_FIELDS = { id: 'id', boot: 'id' } as const satisfies FieldsOf<Sender>;

const ID = /^[A-Za-z0-9._-]{1,64}$/;
/**
 * Printable: no control, format (bidi overrides, zero-width), surrogate, private-use, line or
 * paragraph separator characters; the portal shows names to people. Length in code points.
 */
const NAME = /^[^\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Zl}\p{Zp}]{1,63}$/u;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Own properties only: a body with "__proto__" or "constructor" keys must not reach prototypes. */
function own(obj: Record<string, unknown>, k: string): unknown {
  return Object.hasOwn(obj, k) ? obj[k] : undefined;
}

function isBodyType(t: unknown): t is PeerMessageType {
  return typeof t === 'string' && Object.hasOwn(BODY_FIELDS, t);
}

function projectFields(v: unknown, fields: Record<string, Kind>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!isRecord(v)) return out;
  for (const [k, kind] of Object.entries(fields)) {
    const x = own(v, k);
    out[k] = kind === 'node' ? projectFields(x, NODE_FIELDS) : x;
  }
  return out;
}

function project(env: Envelope): unknown {
  if (!isRecord(env)) return env;
  const body = own(env, 'body');
  const type = isRecord(body) ? own(body, 'type') : undefined;
  return {
    from: projectFields(own(env, 'from'), SENDER_FIELDS),
    seq: own(env, 'seq'),
    sentAt: own(env, 'sentAt'),
    body: isBodyType(type) ? { type, ...projectFields(body, BODY_FIELDS[type]) } : body,
  };
}

function malformed(path: string, what: string): PeerProtocolError {
  return new PeerProtocolError('FD_PEER_MALFORMED', `${path}: ${what}`);
}

function parseValue(v: unknown, kind: Kind, path: string): unknown {
  switch (kind) {
    case 'id':
      if (typeof v !== 'string' || !ID.test(v)) throw malformed(path, 'expected 1-64 characters of [A-Za-z0-9._-]');
      return v;
    case 'optid':
      if (typeof v !== 'string' || (v !== '' && !ID.test(v))) throw malformed(path, 'expected "" or 1-64 characters of [A-Za-z0-9._-]');
      return v;
    case 'name':
      if (typeof v !== 'string' || !NAME.test(v)) {
        throw malformed(path, `expected 1-${MAX_NAME_CHARS} printable characters`);
      }
      return v;
    case 'ip':
      if (typeof v !== 'string' || !isAddress(v)) throw malformed(path, 'expected an IPv4 or IPv6 address');
      return v;
    case 'wan':
      // '' = not known yet: an inquiry can go out before the router told us its WAN address.
      if (typeof v !== 'string' || (v !== '' && !isAddress(v))) {
        throw malformed(path, 'expected an IPv4 or IPv6 address or ""');
      }
      return v;
    case 'port':
      if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 65535) {
        throw malformed(path, 'expected an integer 0-65535');
      }
      return (v as number) + 0; // -0 -> 0
    case 'count':
      if (!Number.isSafeInteger(v) || (v as number) < 0) throw malformed(path, 'expected a non-negative safe integer');
      return (v as number) + 0;
    case 'bool':
      if (typeof v !== 'boolean') throw malformed(path, 'expected a boolean');
      return v;
    case 'addresses': {
      if (!Array.isArray(v) || v.length > MAX_ADDRESSES) {
        throw malformed(path, `expected an array of at most ${MAX_ADDRESSES} addresses`);
      }
      return v.map((a, i) => parseValue(a, 'ip', `${path}[${i}]`));
    }
    case 'node':
      return parseFields(v, NODE_FIELDS, path);
  }
}

/** Rebuilds the object from the known fields; unknown fields are ignored (protocol.md says why). */
function parseFields(v: unknown, fields: Record<string, Kind>, path: string): Record<string, unknown> {
  if (!isRecord(v)) throw malformed(path, 'expected an object');
  const out: Record<string, unknown> = {};
  for (const [k, kind] of Object.entries(fields)) out[k] = parseValue(own(v, k), kind, `${path}.${k}`);
  return out;
}

function isAddress(s: string): boolean {
  // Zone ids (fe80::1%eth0) name an interface of the sender and mean nothing to the receiver.
  return s.length <= 45 && !s.includes('%') && isIP(s) !== 0;
}

function parseEnvelope(v: unknown): Envelope {
  if (!isRecord(v)) throw malformed('envelope', 'expected an object');
  const from = parseFields(own(v, 'from'), SENDER_FIELDS, 'from') as unknown as Sender;
  const seq = parseValue(own(v, 'seq'), 'count', 'seq') as number;
  const sentAt = parseValue(own(v, 'sentAt'), 'count', 'sentAt') as number;
  const body = own(v, 'body');
  if (!isRecord(body)) throw malformed('body', 'expected an object');
  const type = own(body, 'type');
  if (typeof type !== 'string') throw malformed('body.type', 'expected a string');
  if (!isBodyType(type)) {
    // Not echoed: the type is attacker-chosen text and this message ends up in logs.
    throw new PeerProtocolError('FD_PEER_UNKNOWN_TYPE', 'unknown message type');
  }
  const fields = parseFields(body, BODY_FIELDS[type], 'body');
  return { from, seq, sentAt, body: { type, ...fields } as PeerMessage };
}
