import { generateKeyPairSync } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type * as Acme from 'acme-client';
import { raceAbort } from '../runtime/abort.js';
import { writeFileAtomic } from '../runtime/atomic-write.js';
import type { Logger } from '../runtime/log.js';
import type { CertificatePem } from '../tls/self-signed.js';
import type { Http01Challenges } from './challenges.js';
import { AcmeError } from './errors.js';

/**
 * One certificate from an ACME CA (RFC 8555) by the http-01 challenge, through acme-client: an
 * account (its key kept in the data directory), an order for the identifiers, one challenge per
 * authorization answered from `challenges`, a CSR for a fresh P-256 key, the chain.
 *
 * acme-client does the protocol: JWS, nonces (with the retry badNonce asks for), polling. What is
 * ours: which identifiers and profile, where the key lives, and errors a caller can act on.
 */

export interface IssueRequest {
  /** IP addresses (RFC 8738) and DNS names. */
  identifiers: string[];
  challenges: Http01Challenges;
  signal: AbortSignal;
}

/** The boundary the manager uses: acme-client here, a scripted one in unit tests. */
export interface CertificateIssuer {
  issue(req: IssueRequest): Promise<CertificatePem>;
}

export interface AcmeClientIssuerInit {
  directoryUrl: string;
  /** Where the account key is kept; undefined makes a new account at every start. */
  dataDir: string | undefined;
  /** A contact address for the CA's notices; '' gives none (Let's Encrypt needs none). */
  email: string;
}

const ACCOUNT_KEY = 'acme-account-key.pem';
/** Each request to the CA: a CA that does not answer must not hold a renewal for ever. */
const REQUEST_TIMEOUT_MS = 20_000;

/** What of acme-client is used: its client, its axios instance (for the timeout) and its CSR maker. */
type AcmeApi = Pick<typeof Acme, 'Client' | 'axios' | 'crypto'>;

let loading: Promise<AcmeApi> | undefined;

/**
 * acme-client (with axios and node-forge) is loaded by the first node that needs a certificate:
 * most nodes never do, and a Pi Zero's memory is better spent on the camera.
 */
function loadAcme(): Promise<AcmeApi> {
  loading ??= import('acme-client').then((m) => {
    // A CommonJS package: its exports are the default of the ESM namespace.
    const acme = (m as unknown as { default: AcmeApi }).default;
    // acme-client's one axios instance; no request of ours goes through it without a bound.
    acme.axios.defaults.timeout = REQUEST_TIMEOUT_MS;
    return acme;
  });
  return loading as Promise<AcmeApi>;
}

export class AcmeClientIssuer implements CertificateIssuer {
  private readonly log: Logger;
  private readonly init: AcmeClientIssuerInit;
  private client: Acme.Client | undefined;

  constructor(components: { logger: Logger }, init: AcmeClientIssuerInit) {
    this.log = components.logger;
    this.init = init;
  }

