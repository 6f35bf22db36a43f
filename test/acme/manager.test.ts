import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';

import { bundleKey, openBundle } from '../../src/acme/bundle.js';
import { Http01Challenges } from '../../src/acme/challenges.js';
import { AcmeBundleError, AcmeError } from '../../src/acme/errors.js';
import type { CertificateIssuer, IssueRequest } from '../../src/acme/issuer.js';
import { AcmeManager, RETRY_MS, renewAt } from '../../src/acme/manager.js';
import type { AcmeManagerInit } from '../../src/acme/manager.js';
import { PortConflictError } from '../../src/router/errors.js';
import type { Mapping, MappingRequest, PortMapper } from '../../src/router/types.js';
import type { LogFields, Logger } from '../../src/runtime/log.js';
import { silentLogger } from '../../src/runtime/log.js';
import { TlsCredentials } from '../../src/tls/credentials.js';
import type { CertificatePem } from '../../src/tls/self-signed.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { DAY_MS, testCertificate } from '../helpers/test-certificate.js';

const SECRET = 'manager test fleet secret';
const WAN = '203.0.114.1';
const T0 = Date.parse('2030-03-01T00:00:00Z');
const HOUR = 3_600_000;
/** What the CA hands out for the WAN address: Let's Encrypt's short-lived profile, about 6 days. */
const LIFE = 6 * DAY_MS;

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const fp = (pem: CertificatePem) => new X509Certificate(pem.cert).fingerprint256;

/** The router: grants the challenge port, refuses it, or offers another (NAT-PMP, PCP). */
class RecordingMapper implements PortMapper {
  readonly protocol = 'upnp-igd2' as const;
  readonly gateway = '192.168.77.1';
  readonly localAddress = '192.168.77.10';
  readonly canList = true;
  answer: 'grant' | 'refuse' | { offer: number } = 'grant';
  readonly claims: MappingRequest[] = [];
  readonly releases: Array<Pick<Mapping, 'protocol' | 'externalPort' | 'internalPort'>> = [];
  constructor(private readonly events: string[]) {}
  async externalAddress(): Promise<string> {
    return WAN;
  }
  async claim(req: MappingRequest): Promise<Mapping> {
    this.claims.push(req);
    this.events.push(`claim ${req.externalPort}`);
    if (this.answer === 'refuse') throw new PortConflictError(req.externalPort);
    const externalPort = this.answer === 'grant' ? req.externalPort : this.answer.offer;
    return { ...req, externalPort, internalClient: this.localAddress, enabled: true, remoteHost: '', via: this.protocol };
  }
  async claimAny(): Promise<Mapping> {
    throw new Error('the ACME manager claims its exact port');
  }
  async release(m: Pick<Mapping, 'protocol' | 'externalPort' | 'internalPort'>): Promise<void> {
    this.releases.push(m);
    this.events.push(`release ${m.externalPort}`);
  }
  async list(): Promise<Mapping[]> {
    return [];
  }
  bindTo(): PortMapper {
    throw new Error('the ACME manager claims from the node\'s own address');
  }
  close(): void {}
}

/** The CA: by default a certificate for what is asked, valid from an hour ago (as Let's Encrypt backdates) for LIFE. */
class ScriptedIssuer implements CertificateIssuer {
  readonly calls: IssueRequest[] = [];
  readonly issued: CertificatePem[] = [];
  next: (req: IssueRequest) => Promise<CertificatePem>;
  constructor(
    private readonly events: string[],
    private readonly now: () => number,
  ) {
    this.next = async (req) => this.certificateFor(req.identifiers);
  }
  certificateFor(names: string[], life = LIFE): CertificatePem {
    const pem = testCertificate({ names, notBefore: this.now() - HOUR, notAfter: this.now() - HOUR + life });
    this.issued.push(pem);
    return pem;
  }
  issue(req: IssueRequest): Promise<CertificatePem> {
    this.calls.push(req);
    this.events.push(`issue ${req.identifiers.join(',')}`);
    return this.next(req);
  }
}

