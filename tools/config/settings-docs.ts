/**
 * docs/configuration.md's table, config/frontdoor.json and config/frontdoor.schema.json, made
 * from the one list of settings (scripts/generate-config.mjs writes them; test/config checks they
 * are current). Build-only: nothing the program runs needs them.
 */
import { defaultText } from '../../src/config/help.js';
import { SETTINGS } from '../../src/config/settings.js';
import type { SettingSpec } from '../../src/config/settings.js';

/** The same list as a Markdown table, for docs/configuration.md (checked by a test). */
export function settingsMarkdown(): string {
  const rows = ['| flag | environment variable | default | meaning |', '| --- | --- | --- | --- |'];
  for (const s of SETTINGS as readonly SettingSpec[]) {
    rows.push(`| \`${s.flag}\` | \`${s.env}\` | ${defaultText(s)} | ${s.help} |`);
  }
  return rows.join('\n');
}

/** config/frontdoor.json: every setting with its default, the file a user copies and edits. */
export function defaultConfigFile(): Record<string, unknown> {
  const out: Record<string, unknown> = { $schema: './frontdoor.schema.json' };
  for (const s of SETTINGS as readonly SettingSpec[]) if (s.key !== 'config') out[s.key] = s.default;
  return out;
}

/** config/frontdoor.schema.json: a JSON Schema of the settings file, for editors. */
export function configSchema(): Record<string, unknown> {
  const properties: Record<string, unknown> = { $schema: { type: 'string' } };
  for (const s of SETTINGS as readonly SettingSpec[]) {
    if (s.key === 'config') continue;
    const base = { description: `${s.help} (${s.flag}, ${s.env})`, default: s.default };
    switch (s.type) {
      case 'port':
        properties[s.key] = { ...base, type: 'integer', minimum: 1, maximum: 65535 };
        break;
      case 'int':
        properties[s.key] = { ...base, type: 'integer', minimum: s.min ?? 0, ...(s.max ? { maximum: s.max } : {}) };
        break;
      case 'duration':
        properties[s.key] = { ...base, type: ['integer', 'string'], pattern: '^\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|h)?\\s*$' };
        break;
      case 'enum':
        properties[s.key] = { ...base, enum: s.choices };
        break;
      case 'list':
        properties[s.key] = { ...base, type: 'array', items: { enum: s.choices }, minItems: 1, uniqueItems: true };
        break;
      case 'addresses':
        properties[s.key] = { ...base, type: 'array', items: { type: 'string', format: 'ipv4' }, maxItems: 64, uniqueItems: true };
        break;
      case 'bool':
        properties[s.key] = { ...base, type: 'boolean' };
        break;
      case 'ipv4':
        properties[s.key] = { ...base, type: 'string', anyOf: [{ const: '' }, { format: 'ipv4' }] };
        break;
      case 'string':
        properties[s.key] = { ...base, type: 'string', maxLength: 256, ...(s.pattern ? { pattern: s.pattern } : {}) };
        break;
    }
  }
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'frontdoor settings',
    type: 'object',
    additionalProperties: false,
    properties,
  };
}
