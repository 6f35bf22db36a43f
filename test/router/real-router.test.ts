import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { canRunTestbed, createTestbed, type Testbed, type TestbedMode } from '../testbed/testbed.js';
import type { Net, Step, StepResult } from './fixtures/router-ops.js';

/**
 * The router layer against Debian's miniupnpd in network namespaces (test/testbed): every
 * protocol, every router mode, the quirks a real router has, and `frontdoor doctor` as a user
 * runs it on a LAN host.
 */

const can = canRunTestbed();
const skip = can.ok ? false : `needs root and network namespaces: ${can.reason}`;
const OPS = new URL('./fixtures/router-ops.js', import.meta.url);
const KEEPER = fileURLToPath(new URL('./fixtures/keeper-child.js', import.meta.url));
const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

const req = (port: number, leaseSeconds = 60) => ({
  externalPort: port,
  internalPort: port,
  protocol: 'TCP' as const,
  leaseSeconds,
  description: 'frontdoor real-router test',
});

function net(tb: Testbed, host: number, protocol?: Net['protocol']): Net {
  return { gateway: tb.gateway, localAddress: tb.hosts[host]!.address, ...(protocol ? { protocol } : {}) };
}

async function steps(tb: Testbed, host: number, protocol: Net['protocol'], s: Step[]) {
  return tb.call<{ protocol: string; results: StepResult[] }>(tb.hosts[host]!, OPS, 'routerSteps', [net(tb, host, protocol), s], {
    timeoutMs: 20_000,
  });
}

function value<T>(r: StepResult | undefined): T {
  assert.ok(r && 'value' in r, `expected a value, got ${JSON.stringify(r)}`);
  return r.value as T;
}
function error(r: StepResult | undefined): { name: string; [k: string]: unknown } {
  assert.ok(r && 'error' in r, `expected an error, got ${JSON.stringify(r)}`);
  return r.error;
}

/** The router's table as miniupnpd itself reports it, through the reference client. */
async function upnpTable(tb: Testbed): Promise<string> {
  const r = await tb.exec(tb.hosts[2]!, ['upnpc', '-u', tb.rootDescUrl, '-l'], { check: false });
  return r.stdout;
}

/**
 * Every line a child prints, kept from its start: events that arrive together in one chunk (a
 * reset, the loss and the re-claim) are each seen by the wait that asks for them, in order.
 */