  async issue(req: IssueRequest): Promise<CertificatePem> {
    const { signal } = req;
    const acme = await loadAcme();
    const step = <T>(what: string, p: Promise<T>, code: AcmeError['code'] = 'FD_ACME_CA') => untilAborted(p, signal, what, code);
    const client = this.client ?? (await this.account(acme, step));
    this.client = client;
    const profile = await step('reading the directory', this.profileFor(acme, req.identifiers));
    const order = await step(
      'ordering',
      client.createOrder({
        identifiers: req.identifiers.map((value) => ({ type: isIP(value) ? 'ip' : 'dns', value })),
        ...(profile === undefined ? {} : { profile }),
      } as Parameters<Acme.Client['createOrder']>[0]),
    );
    const authorizations = await step('reading the authorizations', client.getAuthorizations(order));
    const tokens: string[] = [];
    try {
      for (const authz of authorizations) {
        if (authz.status === 'valid') continue;
        const challenge = authz.challenges.find((c) => c.type === 'http-01');
        if (challenge === undefined) {
          throw new AcmeError('FD_ACME_CA', `the CA offers no http-01 challenge for ${authz.identifier.value}`);
        }
        const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
        req.challenges.put(challenge.token, keyAuthorization);
        tokens.push(challenge.token);
        await step(`answering the challenge for ${authz.identifier.value}`, client.completeChallenge(challenge), 'FD_ACME_CHALLENGE');
        await step(`validation of ${authz.identifier.value}`, client.waitForValidStatus(challenge), 'FD_ACME_CHALLENGE');
      }
    } finally {
      for (const t of tokens) req.challenges.remove(t);
    }
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const [, csr] = await acme.crypto.createCsr({ altNames: req.identifiers }, key);
    // Every authorization valid makes the order "ready", not always at once (RFC 8555 7.1.6).
    // acme-client answers with the order as the CA sent it, without the URL it keeps on its own.
    const ready = { ...(await step('waiting for the order to be ready', client.waitForValidStatus(order))), url: order.url };
    const finalized = await step('finalizing the order', client.finalizeOrder(ready, csr));
    const cert = await step('downloading the certificate', client.getCertificate(finalized));
    return { cert, key };
  }

  /** The account, created (or found again: same key, same account) on first use. */
  private async account(acme: AcmeApi, step: <T>(what: string, p: Promise<T>) => Promise<T>): Promise<Acme.Client> {
    const accountKey = await this.accountKey();
    const client = new acme.Client({ directoryUrl: this.init.directoryUrl, accountKey, backoffAttempts: 10, backoffMin: 1000, backoffMax: 10_000 });
    const terms = { termsOfServiceAgreed: true, ...(this.init.email === '' ? {} : { contact: [`mailto:${this.init.email}`] }) };
    try {
      await step('creating the account', client.createAccount(terms));
    } catch (err) {
      // The kept key's account exists already: the CA answered with its URL, and acme-client's
      // follow-up update (carrying only termsOfServiceAgreed) was refused as an empty update,
      // as pebble does (found by test/acme/acme-real). The account is there to use.
      if (!hasAccountUrl(client)) throw err;
    }
    return client;
  }

  private async accountKey(): Promise<string> {
    const dir = this.init.dataDir;
    if (dir !== undefined) {
      try {
        return await readFile(join(dir, ACCOUNT_KEY), 'utf8');
      } catch {
        // None yet: made below.
      }
    }
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    if (dir !== undefined) {
      try {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        await writeFileAtomic(join(dir, ACCOUNT_KEY), key, { mode: 0o600 });
      } catch (err) {
        this.log.warn('cannot keep the ACME account key; a new account is made at every start', { dir, error: err });
      }
    }
    return key;
  }

  /**
   * Let's Encrypt gives IP-address certificates only under its short-lived profile (draft-ietf-
   * acme-profiles); a CA that lists no profiles gets none asked for.
   */
  private async profileFor(acme: AcmeApi, identifiers: string[]): Promise<string | undefined> {
    const res = await acme.axios.get<{ meta?: { profiles?: Record<string, unknown> } }>(this.init.directoryUrl);
    const profiles = res.data?.meta?.profiles;
    if (profiles === undefined || typeof profiles !== 'object') return undefined;
    if (identifiers.some((i) => isIP(i) !== 0) && Object.hasOwn(profiles, 'shortlived')) return 'shortlived';
    return undefined;
  }
}

function hasAccountUrl(client: Acme.Client): boolean {
  try {
    return client.getAccountUrl() !== '';
  } catch {
    return false;
  }
}

/** `p`, or an AcmeError naming the step when it fails; the signal's reason when it aborts first. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal, what: string, code: AcmeError['code']): Promise<T> {
  const named = p.catch((err: unknown) => {
    throw err instanceof AcmeError ? err : new AcmeError(code, `${what}: ${describe(err)}`, { cause: err });
  });
  return raceAbort(named, signal);
}

/** acme-client's errors carry the CA's problem detail in the message; axios's a code. */
function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
