import { createServer } from '../runtime/node-http.js';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as HttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';
import type { Logger } from '../runtime/log.js';
import type { CertificatePem } from '../tls/self-signed.js';
import { CodedError } from '../runtime/errors.js';

/**
 * The node's two HTTP listeners: its own page on its own port, always; the portal on the portal
 * port, only while it is representative. Closing the portal drops its open connections too, so
 * a node that stepped down never answers for the well-known port through a kept-alive socket.
 * Request limits live here, below the application: headers 8 KiB, 5 s to send them, 10 s a
 * request.
 *
 * With TLS, each port answers TLS and plain HTTP on the same socket, told apart by the first
 * byte (a TLS handshake starts with 0x16; no HTTP method does). Plain HTTP then gets a redirect
 * to https and nothing else, except from loopback (the node's own `frontdoor status`, the
 * container's health check) and GET /healthz, which this file answers itself: it carries no
 * secret and reaches nothing behind the login.
 */

/** What the listeners need of the certificate: the current one and news of a renewed one. */
export interface TlsCertificates {
  readonly current: CertificatePem;
  onChange(listener: (c: CertificatePem) => void): () => void;
}

// Node enforces the two timeouts only when it sweeps its connections, every 30 s by default: a
// slowloris connection then lives up to 35 s instead of 5 (found by test/attack). Sweep each second.
const HEADER_LIMITS = { maxHeaderSize: 8192, requestTimeout: 10_000, headersTimeout: 5_000, connectionsCheckingInterval: 1_000 } as const;
/** A connection that has not sent its first byte (or finished its TLS handshake) by then is cut. */
const FIRST_BYTE_MS = 5_000;

export interface NodeHttpServerInit {
  listenAddress: string;
  httpPort: number;
  portalPort: number;
  /** The node's own page and API (createPortalApp with which = 'node'). */
  nodeApp: RequestListener;
  /** The portal (which = 'portal'), served only while representative. */
  portalApp: RequestListener;
  /** TLS on the same ports; undefined serves plain HTTP only. */
  tls?: TlsCertificates;
  /** Which plain-HTTP clients get the application rather than a redirect. Default: loopback. */
  plainAllowed?: (address: string | undefined) => boolean;
  /**
   * Answers some plain-HTTP requests from anywhere before the redirect: the ACME http-01
   * challenge, which the CA fetches over plain HTTP and will not follow to another port. Returns
   * whether it answered.
   */
  plainAnswer?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

/** One port: what close() must end. */
interface Listener {
  close(): Promise<void>;
}

export class HttpListenError extends CodedError<'FD_HTTP_LISTEN'> {
  readonly port: number;
  constructor(port: number, message: string, options?: ErrorOptions) {
    super('FD_HTTP_LISTEN', message, options);
    this.port = port;
  }
}

export class NodeHttpServer {
  private readonly log: Logger;
  private readonly init: NodeHttpServerInit;
  private nodeServer: Listener | undefined;
  private portalServer: Listener | undefined;
  private portalOpening: Promise<void> | undefined;

  constructor(components: { logger: Logger }, init: NodeHttpServerInit) {
    this.log = components.logger;
    this.init = init;
  }

  get portalOpen(): boolean {
    return this.portalServer !== undefined;
  }

  async listenNodePage(): Promise<void> {
    if (this.nodeServer) return;
    this.nodeServer = await this.listen(this.init.httpPort, this.init.nodeApp);
  }

  async openPortal(): Promise<void> {
    if (this.portalServer) return;
    this.portalOpening ??= this.listen(this.init.portalPort, this.init.portalApp).then(
      (s) => {
        this.portalServer = s;
        this.portalOpening = undefined;
      },
      (err: unknown) => {
        this.portalOpening = undefined;
        throw err;
      },
    );
    return this.portalOpening;
  }

  /**
   * Whether the portal's port could be listened on now (nothing else holds it). Checked before
   * the node may take the well-known port: the router would forward the internet to whatever
   * listens there.
   */
  async portalPortFree(): Promise<boolean> {
    if (this.portalServer || this.portalOpening) return true;
    const probe = createNetServer();
    try {
      await this.bind(probe, this.init.portalPort);
      return true;
    } catch (err) {
      if (err instanceof HttpListenError) return false;
      throw err;
    } finally {
      await new Promise<void>((r) => probe.close(() => r()));
    }
  }

  async closePortal(): Promise<void> {
    await this.portalOpening?.catch(() => {});
    const s = this.portalServer;
    this.portalServer = undefined;
    if (s) await s.close();
  }

  async close(): Promise<void> {
    await this.closePortal();
    const s = this.nodeServer;
    this.nodeServer = undefined;
    if (s) await s.close();
  }

