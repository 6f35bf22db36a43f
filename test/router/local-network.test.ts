import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BadResponseError, NoGatewayError } from '../../src/router/errors.js';
import { parseProcNetRoute, resolveLocalNetwork } from '../../src/router/local-network.js';

const TABLE = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t014DA8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
eth0\t004DA8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
`;

describe('parseProcNetRoute', () => {
  it('finds the default routes, lowest metric first', () => {
    assert.deepEqual(parseProcNetRoute(TABLE), [
      { interface: 'eth0', gateway: '192.168.77.1', metric: 100 },
      { interface: 'wlan0', gateway: '192.168.1.1', metric: 600 },
    ]);
  });

  it('any text gives routes or a BadResponseError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 2000 }), fc.constant(TABLE).map((t) => t.replace(/0/g, 'Z'))), (text) => {
        try {
          const routes = parseProcNetRoute(text);
          for (const r of routes) assert.match(r.gateway, /^\d+\.\d+\.\d+\.\d+$/);
        } catch (e) {
          assert.ok(e instanceof BadResponseError);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('resolves the gateway and the local address facing it', async () => {
    const net = await resolveLocalNetwork({ gateway: '127.0.0.1' });
    assert.equal(net.gateway, '127.0.0.1');
    assert.equal(net.localAddress, '127.0.0.1');
    await assert.rejects(
      resolveLocalNetwork({ routeTable: async () => 'Iface\tDestination\n' }),
      (e: unknown) => e instanceof NoGatewayError,
    );
    const fromTable = await resolveLocalNetwork({
      routeTable: async () => TABLE,
      localAddress: '192.168.77.10',
    });
    assert.deepEqual(fromTable, { gateway: '192.168.77.1', localAddress: '192.168.77.10', interface: 'eth0' });
  });
});
