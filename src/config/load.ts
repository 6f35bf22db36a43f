import { ConfigError } from './errors.js';
import { parseSettingValue, SETTINGS, type SettingSpec, type Settings } from './settings.js';

export type SettingSource = 'default' | 'file' | 'environment' | 'flag';

const MAX_FILE_BYTES = 64 * 1024;

/**
 * A settings file: one JSON object whose keys are the settings' keys. Values may be written as
 * JSON numbers, booleans, strings or (for lists) arrays; each is checked like the same text in
 * a flag. An unknown key is an error, not ignored: a misspelt setting must not silently do nothing.
 */
export function parseConfigFile(text: string, path: string): Map<string, string> {
  if (text.length > MAX_FILE_BYTES) throw new ConfigError(path, `is larger than ${MAX_FILE_BYTES} bytes`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(path, `is not valid JSON (${(e as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(path, 'must hold one JSON object');
  const out = new Map<string, string>();
  for (const [key, value] of Object.entries(v)) {
    if (key === '$schema') continue;
    const s = (SETTINGS as readonly SettingSpec[]).find((x) => x.key === key);
    if (!s || key === 'config') throw new ConfigError(`${path}: ${key}`, 'unknown setting');
    const name = `${path}: ${key}`;
    if (typeof value === 'string') out.set(key, value);
    else if (typeof value === 'number' && Number.isFinite(value)) out.set(key, String(value));
    else if (typeof value === 'boolean') out.set(key, String(value));
    else if (Array.isArray(value) && (s.type === 'list' || s.type === 'addresses') && value.every((x) => typeof x === 'string')) out.set(key, value.join(','));
    else throw new ConfigError(name, `${JSON.stringify(value)?.slice(0, 40)} is not a value for this setting`);
  }
  return out;
}

export interface LoadedConfig {
  settings: Settings;
  sources: Record<keyof Settings, SettingSource>;
}

/**
 * Defaults < file < environment < flags. Every value is checked here, at start, so a bad one
 * stops the program with the setting's name instead of failing later somewhere else.
 */
export function loadConfig(
  flags: Map<string, string>,
  env: NodeJS.ProcessEnv = process.env,
  file?: { path: string; values: Map<string, string> },
): LoadedConfig {
  const settings: Record<string, unknown> = {};
  const sources: Record<string, SettingSource> = {};
  for (const s of SETTINGS as readonly SettingSpec[]) {
    settings[s.key] = s.default;
    sources[s.key] = 'default';
    const fromFile = file?.values.get(s.key);
    if (fromFile !== undefined) {
      settings[s.key] = check(s, `${file!.path}: ${s.key}`, fromFile);
      sources[s.key] = 'file';
    }
    const fromEnv = env[s.env];
    if (fromEnv !== undefined && fromEnv !== '') {
      settings[s.key] = check(s, s.env, fromEnv);
      sources[s.key] = 'environment';
    }
    const fromFlag = flags.get(s.flag);
    if (fromFlag !== undefined) {
      settings[s.key] = check(s, s.flag, fromFlag);
      sources[s.key] = 'flag';
    }
  }
  for (const flag of flags.keys()) {
    if (!(SETTINGS as readonly SettingSpec[]).some((s) => s.flag === flag)) {
      throw new ConfigError(flag, 'unknown option (see frontdoor --help)');
    }
  }
  return { settings: settings as unknown as Settings, sources: sources as Record<keyof Settings, SettingSource> };
}

function check(s: SettingSpec, name: string, raw: string): unknown {
  const r = parseSettingValue(s, raw);
  if ('error' in r) throw new ConfigError(name, r.error);
  return r.value;
}
