import { ConfigError } from './errors.js';
import { parseSettingValue, SETTINGS, type SettingSpec, type Settings } from './settings.js';

export type SettingSource = 'default' | 'environment' | 'flag';

export interface LoadedConfig {
  settings: Settings;
  sources: Record<keyof Settings, SettingSource>;
}

/**
 * Defaults < environment < flags. Every value is checked here, at start, so a bad one stops
 * the program with the setting's name instead of failing later somewhere else.
 */
export function loadConfig(flags: Map<string, string>, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const settings: Record<string, unknown> = {};
  const sources: Record<string, SettingSource> = {};
  for (const s of SETTINGS as readonly SettingSpec[]) {
    settings[s.key] = s.default;
    sources[s.key] = 'default';
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

export function settingByFlag(flag: string): SettingSpec | undefined {
  return (SETTINGS as readonly SettingSpec[]).find((s) => s.flag === flag);
}
