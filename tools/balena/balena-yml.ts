import { SETTINGS } from '../../src/config/settings.js';
import type { SettingSpec } from '../../src/config/settings.js';
import { DEFAULT_DEVICE_TYPE, DEVICE_TYPES } from './device-types.js';

/**
 * balena.yml, made from the one list of settings so the fleet's variables cannot drift from the
 * code (scripts/generate-config.mjs writes it; test/balena checks it is current). Build-only. It is kept to a
 * small YAML subset (comments, `key: value`, lists of scalars and of one-key maps, single-quoted
 * strings) that the test reads without a YAML library.
 */

/** Variables that must not get a fleet-wide default, and why (said in the file, too). */
export const NO_FLEET_DEFAULT: Readonly<Record<string, string>> = {
  FRONTDOOR_SECRET: 'a secret: set it yourself as a fleet variable, the same on every device; a default in a public file is no secret',
  FRONTDOOR_PASSWORD: 'a secret: set it yourself as a fleet variable, or leave it unset and read the derived one with `frontdoor status`',
  FRONTDOOR_NAME: 'per device: the same name on every device would make the portal useless (balena gives each its own)',
  FRONTDOOR_DEVICE_ID: 'per device: the same value on every device would give every node the same LAN id',
  FRONTDOOR_ADDRESS: "per device: one device's LAN address",
  FRONTDOOR_CONFIG: 'a settings file is for installs off balena; fleet variables do its job here',
};

/** A setting's default as the text an environment variable holds (parsed back the same way). */
export function envDefault(s: SettingSpec): string {
  if (Array.isArray(s.default)) return s.default.join(',');
  if (s.type === 'duration') return `${s.default}ms`;
  return String(s.default);
}

function quote(v: string): string {
  return `'${v.replace(/'/g, "''")}'`;
}

export interface BalenaYmlInput {
  /** package.json's version: a release's version is the program's. */
  version: string;
  description: string;
}

export function balenaYml(input: BalenaYmlInput): string {
  const lines = [
    '# Generated from src/config/settings.ts and package.json by scripts/generate-config.mjs;',
    '# test/balena/balena-yml.test.ts fails when it is out of date. Edit those, not this file.',
    'name: frontdoor',
    'type: sw.application',
    `description: ${quote(input.description)}`,
    `version: ${input.version}`,
    'data:',
    `  defaultDeviceType: ${DEFAULT_DEVICE_TYPE}`,
    '  supportedDeviceTypes:',
    ...DEVICE_TYPES.map((d) => `    - ${d.machine}`),
    '  # config.txt: let the Pi firmware find the camera module and load its driver.',
    '  applicationConfigVariables:',
    `    - BALENA_HOST_CONFIG_camera_auto_detect: ${quote('1')}`,
    '  # Every FRONTDOOR_* setting with its default (docs/configuration.md says what each does).',
    '  # Not listed, on purpose:',
    ...Object.entries(NO_FLEET_DEFAULT).map(([env, why]) => `  #   ${env}: ${why}.`),
    '  applicationEnvironmentVariables:',
  ];
  for (const s of SETTINGS as readonly SettingSpec[]) {
    if (s.env in NO_FLEET_DEFAULT) continue;
    lines.push(`    - ${s.env}: ${quote(envDefault(s))}`);
  }
  return `${lines.join('\n')}\n`;
}
