import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, it, test } from 'node:test';
import type { TestContext } from 'node:test';
import { exited, runCommand, spawnBounded, waitForOutput } from './command.js';
import { parseNetnsList } from './netns-names.js';
import type { SsdpAnswer } from './probes.js';
import { removeStaleTestbeds } from './stale-cleanup.js';
import { canRunTestbed, createTestbed } from './testbed.js';
import type { Host, Testbed } from './testbed.js';

const IGD1 = 'urn:schemas-upnp-org:device:InternetGatewayDevice:1';
const IGD2 = 'urn:schemas-upnp-org:device:InternetGatewayDevice:2';
const probes = new URL('./probes.js', import.meta.url);
const childScript = new URL('./fixtures/testbed-child.js', import.meta.url);

const can = canRunTestbed();
const missing = ['upnpc', 'natpmpc', 'curl'].filter((t) => spawnSync('which', [t], { stdio: 'ignore' }).status !== 0);

if (!can.ok) {
  test('real-router test bed', { skip: `needs root and network namespaces: ${can.reason}` }, () => {});
} else if (missing.length > 0) {
  test('real-router test bed', { skip: `needs ${missing.join(', ')} (apt install miniupnpc natpmpc curl)` }, () => {});
} else {
  // Three independent groups in parallel; inside each, steps run in order on one test bed.
  // Independent groups in parallel, each on its own test bed; inside a group, steps run in order.
  // The slowest is upnpc's 8 s discovery that finds nothing (pmp-only).
  describe('real-router test bed', { concurrency: true }, () => {
    describe('igd2: discovery, mappings, forwarding, reboot, WAN change', { concurrency: 1 }, igd2Router);
    describe('the other modes, one router reconfigured', { concurrency: 1 }, otherModes);
    describe('pmp-only: NAT-PMP and PCP without UPnP', { concurrency: 1 }, pmpOnly);
    describe('none: a router without any port-mapping service', { concurrency: 1 }, noService);
    describe('cleanup when the test process dies', { concurrency: 1 }, cleanupAfterDeath);
  });
}

/** `upnpc` against the test bed's router; `-u` skips its 2 s discovery unless `discover`. */
function upnpc(tb: Testbed, host: Host, args: string[], discover = false) {
  return tb.exec(host, ['upnpc', ...(discover ? [] : ['-u', tb.rootDescUrl]), ...args], { timeoutMs: 20_000 });
}

function addMapping(tb: Testbed, host: Host, internal: string, port: number) {
  return upnpc(tb, host, ['-e', 'frontdoor-testbed', '-a', internal, String(port), String(port), 'TCP']);
}

function upnpErrorCode(out: string): number | undefined {
  const m = /failed with code (\d+)/.exec(out);
  return m ? Number(m[1]) : undefined;
}

function natpmpc(tb: Testbed, host: Host, args: string[] = []) {
  return tb.exec(host, ['natpmpc', '-g', tb.gateway, ...args], { timeoutMs: 20_000 });
}

function curlFromWan(tb: Testbed, port: number, maxTime = 3) {
  return tb.exec(tb.wan, ['curl', '-sS', '--max-time', String(maxTime), `http://${tb.wanAddress}:${port}/`], {
    timeoutMs: (maxTime + 5) * 1000,
  });
}

async function netnsNames(): Promise<string[]> {
  return parseNetnsList((await runCommand(['ip', 'netns', 'list'], { check: true })).stdout);
}

/** A failing step's message ends with the router's log: the first thing to read. */
async function withRouterLog(tb: Testbed | undefined, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof Error && tb) err.message += `\n\n${tb.explain()}`;
    throw err;
  }
}

