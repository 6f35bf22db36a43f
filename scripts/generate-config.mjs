// Rewrites the generated parts: the settings table in docs/configuration.md, config/frontdoor.json
// and config/frontdoor.schema.json, from src/config/settings.ts, and balena.yml from the settings
// and package.json (run `npm run build` first). test/config/load.test.ts and
// test/balena/balena-yml.test.ts fail when they are out of date.
import { readFileSync, writeFileSync } from 'node:fs';
const { settingsMarkdown, defaultConfigFile, configSchema } = await import('../dist/tools/config/settings-docs.js');
const root = new URL('../', import.meta.url);
const doc = new URL('docs/configuration.md', root);
const text = readFileSync(doc, 'utf8');
const start = text.indexOf('| flag | environment variable |');
let end = text.indexOf('\n\n', start);
if (end < 0) end = text.length;
writeFileSync(doc, `${text.slice(0, start)}${settingsMarkdown()}${text.slice(end)}`);
writeFileSync(new URL('config/frontdoor.json', root), `${JSON.stringify(defaultConfigFile(), null, 2)}\n`);
writeFileSync(new URL('config/frontdoor.schema.json', root), `${JSON.stringify(configSchema(), null, 2)}\n`);
const { balenaYml } = await import('../dist/tools/balena/balena-yml.js');
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
writeFileSync(new URL('balena.yml', root), balenaYml({ version: pkg.version, description: pkg.description }));
console.log('docs/configuration.md, config/frontdoor.json, config/frontdoor.schema.json and balena.yml regenerated');
