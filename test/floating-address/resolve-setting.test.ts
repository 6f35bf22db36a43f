import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { resolveFloatingSetting } from '../../src/floating-address/floating-address.js';
import { ipv4ToInt } from '../../src/router/wan-address.js';

const local = { address: '192.168.77.10', prefixLength: 24, interface: 'eth0' };

describe('resolveFloatingSetting', () => {
  it("'off' (any case, spaces around) means no floating address", () => {
    assert.equal(resolveFloatingSetting('off', local), undefined);
    assert.equal(resolveFloatingSetting(' OFF ', local), undefined);
  });

  it('accepts a spare host address of the local subnet', () => {
    assert.deepEqual(resolveFloatingSetting('192.168.77.100', local), {
      address: '192.168.77.100',
      prefixLength: 24,
      interface: 'eth0',
    });
    assert.deepEqual(resolveFloatingSetting(' 192.168.77.254 ', local)?.address, '192.168.77.254');
    assert.deepEqual(resolveFloatingSetting('10.0.3.7', { address: '10.0.0.2', prefixLength: 16, interface: 'wlan0' }), {
      address: '10.0.3.7',
      prefixLength: 16,
      interface: 'wlan0',
    });
  });

  it('refuses what cannot work, saying why', () => {
    const refuses = (value: string, re: RegExp, l: Parameters<typeof resolveFloatingSetting>[1] = local) =>
      assert.throws(() => resolveFloatingSetting(value, l), (e: unknown) => e instanceof Error && re.test(e.message));
    refuses('192.168.78.100', /not in this node's subnet 192\.168\.77\.0\/24 on eth0/);
    refuses('192.168.77.0', /network address of 192\.168\.77\.0\/24/);
    refuses('192.168.77.255', /broadcast address/);
    refuses('192.168.77.10', /this node's own address/);
    refuses('192.168.77.1', /router's address/, { ...local, gateway: '192.168.77.1' });
    refuses('auto', /'auto' is not supported yet/);
    refuses('on', /neither off nor an IPv4 address/);
    refuses('', /neither off nor an IPv4 address/);
    refuses('192.168.77.1000', /neither off nor an IPv4 address/);
    refuses('fe80::1', /neither off nor an IPv4 address/);
    refuses('10.0.0.3', /no spare address/, { address: '10.0.0.2', prefixLength: 31, interface: 'ptp0' });
    refuses('10.0.0.3', /no spare address/, { address: '10.0.0.2', prefixLength: 32, interface: 'ptp0' });
  });

  it('property: only Errors are thrown; what is accepted is a host address of the subnet, not ours', () => {
    const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
    // Mostly addresses near the local one, so that acceptance is common, plus anything at all.
    const candidate = (base: string) =>
      fc.oneof(
        ipv4,
        fc.nat(511).map((d) => {
          const n = (ipv4ToInt(base) + d - 255) >>> 0;
          return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
        }),
        fc.string({ maxLength: 20 }),
        fc.constantFrom('off', 'auto', base),
      );
    const arb = fc
      .record({ address: ipv4, prefixLength: fc.integer({ min: -1, max: 33 }), gateway: fc.option(ipv4, { nil: undefined }) })
      .chain((l) => fc.tuple(fc.constant(l), candidate(l.address)));
    let accepted = 0;
    fc.assert(
      fc.property(arb, ([l, value]) => {
        let r: ReturnType<typeof resolveFloatingSetting>;
        try {
          r = resolveFloatingSetting(value, { ...l, interface: 'eth0' });
        } catch (e) {
          assert.ok(e instanceof Error, `threw a non-Error: ${String(e)}`);
          assert.ok(e.message.length > 0);
          return;
        }
        if (r === undefined) {
          assert.equal(value.trim().toLowerCase(), 'off');
          return;
        }
        const p = l.prefixLength;
        assert.ok(p >= 0 && p <= 30);
        const mask = p === 0 ? 0 : (~0 << (32 - p)) >>> 0;
        const a = ipv4ToInt(r.address);
        const net = (ipv4ToInt(l.address) & mask) >>> 0;
        assert.equal((a & mask) >>> 0, net, 'inside the subnet');
        assert.notEqual(a, net, 'not the network address');
        assert.notEqual(a, (net | ~mask) >>> 0, 'not the broadcast address');
        assert.notEqual(r.address, l.address, 'not our own address');
        if (l.gateway !== undefined) assert.notEqual(r.address, l.gateway, "not the router's");
        assert.equal(r.prefixLength, p);
        assert.equal(r.interface, 'eth0');
        accepted++;
      }),
      { numRuns: 2000 },
    );
    assert.ok(accepted > 200, `only ${accepted} of 2000 runs accepted an address: the property tested little`);
  });
});
