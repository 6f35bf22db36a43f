import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { NodeStatus, PeerStatus } from '../../src/portal/status.js';
import { Fleet, PORTAL_PASSWORD, PUBLIC_PORT, waitUntil } from '../agent/fixtures/fleet.js';
import { canRunTestbed, createTestbed, type Testbed } from '../testbed/testbed.js';
import { CHROMIUM, launchInNamespace, type PageWatch, watch } from './fixtures/browser.js';
import type { ProbeAnswer, ProbeRequest } from './fixtures/http-probe.js';

/**
 * The portal as a person on the internet meets it: a real browser (Debian's chromium, driven by
 * playwright-core) inside the test bed's WAN namespace, in front of the real router (miniupnpd)
 * and three nodes running `frontdoor run` on its LAN. It logs in once on the well-known port,
 * sees every node, follows each node's link to that node's own port without logging in again,
 * and watches the page follow a change of representative by itself. Without credentials, every
 * route answers 401 and gives nothing away; wrong passwords are slowed down; a node named like
 * markup shows as text. Screenshots go to test-artifacts/portal/ (not in git).
 */

const can = canRunTestbed();
const curl = spawnSync('curl', ['--version'], { stdio: 'ignore', timeout: 5000 });
const skip = !can.ok
  ? `needs root and network namespaces: ${can.reason}`
  : !existsSync(CHROMIUM)
    ? `needs Debian's chromium at ${CHROMIUM} (apt install chromium); no browser is ever downloaded`
    : curl.error !== undefined || curl.status !== 0
      ? 'needs curl (apt install curl): the fleet fixture asks each node inside its namespace'
      : false;

const SECRET = 'browser-real-test-fleet-secret-3b9e07c1d4';
const PROBE = new URL('./fixtures/http-probe.js', import.meta.url);
/** test-artifacts/portal/ at the repository root (from .build-*\/test/portal or dist/test/portal). */
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/portal/', import.meta.url));
const EVIL = '<script>alert(1)</script>';
const NODES = [0, 1, 2];
const NAMES = NODES.map((i) => Fleet.nameOf(i));

const indexOf = (name: string): number => Number(name.slice(1)) - 1;
/** h1 is a camera node showing ffmpeg's test pattern (the others have none: `auto` finds nothing here). */
const CAMERA_ARGS = ['--camera', 'test', '--camera-width', '320', '--camera-height', '180', '--camera-fps', '5', '--camera-idle', '5s'];
const extraArgs = (i: number): readonly string[] => (i === 0 ? CAMERA_ARGS : []);

function log(what: string, ms?: number): void {
  console.log(`[browser-real] ${what}${ms === undefined ? '' : `: ${Math.round(ms)} ms`}`);
}

interface Card {
  name: string;
  rep: boolean;
  href: string | null;
}

/** The portal page's cards as the browser shows them (throws while the page is being replaced). */
async function cards(page: Page): Promise<Card[]> {
  const all = page.locator('#nodes li.card.node');
  const n = await all.count();
  const out: Card[] = [];
  for (let i = 0; i < n; i++) {
    const c = all.nth(i);
    const name = (await c.locator('.node-name').textContent({ timeout: 2000 })) ?? '';
    const cls = (await c.getAttribute('class', { timeout: 2000 })) ?? '';
    const link = c.locator('a.node-link');
    const href = (await link.count()) > 0 ? await link.getAttribute('href', { timeout: 2000 }) : null;
    out.push({ name, rep: cls.split(/\s+/).includes('rep'), href });
  }
  return out;
}

/** Logs in through the form of the page (which shows the login page); resolves with the page's answer after the redirect. */
async function login(page: Page, password: string) {
  const landed = page.waitForResponse((r) => r.request().method() === 'GET' && r.request().resourceType() === 'document', {
    timeout: 10_000,
  });
  await page.fill('#password', password);
  await page.click('form#login button[type=submit]');
  const r = await landed;
  await page.waitForLoadState('load');
  return r;
}

/** Text of the body with markup, inline styles and scripts removed. */
function textOf(html: string): string {
  return html
    .replace(/<style[^>]*>[\s\S]*?<\/style>/gi, ' ')
    .replace(/<script[^>]*>[\s\S]*?<\/script>/gi, ' ')
    .replace(/<[^>]*>/g, ' ');
}

