import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../runtime/log.js';
import { fleetCertificate, nodeCertificate } from './self-signed.js';
import type { CertificatePem } from './self-signed.js';

/**
 * The certificate the public ports serve, in order of preference: the user's own files (a
 * dynamic-DNS name's certificate), else the fleet's own (derived from the fleet secret, the same
 * on every node), else this node's own (made once, kept in the data directory).
 *
 * The user's files are checked again every `recheckMs`: a renewed certificate is taken without
 * dropping a connection (the listener swaps its secure context), and a bad or expired one is a
 * clear error while the node keeps serving what it had.
 */

export type TlsSource = 'files' | 'fleet' | 'node';

export interface TlsStatus {
  source: TlsSource;
  /** SHA-256 of the certificate, as browsers show it (AA:BB:...). */
  fingerprint: string;
  subject: string;
  notAfter: string;
  /** The last problem with the user's files, while the node serves something else. */
  error: string | null;
}

export interface TlsOptions {
  certFile: string;
  keyFile: string;
  secret: string;
  dataDir: string | undefined;
  /** How often the user's files are looked at again. Default 60 s. */
  recheckMs?: number;
  now?: () => number;
}

export class CertificateFileError extends Error {
  readonly code = 'FD_TLS_FILE';
  readonly file: string;
  constructor(file: string, message: string, options?: ErrorOptions) {
    super(`${file}: ${message}`, options);
    this.name = 'CertificateFileError';
    this.file = file;
  }
}

interface Loaded extends CertificatePem {
  /** What status() shows, worked out once: /api/status asks for it on every poll. */
  about: Omit<TlsStatus, 'error'>;
}

function loaded(pem: CertificatePem, source: TlsSource, x509 = new X509Certificate(pem.cert)): Loaded {
  return {
    ...pem,
    about: { source, fingerprint: x509.fingerprint256, subject: x509.subject.replace(/\n/g, ', '), notAfter: new Date(x509.validTo).toISOString() },
  };
}

export class TlsCredentials {
  private readonly o: TlsOptions;
  private readonly log: Logger;
  private readonly listeners = new Set<(c: CertificatePem) => void>();
  private cur!: Loaded;
  private error: string | null = null;
  private timer: NodeJS.Timeout | undefined;
  private lastSeen = '';

  private constructor(components: { logger: Logger }, o: TlsOptions) {
    this.o = o;
    this.log = components.logger;
  }

  static async load(components: { logger: Logger }, o: TlsOptions): Promise<TlsCredentials> {
    const c = new TlsCredentials(components, o);
    await c.init();
    return c;
  }

  get current(): CertificatePem {
    return { key: this.cur.key, cert: this.cur.cert };
  }

  status(): TlsStatus {
    return { ...this.cur.about, error: this.error };
  }

