import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ConfigError } from '../../src/config/errors.js';
import { settingsHelp, settingsMarkdown } from '../../src/config/help.js';
import { loadConfig } from '../../src/config/load.js';
import { parseDuration, parseSettingValue, SETTINGS } from '../../src/config/settings.js';

describe('loadConfig', () => {
  it('gives the documented defaults', () => {
    const { settings, sources } = loadConfig(new Map(), {});
    assert.equal(settings.publicPort, 8080);
    assert.deepEqual(settings.routerProtocols, ['upnp', 'natpmp', 'pcp']);
    assert.equal(settings.discoveryTimeout, 3000);
    assert.equal(sources.publicPort, 'default');
  });

  it('environment over defaults, flags over environment', () => {
    const env = { FRONTDOOR_PUBLIC_PORT: '8443', FRONTDOOR_ROUTER_TIMEOUT: '2s' };
    const a = loadConfig(new Map(), env);
    assert.equal(a.settings.publicPort, 8443);
    assert.equal(a.sources.publicPort, 'environment');
    assert.equal(a.settings.routerTimeout, 2000);
    const b = loadConfig(new Map([['--public-port', '9000']]), env);
    assert.equal(b.settings.publicPort, 9000);
    assert.equal(b.sources.publicPort, 'flag');
  });

  it('a bad value stops with the name of the setting as the user wrote it', () => {
    assert.throws(
      () => loadConfig(new Map(), { FRONTDOOR_PUBLIC_PORT: '70000' }),
      (e: unknown) => e instanceof ConfigError && e.setting === 'FRONTDOOR_PUBLIC_PORT' && /65535/.test(e.message),
    );
    assert.throws(
      () => loadConfig(new Map([['--gateway', 'router.local']]), {}),
      (e: unknown) => e instanceof ConfigError && e.setting === '--gateway',
    );
    assert.throws(
      () => loadConfig(new Map([['--router-protocols', 'upnp,smoke-signals']]), {}),
      (e: unknown) => e instanceof ConfigError && /smoke-signals/.test(e.message),
    );
    assert.throws(
      () => loadConfig(new Map([['--no-such-thing', '1']]), {}),
      (e: unknown) => e instanceof ConfigError && e.setting === '--no-such-thing',
    );
  });

  it('parses durations with units', () => {
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('3s'), 3000);
    assert.equal(parseDuration('1.5m'), 90_000);
    assert.equal(parseDuration('1000'), 1000);
    assert.equal(parseDuration('soon'), undefined);
    assert.equal(parseDuration('-1s'), undefined);
  });

  it('any text for any setting gives a value or an error, never an exception', () => {
    fc.assert(
      fc.property(fc.constantFrom(...SETTINGS), fc.string({ maxLength: 300 }), (s, raw) => {
        const r = parseSettingValue(s, raw);
        assert.ok('value' in r || ('error' in r && typeof r.error === 'string'));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('help and docs', () => {
  it('--help names every flag and variable', () => {
    const help = settingsHelp();
    for (const s of SETTINGS) {
      assert.ok(help.includes(s.flag), s.flag);
      assert.ok(help.includes(s.env), s.env);
    }
  });

  it('docs/configuration.md holds the current table of settings', async () => {
    const doc = await readFile(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
    assert.ok(
      doc.includes(settingsMarkdown()),
      'docs/configuration.md is out of date: paste the output of `node -e` settingsMarkdown() (see the doc)',
    );
  });
});
