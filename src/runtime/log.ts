/**
 * One structured line per event a user would want. JSON lines on stderr when not a terminal
 * (balena's log view, journald), `time level component: message key=value` on a terminal.
 *
 * An Error given as a field value keeps its class and code: `{"name","code","message"}` in JSON,
 * `Name[CODE]: message` in text (see loggedError). Any value prints: a circular one, a bigint or
 * a throwing getter does not throw, and a huge one is cut short rather than flooding the line.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(component: string): Logger;
}

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  level?: LogLevel;
  json?: boolean;
  write?: (line: string) => void;
  component?: string;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const min = order[opts.level ?? 'info'];
  const json = opts.json ?? !process.stderr.isTTY;
  const write = opts.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const make = (component: string): Logger => {
    const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
      if (order[level] < min) return;
      if (json) {
        const plain: Record<string, unknown> = {};
        if (fields) for (const [k, v] of Object.entries(fields)) plain[k] = toPlain(v);
        write(JSON.stringify({ time: new Date().toISOString(), level, component, msg, ...plain }));
      } else {
        const kv = fields
          ? Object.entries(fields)
              .map(([k, v]) => ` ${k}=${fieldText(v)}`)
              .join('')
          : '';
        write(`${new Date().toISOString().slice(11, 23)} ${level.padEnd(5)} ${component}: ${msg}${kv}`);
      }
    };
    return {
      debug: (m, f) => emit('debug', m, f),
      info: (m, f) => emit('info', m, f),
      warn: (m, f) => emit('warn', m, f),
      error: (m, f) => emit('error', m, f),
      child: (c) => make(component ? `${component}:${c}` : c),
    };
  };
  return make(opts.component ?? 'frontdoor');
}

/** What an Error becomes in a JSON line. */
export interface LoggedError {
  /** The class (CodedError sets it to the subclass's name). */
  name: string;
  /** The code callers decide on: ours (FD_...) or Node's (ECONNREFUSED). */
  code?: string;
  message: string;
  /** The cause, as `Name[CODE]: message`, when the message does not already say it. */
  cause?: string;
}

/** Longer strings are cut: a router's HTML error page must not become a log line. */
const MAX_STRING = 1000;
const MAX_CAUSE = 200;
/** Entries of one array or object, levels of nesting, and values in all of one field. */
const MAX_ENTRIES = 50;
const MAX_DEPTH = 5;
const MAX_VALUES = 500;

function clip(s: string, max = MAX_STRING): string {
  return s.length <= max ? s : `${s.slice(0, max)}…(${s.length - max} more)`;
}

/** A property that may be a throwing getter (a Proxy, a library's odd error): never throws. */
function read(o: object, key: string): unknown {
  try {
    return (o as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}

function safeString(v: unknown): string {
  try {
    return String(v);
  } catch {
    return '[unprintable]';
  }
}

/**
 * Name, code and message. The code only when it is a string: DOMException's legacy numbers (20
 * for an AbortError) say nothing a reader can look up.
 */
function brief(err: Error): { name: string; code?: string; message: string } {
  const code = read(err, 'code');
  return {
    name: safeString(read(err, 'name') ?? 'Error'),
    ...(typeof code === 'string' && code !== '' ? { code } : {}),
    message: safeString(read(err, 'message') ?? ''),
  };
}

function briefLine(b: { name: string; code?: string; message: string }): string {
  return `${b.name}${b.code === undefined ? '' : `[${b.code}]`}: ${b.message}`;
}

/** An Error as a JSON line carries it; each part bounded. */
export function loggedError(err: Error): LoggedError {
  const b = brief(err);
  const out: LoggedError = { name: clip(b.name), ...(b.code === undefined ? {} : { code: clip(b.code) }), message: clip(b.message) };
  const cause = read(err, 'cause');
  if (cause !== undefined && cause !== null) {
    const c = cause instanceof Error ? brief(cause) : undefined;
    const said = c ? c.message : safeString(cause);
    // Most of our errors carry their cause's message in their own already ("ordering: ...").
    if (said !== '' && !b.message.includes(said)) out.cause = clip(c ? briefLine(c) : said, MAX_CAUSE);
  }
  return out;
}

/** A field's value as JSON can write it whatever it is, and bounded. */
function toPlain(v: unknown): unknown {
  const ancestors = new Set<object>();
  let values = 0;
  const walk = (x: unknown, depth: number): unknown => {
    if (++values > MAX_VALUES) return '…';
    switch (typeof x) {
      case 'string':
        return clip(x);
      case 'number':
        return Number.isFinite(x) ? x : String(x);
      case 'boolean':
      case 'undefined':
        return x;
      case 'bigint':
        return x.toString();
      case 'symbol':
        return x.toString();
      case 'function':
        return `[function ${x.name}]`;
    }
    if (x === null) return null;
    const o = x as object;
    if (ancestors.has(o)) return '[circular]';
    ancestors.add(o);
    try {
      if (o instanceof Error) return loggedError(o);
      if (depth >= MAX_DEPTH) return '[…]';
      const toJSON = (o as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function') return walk(toJSON.call(o), depth + 1);
      if (Array.isArray(o)) {
        const out = o.slice(0, MAX_ENTRIES).map((e) => walk(e, depth + 1) ?? null);
        if (o.length > MAX_ENTRIES) out.push(`…(${o.length - MAX_ENTRIES} more)`);
        return out;
      }
      const keys = Object.keys(o);
      const out: Record<string, unknown> = {};
      for (const k of keys.slice(0, MAX_ENTRIES)) {
        let e: unknown;
        try {
          e = (o as Record<string, unknown>)[k];
        } catch {
          e = '[unreadable]';
        }
        out[k] = walk(e, depth + 1);
      }
      if (keys.length > MAX_ENTRIES) out['…'] = `${keys.length - MAX_ENTRIES} more`;
      return out;
    } catch {
      return '[unreadable]';
    } finally {
      ancestors.delete(o);
    }
  };
  return walk(v, 0);
}

/** A field's value in a text line: strings as they are, an Error as `Name[CODE]: message (cause: ...)`. */
function fieldText(v: unknown): string {
  if (typeof v === 'string') return clip(v);
  if (v instanceof Error) {
    const e = loggedError(v);
    return `${briefLine(e)}${e.cause === undefined ? '' : ` (cause: ${e.cause})`}`;
  }
  const plain = toPlain(v);
  return plain === undefined ? 'undefined' : JSON.stringify(plain);
}

/** For libraries and tests that must not print. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