interface Member {
  id: string;
  address: string;
  port: number;
}

interface LogLine {
  level: string;
  msg: string;
  fields: LogFields;
}

function recordingLogger(lines: LogLine[]): Logger {
  const log: Logger = {
    debug: () => {},
    info: (msg, fields = {}) => lines.push({ level: 'info', msg, fields }),
    warn: (msg, fields = {}) => lines.push({ level: 'warn', msg, fields }),
    error: (msg, fields = {}) => lines.push({ level: 'error', msg, fields }),
    child: () => log,
  };
  return log;
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

async function rig(init: Partial<AcmeManagerInit> = {}, o: { members?: Member[]; held?: CertificatePem } = {}) {
  const events: string[] = [];
  const clock = new ManualClock(0);
  /** Wall-clock time, for certificate validity: moved by the tests, apart from the manual clock's timers. */
  const wall = { now: T0 };
  const dataDir = mkdtempSync(join(tmpdir(), 'fd-acme-manager-'));
  dirs.push(dataDir);
  const credentials = await TlsCredentials.load({ logger: silentLogger }, { certFile: '', keyFile: '', secret: SECRET, dataDir, now: () => wall.now });
  if (o.held) assert.equal(await credentials.installAcme(o.held), 'installed');
  const mapper = new RecordingMapper(events);
  const issuer = new ScriptedIssuer(events, () => wall.now);
  const log: LogLine[] = [];
  const r = {
    events,
    clock,
    wall,
    credentials,
    mapper,
    issuer,
    log,
    challenges: new Http01Challenges(),
    wan: WAN as string | undefined,
    routerFound: true,
    members: o.members ?? [],
    /** Every hand-over tried, in order; `send` below decides how it ends. */
    sent: [] as Array<{ to: string; bundle: Buffer; signal: AbortSignal }>,
    send: async (_to: string): Promise<void> => {},
    manager: undefined as unknown as AcmeManager,
  };
  r.manager = new AcmeManager(
    {
      clock,
      logger: recordingLogger(log),
      issuer,
      challenges: r.challenges,
      credentials,
      ports: () => (r.routerFound ? { open: (req) => mapper.claim(req), close: (m) => mapper.release(m) } : undefined),
      wanAddress: () => r.wan,
      members: () => r.members,
      send: async (target, bundle, signal) => {
        const to = `${target.address}:${target.port}`;
        r.sent.push({ to, bundle, signal });
        events.push(`send ${to}`);
        await r.send(to);
      },
      now: () => wall.now,
    },
    { names: [], challengePort: 80, localPort: 8081, bundleKey: bundleKey(SECRET), ...init },
  );
  return r;
}

type Rig = Awaited<ReturnType<typeof rig>>;

/** Waits (on the event loop, not on time) until `cond` holds. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await tick();
  }
}

/** Lets promise chains and file writes finish. */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await tick();
}

/** Until the manager's check has ended: every check that ends while the manager is active sets a timer. */
async function checked(r: Rig): Promise<void> {
  await until(() => r.clock.pendingCount > 0, 'the check to end (a timer set)');
  await flush();
}

const NEW_WAN = '203.0.114.2';

/** A minute later the router reports another WAN address, and the agent nudges the manager. */
function wanMoves(r: Rig): void {
  r.wall.now += 60_000;
  r.wan = NEW_WAN;
  r.manager.nudge();
}

const iso = (ms: number) => new Date(ms).toISOString();
const warnings = (r: Rig) => r.log.filter((l) => l.level === 'warn');
/** The code of the error a line carries (the logger writes it beside the message). */
const codeOf = (l: LogLine | undefined) => (l?.fields.error as { code?: unknown } | undefined)?.code;

