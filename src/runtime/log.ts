/**
 * One structured line per event a user would want. JSON lines on stderr when not a terminal
 * (balena's log view, journald), `time level component: message key=value` on a terminal.
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
        write(JSON.stringify({ time: new Date().toISOString(), level, component, msg, ...fields }));
      } else {
        const kv = fields
          ? Object.entries(fields)
              .map(([k, v]) => ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
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