function igd2Router(): void {
  let tb: Testbed;
  let server: ChildProcess | undefined;
  let requests = 0;
  let createMs = 0;
  const step = (name: string, fn: (t: TestContext) => Promise<void>) => it(name, (t) => withRouterLog(tb, () => fn(t)));

  before(async () => {
    const t0 = performance.now();
    tb = await createTestbed();
    createMs = Math.round(performance.now() - t0);
  });
  after(() => tb?.close());

  step('builds the wan client, the router and three hosts, each in its namespace', async (t) => {
    t.diagnostic(`createTestbed (3 hosts, igd2): ${createMs} ms, of which setUp ${tb.setupMs} ms`);
    const listed = await netnsNames();
    for (const n of tb.namespaces) assert.ok(listed.includes(n), `${n} missing from ip netns list`);
    assert.equal(tb.hosts.length, 3);
    assert.deepEqual(
      tb.hosts.map((h) => h.address),
      ['192.168.77.10', '192.168.77.11', '192.168.77.12'],
    );
    // ns-call runs code in the host's namespace: it sees only that host's address.
    assert.deepEqual(await tb.call(tb.hosts[1]!, probes, 'interfaceAddresses'), ['192.168.77.11']);
    const route = await tb.exec(tb.hosts[0]!, ['ip', 'route', 'show', 'default'], { check: true });
    assert.match(route.stdout, /default via 192\.168\.77\.1 dev eth0/);
    const fwd = await tb.exec(tb.router, ['sysctl', '-n', 'net.ipv4.ip_forward'], { check: true });
    assert.equal(fwd.stdout.trim(), '1');
    assert.equal(tb.wanAddress, '203.0.114.1');
    assert.equal(tb.wanClientAddress, '203.0.114.2');
    assert.ok(tb.routerPid !== undefined);
  });

  step('igd2: upnpc discovers the router and its WAN address; it answers IGD:2 searches with a v2 description', async () => {
    // upnpc spends 2 s on discovery; the other checks run meanwhile.
    const [s, answers, desc] = await Promise.all([
      upnpc(tb, tb.hosts[0]!, ['-s'], true),
      tb.call<SsdpAnswer[]>(tb.hosts[1]!, probes, 'ssdpSearch', [IGD2, { untilFirst: true }]),
      tb.exec(tb.hosts[2]!, ['curl', '-sS', '--max-time', '3', tb.rootDescUrl], { check: true }),
    ]);
    assert.equal(s.code, 0, s.stdout + s.stderr);
    assert.match(s.stdout, /Found valid IGD : http:\/\/192\.168\.77\.1:5000\//);
    assert.match(s.stdout, /ExternalIPAddress = 203\.0\.114\.1$/m);
    assert.equal(answers[0]?.st, IGD2);
    assert.equal(answers[0]?.location, tb.rootDescUrl);
    assert.match(desc.stdout, /<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2<\/deviceType>/);
    assert.match(desc.stdout, /urn:schemas-upnp-org:service:WANIPConnection:2/);
    assert.ok(desc.stdout.includes(`uuid:${tb.uuid}`), 'the description carries the test bed uuid');
  });

  step('igd2: a port maps to one host only (718), ports below 1024 are refused (606), a host maps only itself', async () => {
    const [h1, h2] = [tb.hosts[0]!, tb.hosts[1]!];
    const first = await addMapping(tb, h1, h1.address, 9000);
    assert.equal(first.code, 0, first.stdout);
    assert.match(first.stdout, /external 203\.0\.114\.1:9000 TCP is redirected to internal 192\.168\.77\.10:9000/);
    const second = await addMapping(tb, h2, h2.address, 9000);
    assert.notEqual(second.code, 0);
    assert.equal(upnpErrorCode(second.stdout), 718, second.stdout);
    const low = await addMapping(tb, h1, h1.address, 80);
    assert.equal(upnpErrorCode(low.stdout), 606, low.stdout);
    // secure_mode: h1 asking for h2's address is refused; miniupnpd says 718, not 606 (measured).
    const forOther = await addMapping(tb, h1, h2.address, 9001);
    assert.equal(upnpErrorCode(forOther.stdout), 718, forOther.stdout);
    const rules = await tb.routerRules();
    assert.equal(rules.length, 1, rules.join('\n'));
    assert.match(rules[0]!, /dport 9000 dnat ip to 192\.168\.77\.10:9000/);
  });

  step('the mapping forwards traffic from the internet client to the host; an unmapped port does not', async () => {
    server = tb.spawn(tb.hosts[0]!, [
      process.execPath,
      '-e',
      "require('node:http').createServer((q, s) => { console.log('request'); s.end('hello from h1'); }).listen(9000, () => console.log('listening'))",
    ]);
    server.stdout?.on('data', (c: Buffer) => {
      requests += c.toString().split('\n').filter((l) => l === 'request').length;
    });
    await waitForOutput(server, /^listening$/);
    const got = await curlFromWan(tb, 9000);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(got.stdout, 'hello from h1');
    assert.equal(requests, 1);
    // No mapping: the packet is for the router itself, which has nothing on 9002 and resets.
    const unmapped = await curlFromWan(tb, 9002, 2);
    assert.equal(unmapped.code, 7, `curl exit ${unmapped.code}: ${unmapped.stderr}`);
  });

  step('linkDown pulls the host cable (NO-CARRIER, nothing arrives); linkUp restores it', async () => {
    const h1 = tb.hosts[0]!;
    await tb.linkDown(h1);
    const link = await tb.exec(h1, ['ip', 'link', 'show', 'eth0'], { check: true });
    assert.match(link.stdout, /NO-CARRIER/);
    const before = requests;
    const cut = await curlFromWan(tb, 9000, 1);
    assert.equal(cut.code, 28, `expected a curl timeout, got exit ${cut.code}: ${cut.stdout}${cut.stderr}`);
    await tb.linkUp(h1);
    const back = await curlFromWan(tb, 9000);
    assert.equal(back.stdout, 'hello from h1', back.stderr);
    // The request sent while the cable was out never reached h1 (curl gave up on it).
    assert.equal(requests, before + 1);
  });

  step('NAT-PMP runs next to UPnP: natpmpc reads the WAN address, its mapping shows in the UPnP table', async () => {
    const h3 = tb.hosts[2]!;
    const pub = await natpmpc(tb, h3);
    assert.equal(pub.code, 0, pub.stdout);
    assert.match(pub.stdout, /Public IP address : 203\.0\.114\.1/);
    const map = await natpmpc(tb, h3, ['-a', '9100', '9100', 'tcp', '60']);
    assert.equal(map.code, 0, map.stdout);
    assert.match(map.stdout, /Mapped public port 9100 protocol TCP to local port 9100/);
    const list = await upnpc(tb, h3, ['-L']);
    assert.match(list.stdout, /TCP\s+9100->192\.168\.77\.12:9100\s+'NAT-PMP 9100 tcp'/);
  });

  step('restartRouter empties the table: forwarding stops and another host may take the port', async () => {
    assert.equal((await tb.routerRules()).length, 2);
    const before = tb.routerPid;
    await tb.restartRouter();
    assert.notEqual(tb.routerPid, before);
    assert.deepEqual(await tb.routerRules(), []);
    const list = await upnpc(tb, tb.hosts[0]!, ['-l']);
    assert.doesNotMatch(list.stdout, /9000->|9100->/);
    const refused = await curlFromWan(tb, 9000, 2);
    assert.equal(refused.code, 7, `a fresh connection after the reboot: curl exit ${refused.code} ${refused.stdout}`);
    const h2 = tb.hosts[1]!;
    const taken = await addMapping(tb, h2, h2.address, 9000);
    assert.equal(taken.code, 0, taken.stdout);
    assert.equal(tb.routerLog().match(/starting miniupnpd, mode igd2/g)?.length, 2);
  });

  step('setWanAddress changes what upnpc and natpmpc report', async () => {
    await tb.setWanAddress('203.0.115.1');
    assert.equal(tb.wanAddress, '203.0.115.1');
    assert.equal(tb.wanClientAddress, '203.0.115.2');
    const s = await upnpc(tb, tb.hosts[0]!, ['-s']);
    assert.match(s.stdout, /ExternalIPAddress = 203\.0\.115\.1$/m);
    const pub = await natpmpc(tb, tb.hosts[0]!);
    assert.match(pub.stdout, /Public IP address : 203\.0\.115\.1/);
    const wanSide = await tb.exec(tb.wan, ['ip', '-4', 'addr', 'show', 'dev', 'wan0'], { check: true });
    assert.match(wanSide.stdout, /inet 203\.0\.115\.2\/24/);
    assert.doesNotMatch(wanSide.stdout, /203\.0\.114\.2/);
  });

  step('close() kills what it spawned, removes every namespace and its temp dir, and is idempotent', async () => {
    const sleeper = tb.spawn(tb.hosts[2]!, ['sleep', '60']);
    await new Promise((r) => sleeper.once('spawn', r));
    const names = tb.namespaces;
    const dir = tb.tmpDir;
    assert.ok(existsSync(dir));
    await tb.close();
    await exited(sleeper);
    assert.ok(server === undefined || server.exitCode !== null || server.signalCode !== null, 'the HTTP server survived close()');
    const left = (await netnsNames()).filter((n) => names.includes(n));
    assert.deepEqual(left, []);
    assert.equal(existsSync(dir), false);
    await tb.close();
    await assert.rejects(tb.exec(tb.wan, ['true']), { code: 'TB_CLOSED' });
  });
}

function otherModes(): void {
  let tb: Testbed;
  const step = (name: string, fn: () => Promise<void>) => it(name, () => withRouterLog(tb, fn));
  before(async () => {
    tb = await createTestbed({ mode: 'insecure', hosts: 2 });
  });
  after(() => tb?.close());

  step('insecure: a host may map a port to another host', async () => {
    const [h1, h2] = [tb.hosts[0]!, tb.hosts[1]!];
    const r = await addMapping(tb, h1, h2.address, 9200);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /redirected to internal 192\.168\.77\.11:9200/);
  });

  step('igd1: the description says IGD v1 (yet, a partial v1, it still answers IGD:2 searches)', async () => {
    await tb.reconfigure('igd1');
    const h1 = tb.hosts[0]!;
    const [desc, v1, v2, r] = await Promise.all([
      tb.exec(h1, ['curl', '-sS', '--max-time', '3', tb.rootDescUrl], { check: true }),
      tb.call<SsdpAnswer[]>(tb.hosts[1]!, probes, 'ssdpSearch', [IGD1, { untilFirst: true }]),
      tb.call<SsdpAnswer[]>(tb.hosts[1]!, probes, 'ssdpSearch', [IGD2, { untilFirst: true }]),
      addMapping(tb, h1, h1.address, 9000),
    ]);
    assert.match(desc.stdout, /<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1<\/deviceType>/);
    assert.match(desc.stdout, /urn:schemas-upnp-org:service:WANIPConnection:1/);
    assert.doesNotMatch(desc.stdout, /InternetGatewayDevice:2|WANIPConnection:2/);
    assert.equal(v1[0]?.st, IGD1);
    // The partial IGDv1 of force_igd_desc_v1 (real-router.md): a true v1-only router needs an emulator.
    assert.equal(v2[0]?.st, IGD2);
    assert.equal(r.code, 0, r.stdout);
  });

  for (const [mode, wan] of [
    ['cgnat', '100.64.0.1'],
    ['private-wan', '10.0.0.1'],
  ] as const) {
    step(`${mode}: the WAN address is ${wan} and the router refuses every mapping`, async () => {
      await tb.reconfigure(mode);
      assert.equal(tb.wanAddress, wan);
      const h1 = tb.hosts[0]!;
      const up = await addMapping(tb, h1, h1.address, 9000);
      assert.notEqual(up.code, 0);
      assert.equal(upnpErrorCode(up.stdout), 501, up.stdout);
      const pmp = await natpmpc(tb, h1, ['-a', '9000', '9000', 'tcp', '60']);
      assert.notEqual(pmp.code, 0, pmp.stdout);
      assert.deepEqual(await tb.routerRules(), []);
      assert.match(tb.routerLog(), new RegExp(`Reserved / private IP address ${wan.replaceAll('.', '\\.')} on ext interface`));
    });
  }

  step('allow lines and extra config lines given to reconfigure reach the router', async () => {
    await tb.reconfigure('igd2', {
      allow: ['allow 80-80 192.168.77.0/24 80-80', 'deny 0-65535 0.0.0.0/0 0-65535'],
      miniupnpdConf: ['friendly_name=frontdoor test router'],
    });
    const h1 = tb.hosts[0]!;
    const low = await addMapping(tb, h1, h1.address, 80);
    assert.equal(low.code, 0, low.stdout);
    const high = await addMapping(tb, h1, h1.address, 9000);
    assert.equal(upnpErrorCode(high.stdout), 606, high.stdout);
    const desc = await tb.exec(h1, ['curl', '-sS', '--max-time', '3', tb.rootDescUrl], { check: true });
    assert.match(desc.stdout, /<friendlyName>frontdoor test router<\/friendlyName>/);
  });

  step('a config miniupnpd rejects fails at once, with the router log in the error', async () => {
    // 'At once': TB_ROUTER_START is the daemon's exit seen, where waiting for it to be ready would
    // end in TB_TIMEOUT; the code tells which, with no wall-clock bound to race.
    await assert.rejects(tb.reconfigure('igd2', { miniupnpdConf: ['force_igd_v1=yes'] }), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.equal((err as Error & { code?: string }).code, 'TB_ROUTER_START');
      assert.match(err.message, /invalid option in file .* force_igd_v1=yes/);
      return true;
    });
    assert.equal(tb.routerPid, undefined);
    await tb.reconfigure('igd2');
    assert.ok(tb.routerPid !== undefined);
  });

  step('none after the others: the daemon is gone, the router still routes', async () => {
    await tb.reconfigure('none');
    assert.equal(tb.routerPid, undefined);
    assert.equal(tb.wanAddress, '203.0.114.1', 'reconfigure brings back the WAN address of the mode');
    const pmp = await natpmpc(tb, tb.hosts[0]!);
    assert.notEqual(pmp.code, 0, pmp.stdout);
    // The LAN still reaches the internet through the masquerade: h1 -> wan client.
    const server = tb.spawn(tb.wan, [
      process.execPath,
      '-e',
      "require('node:http').createServer((q, s) => s.end(q.socket.remoteAddress)).listen(8080, '0.0.0.0', () => console.log('listening'))",
    ]);
    await waitForOutput(server, /^listening$/);
    const seen = await tb.exec(tb.hosts[0]!, ['curl', '-sS', '--max-time', '3', `http://${tb.wanClientAddress}:8080/`], { check: true });
    assert.equal(seen.stdout, tb.wanAddress, 'the internet sees the router, not the LAN host');
  });
}

