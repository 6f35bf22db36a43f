import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent.js';
import type { AgentOptions } from '../../src/agent/agent.js';
import { deviceRank } from '../../src/election/rules.js';
import type { PeerMessage, Received, Sender } from '../../src/peers/messages.js';
import type { LanTransport } from '../../src/peers/transport.js';
import type { Discovery } from '../../src/router/discover.js';
import { silentLogger } from '../../src/runtime/log.js';
import { FakeMapper, FakeTable } from '../helpers/fake-mapper.js';
import { freeTcpPort } from '../helpers/free-port.js';
import { ManualClock } from '../helpers/manual-clock.js';

/**
 * Three whole agents on the manual clock: the router is the in-memory table, the LAN an
 * in-memory hub with a 1 ms delay, so the wiring (router session → node state → election →
 * duties → status) is tested in milliseconds and the same way every run. Only the HTTP
 * listeners are real (on loopback): the portal must open and close on the right node.
 */

const ADDRS = ['192.168.77.10', '192.168.77.11', '192.168.77.12'];
const LAN_DELAY_MS = 1;

class Hub {
  private readonly nodes = new Map<string, { handler: ((m: Received) => void) | undefined; up: boolean }>();
  private seq = 0;
  constructor(private readonly clock: ManualClock) {}

  transport(address: string, from: Sender): LanTransport {
    const slot = { handler: undefined as ((m: Received) => void) | undefined, up: true };
    this.nodes.set(address, slot);
    const send = (body: PeerMessage, to: string | undefined) => {
      if (!slot.up) return;
      for (const [addr, n] of this.nodes) {
        if (addr === address || (to !== undefined && addr !== to)) continue;
        const msg: Received = { from, seq: ++this.seq, sentAt: this.clock.now(), body, address, port: 4862 };
        this.clock.setTimeout(() => {
          if (n.up) n.handler?.(msg);
        }, LAN_DELAY_MS);
      }
    };
    return {
      broadcast: (body) => send(body, undefined),
      unicast: (body, to) => send(body, to),
      onMessage: (h) => {
        slot.handler = h;
      },
      close: () => {
        slot.up = false;
      },
    };
  }
}

interface Rig {
  clock: ManualClock;
  table: FakeTable;
  agents: Agent[];
  wellKnown: number;
  /** Advances the manual clock in steps, letting promises (and real sockets) settle between. */
  advance(ms: number): Promise<void>;
}

/** Another program on a port (what a user's own web server on 8080 would be). */
async function squat(port: number): Promise<() => Promise<void>> {
  const server = createServer((_req, res) => res.end('somebody else'));
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return () => new Promise<void>((r) => server.close(() => r()));
}

async function rig(o: { beforeStart?: (portalPorts: number[]) => Promise<void> } = {}): Promise<Rig> {
  const clock = new ManualClock(1_000_000);
  const table = new FakeTable();
  const hub = new Hub(clock);
  const wellKnown = await freeTcpPort();
  const agents: Agent[] = [];
  const portalPorts: number[] = [];
  for (const [i, address] of ADDRS.entries()) {
    const httpPort = await freeTcpPort();
    const portalPort = await freeTcpPort();
    portalPorts.push(portalPort);
    const mapper = new FakeMapper(table, address);
    const discover = async (): Promise<Discovery> => ({ gateway: mapper.gateway, localAddress: address, probes: [], failures: [], mappers: [mapper] });
    const opts: AgentOptions = {
      name: `cam-${i}`,
      id: `node${i}`,
      // At start every node asks the router at the same instant of the manual clock, and the
      // table grants the first asked (node0); the heir is then the device rule's pick. Nothing
      // here depends on a random draw.
      deviceValue: `device-${i}`,
      address,
      gateway: mapper.gateway,
      listenAddress: '127.0.0.1',
      httpPort,
      portalPort,
      wellKnownPort: wellKnown,
      router: { protocols: ['upnp'], discoveryTimeoutMs: 1000, requestTimeoutMs: 1000, ssdpPort: 1900, natpmpPort: 5351, multicast: false },
      lan: { mode: 'unicast', group: '239.255.70.68', port: 4862, peers: ADDRS, secret: 'wiring test secret' },
      election: { rule: 'device' },
      portal: { password: 'wiring-test-password', lanOpen: false },
    };
    const lan = (self: Sender) => hub.transport(address, self);
    agents.push(new Agent({ clock, logger: silentLogger, random: () => 0.5, discover, lan }, opts));
  }
  await o.beforeStart?.(portalPorts);
  const advance = async (ms: number) => {
    for (let t = 0; t < ms; t += 10) {
      clock.advance(Math.min(10, ms - t));
      await new Promise<void>((r) => setImmediate(r));
    }
  };
  return { clock, table, agents, wellKnown, advance };
}

