import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freeTcpPort } from '../helpers/free-port.js';
import { cli } from '../helpers/cli.js';

describe('frontdoor CLI', () => {
  it('doctor --embedded reports a working router and exits 0', async () => {
    const r = await cli(['doctor', '--embedded']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /UPnP IGD\s+answered in \d+ ms/);
    assert.match(r.stdout, /Test mapping\s+TCP \d+ -> 127\.0\.0\.1:\d+ granted/);
    assert.match(r.stdout, /^OK: Port mapping works/m);
  });

  it('doctor says whether the ACME challenge port can be forwarded, and asks nothing with --acme off', async () => {
    const port = String(await freeTcpPort());
    const r = await cli(['doctor', '--embedded', '--acme-challenge-port', port]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`^ACME port\\s+${port} can be forwarded`, 'm'));
    const off = await cli(['doctor', '--embedded', '--acme', 'off']);
    assert.doesNotMatch(off.stdout, /ACME port/);
  });

  it('doctor --embedded --json is a report scripts can read', async () => {
    const r = await cli(['doctor', '--embedded', '--json', '--router-protocols', 'natpmp']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { status: string; using: string; listingNote: string };
    assert.equal(report.status, 'ok');
    assert.equal(report.using, 'natpmp');
    assert.match(report.listingNote, /cannot list/);
  });

  it('a bad setting stops with its name and exit code 2', async () => {
    const r = await cli(['doctor', '--embedded'], { FRONTDOOR_DISCOVERY_TIMEOUT: 'forever' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /FRONTDOOR_DISCOVERY_TIMEOUT: "forever" is not a duration/);
    const u = await cli(['doctor', '--frobnicate']);
    assert.equal(u.code, 2);
    assert.match(u.stderr, /frobnicate/);
  });

  it('--config reads a settings file; a missing one is a clear error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fd-cli-'));
    try {
      const file = join(dir, 'frontdoor.json');
      await writeFile(file, JSON.stringify({ routerProtocols: ['pcp'] }));
      const r = await cli(['doctor', '--embedded', '--json', '--config', file]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout) as { using: string }).using, 'pcp');
      const missing = await cli(['doctor', '--embedded'], { FRONTDOOR_CONFIG: join(dir, 'nope.json') });
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /FRONTDOOR_CONFIG: cannot read/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('--help lists the commands and every setting', async () => {
    const r = await cli(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /doctor/);
    assert.match(r.stdout, /--public-port <port>\n\s+FRONTDOOR_PUBLIC_PORT, default: 8080/);
    const v = await cli(['--version']);
    assert.match(v.stdout, /^\d+\.\d+\.\d+\n$/);
    const bad = await cli(['nonsense']);
    assert.equal(bad.code, 2);
  });
});