/**
 * What an answer gives away that only a logged-in user may see: a node's name or id, a LAN
 * address, the WAN address, a public port, a mapping's description, the router's protocol.
 */
function leaks(body: string, fleet: { names: string[]; ids: string[]; ports: number[]; wan: string }): string[] {
  const found: string[] = [];
  const text = textOf(body);
  for (const n of fleet.names) {
    const re = new RegExp(`(^|[^A-Za-z0-9_])${n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}([^A-Za-z0-9_]|$)`);
    if (re.test(text)) found.push(`node name ${n}`);
  }
  for (const id of fleet.ids) if (body.includes(id)) found.push(`node id ${id}`);
  if (body.includes('192.168.77.')) found.push('a LAN address');
  if (body.includes(fleet.wan)) found.push(`the WAN address ${fleet.wan}`);
  for (const p of fleet.ports) if (new RegExp(`(^|[^0-9])${p}([^0-9]|$)`).test(body)) found.push(`port ${p}`);
  for (const w of ['frontdoor h', 'frontdoor representative', 'upnp', 'miniupnpd', 'nat-pmp']) {
    if (body.toLowerCase().includes(w)) found.push(JSON.stringify(w));
  }
  return found;
}

function brief(a: ProbeAnswer): string {
  return `${a.method} ${a.url} → ${a.status || a.error} ${a.headers['content-type'] ?? ''} ${JSON.stringify(a.body.slice(0, 160))}`;
}