async function portalAnswers(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

async function realUntil(cond: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('agents on the manual clock (fake router, in-memory LAN)', () => {
  const stops: Array<() => Promise<void>> = [];
  after(async () => {
    for (const s of stops) await s();
  });

  it('one representative, every page mapped, every list full, the table and WAN address from the router session', async () => {
    const r = await rig();
    stops.push(() => Promise.all(r.agents.map((a) => a.stop({ graceful: false }))).then(() => {}));
    await Promise.all(r.agents.map((a) => a.start()));
    await r.advance(8_000);
    const st = r.agents.map((a) => a.status());
    assert.deepEqual(
      st.map((s) => s.role),
      ['representative', 'follower', 'follower'],
    );
    for (const s of st) {
      assert.equal(s.nodes.length, 3, `${s.name} lists every node`);
      assert.equal(s.wanAddress, '203.0.114.1');
      assert.equal(s.wanAddressClass, 'public');
      assert.equal(s.representative?.id, 'node0');
      assert.equal(s.representative?.url, `http://203.0.114.1:${r.wellKnown}/`);
      assert.ok(s.ports.public > 0 && s.ports.public !== r.wellKnown, `${s.name}'s own port ${s.ports.public}`);
      assert.equal(s.router.protocol, 'upnp-igd2');
      assert.equal(s.router.error, null);
    }
    // Each node's own port as the others list it is the one the router gave it.
    for (const s of st) for (const n of s.nodes) assert.equal(n.publicPort, st.find((x) => x.id === n.id)?.ports.public);
    assert.ok(st[0]!.routerMappings?.some((m) => m.externalPort === r.wellKnown && m.internalClient === ADDRS[0]));
    assert.equal(st[1]!.routerMappings, null);
    assert.equal(r.table.entries.get(`TCP/${r.wellKnown}`)?.internalClient, ADDRS[0]);
    await realUntil(() => portalAnswers(st[0]!.ports.portal), 'the portal on the representative');
    assert.equal(await portalAnswers(st[1]!.ports.portal), false, 'no portal on a follower');
  });

  it('a new WAN address reaches every node within one router check; a flushed table is claimed again', async () => {
    const r = await rig();
    stops.push(() => Promise.all(r.agents.map((a) => a.stop({ graceful: false }))).then(() => {}));
    await Promise.all(r.agents.map((a) => a.start()));
    await r.advance(8_000);
    r.table.wanAddress = '198.51.100.7';
    await r.advance(10_500);
    assert.deepEqual(
      r.agents.map((a) => a.status().wanAddress),
      ['198.51.100.7', '198.51.100.7', '198.51.100.7'],
    );
    r.table.flush();
    await r.advance(10_500);
    assert.equal(r.table.entries.get(`TCP/${r.wellKnown}`)?.internalClient, ADDRS[0], 'the representative claimed the port again');
    for (const a of r.agents) assert.ok(r.table.entries.has(`TCP/${a.status().ports.public}`), `${a.status().name}'s page mapped again`);
    assert.equal(r.agents.filter((a) => a.role === 'representative').length, 1);
  });

  it('a node whose portal port another program holds never takes the well-known port, says so, and may again once the port is free', async () => {
    let release: (() => Promise<void>) | undefined;
    const r = await rig({
      beforeStart: async (ports) => {
        release = await squat(ports[0]!);
      },
    });
    stops.push(() => Promise.all(r.agents.map((a) => a.stop({ graceful: false }))).then(() => {}));
    await Promise.all(r.agents.map((a) => a.start()));
    await r.advance(8_000);
    const [first, ...rest] = r.agents as [Agent, ...Agent[]];
    assert.equal(first.role, 'follower', 'the first to ask would have won the port');
    assert.match(first.status().portalError ?? '', /in use/);
    assert.equal(rest.filter((a) => a.role === 'representative').length, 1);
    assert.notEqual(r.table.entries.get(`TCP/${r.wellKnown}`)?.internalClient, ADDRS[0]);
    assert.equal(first.status().nodes.length, 3, 'it stays a listed member');
    await release!();
    await r.advance(31_000);
    assert.equal(first.status().portalError, null);
  });

  it('a representative whose portal will not open gives the role up at once: the port goes to another node, which serves it', async () => {
    const r = await rig();
    stops.push(() => Promise.all(r.agents.map((a) => a.stop({ graceful: false }))).then(() => {}));
    await Promise.all(r.agents.map((a) => a.start()));
    // After the start's check, before the first claim: the port is taken under the node's feet.
    const release = await squat(r.agents[0]!.status().ports.portal);
    stops.push(release);
    await r.advance(8_000);
    const first = r.agents[0]!;
    assert.equal(first.role, 'follower');
    assert.match(first.status().portalError ?? '', /already in use/);
    const rep = r.agents.find((a) => a.role === 'representative');
    assert.ok(rep && rep !== first, 'another node is representative');
    assert.equal(r.table.entries.get(`TCP/${r.wellKnown}`)?.internalClient, ADDRS[r.agents.indexOf(rep)], 'the router maps the port to it');
    await realUntil(() => portalAnswers(rep.status().ports.portal), "the new representative's portal");
    assert.deepEqual(
      first.status().nodes.map((n) => n.id),
      ['node0', 'node1', 'node2'],
      'the node that gave up stays listed everywhere',
    );
    for (const a of r.agents) assert.equal(a.status().nodes.length, 3, `${a.status().name} lists all three`);
  });

  it('a graceful stop hands the port and the portal to the heir; start twice is one start; stop releases what it kept', async () => {
    const r = await rig();
    stops.push(() => Promise.all(r.agents.map((a) => a.stop({ graceful: false }))).then(() => {}));
    const first = r.agents[0]!;
    const twice = [first.start(), first.start()];
    assert.equal(twice[0], twice[1]);
    await Promise.all([...twice, ...r.agents.slice(1).map((a) => a.start())]);
    await r.advance(8_000);
    assert.equal(first.role, 'representative');
    const ownPort = first.status().ports.public;
    const portal = first.status().ports.portal;
    await realUntil(() => portalAnswers(portal), 'the first portal');
    const stopping = first.stop({ graceful: true });
    await r.advance(3_000);
    await stopping;
    assert.equal(first.role, 'stopped');
    assert.equal(r.table.entries.has(`TCP/${ownPort}`), false, "the stopped node's own port was released");
    assert.equal(await portalAnswers(portal), false, 'the old portal is closed');
    await r.advance(2_000);
    // The device rule's heir: the lowest device rank among the others.
    const heirIndex = [1, 2].sort((a, b) => (deviceRank(`device-${a}`) < deviceRank(`device-${b}`) ? -1 : 1))[0]!;
    const heir = r.agents[heirIndex]!;
    assert.equal(heir.role, 'representative');
    assert.equal(r.table.entries.get(`TCP/${r.wellKnown}`)?.internalClient, ADDRS[heirIndex]);
    await realUntil(() => portalAnswers(heir.status().ports.portal), "the heir's portal");
    await r.advance(25_000);
    assert.deepEqual(
      heir.status().nodes.map((n) => n.id),
      ['node1', 'node2'],
      'the stopped node left the list',
    );
  });
});