  private async listen(port: number, handler: RequestListener): Promise<Listener> {
    const tls = this.init.tls;
    if (tls === undefined) {
      const server = httpServer(handler);
      await this.bind(server, port);
      return { close: () => closeServer(server) };
    }
    const secure = createHttpsServer({ ...HEADER_LIMITS, ...tls.current, handshakeTimeout: FIRST_BYTE_MS }, handler);
    limit(secure);
    // Plain HTTP carries no password and no picture from outside this machine; /healthz has neither.
    const allowed = this.init.plainAllowed ?? isLoopback;
    const answer = this.init.plainAnswer;
    const plain = httpServer((req, res) => {
      if (answer?.(req, res)) return;
      if (allowed(req.socket.remoteAddress)) handler(req, res);
      // Answered here, not by the application: handed to it, any method with an Authorization
      // header reached the login check, a password oracle in the clear.
      else if (req.url === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) healthy(req, res);
      else redirectToHttps(req, res);
    });
    // These two never listen: the front server hands them its sockets. Node starts an HTTP
    // server's connection tracking (the header and request timeouts, closeAllConnections) on
    // 'listening', so without this a slowloris connection handed over was never timed out.
    secure.emit('listening');
    plain.emit('listening');
    secure.on('tlsClientError', (_err: Error, tlsSocket: Socket) => {
      // A scanner's or an old client's failed handshake (or one that stalled past the handshake
      // timeout): nothing for the log. Node leaves the socket open: a 0x16 and silence held a
      // descriptor for as long as the client liked, and in CLOSE-WAIT after it left.
      tlsSocket.destroy();
    });
    const off = tls.onChange((c) => {
      // New connections get the renewed certificate; open ones keep theirs.
      secure.setSecureContext({ ...c });
    });
    // Every accepted socket until it closes: the HTTP layers only know a connection once it has
    // been handed over (and HTTPS only after its handshake), and the front server's close waits
    // for all of them, so closing must be able to end each one itself.
    const open = new Set<Socket>();
    const front = createNetServer({ pauseOnConnect: false }, (socket) => {
      open.add(socket);
      socket.on('error', () => socket.destroy());
      const timer = setTimeout(() => socket.destroy(), FIRST_BYTE_MS);
      socket.once('close', () => {
        clearTimeout(timer);
        open.delete(socket);
      });
      socket.once('data', (first: Buffer) => {
        clearTimeout(timer);
        socket.pause();
        socket.unshift(first);
        (first[0] === 0x16 ? secure : plain).emit('connection', socket);
        process.nextTick(() => socket.resume());
      });
    });
    await this.bind(front, port);
    return {
      close: async () => {
        off();
        const closed = Promise.all([closeServer(front), closeServer(secure), closeServer(plain)]);
        for (const s of open) s.destroy();
        await closed;
      },
    };
  }

  private bind(server: NetServer, port: number): Promise<void> {
    const address = this.init.listenAddress;
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const why =
          err.code === 'EADDRINUSE'
            ? `port ${port} on ${address} is already in use: stop what uses it or choose another port`
            : `cannot listen on ${address}:${port}: ${err.message}`;
        reject(new HttpListenError(port, why, { cause: err }));
      });
      server.listen(port, address, () => {
        server.removeAllListeners('error');
        server.on('error', (err) => this.log.error('HTTP server error', { port, error: err }));
        resolve();
      });
    });
  }
}

function limit(server: Server | HttpsServer): void {
  server.keepAliveTimeout = 5_000;
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // A TLS socket whose handshake did not finish never flushes an answer, so it is never
    // closed by one: cut it.
    const unfinished = (socket as { encrypted?: boolean; secureConnecting?: boolean }).secureConnecting === true;
    if (!socket.writable || unfinished) {
      socket.destroy();
      return;
    }
    // Headers or request too slow (the 5 s and 10 s limits): 408, the rest is a bad request.
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
  });
}

function httpServer(handler: RequestListener): Server {
  const server = createServer(HEADER_LIMITS, handler);
  limit(server);
  return server;
}

function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return v4.startsWith('127.') || v4 === '::1';
}

function healthy(req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 3, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(req.method === 'HEAD' ? undefined : 'ok\n');
}

/** The same host and port, https: the port answers both. A Host that is not a host gets 400. */
function redirectToHttps(req: IncomingMessage, res: ServerResponse): void {
  const host = req.headers.host ?? '';
  const path = req.url ?? '/';
  if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host) || !path.startsWith('/') || path.startsWith('//')) {
    res.writeHead(400, { 'content-type': 'text/plain', connection: 'close' }).end('bad request\n');
    return;
  }
  const to = `https://${host}${path}`;
  res.writeHead(308, { location: to, 'content-type': 'text/plain', 'cache-control': 'no-store', connection: 'close' });
  res.end(`use ${to}\n`);
}

function closeServer(s: NetServer): Promise<void> {
  return new Promise((resolve) => {
    s.close(() => resolve());
    (s as Partial<Server>).closeAllConnections?.call(s);
  });
}