describe('ACME manager: obtaining', () => {
  it('renews when two thirds of a certificate\'s life have passed', () => {
    assert.equal(renewAt({ notBefore: 0, notAfter: 90 * DAY_MS }), 60 * DAY_MS);
    assert.equal(renewAt({ notBefore: T0, notAfter: T0 + 6 * DAY_MS }), T0 + 4 * DAY_MS);
  });

  it('with the WAN address known: opens the challenge port, asks for the address, closes the port, serves the certificate', async () => {
    const r = await rig();
    assert.equal(r.manager.status().state, 'idle');
    assert.equal(r.credentials.status().source, 'fleet');
    r.manager.start();
    assert.equal(r.manager.status().state, 'obtaining');
    await checked(r);
    assert.deepEqual(r.events, [`claim 80`, `issue ${WAN}`, 'release 80']);
    const claim = r.mapper.claims[0]!;
    assert.equal(claim.externalPort, 80, 'the port the CA connects to');
    assert.equal(claim.internalPort, 8081, 'forwarded to the port that answers the challenge');
    assert.equal(claim.protocol, 'TCP');
    assert.ok(claim.leaseSeconds > 0, 'a lease, so a crash does not leave the port open for ever');
    assert.deepEqual(r.mapper.releases.map((m) => m.externalPort), [80]);
    const req = r.issuer.calls[0]!;
    assert.deepEqual(req.identifiers, [WAN]);
    assert.equal(req.challenges, r.challenges, 'the challenges the plain-HTTP port answers from');
    assert.equal(req.signal.aborted, false);
    const served = r.credentials.status();
    assert.equal(served.source, 'acme');
    assert.equal(served.fingerprint, fp(r.issuer.issued[0]!));
    const s = r.manager.status();
    assert.equal(s.state, 'valid');
    assert.deepEqual(s.names, [WAN]);
    assert.equal(s.error, null);
    // Looked at again in 6 hours (renewal is 4 days away).
    assert.equal(s.nextAt, iso(T0 + 6 * HOUR));
    assert.ok(r.log.some((l) => l.level === 'info' && l.msg === 'ACME certificate obtained' && l.fields.serving === 'installed'));
  });

  it('start() twice asks the CA once', async () => {
    const r = await rig();
    r.manager.start();
    r.manager.start();
    await checked(r);
    assert.equal(r.issuer.calls.length, 1);
  });

  it('closes the challenge port when the CA fails too; retries after 1 minute, then 5, then 30', async () => {
    assert.deepEqual(RETRY_MS.slice(0, 3), [60_000, 5 * 60_000, 30 * 60_000]);
    const r = await rig();
    r.issuer.next = async () => {
      throw new AcmeError('FD_ACME_CA', 'ordering: too many certificates already issued (rateLimited)');
    };
    r.manager.start();
    await checked(r);
    assert.deepEqual(r.events, ['claim 80', `issue ${WAN}`, 'release 80']);
    let s = r.manager.status();
    assert.equal(s.state, 'failed');
    assert.match(s.error ?? '', /rateLimited/);
    assert.equal(s.nextAt, iso(T0 + RETRY_MS[0]!));
    assert.equal(r.credentials.status().source, 'fleet', 'still serving what it had');
    const w = warnings(r)[0]!;
    assert.equal(codeOf(w), 'FD_ACME_CA');
    assert.equal(w.fields.retryInMs, RETRY_MS[0]);

    /** Nothing a millisecond before `wait`, the next attempt at it. */
    const retriesAfter = async (wait: number, calls: number, what: string) => {
      r.clock.advance(wait - 1);
      await flush();
      assert.equal(r.issuer.calls.length, calls, `not before ${what}`);
      r.clock.advance(1);
      await until(() => r.issuer.calls.length === calls + 1, `the retry after ${what}`);
      await checked(r);
    };
    await retriesAfter(RETRY_MS[0]!, 1, 'the minute');
    assert.equal(r.mapper.releases.length, 2);
    s = r.manager.status();
    assert.equal(s.state, 'failed');
    assert.equal(s.nextAt, iso(T0 + RETRY_MS[1]!), 'the wall clock did not move: nextAt is now + 5 min');

    await retriesAfter(RETRY_MS[1]!, 2, '5 minutes');
    assert.equal(r.manager.status().nextAt, iso(T0 + RETRY_MS[2]!));

    // The CA comes back: the next retry obtains it, and a later failure starts the back-off again.
    r.issuer.next = async (req) => r.issuer.certificateFor(req.identifiers);
    r.clock.advance(RETRY_MS[2]!);
    await until(() => r.issuer.calls.length === 4, 'the third retry');
    await checked(r);
    assert.equal(r.manager.status().state, 'valid');
    assert.equal(r.manager.status().error, null);
    r.issuer.next = async () => {
      throw new AcmeError('FD_ACME_CHALLENGE', 'validation of 203.0.114.2: connection refused');
    };
    wanMoves(r);
    await until(() => r.issuer.calls.length === 5, 'the issuance for the new address');
    await checked(r);
    assert.equal(r.manager.status().state, 'failed');
    assert.equal(r.manager.status().nextAt, iso(r.wall.now + RETRY_MS[0]!));
    assert.equal(r.mapper.releases.length, r.mapper.claims.length, 'every claim released');
  });

  it('the router refusing the challenge port is FD_ACME_PORT, and the CA is never asked', async () => {
    const r = await rig();
    r.mapper.answer = 'refuse';
    r.manager.start();
    await checked(r);
    const s = r.manager.status();
    assert.equal(s.state, 'failed');
    assert.match(s.error ?? '', /the router would not forward port 80 for the ACME challenge: external port 80 is mapped to another host/);
    assert.equal(codeOf(warnings(r)[0]), 'FD_ACME_PORT');
    assert.equal(r.issuer.calls.length, 0);
    assert.equal(r.mapper.releases.length, 0, 'nothing was mapped, nothing to release');
    assert.equal(r.credentials.status().source, 'fleet');
  });

  it('no router found yet is FD_ACME_PORT too, and the CA is never asked', async () => {
    const r = await rig();
    r.routerFound = false;
    r.manager.start();
    await checked(r);
    assert.equal(r.manager.status().state, 'failed');
    assert.match(r.manager.status().error ?? '', /no router found yet/);
    assert.equal(codeOf(warnings(r)[0]), 'FD_ACME_PORT');
    assert.equal(r.issuer.calls.length, 0);
  });

  // `frontdoor status` shows status().error; the code is what a user can look up in docs/tls.md.
  it('the status names the code of the failure (FD_ACME_PORT), as the log line does', async () => {
    const r = await rig();
    r.mapper.answer = 'refuse';
    r.manager.start();
    await checked(r);
    assert.equal(codeOf(warnings(r)[0]), 'FD_ACME_PORT');
    assert.match(r.manager.status().error ?? '', /FD_ACME_PORT/);
  });

  it('a router that offers another port instead is refused (FD_ACME_PORT), and that mapping is released', async () => {
    const r = await rig();
    r.mapper.answer = { offer: 40080 };
    r.manager.start();
    await checked(r);
    assert.equal(r.manager.status().state, 'failed');
    assert.match(r.manager.status().error ?? '', /offered port 40080 instead of 80/);
    assert.equal(codeOf(warnings(r)[0]), 'FD_ACME_PORT');
    assert.equal(r.issuer.calls.length, 0);
    assert.deepEqual(r.mapper.releases.map((m) => m.externalPort), [40080]);
  });

  it('without a WAN address it waits, and obtains once the address is known and it is nudged', async () => {
    const r = await rig();
    r.wan = undefined;
    r.manager.start();
    let s = r.manager.status();
    assert.equal(s.state, 'waiting');
    assert.deepEqual(s.names, []);
    assert.match(s.error ?? '', /WAN address is not known/);
    assert.equal(s.nextAt, iso(T0 + 10_000));
    r.manager.nudge();
    await flush();
    assert.equal(r.manager.status().state, 'waiting', 'a nudge without an address still waits');
    assert.equal(r.mapper.claims.length, 0);
    r.wan = WAN;
    r.manager.nudge();
    await checked(r);
    s = r.manager.status();
    assert.equal(s.state, 'valid');
    assert.deepEqual(s.names, [WAN]);
    assert.deepEqual(r.issuer.calls.map((c) => c.identifiers), [[WAN]]);
    assert.equal(r.credentials.status().source, 'acme');
  });

  it('without a WAN address it looks again every 10 seconds by itself', async () => {
    const r = await rig();
    r.wan = undefined;
    r.manager.start();
    r.clock.advance(10_000);
    assert.equal(r.manager.status().state, 'waiting');
    r.wan = WAN;
    r.clock.advance(10_000);
    await checked(r);
    assert.equal(r.manager.status().state, 'valid');
    assert.equal(r.issuer.calls.length, 1);
  });

  it('a held certificate that covers the address is kept until two thirds of its life, then renewed', async () => {
    const held = testCertificate({ names: [WAN], notBefore: T0 - DAY_MS, notAfter: T0 - DAY_MS + LIFE });
    const r = await rig({}, { held });
    const at = renewAt(r.credentials.acmeCertificate()!);
    assert.equal(at, T0 + 3 * DAY_MS);
    r.manager.start();
    await checked(r);
    assert.equal(r.issuer.calls.length, 0, 'nothing asked of the CA after a restart with a good certificate');
    assert.equal(r.mapper.claims.length, 0, 'nor the port opened');
    assert.equal(r.manager.status().state, 'valid');
    assert.equal(r.manager.status().nextAt, iso(T0 + 6 * HOUR));

    r.wall.now = at - 1_000;
    r.manager.nudge();
    await checked(r);
    assert.equal(r.issuer.calls.length, 0, 'a second before two thirds: kept');
    assert.equal(r.manager.status().nextAt, iso(at), 'the next look is at the renewal time');

    r.wall.now = at;
    r.manager.nudge();
    await checked(r);
    assert.equal(r.issuer.calls.length, 1, 'at two thirds: renewed');
    assert.equal(r.credentials.status().fingerprint, fp(r.issuer.issued[0]!));
    assert.ok(r.credentials.acmeCertificate()!.notAfter > T0 - DAY_MS + LIFE, 'the new one ends later');
    assert.equal(r.manager.status().state, 'valid');
  });

  it('a held certificate for another address is replaced at once', async () => {
    const held = testCertificate({ names: ['203.0.114.9'], notBefore: T0 - DAY_MS, notAfter: T0 - DAY_MS + LIFE });
    const r = await rig({}, { held });
    r.manager.start();
    await checked(r);
    assert.deepEqual(r.issuer.calls.map((c) => c.identifiers), [[WAN]]);
    assert.deepEqual(r.credentials.acmeCertificate()!.names, [WAN]);
  });

  it('a new WAN address and a nudge: a certificate for the new address', async () => {
    const r = await rig();
    r.manager.start();
    await checked(r);
    wanMoves(r);
    await checked(r);
    assert.deepEqual(r.issuer.calls.map((c) => c.identifiers), [[WAN], ['203.0.114.2']]);
    assert.deepEqual(r.credentials.acmeCertificate()!.names, ['203.0.114.2']);
    assert.equal(r.credentials.status().fingerprint, fp(r.issuer.issued[1]!));
    assert.deepEqual(r.manager.status().names, ['203.0.114.2']);
    assert.equal(r.manager.status().state, 'valid');
  });

  it('an address change during an issuance is looked at once that issuance ends', async () => {
    const r = await rig();
    const first = deferred<CertificatePem>();
    r.issuer.next = () => first.promise;
    r.manager.start();
    await until(() => r.issuer.calls.length === 1, 'the first issuance');
    const forOld = r.issuer.certificateFor([WAN]);
    wanMoves(r);
    r.manager.nudge();
    r.issuer.next = async (req) => r.issuer.certificateFor(req.identifiers);
    first.resolve(forOld);
    await until(() => r.issuer.calls.length === 2, 'the issuance for the new address');
    await checked(r);
    assert.deepEqual(r.issuer.calls.map((c) => c.identifiers), [[WAN], ['203.0.114.2']], 'two nudges, one more issuance');
    assert.deepEqual(r.credentials.acmeCertificate()!.names, ['203.0.114.2']);
  });

  it('configured names are asked for instead of the WAN address, and a WAN change does not matter to them', async () => {
    const r = await rig({ names: ['cams.example.net'] });
    r.manager.start();
    await checked(r);
    assert.deepEqual(r.issuer.calls.map((c) => c.identifiers), [['cams.example.net']]);
    assert.deepEqual(r.manager.status().names, ['cams.example.net']);
    assert.deepEqual(r.credentials.acmeCertificate()!.names, ['cams.example.net']);
    wanMoves(r);
    await checked(r);
    assert.equal(r.issuer.calls.length, 1);
    r.wan = undefined;
    r.manager.nudge();
    await checked(r);
    assert.equal(r.manager.status().state, 'valid', 'names need no WAN address');
  });

  // Refused as 'older', the new certificate would never be served and every check would ask the CA again.
  it('a certificate for new identifiers replaces a held one that ends later (a 90-day certificate for a name no longer configured)', async () => {
    const held = testCertificate({ names: ['old.example.net'], notBefore: T0 - DAY_MS, notAfter: T0 - DAY_MS + 90 * DAY_MS });
    const r = await rig({}, { held });
    r.manager.start();
    await checked(r);
    assert.deepEqual(r.issuer.calls.map((c) => c.identifiers), [[WAN]]);
    for (let i = 0; i < 4; i++) {
      r.wall.now += 6 * HOUR;
      r.clock.runNext();
      await checked(r);
    }
    assert.equal(r.issuer.calls.length, 1, `one issuance in a day, not ${r.issuer.calls.length}`);
    assert.deepEqual(r.credentials.acmeCertificate()!.names, [WAN], 'the certificate served is for the address asked for');
  });

  // A held 90-day certificate past two thirds of its life, renewed when the CA now gives shorter
  // ones (6 days: another CA, another profile). Were the new one refused as ending sooner, the
  // next look would be at renewAt(held), already past: the CA asked again every second.
  it('a renewal that gives a shorter-lived certificate does not ask the CA again every second', async () => {
    const held = testCertificate({ names: ['cams.example.net'], notBefore: T0 - 61 * DAY_MS, notAfter: T0 + 29 * DAY_MS });
    const r = await rig({ names: ['cams.example.net'] }, { held });
    r.manager.start();
    await checked(r);
    for (let i = 0; i < 10; i++) {
      r.wall.now += 1_000;
      r.clock.advance(1_000);
      await flush();
    }
    assert.equal(r.issuer.calls.length, 1, `one issuance in 10 s, not ${r.issuer.calls.length}`);
  });
});

