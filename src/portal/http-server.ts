import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../runtime/log.js';
import { nodePage, portalPage } from './pages.js';
import type { NodeStatus } from './status.js';

/**
 * The node's two HTTP listeners: its own page on its own port, always; the portal on the portal
 * port, only while it is representative. Closing the portal drops its open connections too, so
 * a node that stepped down never answers for the well-known port through a kept-alive socket.
 */

export interface NodeHttpServerInit {
  listenAddress: string;
  httpPort: number;
  portalPort: number;
  status: () => NodeStatus;
}

const HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'self'",
  'cache-control': 'no-store',
};

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
    this.nodeServer = await this.listen(this.init.httpPort, (req, res) => this.route('node', req, res));
  }

  async openPortal(): Promise<void> {
    if (this.portalServer) return;
    this.portalOpening ??= this.listen(this.init.portalPort, (req, res) => this.route('portal', req, res)).then(
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

  private listen(port: number, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
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

  private route(which: 'node' | 'portal', req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, HEAD' });
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    try {
      switch (path) {
        case '/':
          send(res, 200, 'text/html; charset=utf-8', which === 'portal' ? portalPage(this.init.status()) : nodePage(this.init.status()));
          return;
        case '/api/status':
          send(res, 200, 'application/json', `${JSON.stringify(this.init.status())}\n`);
          return;
        case '/api/nodes':
          send(res, 200, 'application/json', `${JSON.stringify(this.init.status().nodes)}\n`);
          return;
        case '/healthz':
          send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
          return;
        default:
          send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      }
    } catch (err) {
      // Never the stack: the page is on the internet.
      this.log.error('request failed', { path, error: err instanceof Error ? err.message : String(err) });
      send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
    }
  }
}

function send(res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  const buf = Buffer.from(body);
  res.writeHead(status, { ...HEADERS, 'content-type': type, 'content-length': buf.length, ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : buf);
}

function closeServer(s: Server): Promise<void> {
  return new Promise((resolve) => {
    s.close(() => resolve());
    s.closeAllConnections();
  });
}
