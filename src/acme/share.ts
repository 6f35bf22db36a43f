import { request } from 'node:https';
import type { Logger } from '../runtime/log.js';
import type { AcmeInstall, TlsCredentials } from '../tls/credentials.js';
import { MAX_BUNDLE_BYTES, openBundle } from './bundle.js';
import { AcmeBundleError } from './errors.js';

/**
 * The two ends of handing the ACME certificate over the LAN: the representative POSTs the
 * sealed bundle to `/api/tls/acme` on each node's own port, and each node opens and installs it.
 * The route answers only LAN addresses; the seal (bundle.ts) is what makes it safe.
 */

export const BUNDLE_PATH = '/api/tls/acme';

/** Sends one bundle; resolves when the node took it (or already had it or a newer one). */
export type BundleSender = (target: { address: string; port: number }, bundle: Buffer, signal: AbortSignal) => Promise<void>;

const SEND_TIMEOUT_MS = 5_000;

/**
 * Over HTTPS without checking the node's certificate: it may be any of our own self-made ones,
 * and the bundle needs no channel security (sealed and authenticated by the fleet secret).
 */
export const sendBundle: BundleSender = (target, bundle, signal) =>
  new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.address,
        port: target.port,
        method: 'POST',
        path: BUNDLE_PATH,
        rejectUnauthorized: false,
        headers: { 'content-type': 'application/octet-stream', 'content-length': bundle.length },
        timeout: SEND_TIMEOUT_MS,
        signal,
      },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        // 409: the node holds a newer certificate; nothing more to give it.
        if (status === 204 || status === 409) resolve();
        else reject(new Error(`${target.address}:${target.port} answered ${status}`));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${target.address}:${target.port} did not answer in ${SEND_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(bundle);
  });

export interface BundleAnswer {
  status: 204 | 400 | 403 | 409 | 413;
  message: string;
}

/** A node's side: opens a bundle from the LAN and installs what it holds. */
export class BundleReceiver {
  private readonly log: Logger;
  private readonly key: Buffer;
  private readonly credentials: () => TlsCredentials | undefined;

  constructor(components: { logger: Logger }, init: { key: Buffer; credentials: () => TlsCredentials | undefined }) {
    this.log = components.logger;
    this.key = init.key;
    this.credentials = init.credentials;
  }

  async accept(body: Buffer, from: string): Promise<BundleAnswer> {
    if (body.length > MAX_BUNDLE_BYTES) return { status: 413, message: 'bundle too large' };
    const creds = this.credentials();
    if (creds === undefined) return { status: 409, message: 'not serving TLS yet' };
    let result: AcmeInstall;
    try {
      result = await creds.installAcme(openBundle(this.key, body));
    } catch (err) {
      // A forged bundle from the LAN is worth a line: someone is trying.
      this.log.warn('refused a certificate bundle', { from, error: err });
      return { status: err instanceof AcmeBundleError ? 403 : 400, message: (err as Error).message };
    }
    if (result === 'older') return { status: 409, message: 'this node holds a newer certificate' };
    if (result === 'installed') this.log.info('took the ACME certificate shared by the representative', { from });
    return { status: 204, message: result };
  }
}
