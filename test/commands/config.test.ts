import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ConfigEntry } from '../../src/commands/config.js';
import { SETTINGS } from '../../src/config/settings.js';
import { cli } from '../helpers/cli.js';

describe('frontdoor config', () => {
  it('prints every setting with its effective value and where it came from: default < file < environment < flag', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fd-config-'));
    try {
      const file = join(dir, 'frontdoor.json');
      await writeFile(file, JSON.stringify({ publicPort: 9000, httpPort: 9001, lanMode: 'broadcast', lease: '30s' }));
      const env = { FRONTDOOR_CONFIG: file, FRONTDOOR_HTTP_PORT: '9101', FRONTDOOR_LAN_MODE: 'unicast', FRONTDOOR_PEERS: '192.168.1.2' };
      const r = await cli(['config', '--json', '--lan-mode', 'multicast'], env);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { precedence: string[]; settings: ConfigEntry[] };
      assert.deepEqual(out.precedence, ['default', 'file', 'environment', 'flag']);
      assert.deepEqual(out.settings.map((e) => e.key), SETTINGS.map((s) => s.key));
      const by = new Map(out.settings.map((e) => [e.key, e]));
      const vs = (k: string) => [by.get(k)?.value, by.get(k)?.source];
      assert.deepEqual(vs('publicPort'), [9000, 'file']);
      assert.deepEqual(vs('httpPort'), [9101, 'environment']);
      assert.deepEqual(vs('lanMode'), ['multicast', 'flag']);
      assert.deepEqual(vs('lease'), [30000, 'file']);
      assert.deepEqual(vs('peers'), [['192.168.1.2'], 'environment']);
      assert.deepEqual(vs('rule'), ['random', 'default']);
      assert.deepEqual(vs('config'), [file, 'environment']);
      assert.equal(by.get('gateway')?.unsetMeans, 'the default route');
      assert.equal(r.stderr, '');

      const text = await cli(['config'], env);
      assert.equal(text.code, 0);
      const line = (v: string) => text.stdout.split('\n').find((l) => l.startsWith(`${v} `)) ?? '';
      assert.match(line('FRONTDOOR_PUBLIC_PORT'), /\s9000\s+file$/);
      assert.match(line('FRONTDOOR_HTTP_PORT'), /\s9101\s+environment$/);
      assert.match(line('FRONTDOOR_LEASE'), /\s30000ms\s+file$/);
      assert.match(line('FRONTDOOR_GATEWAY'), /unset: the default route.*default$/);
      assert.equal(text.stdout.split('\n').filter((l) => l.startsWith('FRONTDOOR_')).length, SETTINGS.length);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('never prints the secret or the password, in text or JSON, whatever their source', async () => {
    const secret = 'fleet-secret-do-not-print-7d1e';
    const password = 'portal-password-do-not-print-93ab';
    for (const args of [['config'], ['config', '--json']]) {
      const r = await cli([...args, '--password', password], { FRONTDOOR_SECRET: secret });
      assert.equal(r.code, 0);
      assert.ok(!r.stdout.includes(secret) && !r.stdout.includes(password), r.stdout);
      assert.ok(!r.stderr.includes(secret) && !r.stderr.includes(password));
      assert.match(r.stdout, /\*{8}/);
    }
    const j = JSON.parse((await cli(['config', '--json'], { FRONTDOOR_SECRET: secret })).stdout) as { settings: ConfigEntry[] };
    const s = j.settings.find((e) => e.key === 'secret')!;
    assert.deepEqual([s.masked, s.source], [true, 'environment']);
    // Unset secrets are shown as unset, not as a mask: the user must see that none is set.
    const p = j.settings.find((e) => e.key === 'password')!;
    assert.deepEqual([p.value, p.source, p.masked], ['', 'default', undefined]);
  });

  it('a bad value or an unknown key stops it with the setting\'s name (exit 2)', async () => {
    const bad = await cli(['config'], { FRONTDOOR_PUBLIC_PORT: '70000' });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /FRONTDOOR_PUBLIC_PORT: 70000 is outside 1-65535/);
    const dir = await mkdtemp(join(tmpdir(), 'fd-config-'));
    try {
      const file = join(dir, 'f.json');
      await writeFile(file, JSON.stringify({ publicPrt: 1 }));
      const unknown = await cli(['config', '--config', file]);
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /publicPrt: unknown setting/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
