import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { bestMapper, discoverGateway } from '../../src/router/discover.js';
import { RouterEmulator } from '../../src/router/emulator/router-emulator.js';
import {
  loadGatewayMemory,
  parseGatewayMemory,
  rememberedLocation,
  saveGatewayMemory,
} from '../../src/router/gateway-memory.js';

const good = {
  gateway: '192.168.77.1',
  localAddress: '192.168.77.10',
  protocol: 'upnp-igd2',
  location: 'http://192.168.77.1:5000/rootDesc.xml',
  savedAt: '2026-11-25T03:00:00.000Z',
};

describe('gateway memory', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('parses a sound entry and refuses a location off the gateway', () => {
    assert.deepEqual(parseGatewayMemory(JSON.stringify(good)), good);
    assert.equal(parseGatewayMemory(JSON.stringify({ ...good, location: 'http://10.9.9.9/x.xml' })), undefined);
    assert.equal(parseGatewayMemory(JSON.stringify({ ...good, location: 'file:///etc/passwd' })), undefined);
    assert.equal(parseGatewayMemory(JSON.stringify({ ...good, protocol: 'smtp' })), undefined);
    assert.equal(parseGatewayMemory('{"gateway":'), undefined);
  });

  it('property: any text gives an entry or undefined, never an exception', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 5000 }),
          fc.json(),
          fc.record({ gateway: fc.string(), localAddress: fc.ipV4(), protocol: fc.string(), location: fc.webUrl(), savedAt: fc.string() }).map((o) =>
            JSON.stringify(o),
          ),
        ),
        (text) => {
          const m = parseGatewayMemory(text);
          if (m) assert.ok(!m.location || new URL(m.location).hostname === m.gateway);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('saves atomically and loads back; a missing or broken file is undefined', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fd-memory-'));
    dirs.push(dir);
    const file = join(dir, 'sub', 'gateway.json');
    assert.equal(await loadGatewayMemory(file), undefined);
    await saveGatewayMemory(file, {
      gateway: good.gateway,
      localAddress: good.localAddress,
      probes: [{ protocol: 'upnp-igd2', gateway: good.gateway, elapsedMs: 12, location: good.location }],
      failures: [],
      mappers: [],
    });
    const m = await loadGatewayMemory(file);
    assert.equal(m?.location, good.location);
    assert.equal(rememberedLocation(m, good.gateway, good.localAddress), good.location);
    assert.equal(rememberedLocation(m, good.gateway, '192.168.77.99'), undefined);
    await writeFile(file, 'garbage');
    assert.equal(await loadGatewayMemory(file), undefined);
    assert.match(await readFile(file, 'utf8'), /garbage/);
  });
});

describe('discovery with a remembered location', () => {
  const emus: RouterEmulator[] = [];
  after(async () => {
    for (const e of emus) await e.stop();
  });

  it('reaches UPnP through the remembered location even when no search is answered', async () => {
    const emu = new RouterEmulator({ address: '127.0.0.1' });
    emus.push(emu);
    await emu.start();
    const d = await discoverGateway({
      gateway: '127.0.0.1',
      localAddress: '127.0.0.1',
      protocols: ['upnp'],
      ssdpPort: 9, // nothing answers searches there
      multicast: false,
      knownLocation: emu.location,
      timeoutMs: 1500,
    });
    assert.equal(bestMapper(d).protocol, 'upnp-igd2');
    assert.equal(d.probes[0]?.location, emu.location);
    for (const m of d.mappers) m.close();
  });

  it('a stale remembered location falls back to the search', async () => {
    const emu = new RouterEmulator({ address: '127.0.0.1' });
    emus.push(emu);
    await emu.start();
    const stale = new URL(emu.location);
    stale.port = '9';
    const d = await discoverGateway({
      gateway: '127.0.0.1',
      localAddress: '127.0.0.1',
      protocols: ['upnp'],
      ssdpPort: emu.ports.ssdp,
      multicast: false,
      knownLocation: stale.href,
      timeoutMs: 1500,
    });
    assert.equal(bestMapper(d).protocol, 'upnp-igd2');
    assert.equal(d.probes[0]?.location, emu.location);
    for (const m of d.mappers) m.close();
  });
});
