/**
 * What frontdoor nodes say to each other on the LAN (docs/protocol.md). These are the decoded,
 * authenticated bodies; framing, HMAC and replay protection live in codec.ts.
 *
 * Claim numbers refer to ../shared/seed/claims.txt.
 */

/** A node's identity for the life of one process: `id` is stable per device, `boot` per start. */
export interface Sender {
  /** Stable per device (derived from the device value: balena UUID or machine-id). 1-64 chars. */
  id: string;
  /** Random per process start, so a restarted node is told apart from its earlier self. */
  boot: string;
}

/** What a node tells about itself: enough for the portal to link it (claims 4, 9). */
export interface NodeInfo {
  /** Host name shown to users (claim 9). 1-63 printable code points (docs/protocol.md 3). */
  name: string;
  /** LAN addresses the node serves on: at most 6 IPv4/IPv6 addresses, no zone ids. */
  addresses: string[];
  /** The node's local HTTP port. */
  localPort: number;
  /** The external port the router gave this node's own page (0 = none yet). */
  publicPort: number;
  /** Whether the node has a camera (portal thumbnails). */
  camera: boolean;
  /**
   * The election rule's device value, hashed: lets rule `device` order nodes (claim 13).
   * 1-64 chars of [A-Za-z0-9._-], e.g. hex.
   */
  rank: string;
}

export type PeerMessage =
  /** Claims 10, 11, 13: "I am taking the well-known port" (an identification message). */
  | { type: 'claim'; node: NodeInfo; attempt: number }
  /**
   * Claim 4: the representative asks every node for its port mapping. wanAddress '' = not known
   * yet. heir: the node the representative names to take over if it leaves ('' = none), chosen
   * by the election rule, so a takeover need not wait for a back-off.
   */
  | { type: 'inquiry'; publicPort: number; wanAddress: string; heir: string }
  /** Answer to an inquiry (claim 4), or sent unasked when a node starts or its port changes. */
  | { type: 'reply'; node: NodeInfo }
  /** Claim 7: the representative tells its own port and the WAN address, and the directory. */
  | { type: 'announce'; publicPort: number; wanAddress: string; node: NodeInfo; term: number; heir: string }
  /**
   * Claim 14: the representative (or any node) leaves the LAN gracefully. successor: the heir a
   * leaving representative hands the port to ('' = none: the others elect one).
   */
  | { type: 'withdraw'; wasRepresentative: boolean; successor: string }
  /** Claim 16: are you there? nonce: 1-64 chars of [A-Za-z0-9._-]. */
  | { type: 'probe'; nonce: string }
  | { type: 'probe-ack'; nonce: string };

export type PeerMessageType = PeerMessage['type'];

/** An authenticated message as received: who sent it, from where, and when. */
export interface Envelope {
  from: Sender;
  /** Sender's monotonically increasing counter within its boot (replay protection). */
  seq: number;
  /** Sender's wall-clock time in ms when it sent the message. */
  sentAt: number;
  body: PeerMessage;
}

export interface Received extends Envelope {
  /** The UDP source address and port it came from. */
  address: string;
  port: number;
}
