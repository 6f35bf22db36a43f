import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { electionConfig } from '../../src/election/config.js';
import { ElectionNode } from '../../src/election/election-node.js';
import { Membership } from '../../src/membership/membership.js';
import { deviceRank } from '../../src/election/rules.js';
import { deriveKey } from '../../src/peers/codec.js';
import { UdpTransport } from '../../src/peers/udp-transport.js';
import { bestMapper, discoverGateway } from '../../src/router/discover.js';
import { RouterEmulator } from '../../src/router/emulator/router-emulator.js';
import type { PortMapper } from '../../src/router/types.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/log.js';
import { freeUdpPort } from '../helpers/free-port.js';

/**
 * The election with its real parts, in real time, on loopback: authenticated UDP between the
 * nodes and the UPnP client against the embedded router. The simulation (sim.test.ts) covers
 * the many-node and lossy cases; this shows the pieces fit.
 */

const fast = {
  leaseMs: 4000,
  leaseMarginMs: 200,
  routerTimeoutMs: 1000,
  retryIntervalMs: 200,
  startupListenMs: 300,
  inquiryIntervalMs: 200,
  announceIntervalMs: 500,
  refreshIntervalMs: 500,
  directoryTtlMs: 3000,
  silenceTimeoutMs: 1000,
  leaderlessTimeoutMs: 1000,
  probeIntervalMs: 200,
  probeTimeoutMs: 100,
  probeMisses: 3,
  backoffWindowMs: 200,
  collisionWindowMs: 100,
  rankSlotMs: 100,
  yieldTimeoutMs: 1000,
};

async function until(cond: () => boolean, what: string, ms = 8000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('election over the real LAN protocol and router client (loopback)', () => {
  const cleanup: Array<() => unknown> = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('one representative holds the port at the router; a graceful stop hands it over', async () => {
    const emu = new RouterEmulator({ address: '127.0.0.1' });
    await emu.start();
    cleanup.push(() => emu.stop());
    const key = deriveKey('fleet secret for this test');
    const port = await freeUdpPort();
    const addrs = ['127.0.0.2', '127.0.0.3'];
    const nodes: ElectionNode[] = [];
    const directories: Membership[] = [];
    const mappers: PortMapper[] = [];
    for (const [i, address] of addrs.entries()) {
      const self = { id: `node-${i}`, boot: randomBytes(4).toString('hex') };
      const transport = new UdpTransport(
        { logger: silentLogger, clock: systemClock },
        { self, key, mode: 'unicast', bindAddress: address, port, peers: addrs.map((a) => ({ address: a, port })) },
      );
      await transport.start();
      cleanup.push(() => transport.close());
      const d = await discoverGateway({
        gateway: '127.0.0.1',
        localAddress: address,
        protocols: ['upnp'],
        ssdpPort: emu.ports.ssdp,
        multicast: false,
      });
      const mapper = bestMapper(d);
      mappers.push(mapper);
      cleanup.push(() => mapper.close());
      const cfg = electionConfig(fast);
      const members = new Membership(
        { clock: systemClock, transport, logger: silentLogger },
        {
          self,
          info: { name: `cam-${i}`, addresses: [address], localPort: 8000 + i, publicPort: 0, camera: false, rank: deviceRank(self.id) },
          refreshIntervalMs: cfg.refreshIntervalMs,
          directoryTtlMs: cfg.directoryTtlMs,
        },
      );
      const node = new ElectionNode(
        { clock: systemClock, transport, membership: members, portMapper: mapper, logger: silentLogger, random: Math.random },
        { config: fast },
      );
      nodes.push(node);
      directories.push(members);
      cleanup.push(() => node.stop({ graceful: false }));
      members.start();
      node.start();
    }
    const reps = () => nodes.filter((n) => n.state === 'representative');
    const holder = () => emu.mappings().find((m) => m.externalPort === 8080)?.internalClient;
    const settled = () => nodes.every((n) => n.state === 'follower' || n.state === 'representative');
    await until(() => settled() && reps().length === 1 && directories.every((m) => m.entries().length >= 2), 'one representative and full directories');
    const first = reps()[0]!;
    assert.equal(holder(), addrs[nodes.indexOf(first)]);
    const other = nodes.find((n) => n !== first)!;
    assert.equal(other.state, 'follower');
    assert.equal(other.representative, first.id);

    await first.stop({ graceful: true });
    await until(() => other.state === 'representative', 'the other node to take over');
    assert.equal(holder(), addrs[nodes.indexOf(other)]);
  });
});
