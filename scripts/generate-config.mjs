// Rewrites the generated parts: the settings table in docs/configuration.md, config/frontdoor.json
// and config/frontdoor.schema.json, from src/config/settings.ts (run `npm run build` first).
// test/config/load.test.ts fails when they are out of date.
import { readFileSync, writeFileSync } from 'node:fs';
const { settingsMarkdown, defaultConfigFile, configSchema } = await import('../dist/src/config/help.js');
const root = new URL('../', import.meta.url);
const doc = new URL('docs/configuration.md', root);
const text = readFileSync(doc, 'utf8');
const start = text.indexOf('| flag | environment variable |');
let end = text.indexOf('\n\n', start);
if (end < 0) end = text.length;
writeFileSync(doc, `${text.slice(0, start)}${settingsMarkdown()}${text.slice(end)}`);
writeFileSync(new URL('config/frontdoor.json', root), `${JSON.stringify(defaultConfigFile(), null, 2)}\n`);
writeFileSync(new URL('config/frontdoor.schema.json', root), `${JSON.stringify(configSchema(), null, 2)}\n`);
console.log('docs/configuration.md, config/frontdoor.json and config/frontdoor.schema.json regenerated');
