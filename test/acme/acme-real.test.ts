import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { NodeStatus } from '../../src/portal/status.js';
import { CLI, Fleet, HTTP_PORT, LineLog, PORTAL_PASSWORD, PUBLIC_PORT, waitUntil } from '../agent/fixtures/fleet.js';
import type { Host, Testbed } from '../testbed/testbed.js';
import { canRunTestbed, createTestbed } from '../testbed/testbed.js';
import { CHALLTESTSRV, PEBBLE, startPebble } from './fixtures/pebble.js';
import type { Pebble } from './fixtures/pebble.js';

/**
 * A trusted certificate from an ACME CA, end to end: Debian's pebble plays Let's Encrypt in the
 * test bed's WAN namespace, and validates the http-01 challenge through the real router
 * (miniupnpd) from the internet side. The representative maps the challenge port for the time
 * of the validation, gets a certificate for the router's WAN address, and hands it to every node
 * sealed with the fleet secret; a client that trusts only pebble's root then reaches the portal
 * and every node's page without a warning. The certificate outlives a failover, is renewed
 * before it ends, can be for a DNS name instead, and a router that will not open the port leaves
 * the fleet on its own certificate, saying why.
 */

const can = canRunTestbed();
const curl = spawnSync('curl', ['--version'], { stdio: 'ignore', timeout: 5000 });
const skip = !can.ok
  ? `needs root and network namespaces: ${can.reason}`
  : !existsSync(PEBBLE) || !existsSync(CHALLTESTSRV)
    ? `needs Debian's pebble at ${PEBBLE} (apt install pebble)`
    : curl.error !== undefined || curl.status !== 0
      ? 'needs curl (apt install curl)'
      : false;

const SECRET = 'acme-real-test-fleet-secret-51c2e9';
/** Not 80: pebble validates on the port it is told, and the test bed's router refuses ports below 1024. */
const CHALLENGE_PORT = 5002;
/** Short, so that a renewal (at two thirds: 40 s) happens inside the test. */
const VALIDITY_S = 60;
const NAME = 'cams.frontdoor.test';

/** Fleet nodes that trust pebble's listener, as real nodes trust Let's Encrypt's. */
class AcmeFleet extends Fleet {
  constructor(
    tb: Testbed,
    private readonly caFile: string,
    args: readonly string[],
  ) {
    super(tb, { secret: SECRET, args });
  }

  protected override spawnNode(_index: number, host: Host, args: readonly string[]): ChildProcess {
    return this.tb.spawn(host, [process.execPath, CLI, ...args], { env: { ...process.env, NODE_EXTRA_CA_CERTS: this.caFile } });
  }
}

function log(what: string): void {
  console.log(`[acme-real] ${what}`);
}

