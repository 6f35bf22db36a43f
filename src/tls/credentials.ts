import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../runtime/atomic-write.js';
import type { Logger } from '../runtime/log.js';
import { fleetCertificate, nodeCertificate } from './self-signed.js';
import type { CertificatePem } from './self-signed.js';
import { CodedError } from '../runtime/errors.js';

/**
 * The certificate the public ports serve, in order of preference: the user's own files (a
 * dynamic-DNS name's certificate), else an ACME certificate (obtained by the representative,
 * src/acme/, and shared with the fleet; kept in the data directory), else the fleet's own
 * (derived from the fleet secret, the same on every node), else this node's own (made once,
 * kept in the data directory).
 *
 * The user's files are checked again every `recheckMs`: a renewed certificate is taken without
 * dropping a connection (the listener swaps its secure context), and a bad or expired one is a
 * clear error while the node keeps serving what it had.
 */

export type TlsSource = 'files' | 'acme' | 'fleet' | 'node';

export interface TlsStatus {
  source: TlsSource;
  /** SHA-256 of the certificate, as browsers show it (AA:BB:...). */
  fingerprint: string;
  subject: string;
  notAfter: string;
  /** The last problem with the user's files, while the node serves something else. */
  error: string | null;
}

/** What installAcme() did with a certificate it was given. */
export type AcmeInstall = 'installed' | 'same' | 'older' | 'files-win';

const SOURCE_WORDS: Record<TlsSource, string> = { files: "user's", acme: 'ACME', fleet: "fleet's", node: "node's own" };

const ACME_CERT = 'acme-cert.pem';
const ACME_KEY = 'acme-key.pem';

export interface TlsOptions {
  certFile: string;
  keyFile: string;
  secret: string;
  dataDir: string | undefined;
  /** How often the user's files are looked at again. Default 60 s. */
  recheckMs?: number;
  now?: () => number;
}

export class CertificateFileError extends CodedError<'FD_TLS_FILE'> {
  readonly file: string;
  constructor(file: string, message: string, options?: ErrorOptions) {
    super('FD_TLS_FILE', `${file}: ${message}`, options);
    this.file = file;
  }
}

interface Loaded extends CertificatePem {
  /** What status() shows, worked out once: /api/status asks for it on every poll. */
  about: Omit<TlsStatus, 'error'>;
  notBefore: number;
  notAfter: number;
  /** The subject alternative names: IP addresses and DNS names, as written. */
  names: string[];
}

function loaded(pem: CertificatePem, source: TlsSource, x509 = new X509Certificate(pem.cert)): Loaded {
  return {
    ...pem,
    about: { source, fingerprint: x509.fingerprint256, subject: x509.subject.replace(/\n/g, ', '), notAfter: new Date(x509.validTo).toISOString() },
    notBefore: Date.parse(x509.validFrom),
    notAfter: Date.parse(x509.validTo),
    names: altNames(x509),
  };
}

/** The names an ACME certificate is for, and its validity, for deciding when to renew. */
export interface AcmeCertificateInfo {
  fingerprint: string;
  names: string[];
  notBefore: number;
  notAfter: number;
  pem: CertificatePem;
}

/** "DNS:a.example, IP Address:203.0.114.1" -> ['a.example', '203.0.114.1']. */
function altNames(x509: X509Certificate): string[] {
  const san = x509.subjectAltName ?? '';
  const out: string[] = [];
  for (const part of san.split(', ')) {
    const m = /^(DNS|IP Address):(.+)$/.exec(part);
    if (m) out.push(m[2]!.toLowerCase());
  }
  return out;
}

