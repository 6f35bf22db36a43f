import assert from 'node:assert/strict';
import { type ChildProcess, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { resolveCredentials, signSession } from '../../src/portal/auth.js';
import { PORTAL_SCRIPT } from '../../src/portal/pages.js';
import type { NodeStatus, PeerStatus } from '../../src/portal/status.js';
import { CLI, Fleet, LineLog, PORTAL_PASSWORD, PUBLIC_PORT, waitUntil } from '../agent/fixtures/fleet.js';
import type { AttackOptions, AttackReport } from '../agent/fixtures/rogue.js';
import { canRunTestbed, createTestbed, type Testbed } from '../testbed/testbed.js';
import type { AddressReport, CookieAnswer, Exchange, FloodReport, OversizedKind, PasswordReport, SlowlorisReport } from './fixtures/http-attacks.js';
import type { FloodReport as LanFloodReport, FloodOptions } from './fixtures/lan-flood.js';
import { type FleetFacts, fileLeaks, leaks } from './fixtures/leaks.js';
import { type Answer, percentile, type Target } from './fixtures/target.js';
import type { UserOptions, UserSample } from './fixtures/user.js';

/**
 * Attacks on a fleet from the internet side of the real-router test bed (and from a rogue host
 * on its LAN), each bounded to a few seconds and stopping by itself, while a real user in the
 * WAN namespace (a process of its own) keeps asking the portal and each node's own port for
 * /api/status every 100 ms. Every case ends with: nothing given away, the user answered
 * throughout (p99 before and during logged, bounded generously at 5 s), every node's memory
 * grown by less than 96 MB (160 MB over the whole file) and its open file descriptors back near where they were.
 *
 * The scheme is one parameter of every target: HTTPS (self-made certificate, not checked) when
 * the CLI has `--tls` (on by default), else plain HTTP; FRONTDOOR_ATTACK_SCHEME=http|https forces
 * one (http with a `--tls` CLI passes `--tls off`).
 */

const can = canRunTestbed();
const curl = spawnSync('curl', ['--version'], { stdio: 'ignore', timeout: 5000 });
const skip = !can.ok
  ? `needs root and network namespaces: ${can.reason}`
  : curl.error !== undefined || curl.status !== 0
    ? 'needs curl (apt install curl): the fleet fixture asks each node inside its namespace'
    : false;

const HAS_TLS = !skip && (spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '').includes('--tls');
const SCHEME: 'http' | 'https' =
  process.env['FRONTDOOR_ATTACK_SCHEME'] === 'http' ? 'http' : process.env['FRONTDOOR_ATTACK_SCHEME'] === 'https' || HAS_TLS ? 'https' : 'http';
const TLS_ARGS = HAS_TLS && SCHEME === 'http' ? ['--tls', 'off'] : [];

const SECRET = 'attack-real-test-fleet-secret-8d41f0b27c';
const ATTACKS = new URL('./fixtures/http-attacks.js', import.meta.url);
const TARGET = new URL('./fixtures/target.js', import.meta.url);
const LAN_FLOOD = new URL('./fixtures/lan-flood.js', import.meta.url);
const ROGUE = new URL('../agent/fixtures/rogue.js', import.meta.url);
const USER = fileURLToPath(new URL('./fixtures/user.js', import.meta.url));
const GROUP = '239.255.70.68';
const LAN_PORT = 4862;
const NODES = [0, 1, 2];
const CAMERA_ARGS = ['--camera', 'test', '--camera-width', '320', '--camera-height', '180', '--camera-fps', '5', '--camera-idle', '5s'];

/**
 * Bounds: generous on purpose; the figures are logged. The attacker, the nodes, the user and
 * (under `npm test`) another test file share 2 cores: quiet, the worst case (10 000 TLS logins
 * from 100 addresses) kept the user's p99 at 0.7-1.5 s; in a CI run beside another test bed it
 * reached 3.1 s. The bound is there to catch a portal that stops answering, not a slow machine.
 */
const USER_P99_MS = 5000;
/**
 * Per case. The first heavy attack grows a node's V8 heap by up to ~60 MB, which it then keeps
 * and reuses: six rounds of 10 000 pipelined wrong passwords in a row took the representative
 * from 68 MB to 145, then 124-135 MB each round after (measured). A leak shows in the whole
 * file's bound instead (WHOLE_FILE_GROWTH_MB).
 */
const RSS_GROWTH_MB = 96;
const WHOLE_FILE_GROWTH_MB = 160;
const FD_SLACK = 10;
const BASELINE_MS = 3000;

/** Extra source addresses on the WAN client's interface: one per password attacker. */
const MANY = Array.from({ length: 100 }, (_, i) => `203.0.114.${100 + i}`);
const ONE = '203.0.114.200';
const ROUTES_FROM = '203.0.114.201';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Usage {
  rssMb: number[];
  fds: number[];
}

describe(`attacks on the fleet from the internet and the LAN (${SCHEME})`, { skip, concurrency: false }, () => {
  const ctx = {} as {
    tb: Testbed;
    fleet: Fleet;
    portal: Target;
    targets: Target[];
    facts: FleetFacts;
    rep: string;
    user: ChildProcess;
    userLog: LineLog;
  };
  const t0 = Date.now();
  let slow: SlowlorisReport | undefined;
  let oversizedReport: OversizedKind[] | undefined;
  let startUsage: Usage | undefined;

  before(async () => {
    ctx.tb = await createTestbed({ mode: 'igd2', hosts: 4 });
    const { tb } = ctx;
    ctx.fleet = new Fleet(tb, { secret: SECRET, args: TLS_ARGS });
    ctx.fleet.startAll(NODES, (i) => (i === 0 ? CAMERA_ARGS : []));
    const settled = await ctx.fleet.settled(25_000);
    ctx.rep = settled.rep;
    ctx.portal = { scheme: SCHEME, host: tb.wanAddress, port: PUBLIC_PORT, label: 'portal' };
    const nodes: Target[] = settled.nodes
      .map((n) => {
        const u = new URL(n.url!);
        return { scheme: SCHEME, host: u.hostname, port: Number(u.port), label: n.name };
      })
      .sort((a, b) => a.label.localeCompare(b.label));
    ctx.targets = [ctx.portal, ...nodes];
    const st = await ctx.fleet.statuses(NODES);
    ctx.facts = {
      names: NODES.map((i) => Fleet.nameOf(i)),
      ids: [...st.values()].map((s) => s!.id),
      ports: [PUBLIC_PORT, ...nodes.map((n) => n.port)],
      secrets: [SECRET, PORTAL_PASSWORD],
    };
    // The password attackers' addresses, on the WAN client's own interface (one `ip` process).
    const batch = join(tb.tmpDir, 'wan-addresses.batch');
    await writeFile(batch, [...MANY, ONE, ROUTES_FROM].map((a) => `addr add ${a}/${tb.wanPrefixLength} dev ${tb.wan.ifname}`).join('\n') + '\n');
    await tb.exec(tb.wan, ['ip', '-batch', batch], { check: true });
    const opts: UserOptions = { targets: ctx.targets, password: PORTAL_PASSWORD, intervalMs: 100, maxMs: 600_000 };
    ctx.user = tb.spawn(tb.wan, [process.execPath, USER, JSON.stringify(opts)]);
    ctx.userLog = new LineLog(ctx.user);
    await waitUntil(async () => (ctx.userLog.lines.some((l) => l.startsWith('{"ready"')) ? true : undefined), {
      timeoutMs: 15_000,
      what: () => `the user's login (${ctx.userLog.tail(5)})`,
    });
    startUsage = usage();
    console.log(
      `[attack] ${SCHEME}: test bed + 3 nodes settled (rep ${ctx.rep}), targets ${ctx.targets.map((t) => `${t.label}:${t.port}`).join(' ')}, user logged in: ${Date.now() - t0} ms`,
    );
  });

  after(async () => {
    // Reported, not asserted (each case bounds its own growth): the nodes' memory over the whole file.
    if (startUsage && ctx.fleet?.live().length === NODES.length) {
      const end = usage();
      console.log(`[attack] RSS over the whole file: ${NODES.map((i) => `${Fleet.nameOf(i)} ${startUsage!.rssMb[i]!.toFixed(0)}→${end.rssMb[i]!.toFixed(0)} MB`).join(', ')}`);
    }
    ctx.user?.kill('SIGKILL');
    await ctx.fleet?.stopAll();
    await ctx.tb?.close();
    console.log(`[attack] whole file: ${Date.now() - t0} ms`);
  });

  function samples(): UserSample[] {
    const out: UserSample[] = [];
    for (const l of ctx.userLog.lines) {
      if (!l.startsWith('{"t"')) continue;
      try {
        out.push(JSON.parse(l) as UserSample);
      } catch {
        // a line cut at the end
      }
    }
    return out;
  }

  /** Each fleet node's resident memory and open descriptors, read from /proc (the child is the node: `ip netns exec` execs). */
  function usage(): Usage {
    const u: Usage = { rssMb: [], fds: [] };
    for (const i of NODES) {
      const pid = ctx.fleet.nodes.get(i)!.child.pid!;
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      u.rssMb.push(Number(m?.[1] ?? 0) / 1024);
      u.fds.push(readdirSync(`/proc/${pid}/fd`).length);
    }
    return u;
  }

  function call<T>(module: URL, fn: string, args: unknown[], timeoutMs = 60_000): Promise<T> {
    return ctx.tb.call<T>(ctx.tb.wan, module, fn, args, { timeoutMs });
  }

  /** GET with the fleet's password from the WAN client (its main address, never an attacker's). */
  /**
   * The operator's reads (/metrics, pages) with a session made once, before any attack: the
   * attacks' addresses share the operator's network (203.0.114.0/24), whose logins the throttle
   * slows down as one, as it would a real attacker's neighbours.
   */
  let operatorCookie: string | undefined;
  async function get(t: Target, path: string): Promise<Answer> {
    if (operatorCookie === undefined) {
      const a = await call<Answer>(TARGET, 'request', [
        ctx.portal,
        { path: '/login', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `password=${encodeURIComponent(PORTAL_PASSWORD)}` },
      ]);
      operatorCookie = a.setCookie.map((c) => c.split(';')[0]!).find((c) => c.startsWith('fd_session='));
      assert.ok(operatorCookie, `the operator could not log in (${a.status})`);
    }
    return call<Answer>(TARGET, 'request', [t, { path, headers: { cookie: operatorCookie, accept: 'text/html' }, maxBody: 200_000 }]);
  }

  async function counter(name: string): Promise<number> {
    const a = await get(ctx.portal, '/metrics');
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(a.body);
    assert.ok(m, `no ${name} in /metrics (${a.status})`);
    return Number(m[1]);
  }

  /**
   * The frame of every case: 3 s of the user alone, the attack, then the checks every case shares
   * (the user answered, within the bound; memory; descriptors back), and the summary line.
   */
  async function underAttack<T>(name: string, attack: () => Promise<T>, refused: (r: T) => string): Promise<T> {
    ctx.fleet.assertNoCrash();
    const b0 = Date.now();
    await sleep(BASELINE_MS);
    const before = usage();
    const a0 = Date.now();
    const result = await attack();
    const a1 = Date.now();
    const rightAfter = usage();
    // The user's lanes run one request at a time: wait for one that started after the attack,
    // so a request hanging through the attack is seen (it ends at its own 5 s timeout).
    await waitUntil(async () => (samples().some((s) => s.t >= a1 && s.target === 'portal') ? true : undefined), {
      timeoutMs: 10_000,
      what: 'a user request started after the attack',
    });
    const fdsBack = await waitUntil(
      async () => {
        const u = usage();
        return u.fds.every((f, i) => f <= before.fds[i]! + FD_SLACK) ? u : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 250, what: () => `descriptors back near ${before.fds.join('/')} (now ${usage().fds.join('/')})` },
    ).catch((err: unknown) => {
      throw new Error(`${name}: ${(err as Error).message}\n${ctx.fleet.explain(10)}`);
    });
    const all = samples();
    const base = all.filter((s) => s.t >= b0 && s.t < a0);
    const during = all.filter((s) => s.t >= a0 && s.t <= a1);
    const p = (xs: UserSample[], q: number) => Math.round(percentile(xs.map((s) => s.ms), q));
    const growth = Math.max(...rightAfter.rssMb.map((r, i) => r - before.rssMb[i]!), ...fdsBack.rssMb.map((r, i) => r - before.rssMb[i]!));
    const fds = NODES.map((i) => `${Fleet.nameOf(i)} ${before.fds[i]}→${rightAfter.fds[i]}→${fdsBack.fds[i]}`).join(', ');
    console.log(
      `[attack] ${name}: user p50/p99 before ${p(base, 50)}/${p(base, 99)} ms (${base.length}) / during ${p(during, 50)}/${p(during, 99)} ms (${during.length} in ${a1 - a0} ms), ` +
        `node RSS +${growth.toFixed(1)} MB (max; ${before.rssMb.map((r) => r.toFixed(0)).join('/')} MB before), fds ${fds}, ${refused(result)}`,
    );
    const slowest = [...during].sort((x, y) => y.ms - x.ms).slice(0, 3);
    if (slowest[0] && slowest[0].ms > USER_P99_MS / 2) {
      console.log(`[attack] ${name}: the user's slowest answers: ${slowest.map((s) => `${s.target} ${s.ms} ms at +${s.t - a0} ms`).join(', ')}`);
    }
    const failed = during.filter((s) => s.status !== 200);
    assert.deepEqual(failed.slice(0, 5), [], `${name}: the user got ${failed.length} failures during the attack`);
    assert.ok(base.length > 0 && base.every((s) => s.status === 200), `${name}: the user's baseline failed`);
    const portalDuring = during.filter((s) => s.target === 'portal').length;
    assert.ok(portalDuring >= Math.max(1, Math.floor((a1 - a0) / 2500)), `${name}: only ${portalDuring} portal answers in ${a1 - a0} ms of attack`);
    assert.ok(p(during, 99) < USER_P99_MS, `${name}: the user's p99 during the attack is ${p(during, 99)} ms`);
    assert.ok(growth < RSS_GROWTH_MB, `${name}: a node's RSS grew by ${growth.toFixed(1)} MB`);
    ctx.fleet.assertNoCrash();
    return result;
  }

  function noLeak(where: string, body: string, askedPort: number): void {
    const found = leaks(body, ctx.facts, askedPort);
    assert.deepEqual(found, [], `${where} gives away ${found.join(', ')}: ${JSON.stringify(body.slice(0, 300))}`);
  }

  const portOf = (label: string) => ctx.targets.find((t) => t.label === label)!.port;
  const tally = (xs: Array<{ status: number }>) => {
    const c: Record<string, number> = {};
    for (const x of xs) c[x.status] = (c[x.status] ?? 0) + 1;
    return Object.entries(c)
      .map(([k, v]) => `${k}×${v}`)
      .join(' ');
  };

  it('1. every route without credentials: 401 (public ones aside), nothing given away', { timeout: 60_000 }, async () => {
    const answers = await underAttack(
      'every route without credentials',
      () => call<Exchange[]>(ATTACKS, 'routes', [{ targets: ctx.targets, localAddress: ROUTES_FROM, wrongPassword: 'not-the-password' }]),
      (xs) => `${xs.length} requests to ${ctx.targets.length} ports: ${tally(xs)}, no data`,
    );
    for (const a of answers) {
      const where = `${a.method} ${a.path}${a.note ? ` (${a.note})` : ''} on ${a.target}`;
      assert.ok(a.status < 500, `${where}: ${a.status}`);
      const cookie = a.headers['set-cookie'] ?? '';
      assert.ok(!/fd_session=[^;]/.test(cookie), `${where} set a session cookie: ${cookie}`);
      assert.equal(a.headers['x-powered-by'], undefined, `${where}: X-Powered-By`);
      assert.equal(a.headers['server'], undefined, `${where}: Server header`);
      noLeak(where, a.body, portOf(a.target));
      const key = `${a.method} ${a.path}`;
      if (key === 'GET /healthz') assert.deepEqual([a.status, a.body], [200, 'ok\n'], where);
      else if (key === 'GET /login') assert.ok(a.status === 200 && a.body.includes('id="login"'), `${where}: ${a.status}`);
      else if (key === 'GET /portal.js') assert.deepEqual([a.status, a.body], [200, PORTAL_SCRIPT], where);
      else if (key === 'GET /favicon.ico') assert.equal(a.status, 204, where);
      else if (key === 'POST /logout') assert.equal(a.status, 303, where);
      else if (key === 'POST /login') assert.ok(a.status === 401 || a.status === 429, `${where}: ${a.status}`);
      else if (a.method === 'CONNECT') assert.ok(a.status === 0 || a.status === 400, `${where}: ${a.status} ${a.body}`);
      else {
        assert.ok([401, 404, 405].includes(a.status), `${where}: ${a.status} ${a.body.slice(0, 200)}`);
        if (a.status === 401 && a.note !== 'browser' && a.method !== 'HEAD') assert.equal(a.body, '{"error":"login required"}', where);
      }
    }
  });

  it('2. path traversal: nothing from the filesystem, never a 500, no way around the login', { timeout: 60_000 }, async () => {
    const answers = await underAttack(
      'path traversal',
      () => call<Exchange[]>(ATTACKS, 'traversal', [{ targets: ctx.targets, password: PORTAL_PASSWORD }]),
      (xs) => `${xs.length} raw requests: ${tally(xs)}, nothing read from disk`,
    );
    for (const a of answers) {
      const where = `GET ${JSON.stringify(a.path)}${a.note ? ` (${a.note})` : ''} on ${a.target}`;
      assert.ok(a.status < 500, `${where}: ${a.status} ${a.body.slice(0, 200)}`);
      if (a.note === 'logged in') {
        // The logged-in user may see the fleet; never a file, the environment or a secret.
        const found = fileLeaks(a.body, ctx.facts.secrets);
        assert.deepEqual(found, [], `${where}: ${found.join(', ')}`);
        continue;
      }
      noLeak(where, a.body, portOf(a.target));
      if (a.status === 200) {
        const publicBody = a.body === 'ok\n' || a.body === PORTAL_SCRIPT || a.body.includes('id="login"');
        assert.ok(publicBody, `${where}: 200 without a login: ${a.body.slice(0, 200)}`);
      } else {
        assert.ok([0, 400, 401, 404, 405].includes(a.status), `${where}: ${a.status}`);
      }
    }
  });

  it('3. oversized headers, URL and bodies: refused (400/413/431), the connection closed', { timeout: 60_000 }, async () => {
    const kinds = await underAttack(
      'oversized headers and bodies',
      () => call<OversizedKind[]>(ATTACKS, 'oversized', [{ target: ctx.portal, copies: 20, limit: 20 }]),
      (ks) => ks.map((k) => `${k.kind}: ${Object.entries(k.statuses).map(([s, n]) => `${s}×${n}`).join(' ')}, closed ${k.closed}/${k.sent} (${k.maxMs} ms)`).join('; '),
    );
    const by = new Map(kinds.map((k) => [k.kind, k]));
    const only = (kind: string, allowed: number[], mustClose: boolean) => {
      const k = by.get(kind)!;
      const statuses = Object.keys(k.statuses).map(Number);
      assert.ok(statuses.every((s) => allowed.includes(s)), `${kind}: ${JSON.stringify(k.statuses)} (allowed ${allowed}); errors ${JSON.stringify(k.errors)}; ${k.sample}`);
      if (mustClose) assert.equal(k.closed, k.sent, `${kind}: ${k.sent - k.closed} connections left open`);
      noLeak(kind, k.sample, PUBLIC_PORT);
    };
    // Status 0: cut without an answer, as the TLS listener does with some of these (measured: 16 KiB and up, not 12 KiB).
    for (const kind of ['header 16 KiB', '200 headers, 20 KiB', 'URL 64 KiB', 'cookie 12 KiB']) only(kind, SCHEME === 'https' ? [0, 400, 414, 431] : [400, 414, 431], true);
    // Bodies sent in full: refused once read (and thrown away), the connection kept for the next request.
    for (const kind of ['login body 1 MiB chunked', 'login body 64 KiB', 'login form 3 KB', 'login form 20 fields']) only(kind, [413], false);
    only('700 small headers (under the limit)', [401], false);
    oversizedReport = kinds;
  });

  it(
    '3b. a login body announced far over the 2 KiB limit is refused at once',
    {},
    () => {
      const k = oversizedReport?.find((x) => x.kind === 'login body 10 MB announced, 64 KiB sent');
      assert.ok(k, 'the oversized case did not run');
      assert.deepEqual(k.statuses, { 413: k.sent }, `within 3 s: ${JSON.stringify(k.statuses)}`);
    },
  );

  it('4. slowloris: 500 connections dripping a header byte a second; the user unaffected', { timeout: 60_000 }, async () => {
    slow = await underAttack(
      'slowloris',
      () => call<SlowlorisReport>(ATTACKS, 'slowloris', [{ target: ctx.portal, connections: 500, durationMs: 8000, dripMs: 1000 }]),
      (r) =>
        `${r.opened} connections held ${r.ms} ms (${r.openErrors} failed to open): ${r.cutByServer} cut by the server (ms after open min/median/max ${r.cutMs?.join('/') ?? '-'}, ${JSON.stringify(r.answers)}), ${r.stillOpenAtEnd} still open at the end`,
    );
    assert.ok(slow.opened >= 450, `only ${slow.opened} of 500 slow connections opened`);
  });

  it(
    '4b. slowloris connections are cut once the 5 s header timeout has passed',
    {},
    () => {
      assert.ok(slow, 'the slowloris case did not run');
      assert.ok(slow.cutByServer >= slow.opened * 0.95, `the server cut ${slow.cutByServer} of ${slow.opened} slow connections within ${slow.ms} ms`);
      assert.ok(slow.cutMs !== null && slow.cutMs[2] <= 7000, `cut after ${slow.cutMs?.join('/')} ms (min/median/max)`);
    },
  );

  it('5. a flood of new connections and 1000 idle ones: the user still served, descriptors back', { timeout: 60_000 }, async () => {
    const r = await underAttack(
      'connection flood',
      () => call<FloodReport>(ATTACKS, 'connectionFlood', [{ targets: ctx.targets, total: 3000, concurrency: 100, floodMaxMs: 8000, idle: 1000, idleMs: 5000 }]),
      (x) =>
        `${x.flooded} connections opened and dropped in ${x.floodMs} ms (errors ${JSON.stringify(x.floodErrors)}), ${x.idleOpened} idle held ${x.ms} ms (${x.idleCutByServer} cut by the server)`,
    );
    // Bounded in time, so a loaded machine opens fewer; what matters is that those tried got through.
    const tried = r.flooded + Object.values(r.floodErrors).reduce((n, v) => n + v, 0);
    assert.ok(r.flooded >= 1000 && r.flooded >= tried * 0.99, `${r.flooded} of ${tried} flood connections got through (errors ${JSON.stringify(r.floodErrors)})`);
    assert.ok(r.idleOpened >= 950, `only ${r.idleOpened} of 1000 idle connections opened`);
  });

  /** Wrong passwords one address may have compared in `ms`: five at once, then one per wait of 1, 2, 4 ... s, and up to two probes before the right password. */
  const comparedBound = (ms: number) => 5 + Math.ceil(Math.log2(ms / 1000 + 2)) + 1 + 2;
  const rightRefused = (a: AddressReport) => `form ${a.rightForm} (Retry-After ${a.rightFormRetryAfter}), basic ${a.rightBasic}`;

  it('6. 10 000 wrong passwords from one address: throttled after 5, the right one refused too, the counters show it', { timeout: 120_000 }, async () => {
    const failures0 = await counter('frontdoor_login_failures_total');
    const throttled0 = await counter('frontdoor_login_throttled_total');
    const r = await underAttack(
      '10 000 wrong passwords from one address',
      () =>
        call<PasswordReport>(
          ATTACKS,
          'passwords',
          [{ target: ctx.portal, addresses: [ONE], attempts: 10_000, perAddress: 8, batch: 10, right: PORTAL_PASSWORD, maxMs: 60_000 }],
          100_000,
        ),
      (x) => {
        const a = x.addresses[0]!;
        return `${x.answered} answered in ${x.ms} ms: ${JSON.stringify(a.statuses)}, right password then: ${rightRefused(a)}; ${a.successes} logins`;
      },
    );
    const failures = (await counter('frontdoor_login_failures_total')) - failures0;
    const throttled = (await counter('frontdoor_login_throttled_total')) - throttled0;
    const a = r.addresses[0]!;
    console.log(`[attack] 10 000 wrong passwords from one address: /metrics login failures +${failures}, throttled +${throttled}`);
    assert.equal(r.answered, 10_000, `only ${r.answered} of 10 000 attempts answered within the bound`);
    assert.equal(a.successes, 0, 'a wrong password let the attacker in');
    assert.ok((a.statuses['post 429'] ?? 0) > 4900, `form logins answered 429: ${a.statuses['post 429'] ?? 0}`);
    assert.equal(a.rightForm, 429, 'the right password through the form during the wait');
    assert.ok(Number(a.rightFormRetryAfter) >= 1, `Retry-After ${a.rightFormRetryAfter}`);
    assert.equal(a.rightBasic, 429, 'the right password through basic auth during the wait');
    const bound = comparedBound(r.ms);
    assert.ok(failures >= 5 && failures <= bound, `${failures} wrong passwords compared (expected 5..${bound})`);
    assert.equal(throttled, a.throttled429, 'frontdoor_login_throttled_total counts every 429 (form and basic auth)');
  });

  it('7. 10 000 wrong passwords from 100 addresses of one /24: throttled as one network, no login', { timeout: 120_000 }, async () => {
    const failures0 = await counter('frontdoor_login_failures_total');
    const throttled0 = await counter('frontdoor_login_throttled_total');
    const r = await underAttack(
      '10 000 wrong passwords from 100 addresses',
      () =>
        call<PasswordReport>(
          ATTACKS,
          'passwords',
          [{ target: ctx.portal, addresses: MANY, attempts: 10_000, perAddress: 1, batch: 10, right: PORTAL_PASSWORD, maxMs: 60_000 }],
          100_000,
        ),
      (x) => {
        const sum: Record<string, number> = {};
        for (const a of x.addresses) for (const [k, v] of Object.entries(a.statuses)) sum[k] = (sum[k] ?? 0) + v;
        const rights = new Set(x.addresses.map(rightRefused));
        return `${x.answered} answered in ${x.ms} ms from ${x.addresses.length} addresses: ${JSON.stringify(sum)}, right password then: ${[...rights].join(' | ')}; ${x.addresses.reduce((n, a) => n + a.successes, 0)} logins`;
      },
    );
    const failures = (await counter('frontdoor_login_failures_total')) - failures0;
    const throttled = (await counter('frontdoor_login_throttled_total')) - throttled0;
    console.log(`[attack] 10 000 wrong passwords from 100 addresses: /metrics login failures +${failures}, throttled +${throttled}`);
    assert.equal(r.answered, 10_000, `only ${r.answered} of 10 000 attempts answered within the bound`);
    const bad = (f: (a: AddressReport) => boolean) => r.addresses.filter(f).map((a) => a.address);
    assert.deepEqual(bad((a) => a.successes > 0), [], 'addresses a wrong password let in');
    assert.deepEqual(bad((a) => (a.statuses['post 429'] ?? 0) < 40), [], 'addresses hardly throttled (fewer than 40 of their 50 form logins answered 429)');
    assert.deepEqual(bad((a) => a.rightForm !== 429 || a.rightBasic !== 429), [], 'addresses whose right password was not refused during the wait');
    // One network, whose wait case 6 may have left running: at most what one address gets.
    const bound = comparedBound(r.ms);
    assert.ok(failures <= bound, `${failures} wrong passwords compared (expected at most ${bound})`);
    assert.equal(throttled, r.addresses.reduce((n, a) => n + a.throttled429, 0), 'frontdoor_login_throttled_total counts every 429 (form and basic auth)');
  });

  it('8. forged session cookies: random, truncated, modified MAC, another fleet, expired, stretched: all 401', { timeout: 60_000 }, async () => {
    const now = Date.now();
    const { sessionKey } = await resolveCredentials({ password: PORTAL_PASSWORD, secret: SECRET });
    const other = await resolveCredentials({ password: 'x', secret: 'another-fleet-secret-0000' });
    const valid = signSession(sessionKey, now);
    const [v, exp, nonce, mac] = valid.split('.') as [string, string, string, string];
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    const forged: Array<[string, string]> = [
      ['random', randomBytes(48).toString('base64url')],
      ['random, well formed', `v1.${exp}.${randomBytes(9).toString('base64url')}.${randomBytes(32).toString('base64url')}`],
      ['truncated', valid.slice(0, -1)],
      ['no MAC', `${v}.${exp}.${nonce}.`],
      ['modified MAC', `${v}.${exp}.${nonce}.${flip(mac, 20)}`],
      ['another fleet', signSession(other.sessionKey, now)],
      ['empty key', signSession(Buffer.alloc(0), now)],
      ['zero key', signSession(Buffer.alloc(32), now)],
      ['expired', signSession(sessionKey, now - 8 * 24 * 3600 * 1000)],
      ['stretched expiry', `${v}.${(now + 3650 * 24 * 3600 * 1000).toString(36)}.${nonce}.${mac}`],
      ['other nonce', `${v}.${exp}.${randomBytes(9).toString('base64url')}.${mac}`],
      ['v2', `v2.${exp}.${nonce}.${mac}`],
      ['over-long', `${valid}${'A'.repeat(300)}`],
      ['empty', ''],
    ];
    const cookies = [...forged.map(([label, value]) => ({ label, header: `fd_session=${value}` })), { label: 'valid (control)', header: `fd_session=${valid}` }];
    const answers = await underAttack(
      'forged session cookies',
      () => call<CookieAnswer[]>(ATTACKS, 'cookies', [{ targets: ctx.targets, cookies }]),
      (xs) => `${forged.length} forged cookies × ${ctx.targets.length} ports × 3 routes: ${tally(xs.filter((x) => !x.label.startsWith('valid')))}; the valid control: ${tally(xs.filter((x) => x.label.startsWith('valid')))}`,
    );
    for (const a of answers) {
      const where = `${a.label} cookie on ${a.target} ${a.path}`;
      if (a.label.startsWith('valid')) {
        assert.equal(a.status, 200, `${where}: the control must get in, else this case proves nothing`);
        continue;
      }
      assert.equal(a.status, 401, `${where}: ${a.status} ${a.body.slice(0, 200)}`);
      assert.deepEqual(a.setCookie, [], `${where} set a cookie`);
      noLeak(where, a.body, portOf(a.target));
    }
  });

  /** The rogue host (h4), the representative, and where a LAN attack on it is aimed. */
  async function lanVictim() {
    const { fleet, tb } = ctx;
    const rogue = tb.hosts[3]!;
    const { rep } = await fleet.settled(10_000);
    const statuses = await fleet.statuses(NODES);
    const victimId = [...statuses.values()].find((s) => s?.name === rep)!.id;
    const lan = { self: rogue.address, group: GROUP, port: LAN_PORT, targets: NODES.map((i) => tb.hosts[i]!.address), victimId };
    return { rogue, rep, lan, statuses };
  }

  it('9. a rogue LAN host forging and replaying messages: the representative unchanged, the forged node listed nowhere', { timeout: 90_000 }, async () => {
    const { tb } = ctx;
    const { rogue, rep, lan } = await lanVictim();
    const forgedName = 'evil-representative';
    const opts: AttackOptions = { ...lan, forgedName, windowSize: 64, timeoutMs: 25_000 };
    const report = await underAttack(
      'forged and replayed LAN messages',
      async () => {
        const r = await tb.call<AttackReport>(rogue, ROGUE, 'attack', [opts], { timeoutMs: 35_000 });
        // The time a forged withdraw or announce would need to do harm.
        await sleep(1500);
        return r;
      },
      (r) => `rogue sent ${JSON.stringify(r.sent)} (late replay at seq ${r.lateReplayAtSeq}); representative still ${rep}, forged node listed nowhere`,
    );
    assert.ok(Object.keys(report.sent).length >= 8, `the rogue sent ${JSON.stringify(report.sent)}`);
    await notListed(forgedName, rogue.address, rep);
  });

  it('9b. a rogue LAN host flooding the LAN port with 20 000 datagrams: exactly one representative throughout', { timeout: 90_000 }, async () => {
    const { fleet, tb } = ctx;
    const { rogue, rep, lan, statuses: st0 } = await lanVictim();
    const forgedName = 'flood-node';
    const opts: FloodOptions = { ...lan, forgedName, total: 20_000, durationMs: 5000, captureMs: 1500 };
    const roles: string[] = [];
    const r = await underAttack(
      'LAN flood',
      async () => {
        const flooding = tb.call<LanFloodReport>(rogue, LAN_FLOOD, 'flood', [opts], { timeoutMs: 30_000 });
        let done = false;
        flooding.then(
          () => {
            done = true;
          },
          () => {
            done = true;
          },
        );
        // Every node's own view of the roles, sampled all through the flood.
        while (!done) {
          const st = await fleet.statuses(NODES);
          const reps = [...st.values()].filter((s) => s?.role === 'representative').map((s) => s!.name);
          const silent = [...st.entries()].filter(([, s]) => s === undefined).map(([i]) => Fleet.nameOf(i));
          roles.push(`${reps.join(',') || 'none'}${silent.length ? ` (silent ${silent.join(',')})` : ''}`);
          await sleep(250);
        }
        const x = await flooding;
        await sleep(1500);
        return x;
      },
      (x) => `${x.sent} datagrams in ${x.ms} ms (${x.sendErrors} send errors, ${x.captured} genuine captured for replay), ${roles.length} role samples: ${[...new Set(roles)].join(' | ')}`,
    );
    assert.ok(r.sent >= 19_000, `only ${r.sent} datagrams sent`);
    assert.ok(roles.length >= 3, `only ${roles.length} role samples during the flood`);
    assert.deepEqual([...new Set(roles)], [rep], `the roles during the flood: ${roles.join(' | ')}`);
    const st1 = await fleet.statuses(NODES);
    const dropped = NODES.map((i) => (st1.get(i)?.lan.dropped ?? 0) - (st0.get(i)?.lan.dropped ?? 0));
    console.log(`[attack] LAN flood: lan.dropped grew by ${dropped.map((d, i) => `${Fleet.nameOf(i)} +${d}`).join(', ')}`);
    // Every node gets the group's share and its own unicast share (about half of all); the replays aside, each is dropped.
    for (const [i, d] of dropped.entries()) assert.ok(d >= 5000, `${Fleet.nameOf(i)} dropped only ${d} datagrams`);
    await notListed(forgedName, rogue.address, rep);
  });

  it('10. plain HTTP on the TLS ports: only a redirect to https, no page, no cookie', { skip: SCHEME !== 'https' ? 'the ports speak plain HTTP in this run' : false, timeout: 60_000 }, async () => {
    const plainTargets = ctx.targets.map((t) => ({ ...t, scheme: 'http' as const }));
    const answers = await underAttack(
      'plain HTTP on the TLS ports',
      () => call<Exchange[]>(ATTACKS, 'plain', [{ targets: plainTargets, password: PORTAL_PASSWORD }]),
      (xs) => `${xs.length} plain requests: ${tally(xs)}`,
    );
    for (const a of answers) {
      const where = `plain ${a.method} ${a.path}${a.note ? ` (${a.note})` : ''} on ${a.target}`;
      if (a.path === '/healthz' && a.method === 'GET') {
        // By design: the health check answers plain HTTP too, and carries nothing.
        assert.deepEqual([a.status, a.body], [200, 'ok\n'], where);
        continue;
      }
      assert.ok([301, 302, 307, 308].includes(a.status), `${where}: ${a.status} ${a.body.slice(0, 200)}`);
      assert.ok((a.headers['location'] ?? '').startsWith('https://'), `${where}: Location ${a.headers['location']}`);
      assert.equal(a.headers['set-cookie'], undefined, `${where} set a cookie`);
      noLeak(where, a.body, portOf(a.target));
    }
  });

  it("11. over the whole file, every node's memory stayed bounded", () => {
    assert.ok(startUsage, 'the file did not start');
    const end = usage();
    for (const i of NODES) {
      const grew = end.rssMb[i]! - startUsage.rssMb[i]!;
      assert.ok(grew < WHOLE_FILE_GROWTH_MB, `${Fleet.nameOf(i)}: RSS ${startUsage.rssMb[i]!.toFixed(0)} → ${end.rssMb[i]!.toFixed(0)} MB over the file`);
    }
  });

  /** No node lists the forged node or the rogue's address; the WAN portal's API and page neither; `rep` is still representative. */
  async function notListed(forgedName: string, rogueAddress: string, rep: string): Promise<void> {
    const settled = await ctx.fleet.settled(10_000);
    assert.equal(settled.rep, rep, 'the representative changed');
    const st = await ctx.fleet.statuses(NODES);
    for (const [i, s] of st) {
      assert.ok(s, `${Fleet.nameOf(i)} does not answer`);
      assert.equal(s.representative?.name, rep, `${s.name} names ${s.representative?.name}`);
      assert.ok(!s.nodes.some((n) => n.name === forgedName || n.addresses.includes(rogueAddress)), `${s.name} lists the forged node`);
    }
    const nodes = await get(ctx.portal, '/api/nodes');
    assert.equal(nodes.status, 200);
    const listed = JSON.parse(nodes.body) as PeerStatus[];
    assert.deepEqual(listed.map((n) => n.name).sort(), ctx.facts.names, 'the WAN portal lists exactly the fleet');
    const page = await get(ctx.portal, '/');
    assert.equal(page.status, 200);
    assert.ok(!page.body.includes(forgedName) && !page.body.includes(rogueAddress), 'the portal page shows the forged node');
    assert.ok(page.body.includes(`${ctx.facts.names[0]}`), 'the portal page shows the fleet (else this check proves nothing)');
    const status = JSON.parse((await get(ctx.portal, '/api/status')).body) as NodeStatus;
    assert.equal(status.name, rep, 'the WAN portal is served by the representative');
  }
});
