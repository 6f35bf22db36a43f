import type { Clock, Timer } from '../runtime/clock.js';
import type { Logger } from '../runtime/log.js';
import type { TemporaryPorts } from '../router/router-session.js';
import type { Mapping } from '../router/types.js';
import { classifyWanAddress } from '../router/wan-address.js';
import type { AcmeCertificateInfo, TlsCredentials } from '../tls/credentials.js';
import type { CertificatePem } from '../tls/self-signed.js';
import { sealBundle } from './bundle.js';
import type { Http01Challenges } from './challenges.js';
import { AcmeError } from './errors.js';
import type { CertificateIssuer } from './issuer.js';
import type { BundleSender } from './share.js';

/**
 * The representative's ACME duty (docs/tls.md): hold a certificate for the WAN address (or the
 * configured names), renew it when two thirds of its life have passed or the address changed,
 * and hand it to every other node. A certificate is asked for only while the router forwards
 * the challenge port to this node; the port is closed again as soon as the CA has looked.
 *
 * Failures back off (the CA's limits count failed validations) and leave the node serving the
 * certificate it had; they never stop the portal.
 */

export interface AcmeManagerInit {
  /** DNS names to ask for; [] asks for the WAN address. */
  names: string[];
  /** The public port the CA connects to (80 for http-01; a test CA may use another). */
  challengePort: number;
  /** This node's port that answers the challenge on plain HTTP. */
  localPort: number;
  /** Seals the bundle for the other nodes; undefined (no fleet secret) shares nothing. */
  bundleKey: Buffer | undefined;
}

export interface AcmeManagerComponents {
  clock: Clock;
  logger: Logger;
  issuer: CertificateIssuer;
  challenges: Http01Challenges;
  credentials: TlsCredentials;
  /** Ports kept at the router only while open, once the router is found. */
  ports: () => TemporaryPorts | undefined;
  /** The router's WAN address, once known. */
  wanAddress: () => string | undefined;
  /** The other nodes' own ports, for sharing. */
  members: () => Array<{ id: string; address: string; port: number }>;
  send: BundleSender;
  /** Wall-clock time, for certificate validity. */
  now?: () => number;
}

export type AcmeState = 'idle' | 'waiting' | 'obtaining' | 'valid' | 'failed';

export interface AcmeStatus {
  state: AcmeState;
  /** What is asked for: the configured names or the WAN address. */
  names: string[];
  error: string | null;
  /** When the certificate is renewed (valid), or the next attempt (failed, waiting). */
  nextAt: string | null;
  /** Nodes that hold the current certificate, this one excluded. */
  sharedWith: number;
}

/** After a failure: the CA allows few failed validations an hour, and a router rarely changes its mind. */
export const RETRY_MS = [60_000, 5 * 60_000, 30 * 60_000, 2 * 3600_000, 6 * 3600_000];
/** A certificate is looked at this often even when nothing happens: a missed renewal is an outage. */
const CHECK_MS = 6 * 3600_000;
const WAIT_FOR_WAN_MS = 10_000;
const CHALLENGE_LEASE_S = 600;
const SHARE_RETRY_MS = 60_000;

export class AcmeManager {
  private readonly c: AcmeManagerComponents;
  private readonly init: AcmeManagerInit;
  private readonly now: () => number;
  private active: AbortController | undefined;
  private timer: Timer | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private failures = 0;
  private state: AcmeState = 'idle';
  private error: string | null = null;
  private nextAt: number | null = null;
  /** node id -> fingerprint it acknowledged. */
  private readonly delivered = new Map<string, string>();
  /** node id -> when a hand-over to it last failed: the directory changes often, a dead node must not be hammered. */
  private readonly failedAt = new Map<string, number>();

  constructor(components: AcmeManagerComponents, init: AcmeManagerInit) {
    this.c = components;
    this.init = init;
    this.now = components.now ?? Date.now;
  }

  /** Becomes the fleet's ACME client (on becoming representative). */
  start(): void {
    if (this.active) return;
    this.active = new AbortController();
    this.failures = 0;
    this.nudge();
  }

