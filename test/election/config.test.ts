import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { SETTINGS } from '../../src/config/settings.js';
import type { SettingSpec, Settings } from '../../src/config/settings.js';
import {
  defaultElectionConfig,
  electionConfig,
  electionFromSettings,
  electionSettings,
  KNOB_SETTING,
  validateElectionConfig,
} from '../../src/election/config.js';
import { compareCandidates, deviceRank, rankOf, takeoverDelayMs } from '../../src/election/rules.js';
import type { NodeInfo } from '../../src/peers/messages.js';
import { electionDefaultsMarkdown } from '../../tools/election/defaults-table.js';

function settingOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    assert.equal((err as Error).name, 'ElectionConfigError');
    return (err as { setting: string }).setting;
  }
  return undefined;
}

describe('election config', () => {
  it('the defaults are valid', () => {
    validateElectionConfig({ ...defaultElectionConfig, detection: { ...defaultElectionConfig.detection } });
    assert.equal(electionConfig().leaseMs, 20_000);
  });

  it('names the bad setting', () => {
    assert.equal(settingOf(() => electionConfig({ leaseMs: 1500 })), 'leaseMs');
    assert.equal(settingOf(() => electionConfig({ wellKnownPort: 70000 })), 'wellKnownPort');
    assert.equal(settingOf(() => electionConfig({ renewFraction: 0.95 })), 'renewFraction');
    assert.equal(settingOf(() => electionConfig({ silenceTimeoutMs: 1500 })), 'silenceTimeoutMs');
    assert.equal(settingOf(() => electionConfig({ probeMisses: 0 })), 'probeMisses');
    assert.equal(settingOf(() => electionConfig({ collisionWindowMs: -1 })), 'collisionWindowMs');
    assert.equal(
      settingOf(() => electionConfig({ detection: { withdrawal: false, silence: false, probe: false } })),
      'detection',
    );
    assert.equal(settingOf(() => electionConfig({ rule: 'oldest' as never })), 'rule');
  });

  it('the defaults are what `frontdoor run` runs when no setting is given', () => {
    const { settings } = loadConfig(new Map(), {});
    assert.deepEqual(electionConfig(electionSettings(settings)), defaultElectionConfig);
  });

  it('every knob said to come from a setting follows it', () => {
    const { settings } = loadConfig(new Map(), {});
    const base = electionFromSettings(settings);
    for (const [knob, key] of Object.entries(KNOB_SETTING) as Array<[keyof typeof KNOB_SETTING, keyof Settings]>) {
      const s = (SETTINGS as readonly SettingSpec[]).find((x) => x.key === key)!;
      const other =
        s.type === 'enum' ? s.choices!.find((c) => c !== settings[key]) : s.type === 'list' ? [s.choices![0]] : (settings[key] as number) * 2;
      const changed = electionFromSettings({ ...settings, [key]: other });
      assert.notDeepEqual(changed[knob], base[knob], `${knob} does not follow ${s.flag}`);
    }
  });

  it('a knob that does not pass is reported as the flag it comes from', () => {
    const { settings } = loadConfig(new Map(), {});
    assert.throws(
      () => electionSettings({ ...settings, inquiryInterval: 3000, silenceTimeout: 5000 }),
      (e: unknown) => e instanceof ConfigError && e.setting === '--silence-timeout' && /two inquiry intervals/.test(e.message),
    );
    assert.throws(
      () => electionSettings({ ...settings, lease: 4000 }),
      (e: unknown) => e instanceof ConfigError && e.setting === '--lease' && /at least 8 s/.test(e.message),
    );
  });

  it('docs/election.md holds the current table of defaults', async () => {
    const doc = await readFile(new URL('../../../docs/election.md', import.meta.url), 'utf8');
    assert.ok(doc.includes(electionDefaultsMarkdown()), 'docs/election.md is out of date: npx tsc -p tsconfig.json && node scripts/generate-config.mjs');
  });

  it('partial detection overrides keep the other flags', () => {
    const cfg = electionConfig({ detection: { probe: false } });
    assert.deepEqual(cfg.detection, { withdrawal: true, silence: true, probe: false });
  });
});

function node(id: string, publicPort: number, rank: string): { id: string; info: NodeInfo } {
  return { id, info: { name: id, addresses: [], localPort: 80, publicPort, camera: false, rank } };
}

describe('takeover rules', () => {
  const a = node('a', 8083, 'ff');
  const b = node('b', 8081, 'cc');
  const c = node('c', 0, '00');
  const all = [a, b, c];

  it('ports: lowest public port first, nodes without one last', () => {
    assert.deepEqual(
      [...all].sort((x, y) => compareCandidates('ports', x, y)).map((n) => n.id),
      ['b', 'a', 'c'],
    );
    assert.equal(rankOf('ports', b, all), 0);
    const cfg = { rule: 'ports' as const, backoffWindowMs: 500, rankSlotMs: 200 };
    assert.equal(takeoverDelayMs(cfg, c, all, 0, () => 0.5), 400);
  });

  it('device: lowest hashed device value first', () => {
    assert.equal(rankOf('device', c, all), 0);
    assert.equal(rankOf('device', a, all), 2);
    assert.match(deviceRank('balena-uuid-1'), /^[0-9a-f]{16}$/);
    assert.notEqual(deviceRank('x'), deviceRank('y'));
  });

  it('random: back-off within the window, doubling after collisions up to 8x', () => {
    const cfg = { rule: 'random' as const, backoffWindowMs: 500, rankSlotMs: 200 };
    assert.equal(takeoverDelayMs(cfg, a, all, 0, () => 0.5), 250);
    assert.equal(takeoverDelayMs(cfg, a, all, 1, () => 0.5), 500);
    assert.equal(takeoverDelayMs(cfg, a, all, 9, () => 0.5), 2000);
  });
});
