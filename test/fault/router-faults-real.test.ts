import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AVAILABILITY_DEFINITION } from '../../bench/soak/availability.js';
import type { Availability } from '../../bench/soak/availability.js';
import { monoMs, PortalPoller } from '../../bench/soak/poller.js';
import type { NodeStatus } from '../../src/portal/status.js';
import { waitUntil } from '../agent/fixtures/fleet.js';
import { canRunTestbed, createTestbed, type Testbed } from '../testbed/testbed.js';
import { FaultFleet, note, works } from './fixtures/fault-fleet.js';
import { intact, keepsake, pagesBack } from './fixtures/invariants.js';

/**
 * Faults of the network around a running fleet of three (`frontdoor run` in the real-router test
 * bed): the router rebooted five times in a row, the router powered off and back, the provider
 * changing the WAN address, a lossy LAN. agent-real.test.ts already covers one router reboot, a
 * pulled cable and crashes; these are the harsher versions. A poller in the WAN namespace asks
 * for the portal every 200 ms throughout; its availability and outages are logged. Each case ends
 * with `intact`: portal reachable, one representative all agree on, nothing lost.
 */

const can = canRunTestbed();
const skip = !can.ok
  ? `needs root and network namespaces: ${can.reason}`
  : !works(['curl', '--version'])
    ? 'needs curl (apt install curl): every HTTP request is made inside a namespace'
    : false;
const SECRET = 'fault-real-test-fleet-secret-8d1e4b7a2c';
const NODES = [0, 1, 2];
/**
 * How long the router stays off. The issue says a minute; CI uses 25 s so that the whole fault
 * suite stays under its time budget. 25 s is already four times the fleet's 6 s lease: every
 * mapping and every claim has lapsed by the time it comes back, which is what a minute tests.
 */
const ROUTER_OFF_MS = Number(process.env['FRONTDOOR_FAULT_ROUTER_OFF_MS'] ?? 25_000);

function report(label: string, a: Availability): void {
  note(
    `${label}: portal availability ${a.availabilityPct.toFixed(1)} % (${a.good}/${a.polls}), ` +
      `outages ${a.outages.length} (max ${Math.round(a.maxOutageMs)} ms${a.outages.some((o) => o.open) ? ', one still open' : ''}), ` +
      `representative changes seen ${a.changes.length}${a.changes.length ? ` (${a.changes.map((c) => `${c.from}→${c.to}`).join(' ')})` : ''}, ` +
      `errors ${JSON.stringify(a.errors)}`,
  );
}

/** Role changes of every live node since `since` (/api/status events, "from → to: reason"). */
async function roleChanges(fleet: FaultFleet, sinceIso: string): Promise<string[]> {
  const st = await fleet.statuses();
  return [...st.entries()].flatMap(([i, s]) => (s?.events ?? []).filter((e) => e.at >= sinceIso).map((e) => `h${i + 1} ${e.at.slice(11, 19)} ${e.what}`));
}

