import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/errors.js';
import { settingsHelp } from '../config/help.js';
import { type LoadedConfig, loadConfig, parseConfigFile } from '../config/load.js';
import { SETTINGS } from '../config/settings.js';
import { createLogger, type Logger } from '../runtime/log.js';

export interface CliIo {
  env: NodeJS.ProcessEnv;
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  signal?: AbortSignal;
}

export interface CommandContext {
  config: LoadedConfig;
  options: Record<string, string | boolean | undefined>;
  io: CliIo;
  logger: Logger;
  signal: AbortSignal;
}

interface Command {
  summary: string;
  /** Log level when the user set none: a report command keeps stderr for problems. */
  quietLevel?: 'warn';
  /** Options of this command alone (settings are shared by all). */
  options: Record<string, { type: 'boolean' | 'string'; help: string }>;
  run(ctx: CommandContext): Promise<number>;
}

// Each command's module is imported when it runs: a node running `run` would otherwise keep the
// demo's router emulator and doctor in memory for good (a few MB of the idle node's RSS).
const COMMANDS: Record<string, Command> = {
  run: {
    summary: 'Run this node (the container\'s command): map its page, join the election, serve the portal when representative.',
    options: {},
    run: async (ctx) => (await import('./run.js')).runCommand(ctx),
  },
  status: {
    summary: 'Ask the node running here what it knows: role, representative, links, router, LAN.',
    quietLevel: 'warn',
    options: {
      json: { type: 'boolean', help: 'Print the node\'s /api/status JSON.' },
      url: { type: 'string', help: 'The node\'s status URL (default http://127.0.0.1:<http-port>/api/status).' },
    },
    run: async (ctx) => (await import('./status.js')).statusCommand(ctx),
  },
  demo: {
    summary: 'Run an emulated router and 3 nodes on loopback (no root, no router) and print their URLs.',
    quietLevel: 'warn',
    options: {
      failover: { type: 'boolean', help: 'Stop the representative after 10 s so another takes over, then start it again.' },
      duration: { type: 'string', help: 'Stop by itself after this long (e.g. 30s); default: until Ctrl-C.' },
    },
    run: async (ctx) => (await import('./demo.js')).demoCommand(ctx),
  },
  config: {
    summary: 'Print every setting\'s effective value and where it came from (default, file, environment, flag); secrets masked.',
    quietLevel: 'warn',
    options: {
      json: { type: 'boolean', help: 'Print the settings as JSON.' },
    },
    run: async (ctx) => (await import('./config.js')).configCommand(ctx),
  },
  doctor: {
    summary: 'Tell what the router offers and whether frontdoor can work behind it.',
    quietLevel: 'warn',
    options: {
      json: { type: 'boolean', help: 'Print the report as JSON.' },
      embedded: {
        type: 'boolean',
        help: 'Check the embedded router emulator on loopback instead of the real router (a demo).',
      },
    },
    run: async (ctx) => (await import('./doctor.js')).doctorCommand(ctx),
  },
};

function version(): string {
  const require = createRequire(import.meta.url);
  for (const p of ['../../../package.json', '../../package.json']) {
    try {
      return (require(p) as { version: string }).version;
    } catch {
      // dist/src/commands when built, src/commands under a TypeScript loader.
    }
  }
  return 'unknown';
}

export function usage(): string {
  const cmds = Object.entries(COMMANDS)
    .map(([name, c]) => {
      const opts = Object.entries(c.options)
        .map(([o, d]) => `      --${o}  ${d.help}`)
        .join('\n');
      return `  ${name.padEnd(8)} ${c.summary}${opts ? `\n${opts}` : ''}`;
    })
    .join('\n');
  return `frontdoor ${version()}: reach every camera and small server on your LAN through one address.

Usage: frontdoor <command> [options]

Commands:
${cmds}
  help     Print this text.
  version  Print the version.

Every setting can also be given as an environment variable; flags win over the environment.

${settingsHelp()}`;
}

/** Runs one command line and returns the exit code. Kept apart from cli.ts so tests can call it. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const name = argv[0] && !argv[0].startsWith('-') ? argv[0] : argv.includes('--version') ? 'version' : 'help';
  if (name === 'help' || argv.includes('--help') || argv.includes('-h')) {
    io.stdout(usage());
    return name === 'help' || COMMANDS[name] ? 0 : 2;
  }
  if (name === 'version') {
    io.stdout(`${version()}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.stderr(`frontdoor: unknown command "${name}" (see frontdoor --help)\n`);
    return 2;
  }
  let ctx: CommandContext;
  try {
    const options: Record<string, { type: 'string' | 'boolean' }> = {};
    for (const s of SETTINGS) options[s.flag.slice(2)] = { type: 'string' };
    for (const [o, d] of Object.entries(command.options)) options[o] = { type: d.type };
    const parsed = parseArgs({ args: argv.slice(1), options, strict: true, allowPositionals: false });
    const flags = new Map<string, string>();
    const local: Record<string, string | boolean | undefined> = {};
    for (const [k, v] of Object.entries(parsed.values)) {
      if (k in command.options) local[k] = v as string | boolean;
      else flags.set(`--${k}`, v as string);
    }
    const configPath = flags.get('--config') ?? io.env.FRONTDOOR_CONFIG;
    let file: { path: string; values: Map<string, string> } | undefined;
    if (configPath) {
      let text: string;
      try {
        text = readFileSync(configPath, 'utf8');
      } catch (e) {
        throw new ConfigError(flags.has('--config') ? '--config' : 'FRONTDOOR_CONFIG', `cannot read ${configPath}: ${(e as Error).message}`);
      }
      file = { path: configPath, values: parseConfigFile(text, configPath) };
    }
    const config = loadConfig(flags, io.env, file);
    const s = config.settings;
    const logger = createLogger({
      level: config.sources.logLevel === 'default' && command.quietLevel ? command.quietLevel : s.logLevel,
      ...(s.logFormat === 'auto' ? {} : { json: s.logFormat === 'json' }),
      write: (line) => io.stderr(`${line}\n`),
    });
    const controller = new AbortController();
    io.signal?.addEventListener('abort', () => controller.abort(io.signal?.reason), { once: true });
    ctx = { config, options: local, io, logger, signal: controller.signal };
  } catch (e) {
    const msg = e instanceof ConfigError || e instanceof TypeError ? e.message : String(e);
    io.stderr(`frontdoor ${name}: ${msg}\n`);
    return 2;
  }
  return command.run(ctx);
}
