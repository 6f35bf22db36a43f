import type { SettingSource } from '../config/load.js';
import { SETTINGS, type SettingSpec } from '../config/settings.js';
import type { CommandContext } from './main.js';

/** Settings whose value must never be printed: the fleet secret and the portal password. */
const SECRET_KEYS: ReadonlySet<string> = new Set(['password', 'secret']);
const MASK = '********';

export interface ConfigEntry {
  key: string;
  flag: string;
  env: string;
  /** The effective value (masked for secrets); unset strings are "". */
  value: unknown;
  source: SettingSource;
  /** What an unset value means at run time, e.g. "the default route". */
  unsetMeans?: string;
  masked?: true;
}

/** Every setting's effective value and where it came from; secrets masked. Pure: no I/O. */
export function effectiveConfig(ctx: Pick<CommandContext, 'config'>): ConfigEntry[] {
  const { settings, sources } = ctx.config;
  return (SETTINGS as readonly SettingSpec[]).map((s) => {
    const raw = (settings as unknown as Record<string, unknown>)[s.key];
    const secret = SECRET_KEYS.has(s.key) && raw !== '';
    const entry: ConfigEntry = {
      key: s.key,
      flag: s.flag,
      env: s.env,
      value: secret ? MASK : raw,
      source: sources[s.key as keyof typeof sources],
    };
    if (secret) entry.masked = true;
    if (raw === '' && s.defaultText) entry.unsetMeans = s.defaultText;
    return entry;
  });
}

function show(e: ConfigEntry, spec: SettingSpec): string {
  if (e.masked) return MASK;
  if (Array.isArray(e.value)) return e.value.length ? e.value.join(',') : `(none)`;
  if (spec.type === 'duration') return `${e.value}ms`;
  if (e.value === '') return `(unset: ${e.unsetMeans ?? 'empty'})`;
  return String(e.value);
}

/**
 * `frontdoor config`: what this node would run with, and why. It reads only the settings already
 * loaded (defaults < file < environment < flags), so it is safe anywhere: no network, no router.
 */
export async function configCommand(ctx: CommandContext): Promise<number> {
  const entries = effectiveConfig(ctx);
  if (ctx.options['json']) {
    ctx.io.stdout(`${JSON.stringify({ precedence: ['default', 'file', 'environment', 'flag'], settings: entries }, null, 2)}\n`);
    return 0;
  }
  const specs = new Map((SETTINGS as readonly SettingSpec[]).map((s) => [s.key, s]));
  const rows = entries.map((e) => [e.env, show(e, specs.get(e.key)!), e.source]);
  const w0 = Math.max(...rows.map((r) => r[0]!.length));
  const w1 = Math.min(48, Math.max(...rows.map((r) => r[1]!.length)));
  const lines = rows.map(([env, value, source]) => `${env!.padEnd(w0)}  ${value!.padEnd(w1)}  ${source}`);
  const file = ctx.config.settings.config;
  ctx.io.stdout(
    `Effective settings (precedence: default < file < environment < flag${file ? `; file ${file}` : ''}):\n\n` +
      `${'variable'.padEnd(w0)}  ${'value'.padEnd(w1)}  from\n${lines.join('\n')}\n`,
  );
  return 0;
}
