import type { NodeInfo } from '../peers/messages.js';

/** One node as this node knows it: what the portal links to (claims 4, 8, 9). */
export interface DirectoryEntry {
  id: string;
  /** The boot of the process last heard; a new boot replaces the entry (a restart). */
  boot: string;
  info: NodeInfo;
  /** Where its messages came from (probes and unicasts go there). */
  address: string;
  port: number;
  /** Clock time (ms) it was last heard from. */
  lastSeen: number;
  self: boolean;
}

/**
 * The nodes this node knows, by id. Entries leave on `withdraw` or when not heard from for the
 * TTL, since a crashed node says nothing.
 */
export class Directory {
  private readonly byId = new Map<string, DirectoryEntry>();

  get size(): number {
    return this.byId.size;
  }

  get(id: string): DirectoryEntry | undefined {
    return this.byId.get(id);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Sorted by id, so the portal and logs list nodes in a stable order. */
  entries(): DirectoryEntry[] {
    return [...this.byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  ids(): string[] {
    return this.entries().map((e) => e.id);
  }

  /** Adds or refreshes an entry; true when something a reader would see changed. */
  upsert(entry: DirectoryEntry): boolean {
    const old = this.byId.get(entry.id);
    this.byId.set(entry.id, { ...entry, info: { ...entry.info, addresses: [...entry.info.addresses] } });
    if (old === undefined) return true;
    return (
      old.boot !== entry.boot ||
      old.address !== entry.address ||
      old.port !== entry.port ||
      !sameInfo(old.info, entry.info)
    );
  }

  /** A message without NodeInfo still proves the node is there, if it is the boot we know. */
  touch(id: string, boot: string, now: number): void {
    const e = this.byId.get(id);
    if (e !== undefined && e.boot === boot) e.lastSeen = now;
  }

  remove(id: string): boolean {
    return this.byId.delete(id);
  }

  /** Removes entries (never our own) not heard from within `ttlMs`; returns their ids. */
  expire(now: number, ttlMs: number): string[] {
    const gone: string[] = [];
    for (const e of this.byId.values()) {
      if (!e.self && now - e.lastSeen >= ttlMs) gone.push(e.id);
    }
    for (const id of gone) this.byId.delete(id);
    return gone;
  }
}

function sameInfo(a: NodeInfo, b: NodeInfo): boolean {
  return (
    a.name === b.name &&
    a.localPort === b.localPort &&
    a.publicPort === b.publicPort &&
    a.camera === b.camera &&
    a.rank === b.rank &&
    a.addresses.length === b.addresses.length &&
    a.addresses.every((x, i) => x === b.addresses[i])
  );
}