  /** Stops asking and sharing (on stepping down, on stop); a challenge in flight is abandoned. */
  async stop(): Promise<void> {
    const a = this.active;
    this.active = undefined;
    this.timer?.cancel();
    this.timer = undefined;
    this.shareTimer?.cancel();
    this.shareTimer = undefined;
    a?.abort(new AcmeError('FD_ACME_CA', 'stopped'));
    await Promise.all([this.running, this.sharing]);
    // Started again meanwhile (stepped down and up at once): that run's state stands.
    if (this.active) return;
    this.state = 'idle';
    this.nextAt = null;
  }

  /** Something changed (the WAN address, the router): look again now. */
  nudge(): void {
    if (!this.active) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.timer?.cancel();
    this.running = this.check().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.nudge();
      }
    });
  }

  /** The directory changed: give the certificate to nodes that do not have it yet. */
  membersChanged(): void {
    if (this.active) void this.share(this.active.signal);
  }

  private sharing: Promise<void> | undefined;
  private shareAgain = false;
  /** A hand-over that failed is tried again after SHARE_RETRY_MS, whatever else happens. */
  private shareTimer: Timer | undefined;

  /** One hand-over round at a time; a request during one makes one more round after it. */
  private share(signal: AbortSignal): Promise<void> {
    if (this.sharing) {
      this.shareAgain = true;
      return this.sharing;
    }
    this.sharing = this.shareRound(signal).finally(() => {
      this.sharing = undefined;
      if (this.shareAgain && !signal.aborted) {
        this.shareAgain = false;
        void this.share(signal);
      }
    });
    return this.sharing;
  }

  status(): AcmeStatus {
    return {
      state: this.state,
      names: this.identifiers() ?? [],
      error: this.error,
      nextAt: this.nextAt === null ? null : new Date(this.nextAt).toISOString(),
      sharedWith: this.sharedWith(),
    };
  }

  private sharedWith(): number {
    const fp = this.c.credentials.acmeCertificate()?.fingerprint;
    let n = 0;
    for (const v of this.delivered.values()) if (v === fp) n++;
    return n;
  }

  private identifiers(): string[] | undefined {
    if (this.init.names.length > 0) return this.init.names;
    const wan = this.c.wanAddress();
    return wan === undefined ? undefined : [wan];
  }

  private async check(): Promise<void> {
    const active = this.active;
    if (!active) return;
    const ids = this.identifiers();
    if (ids === undefined) {
      this.state = 'waiting';
      this.error = 'the WAN address is not known yet';
      this.schedule(WAIT_FOR_WAN_MS);
      return;
    }
    if (this.init.names.length === 0 && classifyWanAddress(ids[0]!) !== 'public') {
      // Behind another router or carrier-grade NAT: no CA certifies that address, and asking
      // would only spend the CA's failure allowance. A name (dynamic DNS) may still work.
      this.state = 'failed';
      this.error = `FD_ACME_NO_IDENTIFIER: the WAN address ${ids[0]} is not public: no CA certifies it (--acme-name for a DNS name)`;
      this.schedule(CHECK_MS);
      return;
    }
    const held = this.c.credentials.acmeCertificate();
    if (held !== undefined && covers(held, ids) && this.now() < renewAt(held)) {
      this.state = 'valid';
      this.error = null;
      this.failures = 0;
      // Each quiet check hands the certificate out again: a node that lost its copy gets it back.
      this.delivered.clear();
      this.failedAt.clear();
      await this.share(active.signal);
      this.schedule(Math.min(CHECK_MS, renewAt(held) - this.now()));
      return;
    }
    this.state = 'obtaining';
    this.error = null;
    this.nextAt = null;
    try {
      const pem = await this.obtain(ids, active.signal);
      if (active.signal.aborted) return;
      const took = await this.c.credentials.installAcme(pem);
      if (took === 'older') {
        // A CA (or a clock) giving certificates issued before the one held: asking again at once would loop.
        throw new AcmeError('FD_ACME_CA', 'the CA gave a certificate issued before the one held');
      }
      const info = this.c.credentials.acmeCertificate();
      this.c.logger.info('ACME certificate obtained', { names: ids.join(','), notAfter: info ? new Date(info.notAfter).toISOString() : undefined, serving: took });
      this.state = 'valid';
      this.failures = 0;
      this.delivered.clear();
      await this.share(active.signal);
      if (info) this.schedule(Math.min(CHECK_MS, renewAt(info) - this.now()));
    } catch (err) {
      if (active.signal.aborted) return;
      const wait = RETRY_MS[Math.min(this.failures, RETRY_MS.length - 1)]!;
      this.failures++;
      this.state = 'failed';
      const code = err instanceof AcmeError ? err.code : undefined;
      const message = err instanceof Error ? err.message : String(err);
      this.error = code === undefined ? message : `${code}: ${message}`;
      this.c.logger.warn('could not get an ACME certificate; serving the certificate held meanwhile', { error: err, retryInMs: wait });
      this.schedule(wait);
    }
  }

  private async obtain(ids: string[], signal: AbortSignal): Promise<CertificatePem> {
    const ports = this.c.ports();
    if (ports === undefined) throw new AcmeError('FD_ACME_PORT', 'no router found yet to forward the challenge port');
    const port = this.init.challengePort;
    let mapping: Mapping;
    try {
      mapping = await ports.open(
        { externalPort: port, internalPort: this.init.localPort, protocol: 'TCP', leaseSeconds: CHALLENGE_LEASE_S, description: 'frontdoor acme challenge' },
        signal,
      );
    } catch (err) {
      throw new AcmeError('FD_ACME_PORT', `the router would not forward port ${port} for the ACME challenge: ${(err as Error).message}`, { cause: err });
    }
    try {
      if (mapping.externalPort !== port) {
        // NAT-PMP and PCP offer another port instead of refusing; the CA only ever tries this one.
        throw new AcmeError('FD_ACME_PORT', `the router offered port ${mapping.externalPort} instead of ${port} for the ACME challenge`);
      }
      return await this.c.issuer.issue({ identifiers: ids, challenges: this.c.challenges, signal });
    } finally {
      // Closed at once, whatever happened: nothing else of ours should answer on that port.
      await ports.close(mapping).catch((err: unknown) => this.c.logger.warn('could not close the ACME challenge port', { port, error: err }));
    }
  }

  private async shareRound(signal: AbortSignal): Promise<void> {
    const key = this.init.bundleKey;
    const held = this.c.credentials.acmeCertificate();
    if (key === undefined || held === undefined) return;
    const now = this.c.clock.now();
    const due = this.c.members().filter((m) => {
      const failed = this.failedAt.get(m.id);
      return this.delivered.get(m.id) !== held.fingerprint && (failed === undefined || now - failed >= SHARE_RETRY_MS);
    });
    // Most rounds (a directory change) find everyone served: nothing to seal.
    if (due.length === 0) return;
    const bundle = sealBundle(key, held.pem);
    await Promise.all(
      due.map(async (m) => {
        try {
          await this.c.send({ address: m.address, port: m.port }, bundle, signal);
          this.delivered.set(m.id, held.fingerprint);
          this.failedAt.delete(m.id);
        } catch (err) {
          if (signal.aborted) return;
          this.failedAt.set(m.id, this.c.clock.now());
          this.c.logger.warn('could not hand the ACME certificate to a node; trying again in a minute', { node: m.id, error: err });
          this.shareTimer ??= this.c.clock.setTimeout(() => {
            this.shareTimer = undefined;
            if (this.active) void this.share(this.active.signal);
          }, SHARE_RETRY_MS);
        }
      }),
    );
  }

  private schedule(ms: number): void {
    this.timer?.cancel();
    if (!this.active) return;
    const delay = Math.max(1_000, ms);
    this.nextAt = this.now() + delay;
    this.timer = this.c.clock.setTimeout(() => this.nudge(), delay);
  }
}

/** Renew when two thirds of the life have passed: 60 of 90 days, 4 of 6 days (short-lived). */
export function renewAt(c: Pick<AcmeCertificateInfo, 'notBefore' | 'notAfter'>): number {
  return c.notBefore + ((c.notAfter - c.notBefore) * 2) / 3;
}

function covers(c: AcmeCertificateInfo, ids: string[]): boolean {
  return ids.every((id) => c.names.includes(id.toLowerCase()));
}
