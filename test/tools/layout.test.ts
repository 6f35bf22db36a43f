import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** The relative specifiers a module imports (static and dynamic). */
function imports(text: string): string[] {
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']*)'/g)].map((m) => m[1]!);
}

describe('build-only code', () => {
  it('nothing in src/ imports tools/: package.json ships dist/src only, so the program would not start', () => {
    const offenders = sources(join(root, 'src')).flatMap((file) =>
      imports(readFileSync(file, 'utf8'))
        .filter((spec) => join(file, '..', spec).startsWith(join(root, 'tools')))
        .map((spec) => `${file.slice(root.length)} imports ${spec}`),
    );
    assert.deepEqual(offenders, []);
  });

  it('the check sees an import of tools/ (a file that had one would be caught)', () => {
    assert.deepEqual(imports("import { balenaYml } from '../../tools/balena/balena-yml.js';\nconst x = await import('./y.js');"), [
      '../../tools/balena/balena-yml.js',
      './y.js',
    ]);
  });
});
