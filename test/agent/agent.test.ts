import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent.js';
import type { AgentOptions } from '../../src/agent/agent.js';
import { RouterEmulator } from '../../src/router/emulator/router-emulator.js';
import { systemClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/log.js';
import type { NodeStatus, PeerStatus } from '../../src/portal/status.js';
import { Camera } from '../../src/camera/camera.js';
import { jpegDimensions } from '../../src/camera/jpeg-info.js';
import { placeholderJpeg } from '../../src/camera/placeholder.js';
import type { Capture, CaptureSink, FrameSource } from '../../src/camera/source.js';
import { freeTcpPorts, freeUdpPort } from '../helpers/free-port.js';

/** A camera that makes real (small, grayscale) JPEGs in process: the agent's wiring, not ffmpeg, is under test here. */
class DrawnSource implements FrameSource {
  readonly kind = 'test' as const;
  readonly label = 'drawn frames';
  running = 0;
  open(sink: CaptureSink): Capture {
    this.running++;
    let n = 0;
    const t = setInterval(() => sink.frame(placeholderJpeg({ width: 160, height: 90, lines: [`frame ${n++}`] })), 100);
    return {
      stop: async () => {
        clearInterval(t);
        this.running--;
      },
    };
  }
}

/**
 * Three agents with all their real parts (UPnP client, authenticated UDP, election, HTTP) against
 * the embedded router on loopback, which forwards its WAN address's ports for real. The same
 * scenarios on miniupnpd in namespaces are in agent-real.test.ts.
 */

const ADDRS = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
const WAN = '127.0.1.1';

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const PASSWORD = 'agent-test-password';

async function get(url: string): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(url, { headers: { authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` }, signal: AbortSignal.timeout(2000) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

describe('agents on loopback behind the embedded router', () => {
  const cleanup: Array<() => unknown> = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('one representative serves the portal on the well-known port; every link answers with its node; a graceful stop hands over to the heir', async () => {
    const emu = new RouterEmulator({ address: '127.0.0.1', wanAddress: WAN, forward: true, upSeconds: 3600 });
    await emu.start();
    cleanup.push(() => emu.stop());
    // Ports off the usual ones so a developer's own 8080 does not matter.
    const [publicPort, httpPort] = (await freeTcpPorts(2)) as [number, number];
    const lanPort = await freeUdpPort();
    const secret = randomBytes(8).toString('hex');
    const names = ['garden', '<script>alert(1)</script>', 'porch'];
    // garden is a camera node.
    const source = new DrawnSource();
    const camera = new Camera({ clock: systemClock, logger: silentLogger }, { source, width: 160, height: 90, fps: 10, idleMs: 0, alwaysOn: false });
    const agents = ADDRS.map((address, i) => {
      const opts: AgentOptions = {
        name: names[i]!,
        id: `node${i}`,
        deviceValue: `device-${i}`,
        address,
        gateway: '127.0.0.1',
        listenAddress: address,
        httpPort,
        portalPort: publicPort,
        wellKnownPort: publicPort,
        router: { protocols: ['upnp'], discoveryTimeoutMs: 2000, requestTimeoutMs: 1000, ssdpPort: emu.ports.ssdp, natpmpPort: emu.ports.pmp, multicast: false },
        lan: { mode: 'unicast', group: '239.255.70.68', port: lanPort, peers: ADDRS, secret, bindAddress: address },
        // A long lease: a takeover that waited for the old one (no withdraw, no release) would
        // miss the graceful case's deadline below by far.
        election: { leaseMs: 60_000, routerTimeoutMs: 1000, retryIntervalMs: 300, inquiryIntervalMs: 200, silenceTimeoutMs: 1000, leaderlessTimeoutMs: 1000, startupListenMs: 700, probeIntervalMs: 200, probeTimeoutMs: 150 },
        allowLoopbackWan: true,
        portal: { password: PASSWORD, lanOpen: false },
        ...(i === 0 ? { camera: { camera, wanFps: 0 } } : {}),
      };
      return new Agent({ clock: systemClock, logger: silentLogger }, opts);
    });
    for (const a of agents) {
      cleanup.push(() => a.stop({ graceful: false }));
      await a.start();
    }
    const statuses = () => agents.map((a) => a.status());
    await until(() => {
      const st = statuses();
      return st.filter((s) => s.role === 'representative').length === 1 && st.every((s) => s.ports.public > 0 && s.nodes.length === 3 && s.wanAddress === WAN);
    }, 'one representative, every page mapped, full directories');

    // No node's own page was given the well-known port.
    const pages = statuses().map((s) => s.ports.public);
    assert.ok(!pages.includes(publicPort), `page ports ${pages}`);
    assert.equal(new Set(pages).size, 3);

    const portal = await get(`http://${WAN}:${publicPort}/`);
    assert.equal(portal.status, 200);
    assert.match(portal.type, /text\/html/);
    for (const n of names.filter((x) => !x.startsWith('<'))) assert.ok(portal.body.includes(n), n);
    // A name is text, never markup.
    assert.ok(!portal.body.includes('<script>alert(1)</script>'));
    assert.ok(portal.body.includes('&#60;script&#62;alert(1)&#60;/script&#62;'));

    const nodes = JSON.parse((await get(`http://${WAN}:${publicPort}/api/nodes`)).body) as PeerStatus[];
    assert.deepEqual(nodes.map((n) => n.name).sort(), [...names].sort());
    for (const n of nodes) {
      assert.ok(n.url, `${n.name} has a public link`);
      const st = JSON.parse((await get(`${n.url}api/status`)).body) as NodeStatus;
      assert.equal(st.name, n.name, `the link ${n.url} answers with its own node`);
    }

    // The camera node says so on the LAN: every node's list marks garden, and only garden.
    for (const st of statuses()) {
      assert.deepEqual(st.nodes.filter((n) => n.camera).map((n) => n.name), ['garden'], `${st.name}'s list`);
      assert.equal(st.camera === null, st.name !== 'garden');
    }
    // Its picture through the router's WAN side, behind the login; the portal's card shows it.
    const garden = nodes.find((n) => n.name === 'garden')!;
    const refused = await fetch(`${garden.url}camera.jpg`, { signal: AbortSignal.timeout(2000) });
    assert.equal(refused.status, 401);
    const snap = await fetch(`${garden.url}camera.jpg`, { headers: { authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` }, signal: AbortSignal.timeout(5000) });
    assert.equal(snap.status, 200);
    assert.deepEqual(jpegDimensions(Buffer.from(await snap.arrayBuffer())), { width: 160, height: 90, components: 1 });
    const page = await fetch(`http://${WAN}:${publicPort}/`, { headers: { authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` } });
    const html = await page.text();
    assert.equal(html.match(/<img class="thumb"/g)?.length, 1);
    assert.ok(html.includes(`src="${garden.url}camera.jpg"`));
    assert.ok(page.headers.get('content-security-policy')?.includes(`img-src 'self' data: ${new URL(garden.url!).origin}`));
    await until(() => source.running === 0, 'the capture to stop when nobody watches (idle 0)', 3000);

    // Graceful stop: the heir the representative named takes over, the portal keeps answering.
    const repIndex = agents.findIndex((a) => a.role === 'representative');
    const rep = agents[repIndex]!;
    await rep.stop({ graceful: true });
    const rest = agents.filter((a) => a !== rep);
    await until(() => rest.some((a) => a.role === 'representative'), 'another representative (without waiting out the 60 s lease)', 15_000);
    await until(async () => {
      try {
        const list = JSON.parse((await get(`http://${WAN}:${publicPort}/api/nodes`)).body) as PeerStatus[];
        return list.length === 2 && !list.some((n) => n.id === rep.id);
      } catch {
        return false;
      }
    }, 'the new portal to list the two nodes left', 8000);
    assert.equal(rest.filter((a) => a.role === 'representative').length, 1);
  });
});