  /** Called with the new certificate when the user's files change. */
  onChange(listener: (c: CertificatePem) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private get usesFiles(): boolean {
    return this.o.certFile !== '' && this.o.keyFile !== '';
  }

  private async init(): Promise<void> {
    // The self-made certificate only when the user's files cannot serve: making it may mean a
    // new key written to the data directory.
    let fromFiles: Loaded | undefined;
    if (this.usesFiles) {
      try {
        fromFiles = await this.readFiles();
      } catch (err) {
        this.error = (err as Error).message;
      }
      this.timer = setInterval(() => void this.recheck(), this.o.recheckMs ?? 60_000);
      this.timer.unref();
    }
    this.cur = fromFiles ?? (await this.fallback());
    if (this.error !== null) {
      this.log.error(`cannot use the TLS certificate files; serving the ${this.cur.about.source === 'fleet' ? "fleet's" : "node's own"} certificate meanwhile`, {
        error: this.error,
      });
    }
    const s = this.status();
    this.log.info('TLS certificate', { source: s.source, fingerprint: s.fingerprint, notAfter: s.notAfter });
  }

  private async fallback(): Promise<Loaded> {
    if (this.o.secret !== '') {
      const pem = fleetCertificate(this.o.secret);
      return loaded(pem, 'fleet');
    }
    const pem = await this.keptNodeCertificate();
    return loaded(pem, 'node');
  }

  /** Made once and kept, so a browser's exception survives a restart (without a fleet secret). */
  private async keptNodeCertificate(): Promise<CertificatePem> {
    const dir = this.o.dataDir;
    if (dir !== undefined) {
      try {
        const [cert, key] = await Promise.all([readFile(join(dir, 'tls-cert.pem'), 'utf8'), readFile(join(dir, 'tls-key.pem'), 'utf8')]);
        const x = new X509Certificate(cert);
        if (x.checkPrivateKey(createPrivateKey(key))) return { cert, key };
        this.log.warn('the kept TLS certificate does not match its key; making a new one', { dir });
      } catch {
        // None kept yet, or unreadable: make one.
      }
    }
    const made = nodeCertificate();
    if (dir !== undefined) {
      try {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        await writeFile(join(dir, 'tls-key.pem'), made.key, { mode: 0o600 });
        await writeFile(join(dir, 'tls-cert.pem'), made.cert, { mode: 0o644 });
      } catch (err) {
        this.log.error('cannot keep the TLS certificate in the data directory; a new one is made at every start', {
          dir,
          error: (err as Error).message,
        });
      }
    }
    return made;
  }

  private async readFiles(): Promise<Loaded> {
    const { certFile, keyFile } = this.o;
    const [cert, key] = await Promise.all([readOrThrow(certFile), readOrThrow(keyFile)]);
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(cert);
    } catch (err) {
      throw new CertificateFileError(certFile, 'is not a PEM certificate', { cause: err });
    }
    let keyObject: ReturnType<typeof createPrivateKey>;
    try {
      keyObject = createPrivateKey(key);
    } catch (err) {
      throw new CertificateFileError(keyFile, 'is not a PEM private key (or is encrypted)', { cause: err });
    }
    if (!x509.checkPrivateKey(keyObject)) throw new CertificateFileError(keyFile, `is not the key of ${certFile}`);
    const now = (this.o.now ?? Date.now)();
    if (Date.parse(x509.validTo) <= now) throw new CertificateFileError(certFile, `expired on ${new Date(x509.validTo).toISOString()}`);
    if (Date.parse(x509.validFrom) > now) throw new CertificateFileError(certFile, `is not valid before ${new Date(x509.validFrom).toISOString()}`);
    this.lastSeen = await this.signature();
    return loaded({ cert, key }, 'files', x509);
  }

  private async signature(): Promise<string> {
    const parts = await Promise.all(
      [this.o.certFile, this.o.keyFile].map(async (f) => {
        try {
          const s = await stat(f);
          return `${s.mtimeMs}:${s.size}`;
        } catch {
          return 'missing';
        }
      }),
    );
    return parts.join('|');
  }

  /** Takes renewed files; keeps what it serves when they are bad, saying why once per change. */
  async recheck(): Promise<void> {
    const sig = await this.signature();
    // Unchanged files are not read again, good or bad: a bad pair is reported once per change.
    if (sig === this.lastSeen) return;
    this.lastSeen = sig;
    try {
      const next = await this.readFiles();
      const changed = next.about.fingerprint !== this.cur.about.fingerprint;
      this.cur = next;
      this.error = null;
      if (changed) {
        this.log.info('TLS certificate renewed from its files', { fingerprint: next.about.fingerprint, notAfter: next.about.notAfter });
        for (const l of this.listeners) l(this.current);
      }
    } catch (err) {
      this.error = (err as Error).message;
      this.log.error('the TLS certificate files changed but cannot be used; still serving the previous certificate', {
        error: this.error,
        serving: this.cur.about.fingerprint,
      });
    }
  }
}

async function readOrThrow(file: string): Promise<string> {
  try {
    const s = await readFile(file, 'utf8');
    if (s.length > 1024 * 1024) throw new CertificateFileError(file, 'is larger than 1 MiB');
    return s;
  } catch (err) {
    if (err instanceof CertificateFileError) throw err;
    throw new CertificateFileError(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
}