function pmpOnly(): void {
  let tb: Testbed;
  const step = (name: string, fn: () => Promise<void>) => it(name, () => withRouterLog(tb, fn));
  before(async () => {
    tb = await createTestbed({ mode: 'pmp-only', hosts: 1 });
  });
  after(() => tb?.close());

  step('pmp-only: natpmpc maps a port; upnpc finds no IGD (its full 8 s discovery)', async () => {
    const h1 = tb.hosts[0]!;
    const noIgd = upnpc(tb, h1, ['-s'], true);
    const pub = await natpmpc(tb, h1);
    assert.match(pub.stdout, /Public IP address : 203\.0\.114\.1/);
    const map = await natpmpc(tb, h1, ['-a', '9000', '9000', 'tcp', '60']);
    assert.equal(map.code, 0, map.stdout);
    assert.match(map.stdout, /Mapped public port 9000 protocol TCP to local port 9000/);
    const rules = await tb.routerRules();
    assert.equal(rules.length, 1);
    assert.match(rules[0]!, /dport 9000 dnat ip to 192\.168\.77\.10:9000/);
    const up = await noIgd;
    assert.notEqual(up.code, 0);
    assert.match(up.stdout + up.stderr, /No IGD UPnP Device found/);
  });
}

function noService(): void {
  let tb: Testbed;
  const step = (name: string, fn: () => Promise<void>) => it(name, () => withRouterLog(tb, fn));
  before(async () => {
    tb = await createTestbed({ mode: 'none', hosts: 1 });
  });
  after(() => tb?.close());

  step('none: no miniupnpd; natpmpc, upnpc and an SSDP search all get nothing', async () => {
    assert.equal(tb.routerPid, undefined);
    assert.deepEqual(await tb.routerRules(), []);
    assert.doesNotMatch(tb.routerLog(), /starting miniupnpd/);
    const h1 = tb.hosts[0]!;
    const [pmp, up, answers] = await Promise.all([
      natpmpc(tb, h1),
      upnpc(tb, h1, ['-s']),
      tb.call<SsdpAnswer[]>(h1, probes, 'ssdpSearch', ['ssdp:all', { waitMs: 1200 }]),
    ]);
    assert.notEqual(pmp.code, 0, pmp.stdout);
    assert.doesNotMatch(pmp.stdout, /Public IP address/);
    assert.notEqual(up.code, 0, up.stdout);
    assert.doesNotMatch(up.stdout, /ExternalIPAddress/);
    assert.deepEqual(answers, []);
    const listening = await tb.exec(tb.router, ['ss', '-Hlnpu'], { check: true });
    assert.doesNotMatch(listening.stdout, /miniupnpd|:5351\b|:1900\b/);
  });
}

