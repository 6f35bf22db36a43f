/**
 * Errors of the LAN peer protocol. Callers decide on `code` (stable, machine-readable) or on the
 * class, never on message text. The transport counts dropped datagrams per `code` (and per
 * ReplayVerdict), so the codes double as the keys of `UdpTransport.stats().dropped`.
 */

import { CodedError } from '../runtime/errors.js';

export type PeerProtocolErrorCode =
  /** Datagram (or the envelope to encode) is larger than MAX_DATAGRAM_BYTES. */
  | 'FD_PEER_TOO_LARGE'
  /** Not a frontdoor datagram at all (another protocol on our port, scanner noise). */
  | 'FD_PEER_BAD_MAGIC'
  /** A frontdoor datagram of a protocol version we do not speak (mixed fleet during an update). */
  | 'FD_PEER_VERSION'
  /** Tagged, the tag does not verify: wrong fleet secret, or the bytes were changed. */
  | 'FD_PEER_BAD_MAC'
  /** We have a key, the datagram carries no tag: a node without the fleet secret. */
  | 'FD_PEER_NO_MAC'
  /** We have no key, the datagram carries a tag: this node lacks the secret the others have. */
  | 'FD_PEER_UNEXPECTED_MAC'
  /** Framing or body does not satisfy the schema (docs/protocol.md "Validation"). */
  | 'FD_PEER_MALFORMED'
  /** Well formed, but a message type this version does not know (newer peer). */
  | 'FD_PEER_UNKNOWN_TYPE'
  /** The key given to the codec is not a 32-byte key from deriveKey(). */
  | 'FD_PEER_BAD_KEY'
  /** deriveKey() was given an empty secret. */
  | 'FD_PEER_BAD_SECRET';

export class PeerProtocolError extends CodedError<PeerProtocolErrorCode> {}

export type PeerTransportErrorCode =
  /** The socket could not be bound or the multicast group could not be joined. */
  | 'FD_PEER_BIND'
  /** send before start(). */
  | 'FD_PEER_NOT_STARTED'
  /** start() after close(): a transport is used once. */
  | 'FD_PEER_CLOSED'
  /** An option of the transport is invalid (address, port, ttl). */
  | 'FD_PEER_BAD_CONFIG'
  /** unicast() to something that is not an IP address and port 1-65535. */
  | 'FD_PEER_BAD_ADDRESS'
  /** start() was aborted through its signal. */
  | 'FD_PEER_ABORTED';

export class PeerTransportError extends CodedError<PeerTransportErrorCode> {}
