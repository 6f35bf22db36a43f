import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { Logger } from '../../runtime/log.js';
import { isLoopbackV4 } from './loopback.js';

export interface ForwardTarget {
  host: string;
  port: number;
}

/**
 * The data plane of one TCP mapping: listens on wanAddress:externalPort and pipes each
 * connection to the mapping's internal client, as the router's DNAT rule would. The target is
 * read per connection, so a renewal that changes the internal port takes effect at once.
 */
export class TcpForwarder {
  private readonly logger: Logger;
  private readonly listenHost: string;
  private readonly listenPort: number;
  private readonly target: () => ForwardTarget | undefined;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private closed = false;

  constructor(logger: Logger, listenHost: string, listenPort: number, target: () => ForwardTarget | undefined) {
    this.logger = logger;
    this.listenHost = listenHost;
    this.listenPort = listenPort;
    this.target = target;
  }

  /** Resolves whether or not the port could be bound: a failure is logged, the mapping stays. */
  async start(): Promise<boolean> {
    const server = createServer((socket) => this.onConnection(socket));
    this.server = server;
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', (err) => {
        this.logger.warn('cannot forward: bind failed', {
          address: this.listenHost,
          port: this.listenPort,
          error: err,
        });
        resolve(false);
      });
      server.listen(this.listenPort, this.listenHost, () => resolve(true));
    });
    if (!ok || this.closed) {
      this.server = undefined;
      server.close();
      return false;
    }
    server.on('error', (err) => this.logger.warn('forwarder error', { port: this.listenPort, error: err }));
    return true;
  }

  async stop(): Promise<void> {
    this.closed = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) await new Promise<void>((r) => server.close(() => r()));
  }

  private onConnection(inbound: Socket): void {
    const t = this.target();
    if (t === undefined || !isLoopbackV4(t.host)) {
      if (t !== undefined) this.logger.warn('refusing to forward to a non-loopback address', { target: t.host });
      inbound.destroy();
      return;
    }
    const outbound = connect({ host: t.host, port: t.port });
    this.sockets.add(inbound);
    this.sockets.add(outbound);
    const done = () => {
      this.sockets.delete(inbound);
      this.sockets.delete(outbound);
    };
    inbound.on('error', () => outbound.destroy());
    outbound.on('error', () => inbound.destroy());
    inbound.on('close', () => {
      outbound.destroy();
      done();
    });
    outbound.on('close', () => {
      inbound.destroy();
      done();
    });
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  }
}
