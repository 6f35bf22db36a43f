import { createSocket } from 'node:dgram';
import type { RemoteInfo, Socket } from 'node:dgram';

export type Reply = (datagram: Uint8Array) => void;
export type Handler = (request: Buffer, reply: Reply, from: RemoteInfo, index: number) => void;

/**
 * A minimal scripted NAT-PMP/PCP server on loopback for client tests: records every request and
 * lets the test decide, per request, what (if anything) to answer.
 */
export class FakeGateway {
  readonly received: Buffer[] = [];
  readonly senders: RemoteInfo[] = [];
  handler: Handler = () => {};
  private readonly socket: Socket;
  private waiters: Array<{ count: number; resolve: () => void }> = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('message', (msg, rinfo) => {
      const index = this.received.length;
      this.received.push(msg);
      this.senders.push(rinfo);
      this.handler(msg, (d) => this.socket.send(d, rinfo.port, rinfo.address), rinfo, index);
      this.waiters = this.waiters.filter((w) => {
        if (this.received.length < w.count) return true;
        w.resolve();
        return false;
      });
    });
  }

  static start(address = '127.0.0.1', port = 0): Promise<FakeGateway> {
    return new Promise((resolve, reject) => {
      const s = createSocket('udp4');
      s.once('error', reject);
      s.bind({ address, port }, () => {
        s.off('error', reject);
        resolve(new FakeGateway(s));
      });
    });
  }

  get address(): string {
    return this.socket.address().address;
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** Resolves once `count` requests in total have arrived. */
  requests(count: number): Promise<Buffer[]> {
    if (this.received.length >= count) return Promise.resolve(this.received.slice());
    return new Promise((resolve) => {
      this.waiters.push({ count, resolve: () => resolve(this.received.slice()) });
    });
  }

  /** Sends from this gateway's socket to any address (to play an impostor or a late answer). */
  sendTo(datagram: Uint8Array, port: number, address: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.send(datagram, port, address, (err) => (err ? reject(err) : resolve()));
    });
  }

  close(): void {
    this.socket.close();
  }
}

/** A UDP port on 127.0.0.1 with nothing listening: the kernel answers ICMP port unreachable. */
export function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind({ address: '127.0.0.1', port: 0 }, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Lets pending I/O callbacks and microtasks run (no wall-clock waiting). */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
