import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { mapperBoundTo } from '../../src/floating-address/bound-mapper.js';
import { discoverGateway, type ProtocolFamily } from '../../src/router/discover.js';
import { RouterEmulator } from '../../src/router/emulator/router-emulator.js';
import { PortConflictError } from '../../src/router/errors.js';
import { FakeMapper, FakeTable } from '../helpers/fake-mapper.js';

/**
 * The bound mapper against the embedded emulator in secure mode, on loopback: 127.0.0.1 is the
 * node's own address, 127.0.0.2 stands for the floating one (both are on lo).
 */

const emulators: RouterEmulator[] = [];
after(async () => {
  await Promise.all(emulators.map((e) => e.stop()));
});

const FLOATING = '127.0.0.2';
const req = (port: number) => ({
  externalPort: port,
  internalPort: 18080,
  protocol: 'TCP' as const,
  leaseSeconds: 60,
  description: 'frontdoor floating test',
});

async function discovered(protocol: ProtocolFamily) {
  const emu = new RouterEmulator({ address: '127.0.0.1' });
  emulators.push(emu);
  await emu.start();
  const d = await discoverGateway({
    gateway: '127.0.0.1',
    localAddress: '127.0.0.1',
    ssdpPort: emu.ports.ssdp,
    natpmpPort: emu.ports.pmp,
    multicast: false,
    timeoutMs: 1500,
    protocols: [protocol],
  });
  const base = d.mappers[0];
  assert.ok(base, `no ${protocol} mapper: ${JSON.stringify(d.failures)}`);
  return { emu, base };
}

describe('mapperBoundTo', () => {
  for (const [family, protocol] of [
    ['upnp', 'upnp-igd2'],
    ['natpmp', 'natpmp'],
    ['pcp', 'pcp'],
  ] as const) {
    it(`${family}: the same kind of client, sending from the floating address, which becomes the internal client`, async () => {
      const { emu, base } = await discovered(family);
      const bound = mapperBoundTo(base, FLOATING, { natpmpPort: emu.ports.pmp });
      const again = mapperBoundTo(base, FLOATING, { natpmpPort: emu.ports.pmp });
      try {
        assert.equal(bound.protocol, protocol);
        assert.equal(bound.gateway, base.gateway);
        assert.equal(bound.localAddress, FLOATING);
        assert.equal(bound.canList, base.canList);
        assert.equal(base.localAddress, '127.0.0.1', 'the base is left as it was');
        const m = await bound.claim(req(8080));
        assert.equal(m.internalClient, FLOATING);
        assert.deepEqual(
          emu.mappings().map((e) => [e.externalPort, e.internalClient, e.internalPort]),
          [[8080, FLOATING, 18080]],
        );
        // Another holder of the address (a new client, as on the next representative) renews it.
        const renewed = await again.claim(req(8080));
        assert.equal(renewed.internalClient, FLOATING);
        assert.equal(emu.mappings().length, 1);
        // The node's own address may not take it over: in secure mode it is another host's port.
        await assert.rejects(base.claim(req(8080)), PortConflictError);
        await again.release({ protocol: 'TCP', externalPort: 8080, internalPort: 18080 });
        assert.equal(emu.mappings().length, 0);
      } finally {
        bound.close();
        again.close();
        base.close();
      }
    });
  }

  it('refuses a mapper it does not know how to rebuild, and a non-IPv4 address', () => {
    const fake = new FakeMapper(new FakeTable(), '192.168.77.10');
    assert.throws(() => mapperBoundTo(fake, FLOATING), /cannot bind a upnp-igd2 client of type FakeMapper/);
    assert.throws(() => mapperBoundTo(fake, 'fe80::1'), TypeError);
  });
});
