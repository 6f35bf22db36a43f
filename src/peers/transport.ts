import type { PeerMessage, Received } from './messages.js';

/**
 * The LAN as the election sees it: send a message to everyone or to one node, get messages
 * that passed every check (version, size, HMAC, replay window). The real one is UDP
 * (multicast, broadcast or unicast, claim 5); the simulation's is in test/election/.
 */
export interface LanTransport {
  /** To every node: multicast or broadcast, plus unicast to known peers where configured. */
  broadcast(body: PeerMessage): void;
  /** To one node's address and port. */
  unicast(body: PeerMessage, address: string, port: number): void;
  /** Called for every message that passed every check; messages from ourselves are not delivered. */
  onMessage(handler: (msg: Received) => void): void;
  close(): void;
}