describe('ACME manager: sharing with the fleet', () => {
  const n1 = { id: 'n1', address: '192.168.77.11', port: 8081 };
  const n2 = { id: 'n2', address: '192.168.77.12', port: 8082 };
  const n3 = { id: 'n3', address: '192.168.77.13', port: 8083 };
  const to = (m: Member) => `${m.address}:${m.port}`;

  it('gives the certificate to every other node once, sealed so that only the fleet can open it', async () => {
    const r = await rig({}, { members: [n1, n2] });
    r.manager.start();
    await checked(r);
    assert.deepEqual(r.sent.map((s) => s.to).sort(), [to(n1), to(n2)]);
    assert.deepEqual(r.events.slice(0, 3), ['claim 80', `issue ${WAN}`, 'release 80'], 'sent after the port is closed again');
    const held = r.credentials.acmeCertificate()!;
    for (const s of r.sent) {
      assert.deepEqual(openBundle(bundleKey(SECRET), s.bundle), held.pem);
      assert.throws(() => openBundle(bundleKey('another fleet'), s.bundle), AcmeBundleError);
    }
    assert.equal(fp(held.pem), fp(r.issuer.issued[0]!));
    assert.equal(r.manager.status().sharedWith, 2);
  });

  it('a node whose hand-over failed is not tried again before a minute, and is after', async () => {
    const r = await rig({}, { members: [n1, n2] });
    r.send = async (t) => {
      if (t === to(n2)) throw new Error(`${t} answered 503`);
    };
    r.manager.start();
    await checked(r);
    assert.equal(r.manager.status().sharedWith, 1);
    assert.ok(warnings(r).some((w) => w.fields.node === 'n2'));
    const tries = () => r.sent.filter((s) => s.to === to(n2)).length;
    assert.equal(tries(), 1);
    r.send = async () => {};
    r.clock.advance(59_999);
    r.manager.membersChanged();
    await flush();
    assert.equal(tries(), 1, 'not within the minute');
    assert.equal(r.sent.length, 2, 'and n1, which has it, is not sent it again');
    r.clock.advance(1);
    r.manager.membersChanged();
    await until(() => tries() === 2, 'the retry after a minute');
    await flush();
    assert.equal(r.manager.status().sharedWith, 2);
    assert.equal(r.sent.length, 3);
  });

  // docs/tls.md: "a node that did not answer is tried again after a minute", not only at the next
  // directory change or the next check (up to 6 hours).
  it('a node whose hand-over failed is tried again after a minute without any directory change', async () => {
    const r = await rig({}, { members: [n1] });
    r.send = async (t) => {
      throw new Error(`${t} did not answer in 5000 ms`);
    };
    r.manager.start();
    await checked(r);
    assert.equal(r.sent.length, 1);
    r.send = async () => {};
    for (let i = 0; i < 12; i++) {
      r.wall.now += 10_000;
      r.clock.advance(10_000);
      await flush();
    }
    assert.equal(r.sent.length, 2, 'tried again within two minutes');
    assert.equal(r.manager.status().sharedWith, 1);
  });

  it('membersChanged() sends only to nodes that have not acknowledged the certificate', async () => {
    const r = await rig({}, { members: [n1, n2] });
    r.manager.start();
    await checked(r);
    assert.equal(r.sent.length, 2);
    r.members = [n1, n2, n3];
    r.manager.membersChanged();
    await until(() => r.sent.length === 3, 'the hand-over to the new node');
    await flush();
    assert.equal(r.sent[2]!.to, to(n3));
    assert.equal(r.manager.status().sharedWith, 3);
    r.manager.membersChanged();
    await flush();
    assert.equal(r.sent.length, 3, 'nobody new: nothing sent');
  });

  it('a new certificate goes to every node again', async () => {
    const r = await rig({}, { members: [n1, n2] });
    r.manager.start();
    await checked(r);
    wanMoves(r);
    await checked(r);
    assert.equal(r.sent.length, 4);
    for (const s of r.sent.slice(2)) assert.deepEqual(openBundle(bundleKey(SECRET), s.bundle).cert, r.issuer.issued[1]!.cert);
    assert.equal(r.manager.status().sharedWith, 2);
  });

  it('without a fleet secret nothing is sent', async () => {
    const r = await rig({ bundleKey: undefined }, { members: [n1, n2] });
    r.manager.start();
    await checked(r);
    assert.equal(r.credentials.status().source, 'acme');
    r.manager.membersChanged();
    await flush();
    assert.equal(r.sent.length, 0);
    assert.equal(r.manager.status().sharedWith, 0);
  });

  // The check's hand-over read the member list before the node joined: without another round the
  // joiner would wait for the next quiet check (up to 6 hours), serving the fleet's certificate.
  it('a node that joins while the certificate is being handed over gets it too', async () => {
    const r = await rig({}, { members: [n1] });
    const slow = deferred<void>();
    r.send = (t) => (t === to(n1) ? slow.promise : Promise.resolve());
    r.manager.start();
    await until(() => r.sent.length === 1, 'the hand-over to n1');
    r.members = [n1, n2];
    r.manager.membersChanged();
    slow.resolve();
    await checked(r);
    assert.deepEqual(r.sent.map((s) => s.to), [to(n1), to(n2)]);
  });
});

