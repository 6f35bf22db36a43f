import { SETTINGS, type SettingSpec } from './settings.js';

const GROUPS: Record<SettingSpec['group'], string> = {
  router: 'Router',
  node: 'Node',
  portal: 'Portal',
  camera: 'Camera',
  lan: 'LAN protocol',
  election: 'Election and failover',
  logging: 'Logging',
};

/** A setting's default as help and docs/configuration.md show it. */
export function defaultText(s: SettingSpec): string {
  if (s.defaultText) return s.defaultText;
  if (Array.isArray(s.default)) return s.default.join(',');
  if (s.type === 'duration') return `${s.default}ms`;
  return String(s.default);
}

/** The settings part of `frontdoor --help`, made from the one list of settings. */
export function settingsHelp(): string {
  const lines: string[] = [];
  for (const [group, title] of Object.entries(GROUPS)) {
    lines.push(`${title} settings (flag / environment variable, default):`);
    for (const s of (SETTINGS as readonly SettingSpec[]).filter((x) => x.group === group)) {
      const value = s.choices && s.type === 'enum' ? `<${s.choices.join('|')}>` : `<${s.type}>`;
      lines.push(`  ${s.flag} ${value}`);
      lines.push(`      ${s.env}, default: ${defaultText(s)}`);
      lines.push(`      ${s.help}`);
    }
    lines.push('');
  }
  return lines.join('\n');
}
