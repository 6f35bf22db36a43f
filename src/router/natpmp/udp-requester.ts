import { createSocket } from 'node:dgram';
import type { RemoteInfo, Socket } from 'node:dgram';
import { raceAbort } from '../../runtime/abort.js';
import type { Clock, Timer } from '../../runtime/clock.js';
import type { Logger } from '../../runtime/log.js';
import { AbortedError, BadResponseError, NoGatewayError, RouterError, RouterTimeoutError } from '../errors.js';

/**
 * Request/answer over one UDP socket to the gateway, shared by the NAT-PMP and PCP clients
 * (PCP reuses NAT-PMP's port and resend rules).
 *
 * - One socket per client, bound to `localAddress` (routers in secure mode map only to the
 *   sender's address) and connected to gateway:port. Connecting makes the kernel drop
 *   datagrams from anyone else and turns an ICMP port unreachable into a socket error, so a
 *   router without NAT-PMP/PCP fails the request at once instead of after the timeout.
 * - Resends follow RFC 6886 3.1 (250 ms, doubling) but stop at `timeoutMs`: the RFC's 64 s
 *   is far too long for failover.
 * - Every pending request has its own matcher; an answer goes to the first request it
 *   matches, so concurrent requests never take each other's answers.
 */
export interface UdpRequesterComponents {
  logger: Logger;
  clock: Clock;
}

export interface UdpRequesterInit {
  gateway: string;
  port: number;
  localAddress: string;
  /** Upper bound for one request, resends included. */
  timeoutMs: number;
  /** First resend interval; doubles after each resend. */
  initialRetryMs: number;
  /** Protocol name for messages. */
  protocol: string;
}

interface Pending<P> {
  match: (answer: P) => boolean;
  settle: (err: Error | undefined, answer?: P) => void;
  /** A garbled datagram from the gateway while waiting: reported instead of a plain timeout. */
  lastBad: BadResponseError | undefined;
}

export class UdpRequester<P> {
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly init: UdpRequesterInit;
  private readonly parse: (datagram: Buffer) => P;
  private readonly pending = new Set<Pending<P>>();
  private socket: Socket | undefined;
  private opening: Promise<Socket> | undefined;
  private closed = false;

  constructor(components: UdpRequesterComponents, init: UdpRequesterInit, parse: (datagram: Buffer) => P) {
    // A bad port would otherwise surface as a RangeError thrown inside a socket callback.
    if (!Number.isInteger(init.port) || init.port < 1 || init.port > 65535) {
      throw new RangeError(`${init.protocol} port must be 1-65535, got ${init.port}`);
    }
    this.log = components.logger;
    this.clock = components.clock;
    this.init = init;
    this.parse = parse;
  }

  /** Opens the socket if need be; resolves to its local port. */
  async ensureOpen(signal?: AbortSignal): Promise<number> {
    if (signal?.aborted) throw typedAbortReason(signal);
    const socket = await this.open(signal);
    return socket.address().port;
  }