export class TlsCredentials {
  private readonly o: TlsOptions;
  private readonly log: Logger;
  private readonly listeners = new Set<(c: CertificatePem) => void>();
  private cur!: Loaded;
  private error: string | null = null;
  private timer: NodeJS.Timeout | undefined;
  private lastSeen = '';
  /** The ACME certificate, kept even while the user's files win, so a later switch has it. */
  private acme: Loaded | undefined;

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
    let filesError: unknown;
    if (this.usesFiles) {
      try {
        fromFiles = await this.readFiles();
      } catch (err) {
        filesError = err;
        this.error = (err as Error).message;
      }
      this.timer = setInterval(() => void this.recheck(), this.o.recheckMs ?? 60_000);
      this.timer.unref();
    }
    if (fromFiles === undefined) this.acme = await this.keptAcme();
    this.cur = fromFiles ?? this.acme ?? (await this.fallback());
    if (this.error !== null) {
      this.log.error(`cannot use the TLS certificate files; serving the ${SOURCE_WORDS[this.cur.about.source]} certificate meanwhile`, {
        error: filesError,
      });
    }
    const s = this.status();
    this.log.info('TLS certificate', { source: s.source, fingerprint: s.fingerprint, notAfter: s.notAfter });
  }

  /** The ACME certificate this node serves or was given, if any. */
  acmeCertificate(): AcmeCertificateInfo | undefined {
    const a = this.acme;
    if (a === undefined) return undefined;
    return { fingerprint: a.about.fingerprint, names: a.names, notBefore: a.notBefore, notAfter: a.notAfter, pem: { cert: a.cert, key: a.key } };
  }

  /**
   * Takes an ACME certificate (obtained by this node, or shared by the representative) and
   * keeps it in the data directory. A bad pair is an error and changes nothing; one issued before
   * the one held is refused (a replayed old bundle must not roll the fleet back).
   * The user's files, when they are good, go on being served.
   */
  async installAcme(pem: CertificatePem): Promise<AcmeInstall> {
    const next = loaded(pem, 'acme', checkPair(pem, (this.o.now ?? Date.now)(), { cert: 'the ACME certificate', key: 'the ACME key' }));
    const held = this.acme;
    if (held !== undefined) {
      if (held.about.fingerprint === next.about.fingerprint) return 'same';
      // The later issued wins (the CA signed notBefore, so it cannot be forged): a replayed old
      // bundle cannot roll a node back, and a new one wins whatever its names or its lifetime
      // (a new WAN address, a 6-day certificate after a 90-day one).
      if (!issuedLater(next, held)) return 'older';
    }
    this.acme = next;
    await this.keep(ACME_KEY, ACME_CERT, pem, 'cannot keep the ACME certificate in the data directory; after a restart the fleet serves its own until the representative hands it over again');
    if (this.cur.about.source === 'files' && this.error === null) return 'files-win';
    this.cur = next;
    this.log.info('TLS certificate from ACME', { fingerprint: next.about.fingerprint, names: next.names.join(','), notAfter: next.about.notAfter });
    for (const l of this.listeners) l(this.current);
    return 'installed';
  }

  private async keptAcme(): Promise<Loaded | undefined> {
    const dir = this.o.dataDir;
    if (dir === undefined) return undefined;
    let pem: CertificatePem;
    try {
      const [cert, key] = await Promise.all([readFile(join(dir, ACME_CERT), 'utf8'), readFile(join(dir, ACME_KEY), 'utf8')]);
      pem = { cert, key };
    } catch {
      return undefined;
    }
    try {
      return loaded(pem, 'acme', checkPair(pem, (this.o.now ?? Date.now)(), { cert: join(dir, ACME_CERT), key: join(dir, ACME_KEY) }));
    } catch (err) {
      // Expired while the node was off is the usual case: the representative gets a new one.
      this.log.warn('not using the kept ACME certificate', { error: err });
      return undefined;
    }
  }

  private async keep(keyName: string, certName: string, pem: CertificatePem, failure: string): Promise<void> {
    const dir = this.o.dataDir;
    if (dir === undefined) return;
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      // Each file is whole, old or new, but the two are not replaced together: a crash between
      // them leaves the new key beside the old certificate. Both loaders check that the key is
      // the certificate's (keptNodeCertificate, keptAcme) and a pair that is not is not used.
      await writeFileAtomic(join(dir, keyName), pem.key, { mode: 0o600 });
      await writeFileAtomic(join(dir, certName), pem.cert, { mode: 0o644 });
    } catch (err) {
      this.log.error(failure, { dir, error: err });
    }
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
    await this.keep('tls-key.pem', 'tls-cert.pem', made, 'cannot keep the TLS certificate in the data directory; a new one is made at every start');
    return made;
  }

  private async readFiles(): Promise<Loaded> {
    const { certFile, keyFile } = this.o;
    const [cert, key] = await Promise.all([readOrThrow(certFile), readOrThrow(keyFile)]);
    const x509 = checkPair({ cert, key }, (this.o.now ?? Date.now)(), { cert: certFile, key: keyFile });
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
        error: err,
        serving: this.cur.about.fingerprint,
      });
    }
  }
}

function issuedLater(a: Pick<Loaded, 'notBefore' | 'notAfter'>, b: Pick<Loaded, 'notBefore' | 'notAfter'>): boolean {
  return a.notBefore > b.notBefore || (a.notBefore === b.notBefore && a.notAfter > b.notAfter);
}

/** A certificate and its key that can serve now; errors name `label`'s cert or key. */
function checkPair(pem: CertificatePem, now: number, label: { cert: string; key: string }): X509Certificate {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(pem.cert);
  } catch (err) {
    throw new CertificateFileError(label.cert, 'is not a PEM certificate', { cause: err });
  }
  let keyObject: ReturnType<typeof createPrivateKey>;
  try {
    keyObject = createPrivateKey(pem.key);
  } catch (err) {
    throw new CertificateFileError(label.key, 'is not a PEM private key (or is encrypted)', { cause: err });
  }
  if (!x509.checkPrivateKey(keyObject)) throw new CertificateFileError(label.key, `is not the key of ${label.cert}`);
  if (Date.parse(x509.validTo) <= now) throw new CertificateFileError(label.cert, `expired on ${new Date(x509.validTo).toISOString()}`);
  if (Date.parse(x509.validFrom) > now) throw new CertificateFileError(label.cert, `is not valid before ${new Date(x509.validFrom).toISOString()}`);
  return x509;
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
