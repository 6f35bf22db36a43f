import type { ElectionState } from '../election/election-node.js';
import type { WanAddressClass } from '../router/errors.js';
import type { Mapping, MappingProtocolName } from '../router/types.js';
import { classifyWanAddress } from '../router/wan-address.js';

/**
 * What this node knows of itself and the router, in one place: each fact has one writer (the
 * election its role, the router session the rest) and every reader (the pages, `/api/status`,
 * the representative's duties, ACME) reads it here. Who else is on the LAN is the membership's.
 */

export interface NodeSnapshot {
  role: ElectionState;
  /** Clock time of the last role change (or of the start). */
  roleSince: number;
  /** Whom this node believes is representative (itself included). */
  representative: string | undefined;
  term: number;
  wan: { address: string; class: WanAddressClass } | undefined;
  router: {
    protocol: MappingProtocolName | undefined;
    gateway: string;
    localAddress: string;
    /** What is wrong with the router, as a user reads it. */
    error: string | undefined;
  };
  /** The public port the router gave this node's own page; 0 until then. */
  ownPublicPort: number;
  /** The router's table as last listed. */
  table: readonly Mapping[] | undefined;
  /** Why this node cannot serve the portal (another program holds its port); undefined: it can. */
  portalError: string | undefined;
  /** Recent role changes, newest last. */
  events: ReadonlyArray<{ at: string; what: string }>;
}

export type NodeFact = keyof NodeSnapshot;

const EVENTS_KEPT = 20;

export class NodeState {
  private state: NodeSnapshot;
  private readonly listeners = new Set<(s: Readonly<NodeSnapshot>, changed: ReadonlySet<NodeFact>) => void>();

  constructor(initial: { gateway: string; localAddress: string; now: number }) {
    this.state = {
      role: 'starting',
      roleSince: initial.now,
      representative: undefined,
      term: 0,
      wan: undefined,
      router: { protocol: undefined, gateway: initial.gateway, localAddress: initial.localAddress, error: 'not found yet' },
      ownPublicPort: 0,
      table: undefined,
      portalError: undefined,
      events: [],
    };
  }

  get snapshot(): Readonly<NodeSnapshot> {
    return this.state;
  }

  /** Called with the new snapshot and the facts that changed; returns the unsubscriber. */
  onChange(listener: (s: Readonly<NodeSnapshot>, changed: ReadonlySet<NodeFact>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Writes facts; listeners hear only of those whose value changed. */
  update(patch: Partial<NodeSnapshot>): void {
    const changed = new Set<NodeFact>();
    const next = { ...this.state };
    for (const [k, v] of Object.entries(patch) as Array<[NodeFact, unknown]>) {
      if (!same(this.state[k], v)) {
        changed.add(k);
        (next as Record<string, unknown>)[k] = v;
      }
    }
    if (changed.size === 0) return;
    this.state = next;
    for (const l of this.listeners) l(this.state, changed);
  }

  setWan(address: string): void {
    this.update({ wan: { address, class: classifyWanAddress(address) } });
  }

  setRouter(patch: Partial<NodeSnapshot['router']>): void {
    this.update({ router: { ...this.state.router, ...patch } });
  }

  /** One line of the events list the status page shows. */
  note(what: string, at = new Date()): void {
    const events = [...this.state.events, { at: at.toISOString(), what }];
    this.update({ events: events.slice(-EVENTS_KEPT) });
  }
}

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => (a as Record<string, unknown>)[k] === (b as Record<string, unknown>)[k]);
}