describe('ACME certificates from a CA on the internet side (pebble)', { skip, concurrency: false }, () => {
  const ctx = {} as { tb: Testbed; pebble: Pebble; fleet: AcmeFleet | undefined };

  before(async () => {
    ctx.tb = await createTestbed({ hosts: 3 });
    ctx.pebble = await startPebble(ctx.tb, { httpPort: CHALLENGE_PORT, validitySeconds: VALIDITY_S, dns: true });
  });

  after(async () => {
    await ctx.fleet?.stopAll('SIGKILL');
    await ctx.tb?.close();
  });

  const acmeArgs = (extra: readonly string[] = []) => ['--acme', ctx.pebble.directoryUrl, '--acme-challenge-port', String(CHALLENGE_PORT), ...extra];

  /** A GET that trusts pebble's root only (no -k): the certificate must chain to it and name `host`. */
  async function trusted(url: string, resolve?: string): Promise<{ code: number; curlExit: number; error: string }> {
    const r = await ctx.tb.exec(
      ctx.tb.wan,
      [
        'curl',
        '-s',
        '-S',
        '--cacert',
        ctx.pebble.rootFile,
        ...(resolve ? ['--resolve', resolve] : []),
        '-u',
        `admin:${PORTAL_PASSWORD}`,
        '--max-time',
        '3',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        url,
      ],
      { timeoutMs: 8000 },
    );
    return { code: Number(r.stdout.trim()) || 0, curlExit: r.code ?? -1, error: r.stderr.trim() };
  }

  async function acmeStatus(fleet: Fleet, i: number): Promise<NodeStatus['tls'] | undefined> {
    return (await fleet.status(i))?.tls ?? undefined;
  }

  /** Every live node serves an ACME certificate, the same one; resolves with its fingerprint. */
  async function everyNodeOnAcme(fleet: Fleet, timeoutMs: number, other?: string): Promise<string> {
    let last = '';
    return waitUntil(
      async () => {
        fleet.assertNoCrash();
        const st = await fleet.statuses();
        const seen = [...st.entries()].map(([i, s]) => `${Fleet.nameOf(i)}: ${s?.tls ? `${s.tls.source} ${s.tls.fingerprint.slice(0, 11)} acme=${JSON.stringify(s.tls.acme)}` : 'no answer'}`);
        last = seen.join('; ');
        const fps = new Set([...st.values()].map((s) => (s?.tls?.source === 'acme' ? s.tls.fingerprint : '-')));
        if (fps.size !== 1 || fps.has('-')) return undefined;
        const fp = [...fps][0]!;
        return fp !== other ? fp : undefined;
      },
      { timeoutMs, intervalMs: 300, what: () => `every node to serve the same ACME certificate (${last})\n${fleet.explain()}` },
    );
  }

  it('the representative gets a certificate for the WAN address through the real router, and every node serves it', async () => {
    const fleet = new AcmeFleet(ctx.tb, ctx.pebble.listenerCaFile, acmeArgs());
    ctx.fleet = fleet;
    fleet.startAll([0, 1, 2]);
    const { rep } = await fleet.settled(20_000);
    const t0 = Date.now();
    const fp = await everyNodeOnAcme(fleet, 30_000);
    log(`every node on the ACME certificate ${Date.now() - t0} ms after the fleet settled (representative ${rep})`);
    assert.equal(ctx.pebble.issued(), 1, 'one certificate for the fleet, not one per node');
    const at = (msg: string) => {
      const r = fleet.nodes.get(Number(rep.slice(1)) - 1)!.log.records().find((x) => x['msg'] === msg);
      return r ? Date.parse(String(r['time'])) : Number.NaN;
    };
    log(`representative to certificate (port forwarded, account, order, validation through the router, issuance): ${at('ACME certificate obtained') - at('became representative')} ms`);

    const repIndex = Number(rep.slice(1)) - 1;
    const repTls = await acmeStatus(fleet, repIndex);
    assert.equal(repTls?.acme?.state, 'valid');
    assert.deepEqual(repTls?.acme?.names, [ctx.tb.wanAddress]);
    assert.equal(repTls?.acme?.sharedWith, 2);
    assert.ok(fp.length > 0);

    // A client that trusts pebble's root and nothing else: the portal and each node's own page.
    const portal = await trusted(`https://${ctx.tb.wanAddress}:${PUBLIC_PORT}/api/status`);
    assert.equal(portal.code, 200, `portal over verified TLS: curl exit ${portal.curlExit} ${portal.error}`);
    const st = await fleet.status(repIndex);
    for (const n of st!.nodes) {
      const page = await trusted(`https://${ctx.tb.wanAddress}:${n.publicPort}/api/status`);
      assert.equal(page.code, 200, `${n.name}'s page over verified TLS: curl exit ${page.curlExit} ${page.error}`);
    }
    // The same client without pebble's root: refused, so the check above means something.
    const untrusted = await ctx.tb.exec(ctx.tb.wan, ['curl', '-s', '--max-time', '3', '-o', '/dev/null', `https://${ctx.tb.wanAddress}:${PUBLIC_PORT}/healthz`], { timeoutMs: 8000 });
    assert.equal(untrusted.code, 60, 'curl without the root refuses the certificate (exit 60)');

    // The challenge port was open only while pebble looked.
    const rules = await ctx.tb.routerRules();
    assert.ok(!rules.some((r) => r.includes(`dport ${CHALLENGE_PORT}`)), `no forward of ${CHALLENGE_PORT} left:\n${rules.join('\n')}`);
    const direct = await ctx.tb.exec(ctx.tb.wan, ['curl', '-s', '--max-time', '2', '-o', '/dev/null', '-w', '%{http_code}', `http://${ctx.tb.wanAddress}:${CHALLENGE_PORT}/`], {
      timeoutMs: 6000,
    });
    assert.notEqual(direct.stdout.trim(), '200', 'nothing answers on the challenge port afterwards');
  });

  it('a forged certificate bundle from a LAN host is refused, and the internet cannot post one at all', async () => {
    const fleet = ctx.fleet!;
    const before = (await fleet.status(1))?.tls?.fingerprint;
    const forged = Buffer.concat([Buffer.from('FDA1'), Buffer.alloc(200, 7)]).toString('base64');
    // From h3 to h2's own port over the LAN: opened with the fleet key, which fails.
    const lan = await ctx.tb.exec(
      ctx.tb.hosts[2]!,
      ['sh', '-c', `echo ${forged} | base64 -d | curl -s -k --max-time 3 -o /dev/null -w '%{http_code}' --data-binary @- -H 'content-type: application/octet-stream' https://${ctx.tb.hosts[1]!.address}:${HTTP_PORT}/api/tls/acme`],
      { timeoutMs: 8000 },
    );
    assert.equal(lan.stdout.trim(), '403');
    // From the WAN to the same node's public port: not a LAN address, so the login stands in the way.
    const st = await fleet.status(1);
    const wan = await ctx.tb.exec(
      ctx.tb.wan,
      ['sh', '-c', `echo ${forged} | base64 -d | curl -s -k --max-time 3 -o /dev/null -w '%{http_code}' --data-binary @- https://${ctx.tb.wanAddress}:${st!.ports.public}/api/tls/acme`],
      { timeoutMs: 8000 },
    );
    assert.equal(wan.stdout.trim(), '401');
    assert.equal((await fleet.status(1))?.tls?.fingerprint, before, 'the node still serves what it had');
  });

  it('a new representative already holds the certificate: a failover asks the CA for nothing', async () => {
    const fleet = ctx.fleet!;
    const { rep } = await fleet.settled(10_000);
    const issued = ctx.pebble.issued();
    const fp = (await fleet.status(Number(rep.slice(1)) - 1))?.tls?.fingerprint;
    await fleet.stop(Number(rep.slice(1)) - 1, 'SIGTERM');
    const next = await fleet.settled(20_000);
    assert.notEqual(next.rep, rep);
    const st = await acmeStatus(fleet, Number(next.rep.slice(1)) - 1);
    assert.equal(st?.source, 'acme');
    assert.equal(st?.fingerprint, fp);
    assert.equal(st?.acme?.state, 'valid', JSON.stringify(st?.acme));
    assert.equal(ctx.pebble.issued(), issued, 'no new certificate');
    const portal = await trusted(`https://${ctx.tb.wanAddress}:${PUBLIC_PORT}/healthz`);
    assert.equal(portal.code, 200, `curl exit ${portal.curlExit} ${portal.error}`);
    // The old representative comes back as a member and gets what the fleet serves.
    fleet.start(Number(rep.slice(1)) - 1);
    await fleet.settled(20_000);
    assert.equal(await everyNodeOnAcme(fleet, 20_000), fp);
  });

  it('the certificate is renewed after two thirds of its life, and an open connection goes on through the renewal', async () => {
    const fleet = ctx.fleet!;
    const { rep } = await fleet.settled(10_000);
    const repIndex = Number(rep.slice(1)) - 1;
    const old = (await acmeStatus(fleet, repIndex))!.fingerprint;
    // One connection from the internet, opened before the renewal and used once a second through
    // it (curl reuses it for each URL and reports whether it had to connect anew).
    const url = `https://${ctx.tb.wanAddress}:${PUBLIC_PORT}/healthz`;
    const client = ctx.tb.spawn(ctx.tb.wan, [
      'curl',
      '-s',
      '--cacert',
      ctx.pebble.rootFile,
      '--rate',
      '1/s',
      '-w',
      '%{http_code} %{num_connects}\\n',
      '-o',
      '/dev/null',
      ...Array.from({ length: VALIDITY_S + 30 }, () => url),
    ]);
    const answers = new LineLog(client);
    const renewed = await everyNodeOnAcme(fleet, (VALIDITY_S + 20) * 1000, old);
    assert.notEqual(renewed, old);
    log(`renewed: ${old.slice(0, 11)} -> ${renewed.slice(0, 11)}`);
    const seen = answers.lines.length;
    await waitUntil(async () => (answers.lines.length >= seen + 3 ? true : undefined), { timeoutMs: 10_000, what: 'three more answers on the open connection' });
    client.kill('SIGKILL');
    const lines = answers.lines.filter((l) => /^\d{3} \d+$/.test(l));
    assert.ok(lines.length >= 5, answers.tail());
    assert.ok(lines.every((l) => l.startsWith('200 ')), `every answer 200:\n${lines.join('\n')}`);
    const connects = lines.reduce((n, l) => n + Number(l.split(' ')[1]), 0);
    assert.equal(connects, 1, `one connection for all ${lines.length} requests, across the renewal`);
    const portal = await trusted(`https://${ctx.tb.wanAddress}:${PUBLIC_PORT}/healthz`);
    assert.equal(portal.code, 200, `curl exit ${portal.curlExit} ${portal.error}`);
  });

  it('a DNS name (--acme-name) instead of the WAN address', async () => {
    await ctx.fleet?.stopAll('SIGTERM');
    const fleet = new AcmeFleet(ctx.tb, ctx.pebble.listenerCaFile, acmeArgs(['--acme-name', NAME]));
    ctx.fleet = fleet;
    fleet.startAll([0, 1, 2]);
    const { rep } = await fleet.settled(20_000);
    await waitUntil(
      async () => {
        const st = await acmeStatus(fleet, Number(rep.slice(1)) - 1);
        return st?.source === 'acme' && st.acme?.state === 'valid' && st.acme.names[0] === NAME ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 300, what: () => `a certificate for ${NAME}\n${fleet.explain()}` },
    );
    const byName = await trusted(`https://${NAME}:${PUBLIC_PORT}/healthz`, `${NAME}:${PUBLIC_PORT}:${ctx.tb.wanAddress}`);
    assert.equal(byName.code, 200, `by name: curl exit ${byName.curlExit} ${byName.error}`);
  });

  it('a router that will not forward the challenge port: the fleet serves the certificate it has and says why', async () => {
    await ctx.fleet?.stopAll('SIGTERM');
    // Port 80, as for Let's Encrypt: below the router's allow range (miniupnpd answers 606).
    const fleet = new AcmeFleet(ctx.tb, ctx.pebble.listenerCaFile, ['--acme', ctx.pebble.directoryUrl, '--acme-name', 'other.frontdoor.test']);
    ctx.fleet = fleet;
    fleet.startAll([0, 1]);
    const { rep } = await fleet.settled(20_000);
    const issued = ctx.pebble.issued();
    const st = await waitUntil(
      async () => {
        const s = await acmeStatus(fleet, Number(rep.slice(1)) - 1);
        return s?.acme?.state === 'failed' ? s : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 300, what: () => `the ACME attempt to fail\n${fleet.explain()}` },
    );
    assert.match(st.acme?.error ?? '', /would not forward port 80/);
    assert.ok(st.acme?.nextAt !== null, 'a later attempt is planned');
    assert.equal(ctx.pebble.issued(), issued, 'the CA was not asked');
    const portal = await fleet.fromWan('/healthz');
    assert.equal(portal?.code, 200, 'the portal answers over HTTPS all the same');
    const rules = await ctx.tb.routerRules();
    assert.ok(!rules.some((r) => /dport 80\b/.test(r)));
    const line = fleet.nodes.get(Number(rep.slice(1)) - 1)!.log.lines.find((l) => l.includes('could not get an ACME certificate'));
    assert.ok(line?.includes('FD_ACME_PORT'), `one clear log line: ${line}`);
  });
});