function lines(child: ChildProcess) {
  const all: string[] = [];
  let partial = '';
  let cursor = 0;
  const waiters = new Set<() => void>();
  child.stdout?.on('data', (c: Buffer) => {
    const parts = (partial + c.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    all.push(...parts);
    for (const w of waiters) w();
  });
  return {
    /** The next line from the cursor on that matches; the cursor moves past it. */
    next(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (let i = cursor; i < all.length; i++) {
            if (pattern.test(all[i]!)) {
              cursor = i + 1;
              waiters.delete(check);
              clearTimeout(timer);
              resolve(all[i]!);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; output:\n${all.join('\n')}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

async function doctor(tb: Testbed, host: number, args: string[] = []) {
  const r = await tb.exec(tb.hosts[host]!, ['node', CLI, 'doctor', '--json', ...args], { check: false, timeoutMs: 30_000 });
  return { code: r.code, report: JSON.parse(r.stdout) as Record<string, unknown> & { status: string; verdict: string } };
}

describe('real router: IGDv2 with NAT-PMP and PCP (miniupnpd, secure mode)', { skip, concurrency: false }, () => {
  let tb: Testbed;
  before(async () => {
    tb = await createTestbed({ mode: 'igd2', hosts: 3 });
  });
  after(async () => {
    await tb?.close();
  });

  it('discovery finds UPnP IGD v2, PCP and NAT-PMP, best first', async () => {
    const d = await tb.call<{ probes: string[]; failures: string[] }>(tb.hosts[0]!, OPS, 'discoverOnly', [net(tb, 0)]);
    assert.deepEqual(d.probes, ['upnp-igd2', 'pcp', 'natpmp']);
    assert.deepEqual(d.failures, []);
  });

  for (const protocol of ['upnp', 'natpmp', 'pcp'] as const) {
    it(`${protocol}: the well-known port is a lock held by one host; the others get a conflict and another port`, async () => {
      const port = { upnp: 8080, natpmp: 8180, pcp: 8280 }[protocol];
      const a = await steps(tb, 0, protocol, [{ op: 'claim', req: req(port) }, { op: 'externalAddress' }]);
      assert.equal(value<{ externalPort: number }>(a.results[0]).externalPort, port);
      assert.equal(value(a.results[1]), tb.wanAddress);
      const b = await steps(tb, 1, protocol, [
        { op: 'claim', req: req(port) },
        { op: 'claimAny', req: req(port) },
      ]);
      const conflict = error(b.results[0]);
      assert.equal(conflict.name, 'PortConflictError');
      assert.equal(conflict.externalPort, port);
      const other = value<{ externalPort: number; internalClient: string }>(b.results[1]);
      assert.notEqual(other.externalPort, port);
      assert.equal(other.internalClient, tb.hosts[1]!.address);
      // The router's own table: the port still maps to the first host, and no stray mapping from
      // the conflicting NAT-PMP/PCP answer was left behind.
      const table = await upnpTable(tb);
      assert.match(table, new RegExp(`TCP\\s+${port}->${tb.hosts[0]!.address.replace(/\./g, '\\.')}:${port}`));
      assert.equal((table.match(new RegExp(`->${tb.hosts[1]!.address.replace(/\./g, '\\.')}:${port}\\b`, 'g')) ?? []).length, 1);
    });
  }

  it('renewal by the holder succeeds; release frees the port for another host (UPnP)', async () => {
    const a = await steps(tb, 0, 'upnp', [
      { op: 'claim', req: req(8380) },
      { op: 'claim', req: req(8380) },
      { op: 'release', externalPort: 8380 },
    ]);
    assert.ok(a.results.every((r) => 'value' in r), JSON.stringify(a.results));
    const b = await steps(tb, 1, 'upnp', [{ op: 'claim', req: req(8380) }, { op: 'release', externalPort: 8380 }]);
    assert.equal(value<{ internalClient: string }>(b.results[0]).internalClient, tb.hosts[1]!.address);
  });

  it('a PCP mapping is renewed and released by the same client', async () => {
    const a = await steps(tb, 0, 'pcp', [
      { op: 'claim', req: req(8480, 60) },
      { op: 'claim', req: req(8480, 60) },
      { op: 'release', externalPort: 8480 },
    ]);
    const first = value<{ externalPort: number; leaseSeconds: number }>(a.results[0]);
    assert.equal(first.externalPort, 8480);
    // miniupnpd raises a 60 s PCP lifetime to 120 s (measured): we report what was granted.
    assert.ok(first.leaseSeconds >= 60, `lease ${first.leaseSeconds}`);
    assert.ok('value' in a.results[2]!, JSON.stringify(a.results[2]));
    assert.doesNotMatch(await upnpTable(tb), /TCP\s+8480->/);
  });

  it('lists the whole table over UPnP, and NAT-PMP/PCP say they cannot', async () => {
    const u = await steps(tb, 0, 'upnp', [{ op: 'list' }]);
    const list = value<Array<{ externalPort: number; internalClient: string; description: string }>>(u.results[0]);
    assert.ok(list.some((m) => m.externalPort === 8080 && m.internalClient === tb.hosts[0]!.address));
    // Mappings NAT-PMP made show in the UPnP table with miniupnpd's own description.
    assert.ok(list.some((m) => m.externalPort === 8180 && /NAT-PMP/.test(m.description)), JSON.stringify(list));
    for (const protocol of ['natpmp', 'pcp'] as const) {
      const r = await steps(tb, 0, protocol, [{ op: 'list' }]);
      assert.equal(error(r.results[0]).name, 'ListingUnsupportedError');
    }
  });

  it('ports below 1024 are refused with a typed error', async () => {
    const r = await steps(tb, 0, 'upnp', [{ op: 'claim', req: req(80) }]);
    assert.equal(error(r.results[0]).name, 'PortRefusedError');
  });

  it('frontdoor doctor on a LAN host: protocols, public WAN address, a test claim, the table; exit 0', async () => {
    const { code, report } = await doctor(tb, 2);
    assert.equal(code, 0, report.verdict);
    assert.equal(report.status, 'ok');
    assert.equal(report.using, 'upnp-igd2');
    assert.equal(report.wanAddress, tb.wanAddress);
    assert.equal(report.wanAddressClass, 'public');
    const claim = report.testClaim as { ok: boolean; listed: boolean; released: boolean };
    assert.deepEqual([claim.ok, claim.listed, claim.released], [true, true, true]);
    assert.deepEqual(report.publicPort, { port: 8080, holder: tb.hosts[0]!.address, description: 'frontdoor real-router test', free: false });
    const text = await tb.exec(tb.hosts[2]!, ['node', CLI, 'doctor'], { check: false, timeoutMs: 30_000 });
    assert.equal(text.code, 0);
    assert.match(text.stdout, /UPnP IGD\s+answered in \d+ ms \(UPnP IGD v2\)/);
    assert.match(text.stdout, /WAN address\s+203\.0\.114\.1 \(public/);
    assert.match(text.stdout, /^OK: Port mapping works/m);
    // The ACME challenge port: 80 is below the router's allow range (606), a high one is granted
    // and released again; neither changes the verdict.
    assert.equal((report.challengePort as { port: number; ok: boolean }).port, 80);
    assert.equal((report.challengePort as { ok: boolean }).ok, false);
    assert.match(text.stdout, /^ACME port\s+80 refused \(.*\): no trusted certificate; the fleet serves its own/m);
    const high = await doctor(tb, 2, ['--acme-challenge-port', '5080']);
    assert.equal(high.code, 0);
    assert.deepEqual(high.report.challengePort, { port: 5080, ok: true });
    const rules = await tb.routerRules();
    assert.ok(!rules.some((r) => r.includes('dport 5080')), 'released again');
    const off = await doctor(tb, 2, ['--acme', 'off']);
    assert.equal(off.report.challengePort, undefined, 'not asked with --acme off');
  });

  it('router reboot: NAT-PMP sees the epoch go back and the keeper claims the port again', async () => {
    // The epoch must have grown enough for a restart to show as a step back (RFC 6886 3.6).
    await new Promise((r) => setTimeout(r, 4000));
    const child = tb.spawn(tb.hosts[0]!, ['node', KEEPER, tb.gateway, tb.hosts[0]!.address, 'natpmp', '8580']);
    const out = lines(child);
    await out.next(/"type":"ready"/);
    await tb.restartRouter();
    // No look at the table here: on a busy machine the keeper has claimed the port again before
    // upnpc lists it. That the restart emptied the table is testbed.test.ts's to check; the
    // keeper's router-reset is what tells it saw the epoch go back.
    await out.next(/"type":"router-reset"/);
    await out.next(/"type":"renewed","port":8580/);
    assert.match(await upnpTable(tb), /TCP\s+8580->192\.168\.77\.10:8580/);
    child.kill('SIGTERM');
  });

  it('router reboot seen over UPnP (mapping missing from the table), then a WAN address change: both re-claim', async () => {
    const child = tb.spawn(tb.hosts[1]!, ['node', KEEPER, tb.gateway, tb.hosts[1]!.address, 'upnp', '8680']);
    const out = lines(child);
    await out.next(/"type":"ready","protocol":"upnp-igd2"/);
    await tb.restartRouter();
    await out.next(/"type":"lost"/);
    await out.next(/"type":"renewed","port":8680/);
    assert.match(await upnpTable(tb), /TCP\s+8680->192\.168\.77\.11:8680/);
    await tb.setWanAddress('203.0.115.1');
    await out.next(/"type":"wan-changed","to":"203\.0\.115\.1"/);
    await out.next(/"type":"renewed","port":8680/);
    child.kill('SIGTERM');
  });
});

describe('real router: other modes', { skip, concurrency: false }, () => {
  let tb: Testbed;
  before(async () => {
    tb = await createTestbed({ mode: 'igd1', hosts: 3 });
  });
  after(async () => {
    await tb?.close();
  });

  async function mode(m: TestbedMode) {
    if (tb.mode !== m) await tb.reconfigure(m);
  }

  it('partial IGDv1 (force_igd_desc_v1): claims and lists as IGD v1', async () => {
    await mode('igd1');
    const r = await steps(tb, 0, 'upnp', [{ op: 'claim', req: req(8080) }, { op: 'list' }, { op: 'release', externalPort: 8080 }]);
    assert.equal(r.protocol, 'upnp-igd1');
    assert.ok(value<unknown[]>(r.results[1]).length >= 1);
    const { code, report } = await doctor(tb, 1);
    assert.equal(code, 0, report.verdict);
  });

  it('NAT-PMP/PCP only: discovery does not wait for UPnP, doctor says the table cannot be listed; exit 0', async () => {
    await mode('pmp-only');
    const d = await tb.call<{ probes: string[] }>(tb.hosts[0]!, OPS, 'discoverOnly', [net(tb, 0)]);
    assert.deepEqual(d.probes, ['pcp', 'natpmp']);
    const { code, report } = await doctor(tb, 0);
    assert.equal(code, 0, report.verdict);
    assert.equal(report.using, 'pcp');
    assert.match(String(report.listingNote), /cannot list/);
  });

  it('secure_mode=no: a host may map a port to another host', async () => {
    await mode('insecure');
    const r = await steps(tb, 0, 'upnp', [
      { op: 'claim', req: { ...req(8780), internalClient: tb.hosts[1]!.address } },
      { op: 'release', externalPort: 8780 },
    ]);
    assert.equal(value<{ internalClient: string }>(r.results[0]).internalClient, tb.hosts[1]!.address);
  });

  for (const m of ['cgnat', 'private-wan'] as const) {
    it(`${m}: the WAN address is not public: doctor exits 4 with a sentence a user understands`, async () => {
      await mode(m);
      const { code, report } = await doctor(tb, 0);
      assert.equal(code, 4, JSON.stringify(report));
      assert.equal(report.status, 'double-nat');
      assert.match(report.verdict, /internet cannot reach it/);
      assert.match(report.verdict, m === 'cgnat' ? /carrier-grade NAT/ : /private/);
    });
  }

  it('no port-mapping service: doctor exits 3 and says to enable UPnP or NAT-PMP', async () => {
    await mode('none');
    const { code, report } = await doctor(tb, 0, ['--discovery-timeout', '1500ms']);
    assert.equal(code, 3, JSON.stringify(report));
    assert.equal(report.status, 'no-gateway');
    assert.match(report.verdict, /enable UPnP IGD or NAT-PMP in the router settings/);
  });
});