  /**
   * Sends `payload` (resending it unchanged) until an answer for which `match` is true
   * arrives, `timeoutMs` passes (RouterTimeoutError) or `signal` aborts.
   */
  async request(payload: Uint8Array, match: (answer: P) => boolean, what: string, signal?: AbortSignal): Promise<P> {
    if (signal?.aborted) throw typedAbortReason(signal);
    const socket = await this.open(signal);
    return new Promise<P>((resolve, reject) => {
      const { gateway, port, timeoutMs } = this.init;
      let delay = this.init.initialRetryMs;
      let resend: Timer | undefined;
      const onAbort = () => entry.settle(typedAbortReason(signal!));
      const entry: Pending<P> = {
        match,
        lastBad: undefined,
        settle: (err, answer) => {
          if (!this.pending.delete(entry)) return;
          deadline.cancel();
          resend?.cancel();
          signal?.removeEventListener('abort', onAbort);
          if (this.pending.size === 0) this.socket?.unref();
          if (err) reject(err);
          else resolve(answer as P);
        },
      };
      const deadline = this.clock.setTimeout(() => {
        entry.settle(
          entry.lastBad ??
            new RouterTimeoutError(`${what}: no ${this.init.protocol} answer from ${gateway}:${port} within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.pending.add(entry);
      // A pending request keeps the process alive; an idle client does not.
      socket.ref();
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) {
        onAbort();
        return;
      }
      const send = () => {
        if (!this.pending.has(entry)) return;
        try {
          socket.send(payload, (err) => {
            if (err) entry.settle(this.socketError(err));
          });
        } catch (err) {
          entry.settle(this.socketError(err));
          return;
        }
        resend = this.clock.setTimeout(send, delay);
        delay *= 2;
      };
      send();
    });
  }

  /** Idempotent; pending requests fail with AbortedError. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const err = new AbortedError(`the ${this.init.protocol} client was closed`);
    for (const entry of [...this.pending]) entry.settle(err);
    this.discardSocket();
  }

  private open(signal?: AbortSignal): Promise<Socket> {
    if (this.closed) return Promise.reject(new AbortedError(`the ${this.init.protocol} client is closed`));
    if (this.socket) return Promise.resolve(this.socket);
    if (!this.opening) {
      const opening = this.bindAndConnect();
      this.opening = opening;
      opening.then(
        () => {
          if (this.opening === opening) this.opening = undefined;
        },
        () => {
          if (this.opening === opening) this.opening = undefined;
        },
      );
    }
    const opening = this.opening;
    if (!signal) return opening;
    return raceAbort(opening, signal, () => typedAbortReason(signal));
  }

  private bindAndConnect(): Promise<Socket> {
    const { gateway, port, localAddress } = this.init;
    return new Promise<Socket>((resolve, reject) => {
      const s = createSocket({ type: 'udp4' });
      let failed = false;
      const onSetupError = (err: Error) => {
        if (failed) return;
        failed = true;
        s.close();
        reject(
          new RouterError('FD_ROUTER_ERROR', `cannot open a UDP socket on ${localAddress} to ${gateway}:${port}`, {
            cause: err,
          }),
        );
      };
      s.on('error', onSetupError);
      s.bind({ address: localAddress, port: 0 }, () => {
        // Node passes a connect failure to this callback (its typings omit the argument).
        const onConnect = (err?: Error) => {
          if (err) {
            onSetupError(err);
            return;
          }
          s.off('error', onSetupError);
          if (this.closed) {
            s.close();
            reject(new AbortedError(`the ${this.init.protocol} client was closed`));
            return;
          }
          s.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
          s.on('error', (err) => this.onSocketError(s, err));
          s.unref();
          this.socket = s;
          resolve(s);
        };
        s.connect(port, gateway, onConnect as () => void);
      });
    });
  }

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    // The socket is connected, so the kernel already filters; checked again because RFC 6886
    // 3.2 makes the source check the client's duty, whatever the socket layer does.
    if (rinfo.address !== this.init.gateway || rinfo.port !== this.init.port) return;
    if (this.pending.size === 0) return;
    let answer: P;
    try {
      answer = this.parse(msg);
    } catch (err) {
      const bad =
        err instanceof BadResponseError ? err : new BadResponseError('unparsable answer', { cause: err });
      for (const entry of this.pending) entry.lastBad = bad;
      this.log.debug('ignored a malformed answer', { bytes: msg.length, reason: bad });
      return;
    }
    for (const entry of this.pending) {
      if (entry.match(answer)) {
        entry.settle(undefined, answer);
        return;
      }
    }
  }

  private onSocketError(s: Socket, err: Error): void {
    const typed = this.socketError(err);
    for (const entry of [...this.pending]) entry.settle(typed);
    // ICMP errors leave the socket usable; anything else and we start afresh next time.
    if (!isIcmpError(err) && this.socket === s) this.discardSocket();
  }

  private socketError(err: unknown): RouterError {
    const { gateway, port, protocol } = this.init;
    if (isIcmpError(err)) {
      return new NoGatewayError(
        `${gateway}:${port} does not answer ${protocol} (${(err as NodeJS.ErrnoException).code}): ` +
          `the router lacks ${protocol} or has it switched off`,
        { cause: err },
      );
    }
    return new RouterError('FD_ROUTER_ERROR', `${protocol} socket error towards ${gateway}:${port}`, { cause: err });
  }

  private discardSocket(): void {
    const s = this.socket;
    this.socket = undefined;
    if (s) {
      try {
        s.close();
      } catch {
        // already closed
      }
    }
  }
}

function isIcmpError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'EHOSTDOWN';
}

/** Callers get typed errors: a RouterError reason passes through, anything else becomes AbortedError. */
export function typedAbortReason(signal: AbortSignal): RouterError {
  const reason: unknown = signal.reason;
  return reason instanceof RouterError ? reason : new AbortedError(undefined, { cause: reason });
}