describe('ACME manager: stopping', () => {
  it('stop() during an issuance abandons it: resolves, closes the port, installs nothing, sets no timer', async () => {
    const r = await rig({}, { members: [{ id: 'n1', address: '192.168.77.11', port: 8081 }] });
    r.issuer.next = (req) =>
      new Promise((_resolve, reject) => {
        req.signal.addEventListener('abort', () => reject(req.signal.reason), { once: true });
      });
    r.manager.start();
    await until(() => r.issuer.calls.length === 1, 'the issuance');
    await r.manager.stop();
    assert.equal(r.issuer.calls[0]!.signal.aborted, true);
    assert.deepEqual(r.mapper.releases.map((m) => m.externalPort), [80]);
    const s = r.manager.status();
    assert.equal(s.state, 'idle');
    assert.equal(s.nextAt, null);
    assert.equal(r.credentials.status().source, 'fleet');
    assert.equal(r.credentials.acmeCertificate(), undefined);
    assert.equal(r.clock.pendingCount, 0);
    assert.equal(warnings(r).length, 0, 'stopping is not a failure');
    r.manager.nudge();
    r.manager.membersChanged();
    r.clock.advance(7 * DAY_MS);
    await flush();
    assert.equal(r.issuer.calls.length, 1);
    assert.equal(r.sent.length, 0);
  });

  it('a certificate that arrives after stop() is not installed nor shared', async () => {
    const r = await rig({}, { members: [{ id: 'n1', address: '192.168.77.11', port: 8081 }] });
    const late = deferred<CertificatePem>();
    r.issuer.next = () => late.promise;
    r.manager.start();
    await until(() => r.issuer.calls.length === 1, 'the issuance');
    const stopping = r.manager.stop();
    late.resolve(r.issuer.certificateFor([WAN]));
    await stopping;
    assert.equal(r.credentials.status().source, 'fleet');
    assert.equal(r.credentials.acmeCertificate(), undefined);
    assert.equal(r.sent.length, 0);
    assert.equal(r.manager.status().state, 'idle');
    assert.equal(r.clock.pendingCount, 0);
  });

  it('stop() during the hand-over to the fleet abandons it and sets no timer', async () => {
    const r = await rig({}, { members: [{ id: 'n1', address: '192.168.77.11', port: 8081 }] });
    r.send = () =>
      new Promise((_resolve, reject) => {
        const signal = r.sent[0]!.signal;
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    r.manager.start();
    await until(() => r.sent.length === 1, 'the hand-over');
    await r.manager.stop();
    assert.equal(r.sent[0]!.signal.aborted, true);
    assert.equal(r.clock.pendingCount, 0);
    assert.equal(r.manager.status().state, 'idle');
    assert.equal(warnings(r).length, 0, 'an abandoned hand-over is no failure');
    assert.equal(r.credentials.status().source, 'acme', 'the certificate obtained before the stop is served');
  });

  it('after stop() no timer asks the CA: neither the renewal nor a retry', async () => {
    const ok = await rig();
    ok.manager.start();
    await checked(ok);
    await ok.manager.stop();
    assert.equal(ok.clock.pendingCount, 0);
    ok.wall.now += 5 * DAY_MS;
    ok.clock.advance(5 * DAY_MS);
    await flush();
    assert.equal(ok.issuer.calls.length, 1);

    const failing = await rig();
    failing.issuer.next = async () => {
      throw new AcmeError('FD_ACME_CA', 'down');
    };
    failing.manager.start();
    await checked(failing);
    await failing.manager.stop();
    failing.clock.advance(RETRY_MS[RETRY_MS.length - 1]! * 2);
    await flush();
    assert.equal(failing.issuer.calls.length, 1);
    assert.equal(failing.manager.status().state, 'idle');

    // And it starts again from the beginning when asked to.
    failing.issuer.next = async (req) => failing.issuer.certificateFor(req.identifiers);
    failing.manager.start();
    await checked(failing);
    assert.equal(failing.manager.status().state, 'valid');
  });
});
