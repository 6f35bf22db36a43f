import type { CommandResult, CommandRunner, StartedCommand } from '../../src/floating-address/command-runner.js';
import type { LogFields, Logger } from '../../src/runtime/log.js';

/**
 * A LAN host's interface as `ip` and `arping` would show it, behind the CommandRunner boundary:
 * `ip addr replace/del` and `ip -o -4 addr show` act on an in-memory list of addresses, with the
 * messages iproute2 6.x prints. `fail` overrides any command's outcome.
 */
export class FakeHost {
  readonly calls: string[][] = [];
  /** Addresses on the interface, as `a.b.c.d/len`. */
  readonly addrs = new Set<string>(['192.168.77.10/24']);
  readonly iface: string;
  /** Return a result or throw to override a command; undefined lets the fake answer. */
  fail: ((argv: readonly string[]) => CommandResult | undefined) | undefined;
  /** When set, every call waits for it first (to hold a command in flight). */
  gate: Promise<void> | undefined;

  constructor(iface = 'eth0') {
    this.iface = iface;
  }

  /** A runner without `start`: arping is awaited to its end. */
  readonly run: CommandRunner = (argv, signal) => this.answer(argv, signal);

  /** A runner with `start`, whose arping ends only when `finishArp` is called. */
  startingRunner(): { run: CommandRunner; finishArp: (r: CommandResult) => void; started: number } {
    const state = { started: 0, finish: [] as Array<(r: CommandResult) => void> };
    const run = Object.assign((argv: readonly string[], signal?: AbortSignal) => this.answer(argv, signal), {
      start: async (argv: readonly string[], signal?: AbortSignal): Promise<StartedCommand> => {
        if (argv[0] !== 'arping') return { result: this.answer(argv, signal) };
        this.calls.push([...argv]);
        const forced = this.fail?.(argv);
        if (forced) return { result: Promise.resolve(forced) };
        state.started++;
        return { result: new Promise<CommandResult>((resolve) => state.finish.push(resolve)) };
      },
    });
    return {
      run,
      finishArp: (r) => {
        for (const f of state.finish.splice(0)) f(r);
      },
      get started() {
        return state.started;
      },
    };
  }

  has(address: string): boolean {
    return [...this.addrs].some((a) => a.startsWith(`${address}/`));
  }

  private async answer(argv: readonly string[], signal?: AbortSignal): Promise<CommandResult> {
    this.calls.push([...argv]);
    if (this.gate) {
      // As the real runner: an abort ends a command in flight at once.
      await Promise.race([
        this.gate,
        new Promise<never>((_, reject) => {
          if (signal?.aborted) reject(signal.reason);
          signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
        }),
      ]);
    }
    if (signal?.aborted) throw signal.reason;
    const forced = this.fail?.(argv);
    if (forced) return forced;
    const ok = (stdout = ''): CommandResult => ({ code: 0, stdout, stderr: '' });
    const [tool, ...a] = argv;
    if (tool === 'arping') return ok('ARPING\nSent 1 probes (1 broadcast(s))\nReceived 0 response(s)\n');
    if (tool !== 'ip') throw Object.assign(new Error(`spawn ${tool} ENOENT`), { code: 'ENOENT' });
    const dev = a[a.indexOf('dev') + 1];
    if (dev !== this.iface) return { code: 1, stdout: '', stderr: `Cannot find device "${dev}"\n` };
    if (a[0] === '-o' && a[2] === 'addr' && a[3] === 'show') {
      const lines = [...this.addrs].map(
        (cidr, i) =>
          `2: ${this.iface}    inet ${cidr} brd 192.168.77.255 scope global ${i ? 'secondary dynamic ' : ''}${this.iface}\\       valid_lft 2sec preferred_lft 2sec`,
      );
      return ok(lines.length ? `${lines.join('\n')}\n` : '');
    }
    if (a[0] === 'addr' && a[1] === 'replace') {
      this.addrs.add(a[2]!);
      return ok();
    }
    if (a[0] === 'addr' && a[1] === 'del') {
      if (!this.addrs.delete(a[2]!)) return { code: 2, stdout: '', stderr: 'Error: ipv4: Address not found.\n' };
      return ok();
    }
    return { code: 1, stdout: '', stderr: `unexpected ${argv.join(' ')}` };
  }
}

export interface LogLine {
  level: string;
  msg: string;
  fields?: LogFields | undefined;
}

export function recordingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log: Logger & { lines: LogLine[] } = {
    lines,
    debug: (msg, fields) => lines.push({ level: 'debug', msg, fields }),
    info: (msg, fields) => lines.push({ level: 'info', msg, fields }),
    warn: (msg, fields) => lines.push({ level: 'warn', msg, fields }),
    error: (msg, fields) => lines.push({ level: 'error', msg, fields }),
    child: () => log,
  };
  return log;
}

/** Lets pending promise callbacks (the fake's answers) run. */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}
