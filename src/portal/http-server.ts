import { createServer } from 'node:http';
import type { RequestListener, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../runtime/log.js';

/**
 * The node's two HTTP listeners: its own page on its own port, always; the portal on the portal
 * port, only while it is representative. Closing the portal drops its open connections too, so
 * a node that stepped down never answers for the well-known port through a kept-alive socket.
 * Request limits live here, below the application: headers 8 KiB, 5 s to send them, 10 s a
 * request.
 */

export interface NodeHttpServerInit {
  listenAddress: string;
  httpPort: number;
  portalPort: number;
  /** The node's own page and API (createPortalApp with which = 'node'). */
  nodeApp: RequestListener;
  /** The portal (which = 'portal'), served only while representative. */
  portalApp: RequestListener;
}

export class HttpListenError extends Error {
  readonly code = 'FD_HTTP_LISTEN';
  readonly port: number;
  constructor(port: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'HttpListenError';
    this.port = port;
  }
}

export class NodeHttpServer {
  private readonly log: Logger;
  private readonly init: NodeHttpServerInit;
  private nodeServer: Server | undefined;
  private portalServer: Server | undefined;
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

  async closePortal(): Promise<void> {
    await this.portalOpening?.catch(() => {});
    const s = this.portalServer;
    this.portalServer = undefined;
    if (s) await closeServer(s);
  }

  async close(): Promise<void> {
    await this.closePortal();
    const s = this.nodeServer;
    this.nodeServer = undefined;
    if (s) await closeServer(s);
  }

  private listen(port: number, handler: RequestListener): Promise<Server> {
    const server = createServer({ maxHeaderSize: 8192, requestTimeout: 10_000, headersTimeout: 5_000 }, handler);
    server.keepAliveTimeout = 5_000;
    server.on('clientError', (_err: Error, socket: Socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
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
        server.on('error', (err) => this.log.error('HTTP server error', { port, error: err.message }));
        resolve(server);
      });
    });
  }
}

function closeServer(s: Server): Promise<void> {
  return new Promise((resolve) => {
    s.close(() => resolve());
    s.closeAllConnections();
  });
}
