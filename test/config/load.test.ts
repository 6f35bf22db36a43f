import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ConfigError } from '../../src/config/errors.js';
import { settingsHelp } from '../../src/config/help.js';
import { loadConfig, parseConfigFile } from '../../src/config/load.js';
import { parseDuration, parseSettingValue, SETTINGS } from '../../src/config/settings.js';
import { configSchema, defaultConfigFile, settingsMarkdown } from '../../tools/config/settings-docs.js';

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
    // Settings with a grammar say what they take.
    const says = (flag: string, value: string, text: string) =>
      assert.throws(
        () => loadConfig(new Map([[flag, value]]), {}),
        (e: unknown) => e instanceof ConfigError && e.message === `${flag}: "${value}" is not ${text}`,
      );
    says('--acme', 'http://ca.example/dir', 'one of off, letsencrypt, letsencrypt-staging or an https:// ACME directory URL');
    says('--acme-name', 'not a name', 'a DNS name such as cams.example.net');
    says('--acme-email', 'nobody', 'an e-mail address');
    says('--camera', 'webcam', 'one of auto, rpicam, v4l2, v4l2:/dev/videoN, test or none');
    const ok = loadConfig(new Map([['--acme', 'https://ca.example/dir'], ['--acme-name', 'Cams.Example.net']]), {}).settings;
    assert.deepEqual([ok.acme, ok.acmeName], ['https://ca.example/dir', 'Cams.Example.net']);
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

describe('settings file', () => {
  it('defaults < file < environment < flags', () => {
    const file = { path: 'site.json', values: parseConfigFile('{"publicPort": 8443, "routerProtocols": ["natpmp"], "discoveryTimeout": "1s"}', 'site.json') };
    const a = loadConfig(new Map(), {}, file);
    assert.equal(a.settings.publicPort, 8443);
    assert.equal(a.sources.publicPort, 'file');
    assert.deepEqual(a.settings.routerProtocols, ['natpmp']);
    assert.equal(a.settings.discoveryTimeout, 1000);
    const b = loadConfig(new Map([['--public-port', '9000']]), { FRONTDOOR_PUBLIC_PORT: '8888' }, file);
    assert.equal(b.settings.publicPort, 9000);
    assert.equal(loadConfig(new Map(), { FRONTDOOR_PUBLIC_PORT: '8888' }, file).sources.publicPort, 'environment');
  });

  it('unknown keys and bad values stop with the file and the key', () => {
    assert.throws(
      () => parseConfigFile('{"publicPrt": 1}', 'site.json'),
      (e: unknown) => e instanceof ConfigError && e.setting === 'site.json: publicPrt' && /unknown setting/.test(e.message),
    );
    assert.throws(
      () => loadConfig(new Map(), {}, { path: 'site.json', values: parseConfigFile('{"publicPort": 0}', 'site.json') }),
      (e: unknown) => e instanceof ConfigError && e.setting === 'site.json: publicPort',
    );
    assert.throws(() => parseConfigFile('{"publicPort": {"x": 1}}', 'site.json'), ConfigError);
    assert.throws(() => parseConfigFile('[1]', 'site.json'), ConfigError);
    assert.throws(() => parseConfigFile('{', 'site.json'), ConfigError);
  });

  it('property: any text gives settings or a ConfigError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 500 }), fc.json(), fc.dictionary(fc.constantFrom(...SETTINGS.map((s) => s.key)), fc.jsonValue()).map((o) => JSON.stringify(o))), (text) => {
        try {
          const values = parseConfigFile(text, 'f.json');
          loadConfig(new Map(), {}, { path: 'f.json', values });
        } catch (e) {
          assert.ok(e instanceof ConfigError, String(e));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('config/frontdoor.json holds every default and loads as it is', async () => {
    const text = await readFile(new URL('../../../config/frontdoor.json', import.meta.url), 'utf8');
    assert.deepEqual(JSON.parse(text), defaultConfigFile());
    const { sources } = loadConfig(new Map(), {}, { path: 'frontdoor.json', values: parseConfigFile(text, 'frontdoor.json') });
    assert.ok(Object.entries(sources).every(([k, v]) => v === (k === 'config' ? 'default' : 'file')));
    const schema = await readFile(new URL('../../../config/frontdoor.schema.json', import.meta.url), 'utf8');
    assert.deepEqual(JSON.parse(schema), configSchema());
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
      'docs/configuration.md is out of date: npx tsc -p tsconfig.json && node scripts/generate-config.mjs',
    );
  });
});