/** Gone, or a zombie that no one reaps yet (its parent died; a container's init may not reap). */
function processGone(pid: number): boolean {
  try {
    return /^\S+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

async function eventually(cond: () => boolean, ms = 3000): Promise<boolean> {
  const until = performance.now() + ms;
  while (!cond() && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
  return cond();
}

interface ChildReport {
  namespaces: string[];
  tmpDir: string;
  routerPid: number | null;
  pid: number;
}

async function startChildTestbed(...flags: string[]): Promise<{ child: ChildProcess; report: ChildReport }> {
  const child = spawnBounded([process.execPath, childScript.pathname, 'igd2', ...flags]);
  const line = await waitForOutput(child, /^\{/, { timeoutMs: 15_000 });
  return { child, report: JSON.parse(line) as ChildReport };
}

function cleanupAfterDeath(): void {
  it('a live run is left alone; SIGKILLed, its router dies with it and the next run removes its namespaces', async () => {
    const { child, report } = await startChildTestbed();
    const ours = async () => (await netnsNames()).filter((n) => report.namespaces.includes(n)).sort();
    try {
      assert.ok(report.routerPid !== null && !processGone(report.routerPid));
      const spared = await removeStaleTestbeds();
      assert.deepEqual(
        spared.filter((n) => report.namespaces.includes(n)),
        [],
        'removed the namespaces of a live process',
      );
      assert.deepEqual(await ours(), [...report.namespaces].sort());
    } finally {
      process.kill(child.pid!, 'SIGKILL');
      await exited(child);
    }
    assert.ok(await eventually(() => processGone(report.routerPid!)), 'miniupnpd outlived the SIGKILLed test process');
    assert.deepEqual(await ours(), [...report.namespaces].sort(), 'nothing ran to remove them yet');
    assert.ok(existsSync(report.tmpDir));
    const removed = await removeStaleTestbeds();
    for (const n of report.namespaces) assert.ok(removed.includes(n), `${n} not removed`);
    assert.deepEqual(await ours(), []);
    assert.equal(existsSync(report.tmpDir), false);
  });

  it('SIGTERM: the process removes its namespaces on the way out and dies of the signal', async () => {
    // --squat: a dead run with the same pid left namespaces under the names this one wants.
    const { child, report } = await startChildTestbed('--squat');
    assert.equal(report.namespaces[1], `fd${report.pid}x1-rtr`, 'the test bed took over the squatted names');
    process.kill(child.pid!, 'SIGTERM');
    await exited(child);
    assert.equal(child.signalCode, 'SIGTERM');
    assert.deepEqual(
      (await netnsNames()).filter((n) => report.namespaces.includes(n)),
      [],
    );
    assert.equal(existsSync(report.tmpDir), false);
    assert.ok(await eventually(() => processGone(report.routerPid!)));
  });
}
