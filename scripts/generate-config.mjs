// Rewrites the generated parts: the settings table in docs/configuration.md, config/frontdoor.json
// and config/frontdoor.schema.json, from src/config/settings.ts; the table of the election's
// defaults in docs/election.md, from src/election/config.ts; and balena.yml from the settings and
// package.json. Reads the compiled code: run `npx tsc -p tsconfig.json` first.
// test/config/load.test.ts, test/election/config.test.ts and test/balena/balena-yml.test.ts fail
// when they are out of date.
import { readFileSync, writeFileSync } from 'node:fs';
const { settingsMarkdown, defaultConfigFile, configSchema } = await import('../dist/tools/config/settings-docs.js');
const { electionDefaultsMarkdown } = await import('../dist/tools/election/defaults-table.js');
const { balenaYml } = await import('../dist/tools/balena/balena-yml.js');
const root = new URL('../', import.meta.url);

/** Replaces the Markdown table that starts with `header` (up to the next blank line) in `path`. */
function replaceTable(path, header, table) {
  const doc = new URL(path, root);
  const text = readFileSync(doc, 'utf8');
  const start = text.indexOf(header);
  if (start < 0) throw new Error(`${path}: no table starting with "${header}"`);
  let end = text.indexOf('\n\n', start);
  if (end < 0) end = text.length;
  writeFileSync(doc, `${text.slice(0, start)}${table}${text.slice(end)}`);
}

replaceTable('docs/configuration.md', '| flag | environment variable |', settingsMarkdown());
replaceTable('docs/election.md', '| knob | default |', electionDefaultsMarkdown());
writeFileSync(new URL('config/frontdoor.json', root), `${JSON.stringify(defaultConfigFile(), null, 2)}\n`);
writeFileSync(new URL('config/frontdoor.schema.json', root), `${JSON.stringify(configSchema(), null, 2)}\n`);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
writeFileSync(new URL('balena.yml', root), balenaYml({ version: pkg.version, description: pkg.description }));
console.log('docs/configuration.md, docs/election.md, config/frontdoor.json, config/frontdoor.schema.json and balena.yml regenerated');