describe('the portal in a real browser from the internet side', { skip, concurrency: false }, () => {
  const ctx = {} as { tb: Testbed; fleet: Fleet; browser: Browser; portal: string; wan: string };
  const contexts: BrowserContext[] = [];
  const t0 = Date.now();

  before(async () => {
    const t = Date.now();
    // A fourth host for the node named like markup (last case).
    ctx.tb = await createTestbed({ mode: 'igd2', hosts: 4 });
    ctx.fleet = new Fleet(ctx.tb, { secret: SECRET });
    ctx.wan = ctx.tb.wanAddress;
    // HTTPS with the fleet's own certificate (the default); the browser is told to accept it as
    // a user who checked its fingerprint would.
    ctx.portal = `https://${ctx.wan}:${PUBLIC_PORT}`;
    mkdirSync(ARTIFACTS, { recursive: true });
    const [browser] = await Promise.all([
      launchInNamespace(ctx.tb.wan.ns, ctx.tb.tmpDir),
      (async () => {
        ctx.fleet.startAll(NODES, extraArgs);
        await ctx.fleet.settled(20_000);
      })(),
    ]);
    ctx.browser = browser;
    log(`test bed (4 hosts) + chromium in ${ctx.tb.wan.ns} + 3 nodes settled`, Date.now() - t);
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await ctx.browser?.close().catch(() => {});
    await ctx.fleet?.stopAll();
    await ctx.tb?.close();
    log('whole file', Date.now() - t0);
  });

  async function newContext(viewport = { width: 1280, height: 800 }): Promise<{ page: Page; w: PageWatch; context: BrowserContext }> {
    const context = await ctx.browser.newContext({ viewport, ignoreHTTPSErrors: true });
    contexts.push(context);
    const page = await context.newPage();
    return { page, w: watch(page), context };
  }

  /** One list of plain requests from the WAN namespace (no browser, no credentials unless given). */
  function probe(requests: readonly ProbeRequest[]): Promise<ProbeAnswer[]> {
    return ctx.tb.call<ProbeAnswer[]>(ctx.tb.wan, PROBE, 'probe', [requests], { timeoutMs: 60_000 });
  }

  it('logs in once, sees every node, follows each link without a second login; the page follows a new representative by itself', { timeout: 120_000 }, async () => {
    const { fleet } = ctx;
    const { rep } = await fleet.settled(10_000);
    const { page, w, context } = await newContext();
    const t1 = Date.now();

    // 1. Typed as http://: the port itself sends the browser to https. Locked: the login page.
    const first = await page.goto(`http://${ctx.wan}:${PUBLIC_PORT}/`);
    assert.equal(page.url(), `${ctx.portal}/`, 'plain HTTP redirected to https on the same port');
    assert.equal(first?.status(), 401, 'GET / without a session');
    const served = await first?.securityDetails();
    assert.equal(served?.subjectName, 'frontdoor', "the fleet's own certificate");
    assert.equal(await page.locator('form#login').count(), 1, 'the login form');
    assert.equal(await page.locator('input#password[name=password]').count(), 1);
    assert.equal(await page.locator('#nodes').count(), 0, 'no node list before the login');

    // 2. The fleet's password: 303 to /, the cookie, every node's card.
    const landed = await login(page, PORTAL_PASSWORD);
    assert.equal(landed.status(), 200, `after the login: ${landed.url()}`);
    assert.equal(page.url(), `${ctx.portal}/`);
    const cookie = (await context.cookies()).find((c) => c.name === 'fd_session');
    assert.ok(cookie, 'the session cookie');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.secure, true, 'the session cookie never goes out over plain HTTP');
    assert.equal(cookie.sameSite, 'Lax');
    assert.equal(cookie.path, '/');
    const seen = await cards(page);
    assert.deepEqual(seen.map((c) => c.name).sort(), NAMES, 'one card per node');
    assert.deepEqual(
      seen.filter((c) => c.rep).map((c) => c.name),
      [rep],
      'exactly one .card.rep, the representative',
    );
    assert.equal(await page.locator('#nodes .card.rep').count(), 1);
    log(`login page (401) → logged in → ${seen.length} cards (rep ${rep})`, Date.now() - t1);

    // 3. Screenshots: desktop, phone.
    const shots: string[] = [];
    const desktop = join(ARTIFACTS, 'portal-desktop.png');
    await page.screenshot({ path: desktop, fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    const phone = join(ARTIFACTS, 'portal-phone.png');
    await page.screenshot({ path: phone, fullPage: true });
    // Reported, not asserted: whether the page fits a phone's width or scrolls sideways.
    const width = await page.evaluate(
      () => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth,
    );
    log(`phone viewport 390x844: the portal page is ${width} px wide${width > 390 ? ' (wider than the screen: it scrolls sideways)' : ''}`);
    await page.setViewportSize({ width: 1280, height: 800 });
    shots.push(desktop, phone);

    // 4. Each card's link, clicked in the same context: the node's own page, no second login.
    const t2 = Date.now();
    for (const c of seen) {
      assert.ok(c.href, `${c.name} has a link`);
      const u = new URL(c.href);
      assert.equal(u.hostname, ctx.wan, `${c.name}'s link is on the WAN address`);
      assert.notEqual(u.port, String(PUBLIC_PORT), `${c.name}'s link is its own port, not the portal's`);
      if (page.url() !== `${ctx.portal}/`) await page.goto(`${ctx.portal}/`);
      const answer = page.waitForResponse((r) => r.url() === c.href && r.request().resourceType() === 'document', { timeout: 10_000 });
      await page.locator(`#nodes li.card.node a.node-link[href="${c.href}"]`).click();
      const r = await answer;
      await page.waitForLoadState('load');
      assert.equal(r.status(), 200, `${c.href}: no login asked (the portal's session is good on the node's own port)`);
      assert.equal(await page.locator('form#login').count(), 0, `${c.href} shows no login form`);
      assert.equal(await page.locator('h1#node-name').textContent(), c.name, `${c.href} is ${c.name}'s page`);
      const role = await page.locator('#role').textContent();
      assert.equal(role === 'representative', c.rep, `${c.name}'s page says ${role}; its card ${c.rep ? 'is' : 'is not'} .rep`);
      assert.equal(await page.locator('a#portal-link').getAttribute('href'), `${ctx.portal}/`, `${c.name}'s page links the portal`);
      if (!c.rep && shots.length === 2) {
        const p = join(ARTIFACTS, 'node-page.png');
        await page.screenshot({ path: p, fullPage: true });
        shots.push(p);
        log(`node page screenshot is ${c.name}'s (a member)`);
      }
    }
    log(`followed ${seen.length} node links (one login for every port)`, Date.now() - t2);
    for (const s of shots) log(`screenshot ${s}`);

    // 5. The representative stops; the open portal page must change by itself (portal.js reloads).
    const baseline = page.waitForResponse((r) => r.url() === `${ctx.portal}/api/status`, { timeout: 10_000 });
    await page.goto(`${ctx.portal}/`);
    await baseline;
    await page.evaluate(() => {
      (globalThis as Record<string, unknown>)['fdMarker'] = 1;
    });
    const loadsBefore = w.loads;
    const t3 = Date.now();
    const stopping = fleet.stop(indexOf(rep), 'SIGTERM');
    stopping.catch(() => {});
    let last = '';
    const next = await waitUntil(
      async () => {
        try {
          const now = await cards(page);
          last = `${page.url()}: ${now.map((c) => `${c.name}${c.rep ? '(rep)' : ''}`).join(',') || 'no cards'}`;
          const reps = now.filter((c) => c.rep).map((c) => c.name);
          return now.length === 2 && !now.some((c) => c.name === rep) && reps.length === 1 && reps[0] !== rep ? reps[0] : undefined;
        } catch (err) {
          last = `${page.url()}: ${(err as Error).message.split('\n')[0]}`;
          return undefined;
        }
      },
      { timeoutMs: 15_000, intervalMs: 200, what: () => `the open portal page to show 2 nodes and a new representative by itself (last: ${last})` },
    ).catch(async (err: unknown) => {
      // For the report only: would a reload by hand have shown it?
      let byHand = '';
      try {
        await page.reload();
        byHand = (await cards(page)).map((c) => `${c.name}${c.rep ? '(rep)' : ''}`).join(',');
      } catch (e) {
        byHand = (e as Error).message.split('\n')[0] ?? '';
      }
      throw new Error(
        `${(err as Error).message}; page loads since the stop: ${w.loads - loadsBefore}; after a reload by hand: ${byHand}\n${fleet.explain()}`,
      );
    });
    const ms = Date.now() - t3;
    await stopping;
    const marker = await page.evaluate(() => (globalThis as Record<string, unknown>)['fdMarker']);
    assert.equal(marker, undefined, 'the page was replaced (reloaded by its script), not patched');
    // The load event comes once the camera thumbnail is in, which may be after the cards.
    await page.waitForLoadState('load');
    assert.ok(w.loads > loadsBefore, 'portal.js reloaded the page');
    assert.equal(page.url(), `${ctx.portal}/`);
    log(`SIGTERM of representative ${rep} → open page shows 2 cards, ${next} .rep, no reload by the test (${w.loads - loadsBefore} reload(s) by portal.js)`, ms);
    assert.deepEqual(w.dialogs, []);
    assert.deepEqual(w.errors, [], 'no script errors on the pages');
  });

  it('without credentials every route answers 401 and gives nothing away; /healthz answers; a forged cookie is refused', { timeout: 40_000 }, async () => {
    const { fleet } = ctx;
    for (const i of NODES) if (!fleet.live().includes(i)) fleet.start(i, extraArgs(i));
    const { nodes } = await fleet.settled(20_000);
    const t1 = Date.now();
    const bases = [`${ctx.portal}/`, ...nodes.map((n) => n.url!)];
    const known = {
      names: nodes.map((n) => n.name),
      ids: nodes.map((n) => n.id),
      ports: [PUBLIC_PORT, ...nodes.map((n) => Number(new URL(n.url!).port))],
      wan: ctx.wan,
    };
    const forged = `fd_session=v1.zzzzzzzz.AAAAAAAAAAAA.${'A'.repeat(43)}`;
    const html = { accept: 'text/html,application/xhtml+xml' };
    type Want = 'login-page' | 'json-401' | 'ok' | 'public';
    const plan: Array<{ req: ProbeRequest; want: Want }> = [];
    for (const b of bases) {
      plan.push({ req: { url: b, headers: html }, want: 'login-page' });
      plan.push({ req: { url: b }, want: 'json-401' });
      for (const p of ['api/status', 'api/nodes', 'metrics', 'camera.jpg', 'camera.mjpg', 'nonexistent']) plan.push({ req: { url: b + p }, want: 'json-401' });
      plan.push({ req: { url: `${b}camera.jpg`, headers: { cookie: forged } }, want: 'json-401' });
      plan.push({ req: { url: b, headers: { ...html, cookie: forged } }, want: 'login-page' });
      plan.push({ req: { url: `${b}api/status`, headers: { cookie: forged } }, want: 'json-401' });
      plan.push({ req: { url: `${b}api/nodes`, headers: { cookie: forged } }, want: 'json-401' });
      plan.push({ req: { url: `${b}healthz` }, want: 'ok' });
      plan.push({ req: { url: `${b}login`, headers: html }, want: 'public' });
      plan.push({ req: { url: `${b}portal.js` }, want: 'public' });
    }
    const answers = await probe(plan.map((p) => p.req));
    const problems: string[] = [];
    answers.forEach((a, i) => {
      const want = plan[i]!.want;
      const bad = (why: string) => problems.push(`${why}: ${brief(a)}`);
      if (a.headers['x-powered-by'] !== undefined) bad('x-powered-by');
      if (!a.headers['content-security-policy']?.includes("default-src 'none'")) bad('no CSP');
      if (want === 'ok') {
        if (a.status !== 200 || a.body.trim() !== 'ok') bad('/healthz is not 200 ok');
        return;
      }
      const l = leaks(a.body, known);
      if (l.length > 0) bad(`gives away ${l.join(', ')}`);
      if (want === 'public') {
        if (a.status !== 200) bad('public route not 200');
        return;
      }
      if (a.status !== 401) bad('not 401');
      if (a.setCookie.length > 0) bad('sets a cookie');
      if (want === 'login-page') {
        if (!a.headers['content-type']?.startsWith('text/html') || !a.body.includes('<form id="login"')) bad('not the login page');
      } else {
        if (!a.headers['www-authenticate']?.startsWith('Basic realm="frontdoor"')) bad('no WWW-Authenticate');
        if (a.body.trim() !== '{"error":"login required"}') bad('unexpected body');
      }
    });
    assert.deepEqual(problems, [], problems.join('\n'));
    const locked = plan.filter((p) => p.want === 'login-page' || p.want === 'json-401').length;
    log(
      `${answers.length} requests from the WAN namespace to 8080 and ${nodes.length} node ports: ${locked} locked (401, forged cookie included), ${bases.length} /healthz ok, /login and /portal.js public; no name, id, address, port or mapping in any body`,
      Date.now() - t1,
    );
  });

  it('camera: the card shows a thumbnail that refreshes, the node page a live view; both decode in the browser', { timeout: 60_000 }, async () => {
    const { fleet } = ctx;
    for (const i of NODES) if (!fleet.live().includes(i)) fleet.start(i, extraArgs(i));
    await fleet.settled(20_000);
    const { page, w } = await newContext();
    // CSP violations and failed loads show as console errors.
    const consoleErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    const t1 = Date.now();
    await page.goto(`${ctx.portal}/`);
    await login(page, PORTAL_PASSWORD);
    const camName = Fleet.nameOf(0);
    const card = page.locator('#nodes li.card.node', { has: page.locator('.node-name', { hasText: new RegExp(`^${camName}$`) }) });
    const thumb = card.locator('img.thumb');
    assert.equal(await thumb.count(), 1, `${camName} has a camera: its card has a thumbnail`);
    assert.equal(await page.locator('#nodes img.thumb').count(), 1, 'nodes without a camera have none');
    const decoded = async (img: typeof thumb) =>
      img.evaluate((el) => {
        const i = el as unknown as { complete: boolean; naturalWidth: number; naturalHeight: number; currentSrc: string };
        return { complete: i.complete, w: i.naturalWidth, h: i.naturalHeight, src: i.currentSrc };
      });
    const first = await waitUntil(async () => {
      const d = await decoded(thumb);
      return d.complete && d.w > 0 ? d : undefined;
    }, { timeoutMs: 20_000, what: 'the thumbnail to show a decoded picture' });
    assert.deepEqual([first.w, first.h], [320, 180], 'the thumbnail is the camera picture at its configured size');
    const again = await waitUntil(async () => {
      const d = await decoded(thumb);
      return d.src !== first.src && d.complete && d.w > 0 ? d : undefined;
    }, { timeoutMs: 20_000, what: 'the thumbnail to refresh' });
    assert.match(again.src, /camera\.jpg\?t=\d+$/);
    await page.screenshot({ path: join(ARTIFACTS, 'portal-camera.png'), fullPage: true });
    log(`thumbnail ${first.w}x${first.h} decoded, refreshed`, Date.now() - t1);

    // The node's own page: the live MJPEG view, same login.
    const t2 = Date.now();
    const href = await card.locator('a.node-link').getAttribute('href');
    assert.ok(href);
    await page.goto(href);
    const live = page.locator('img#live');
    assert.equal(await live.count(), 1);
    const d = await waitUntil(async () => {
      const x = await decoded(live);
      return x.w > 0 ? x : undefined;
    }, { timeoutMs: 20_000, what: 'the live view to show a decoded picture' });
    assert.deepEqual([d.w, d.h], [320, 180]);
    // The page's text was rendered before the live view asked; the node's status says now.
    const state = await waitUntil(
      async () => {
        const st = (await page.evaluate(async () => (await (await fetch('/api/status')).json()) as { camera: { state: string; viewers: number } | null })).camera;
        return st?.state === 'live' && st.viewers >= 1 ? st : undefined;
      },
      { timeoutMs: 10_000, what: 'the camera to be live with the page as its viewer' },
    );
    assert.equal(state.state, 'live');
    await page.screenshot({ path: join(ARTIFACTS, 'node-camera.png'), fullPage: true });
    assert.deepEqual(w.errors, [], 'no script error');
    assert.deepEqual(w.dialogs, []);
    // The login page's 401 is a console error of its own, and on plain HTTP Chrome says it
    // ignores Cross-Origin-Opener-Policy; anything else is a problem.
    assert.deepEqual(
      consoleErrors.filter((e) => !/status of 401/.test(e) && !/Cross-Origin-Opener-Policy header has been ignored/.test(e)),
      [],
      'no CSP violation or failed image',
    );
    log(`live view ${d.w}x${d.h} decoded on ${href}`, Date.now() - t2);
  });

  it('wrong passwords are slowed down: 5 answered, then 429 with Retry-After (the right one too) until the wait is over', { timeout: 40_000 }, async () => {
    const { fleet } = ctx;
    const { rep, nodes } = await fleet.settled(15_000);
    const own = nodes.find((n) => n.name === rep)?.url;
    assert.ok(own, `${rep}'s own page url`);
    const known = { names: nodes.map((n) => n.name), ids: nodes.map((n) => n.id), ports: [], wan: ctx.wan };
    const url = `${ctx.portal}/login`;
    const post = (password: string, at = url): ProbeRequest => ({ url: at, method: 'POST', form: { password } });
    const t1 = Date.now();
    const a = await probe([
      ...Array.from({ length: 7 }, () => post('not-the-password')),
      post(PORTAL_PASSWORD),
      // The node's own port is the same door: its listeners share the count.
      post(PORTAL_PASSWORD, `${own}login`),
    ]);
    const lines = a.map(brief).join('\n');
    for (let i = 0; i < 5; i++) {
      assert.equal(a[i]!.status, 401, `wrong password ${i + 1} is compared and refused\n${lines}`);
      assert.match(a[i]!.body, /id="login-error">Wrong password/);
    }
    for (let i = 5; i < 9; i++) {
      const x = a[i]!;
      assert.equal(x.status, 429, `attempt ${i + 1} must wait\n${lines}`);
      assert.match(x.headers['retry-after'] ?? '', /^[1-9][0-9]*$/, `attempt ${i + 1}: Retry-After`);
      assert.match(x.body, /id="login-error">Too many wrong passwords/);
      assert.equal(x.setCookie.length, 0, 'no session while blocked');
    }
    assert.equal(a[5]!.headers['retry-after'], '1', 'the first wait is 1 s');
    for (const x of a) assert.deepEqual(leaks(x.body, known), [], brief(x));
    log(
      `5 wrong → 401 each (${a
        .slice(0, 5)
        .map((x) => x.ms)
        .join('/')} ms); 6th, 7th wrong → 429 Retry-After ${a[5]!.headers['retry-after']}; right password at once → 429 (expected: the wait is per address); right at ${rep}'s own port → 429 (shared)`,
      Date.now() - t1,
    );

    // After the Retry-After wait (counted from the last 429), the right password is accepted.
    const waitMs = Number(a[8]!.headers['retry-after']) * 1000 + 150;
    const t2 = Date.now();
    const [ok] = await probe([{ ...post(PORTAL_PASSWORD), delayMs: waitMs }]);
    assert.ok(ok);
    assert.equal(ok.status, 303, brief(ok));
    assert.equal(ok.headers['location'], '/');
    const set = ok.setCookie.find((c) => c.startsWith('fd_session='));
    assert.ok(set, 'a session cookie');
    assert.match(set, /HttpOnly/i);
    assert.match(set, /SameSite=Lax/i);
    const session = set.split(';')[0]!;
    const [st] = await probe([{ url: `${ctx.portal}/api/status`, headers: { cookie: session } }]);
    assert.equal(st?.status, 200, st && brief(st));
    assert.equal((JSON.parse(st.body) as NodeStatus).name, rep);
    log(`waited Retry-After (+150 ms) → right password 303 with fd_session; that cookie reads /api/status`, Date.now() - t2);
  });

  it('a node named like markup shows as text: no dialog, the card and its page show the name literally', { timeout: 50_000 }, async () => {
    const { fleet } = ctx;
    const t1 = Date.now();
    fleet.start(3, ['--name', EVIL]);
    let listed = '';
    const evil = await waitUntil(
      async () => {
        fleet.assertNoCrash();
        const nodes = await fleet.wanJson<PeerStatus[]>('/api/nodes');
        listed = nodes ? nodes.map((n) => JSON.stringify(n.name)).join(',') : 'no answer';
        const fourth = nodes?.find((n) => !NAMES.includes(n.name));
        return fourth?.url ? fourth : undefined;
      },
      { timeoutMs: 25_000, intervalMs: 250, what: () => `a 4th node with a link in the WAN portal's /api/nodes (listed: ${listed})` },
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n${fleet.explain()}`);
    });
    log(`4th node started with --name ${JSON.stringify(EVIL)}; /api/nodes lists it as ${JSON.stringify(evil.name)}`, Date.now() - t1);
    assert.equal(evil.name, EVIL, 'the agent keeps printable characters as they are');

    const t2 = Date.now();
    const { page, w } = await newContext();
    await page.goto(`${ctx.portal}/`);
    const landed = await login(page, PORTAL_PASSWORD);
    assert.equal(landed.status(), 200);
    const raw = await landed.text();
    assert.ok(!raw.includes(EVIL), 'the raw page does not contain the name as markup');
    assert.ok(raw.includes('&#60;script&#62;alert(1)&#60;/script&#62;'), 'the raw page has it escaped');
    const seen = await cards(page);
    assert.equal(seen.length, 4, seen.map((c) => c.name).join(','));
    const card = seen.filter((c) => c.name === EVIL);
    assert.equal(card.length, 1, `the card's .node-name textContent equals the name (cards: ${JSON.stringify(seen.map((c) => c.name))})`);
    assert.equal(await page.locator('script').count(), 1, 'the one script element is /portal.js');
    assert.equal(await page.locator('script').getAttribute('src'), '/portal.js');
    const shot = join(ARTIFACTS, 'portal-escaped-name.png');
    await page.screenshot({ path: shot, fullPage: true });

    // Its own page: the title and the heading are the name, as text.
    await page.locator(`#nodes li.card.node a.node-link[href="${card[0]!.href}"]`).click();
    await page.waitForURL(card[0]!.href!);
    await page.waitForLoadState('load');
    assert.equal(await page.locator('h1#node-name').textContent(), EVIL);
    assert.equal(await page.title(), EVIL);
    assert.equal(await page.locator('script').count(), 1);
    // A dialog opened by the page's parsing would already have fired; give a late one a moment.
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(w.dialogs, [], 'no dialog');
    assert.deepEqual(w.errors, [], 'no script errors');
    log(`portal card and node page show ${JSON.stringify(EVIL)} as text, no dialog, no extra <script>`, Date.now() - t2);
    log(`screenshot ${shot}`);
  });
});