describe('fault: the network around a fleet of three', { skip, concurrency: false }, () => {
  let tb: Testbed;
  let fleet: FaultFleet;
  let poller: PortalPoller;

  before(async () => {
    tb = await createTestbed({ mode: 'igd2', hosts: 3 });
    fleet = new FaultFleet(tb, { secret: SECRET });
    fleet.startAll(NODES);
    await fleet.settled(25_000);
    poller = new PortalPoller(tb, { url: fleet.wanUrl('/api/status'), password: fleet.password });
    await poller.ready();
    note(AVAILABILITY_DEFINITION);
  });
  after(async () => {
    await poller?.stop();
    await fleet?.stopAll();
    await tb?.close();
  });

  it('router rebooted (mappings flushed) five times, 3 s apart: the portal and every page come back', async () => {
    const k = await keepsake(fleet);
    const { rep } = await fleet.settled(10_000);
    const t0 = monoMs();
    const iso = new Date().toISOString();
    for (let n = 0; n < 5; n++) {
      await tb.restartRouter({ flush: true });
      await new Promise((r) => setTimeout(r, 3000));
    }
    const restarted = monoMs();
    const after = await intact(fleet, k, { timeoutMs: 30_000 });
    await pagesBack(fleet, 45_000);
    const back = monoMs();
    report(`5 router reboots (representative ${rep} before, ${after.rep} after)`, poller.summary(t0, back));
    note(`5 router reboots: last reboot → every node page answers from the WAN in ${Math.round(back - restarted)} ms; role changes: ${(await roleChanges(fleet, iso)).join('; ') || 'none'}`);
  });

  it(`router off (daemon, rules, WAN and LAN links down) for ${ROUTER_OFF_MS / 1000} s and back: one representative, portal back`, async () => {
    const k = await keepsake(fleet);
    const iso = new Date().toISOString();
    const t0 = monoMs();
    // A power cut: miniupnpd gone with its rules, no internet, and the LAN switch (the bridge) down,
    // so the nodes do not hear each other either.
    await tb.stopRouter({ flush: true });
    await tb.exec(tb.router, ['ip', 'link', 'set', tb.router.wanIfname, 'down'], { check: true });
    await tb.exec(tb.router, ['ip', 'link', 'set', tb.router.lanIfname, 'down'], { check: true });
    let on = false;
    try {
      await new Promise((r) => setTimeout(r, ROUTER_OFF_MS));
      // Every node keeps running through it.
      fleet.assertNoCrash();
      const off = await fleet.statuses();
      note(`router off ${ROUTER_OFF_MS} ms: roles ${[...off.entries()].map(([i, s]) => `h${i + 1}=${s?.role ?? 'no answer'}`).join(' ')}`);
    } finally {
      await tb.exec(tb.router, ['ip', 'link', 'set', tb.router.lanIfname, 'up'], { check: true });
      await tb.exec(tb.router, ['ip', 'link', 'set', tb.router.wanIfname, 'up'], { check: true });
      await tb.startRouter();
      on = true;
    }
    assert.ok(on);
    const onAt = monoMs();
    const s = await intact(fleet, k, { timeoutMs: 40_000 });
    const portalAt = monoMs();
    await pagesBack(fleet, 45_000);
    report(`router off ${ROUTER_OFF_MS / 1000} s`, poller.summary(t0, monoMs()));
    note(
      `router back → settled with ${s.rep} in ${Math.round(portalAt - onAt)} ms, every page in ${Math.round(monoMs() - onAt)} ms; role changes: ${(await roleChanges(fleet, iso)).join('; ') || 'none'}`,
    );
  });

  it('the WAN address changes: the portal answers at the new address and every node reports it', async () => {
    const k = await keepsake(fleet);
    const old = tb.wanAddress;
    const NEW = '203.0.115.7';
    const t0 = monoMs();
    // The provider hands out another address; the internet client moves along. The poller asked
    // the old address: a new one asks the new.
    await tb.setWanAddress(NEW);
    await poller.stop();
    poller = new PortalPoller(tb, { url: fleet.wanUrl('/api/status'), password: fleet.password });
    await poller.ready();
    let last = '';
    await waitUntil(
      async () => {
        const st = await fleet.statuses();
        last = [...st.entries()].map(([i, s]) => `h${i + 1}: ${s?.wanAddress ?? '-'} ${s?.nodes.map((n) => n.url).join(',')}`).join('; ');
        const all = [...st.values()].every((s) => s?.wanAddress === NEW && s.nodes.every((n) => n.url?.startsWith(`${fleet.scheme}://${NEW}:`)));
        return all ? true : undefined;
      },
      { timeoutMs: 40_000, intervalMs: 500, what: () => `every node to report WAN ${NEW} and links on it (${last})` },
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n${fleet.explain()}`);
    });
    const seen = monoMs();
    const { rep } = await intact(fleet, k, { timeoutMs: 20_000 });
    const portal = await fleet.wanJson<NodeStatus>('/api/status');
    assert.equal(portal?.wanAddress, NEW);
    assert.equal(portal?.representative?.url?.startsWith(`${fleet.scheme}://${NEW}:8080`), true, JSON.stringify(portal?.representative));
    await pagesBack(fleet, 30_000);
    // Nothing answers at the old address any more (it is nobody's now).
    const stale = await fleet.get(tb.wan, `${fleet.scheme}://${old}:8080/api/status`, 1);
    assert.equal(stale, undefined, 'the old WAN address still answers');
    report(`WAN ${old} → ${NEW}`, poller.summary(t0, monoMs()));
    note(`WAN address change → every node reports ${NEW} in ${Math.round(seen - t0)} ms (representative ${rep})`);
  });

  describe('a lossy LAN', { concurrency: false }, () => {
    // netem is a kernel module (sch_netem); kernels built without it (this container's) cannot
    // delay packets at all, but nftables can still drop them at random.
    const netem = canRunTestbed().ok && netemWorks();
    const HOLD_MS = 20_000;

    async function lossy(how: 'netem' | 'nft'): Promise<void> {
      const k = await keepsake(fleet);
      const iso = new Date().toISOString();
      const t0 = monoMs();
      const on = async (i: number) => {
        const h = tb.hosts[i]!;
        if (how === 'netem') {
          await tb.exec(h, ['tc', 'qdisc', 'add', 'dev', h.ifname, 'root', 'netem', 'loss', '20%', 'delay', '100ms', '100ms'], { check: true });
        } else {
          await tb.exec(h, ['nft', '-f', '-'], { input: NFT_LOSS(h.ifname), check: true });
        }
      };
      const offAll = async () => {
        for (const h of tb.hosts) {
          if (how === 'netem') await tb.exec(h, ['tc', 'qdisc', 'del', 'dev', h.ifname, 'root']);
          else await tb.exec(h, ['nft', 'delete', 'table', 'inet', 'fdloss']);
        }
      };
      try {
        for (const i of NODES) await on(i);
        // It may shake the election; what counts is that it settles to one while still lossy.
        await new Promise((r) => setTimeout(r, HOLD_MS));
        fleet.assertNoCrash();
        const during = await fleet.settled(45_000);
        const lossyEnd = monoMs();
        const changes = await roleChanges(fleet, iso);
        report(`LAN ${how === 'netem' ? '20 % loss + 100±100 ms delay (netem)' : '20 % loss (nftables; no jitter without netem)'} for ${Math.round((lossyEnd - t0) / 1000)} s`, poller.summary(t0, lossyEnd));
        note(`lossy LAN: settled on ${during.rep}; role changes during it: ${changes.length}${changes.length ? ` (${changes.join('; ')})` : ''}`);
      } finally {
        await offAll();
      }
      const s = await intact(fleet, k, { timeoutMs: 20_000 });
      note(`lossy LAN removed: settled on ${s.rep}`);
    }

    it('20 % loss and 200 ms jitter on every host (tc netem): one representative once it settles, portal reachable', { skip: netem ? false : 'tc netem unavailable: this kernel has no sch_netem (CONFIG_NET_SCH_NETEM); the nftables loss case runs instead' }, () =>
      lossy('netem'));

    it('20 % loss on every host (nftables numgen; netem missing): one representative once it settles, portal reachable', { skip: netem ? 'netem works here: the netem case covers loss' : false }, () =>
      lossy('nft'));
  });
});

/** Drops 20 % of what a host sends on the LAN, at random, as netem's `loss 20%` would on egress. */
function NFT_LOSS(ifname: string): string {
  return `table inet fdloss {\n  chain out { type filter hook output priority 0; policy accept; oifname "${ifname}" numgen random mod 100 < 20 drop; }\n}\n`;
}

/** Whether `tc ... netem` works in a fresh namespace (the kernel may lack sch_netem). */
function netemWorks(): boolean {
  const ns = `fdnetem${process.pid}`;
  try {
    if (!works(['ip', 'netns', 'add', ns])) return false;
    return (
      works(['ip', '-n', ns, 'link', 'add', 'n0', 'type', 'veth', 'peer', 'name', 'n1']) &&
      works(['ip', 'netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', 'n0', 'root', 'netem', 'loss', '20%', 'delay', '100ms', '100ms'])
    );
  } finally {
    works(['ip', 'netns', 'del', ns]);
  }
}
