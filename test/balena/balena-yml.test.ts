import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { parseSettingValue, SETTINGS, type SettingSpec } from '../../src/config/settings.js';
import { balenaYml, envDefault, NO_FLEET_DEFAULT } from '../../tools/balena/balena-yml.js';
import { DEFAULT_DEVICE_TYPE, DEVICE_TYPES } from '../../tools/balena/device-types.js';
import { parseYamlSubset, type YamlValue } from './yaml-subset.js';

const root = new URL('../../../', import.meta.url);
const read = (p: string) => readFile(new URL(p, root), 'utf8');

type Obj = { [key: string]: YamlValue };
const isObj = (v: YamlValue | undefined): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

describe('balena.yml', () => {
  it('is current: what scripts/generate-config.mjs makes from the settings and package.json', async () => {
    const pkg = JSON.parse(await read('package.json')) as { version: string; description: string };
    assert.equal(await read('balena.yml'), balenaYml(pkg), 'balena.yml is out of date: npm run build && node scripts/generate-config.mjs');
  });

  it('has the fields balena reads, the supported device types and the version of package.json', async () => {
    const pkg = JSON.parse(await read('package.json')) as { version: string };
    const doc = parseYamlSubset(await read('balena.yml'));
    assert.ok(isObj(doc));
    assert.equal(doc['name'], 'frontdoor');
    assert.equal(doc['type'], 'sw.application');
    assert.equal(typeof doc['description'], 'string');
    assert.ok((doc['description'] as string).length > 20);
    assert.equal(doc['version'], pkg.version);
    assert.match(doc['version'] as string, /^\d+\.\d+\.\d+$/);
    const data = doc['data'];
    assert.ok(isObj(data));
    assert.deepEqual(data['supportedDeviceTypes'], ['raspberrypi3', 'raspberrypi4-64', 'raspberrypi5', 'raspberrypi0-2w-64']);
    assert.deepEqual(data['supportedDeviceTypes'], DEVICE_TYPES.map((d) => d.machine));
    assert.equal(data['defaultDeviceType'], DEFAULT_DEVICE_TYPE);
    assert.ok((data['supportedDeviceTypes'] as string[]).includes(data['defaultDeviceType'] as string));
  });

  it('lists every FRONTDOOR_* setting with its default, except the ones that must not have a fleet default, which it names', async () => {
    const text = await read('balena.yml');
    const data = (parseYamlSubset(text) as Obj)['data'] as Obj;
    const vars = data['applicationEnvironmentVariables'];
    assert.ok(Array.isArray(vars));
    const listed = new Map<string, string>();
    for (const v of vars) {
      assert.ok(isObj(v) && Object.keys(v).length === 1, JSON.stringify(v));
      const [[k, val]] = Object.entries(v) as [[string, YamlValue]];
      assert.equal(typeof val, 'string');
      assert.ok(!listed.has(k), `${k} twice`);
      listed.set(k, val as string);
    }
    const specs = SETTINGS as readonly SettingSpec[];
    for (const s of specs) {
      assert.match(s.env, /^FRONTDOOR_[A-Z0-9_]+$/);
      if (s.env in NO_FLEET_DEFAULT) {
        assert.ok(!listed.has(s.env), `${s.env} must not have a fleet default`);
        assert.ok(text.includes(`#   ${s.env}: `), `${s.env} is left out without a comment saying why`);
        continue;
      }
      const raw = listed.get(s.env);
      assert.notEqual(raw, undefined, `${s.env} is missing`);
      // The listed text means the setting's default: parsed as the environment would be.
      assert.equal(raw, envDefault(s));
      if (raw === '') continue; // an empty variable counts as unset (loadConfig), i.e. the default
      const parsed = parseSettingValue(s, raw!);
      assert.ok('value' in parsed, `${s.env}: ${JSON.stringify(parsed)}`);
      assert.deepEqual(parsed.value, s.default, s.env);
    }
    assert.deepEqual([...listed.keys()].filter((k) => !specs.some((s) => s.env === k)), [], 'variables of no setting');
    assert.ok(listed.size >= specs.length - Object.keys(NO_FLEET_DEFAULT).length);
    for (const secret of ['FRONTDOOR_SECRET', 'FRONTDOOR_PASSWORD']) assert.ok(secret in NO_FLEET_DEFAULT);
  });

  it('the subset reader refuses what it does not know instead of guessing', () => {
    assert.deepEqual(parseYamlSubset("a: 'x'\nb:\n  - c\n  - D: 'it''s'\n"), { a: 'x', b: ['c', { D: "it's" }] });
    for (const bad of ['a: "x"\n', 'a: [1, 2]\n', 'a: {b: 1}\n', 'a: &x 1\n', 'a: |\n  x\n', 'a:\n\t- x\n', "a: 'x\n", 'a: 1\na: 2\n', 'a:\n', 'a: x # c\n']) {
      assert.throws(() => parseYamlSubset(bad), { name: 'YamlSubsetError' }, JSON.stringify(bad));
    }
  });
});
