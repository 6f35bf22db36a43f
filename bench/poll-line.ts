/**
 * The poller's line format (poll-process.ts writes it, the soak's and the start bench's pollers
 * read it): what one answer said, and one line per request. Pure, so both directions are
 * property-tested (test/bench/poll-line.test.ts).
 */

/** What a good answer says about who served it. */
export interface PollAnswer {
  /** A JSON body's "name" (frontdoor's /api/status: the serving node), else the body's first line. */
  h: string;
  /** Its "role". */
  r?: string;
  /** Its "roleSinceMs": how long it has had that role when it answered. */
  t?: number;
  /** The names its "nodes" list holds (the portal's directory). */
  n?: string[];
  /** Those of them listed with a link ("url" set): the ones a visitor can reach from the portal. */
  l?: string[];
}

export interface PollSample {
  /** CLOCK_MONOTONIC ms the request started. */
  sent: number;
  /** When it was answered, failed or timed out. */
  done: number;
  /** The serving node's name, for a good answer. */
  name?: string;
  /** Its role as it said (the portal is served by the representative only). */
  role?: string;
  /** How long it had had that role when it answered. */
  roleForMs?: number;
  /** The nodes it listed, and those of them with a link. */
  listed?: string[];
  linked?: string[];
  /** Why it failed. */
  err?: string;
}

const MAX_NAME = 64;
const MAX_LISTED = 100;

/** undefined when the body names nobody (a JSON body without "name", an empty one). */
export function readAnswer(body: string): PollAnswer | undefined {
  if (body.startsWith('{')) {
    let v: { name?: unknown; role?: unknown; roleSinceMs?: unknown; nodes?: unknown };
    try {
      v = JSON.parse(body) as typeof v;
    } catch {
      return undefined;
    }
    if (typeof v !== 'object' || v === null || typeof v.name !== 'string' || v.name === '') return undefined;
    const a: PollAnswer = { h: v.name.slice(0, MAX_NAME) };
    if (typeof v.role === 'string') a.r = v.role;
    if (typeof v.roleSinceMs === 'number' && Number.isFinite(v.roleSinceMs)) a.t = v.roleSinceMs;
    if (Array.isArray(v.nodes)) {
      const entries = v.nodes
        .slice(0, MAX_LISTED)
        .filter((p): p is { name: string; url?: unknown } => typeof p === 'object' && p !== null && typeof (p as { name?: unknown }).name === 'string');
      a.n = entries.map((p) => p.name.slice(0, MAX_NAME));
      a.l = entries.filter((p) => typeof p.url === 'string').map((p) => p.name.slice(0, MAX_NAME));
    }
    return a;
  }
  const first = body.split('\n')[0]!.trim().slice(0, MAX_NAME);
  return first === '' ? undefined : { h: first };
}

/** The line for one request: a good answer's fields, or why it failed. */
export function pollLine(sent: number, done: number, outcome: PollAnswer | { e: string }): string {
  return JSON.stringify({ s: sent, d: done, ...outcome });
}

const strings = (v: unknown): string[] | undefined => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined);

/** Parses one poller line; undefined for anything else (its `ready` line, a stray log line). */
export function parsePollLine(line: string): PollSample | undefined {
  if (!line.startsWith('{')) return undefined;
  let v: { s?: unknown; d?: unknown; h?: unknown; r?: unknown; t?: unknown; n?: unknown; l?: unknown; e?: unknown };
  try {
    v = JSON.parse(line) as typeof v;
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || typeof v.s !== 'number' || typeof v.d !== 'number') return undefined;
  if (typeof v.h !== 'string') return { sent: v.s, done: v.d, err: typeof v.e === 'string' ? v.e : 'unknown' };
  const s: PollSample = { sent: v.s, done: v.d, name: v.h };
  if (typeof v.r === 'string') s.role = v.r;
  if (typeof v.t === 'number') s.roleForMs = v.t;
  const listed = strings(v.n);
  const linked = strings(v.l);
  if (listed) s.listed = listed;
  if (linked) s.linked = linked;
  return s;
}
