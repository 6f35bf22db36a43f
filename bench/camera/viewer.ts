import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { BoundaryCounter } from './boundary-counter.js';

/**
 * One viewer of /camera.mjpg over a bare TCP socket: the request written by hand, the answer's
 * status line and headers checked, then every byte handed to a BoundaryCounter. No HTTP parser
 * runs on the body, which is what lets one process keep up with 100 viewers; the chunked
 * transfer framing Node puts around each write is counted in `bytes` and otherwise ignored (the
 * part header is a single write, so a chunk-size line never cuts a boundary).
 *
 * `stall`: once the headers are in, the socket is paused and never read again, like a phone
 * whose connection froze: the kernel's buffers fill and the server has to skip frames for it.
 */
export interface Viewer {
  readonly counter: BoundaryCounter | undefined;
  /** Resolves when the headers are in (a stalled viewer) or the first frame is (any other). */
  readonly ready: Promise<void>;
  /** True once the connection has ended by itself (server dropped it, or an error). */
  readonly ended: boolean;
  close(): void;
}

const MAX_HEADER_BYTES = 8192;

export function openViewer(port: number, authorization: string, stall: boolean): Viewer {
  const socket: Socket = connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  socket.write(`GET /camera.mjpg HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${authorization}\r\nAccept: multipart/x-mixed-replace\r\n\r\n`);
  let head = Buffer.alloc(0);
  let counter: BoundaryCounter | undefined;
  let ended = false;
  let closing = false;
  let settle: { resolve(): void; reject(e: Error): void } | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject };
  });
  ready.catch(() => {}); // the caller awaits it; never unhandled meanwhile
  const fail = (why: string) => {
    settle?.reject(new Error(why));
    settle = undefined;
    socket.destroy();
  };

  const body = (c: BoundaryCounter, chunk: Buffer) => {
    c.push(chunk);
    if (settle && c.count > 0) {
      settle.resolve();
      settle = undefined;
    }
  };
  socket.on('data', (chunk: Buffer) => {
    if (counter) return body(counter, chunk);
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > MAX_HEADER_BYTES) fail('answer headers longer than 8 KiB');
      return;
    }
    const text = head.subarray(0, end).toString('latin1');
    const status = text.slice(0, text.indexOf('\r\n'));
    if (!/^HTTP\/1\.1 200 /.test(status)) return fail(`GET /camera.mjpg: ${status}`);
    const boundary = /^content-type:\s*multipart\/x-mixed-replace;\s*boundary=([^\s;]+)/im.exec(text)?.[1];
    if (!boundary) return fail('no multipart boundary in the answer');
    const c = new BoundaryCounter(boundary);
    counter = c;
    const rest = head.subarray(end + 4);
    head = Buffer.alloc(0);
    if (stall) {
      socket.pause();
      settle?.resolve();
      settle = undefined;
      return;
    }
    if (rest.length > 0) body(c, rest);
  });
  socket.on('error', (err) => {
    if (!closing) fail(err.message);
  });
  socket.on('close', () => {
    if (!closing) ended = true;
    settle?.reject(new Error('connection closed before the first frame'));
    settle = undefined;
  });

  return {
    get counter() {
      return counter;
    },
    ready,
    get ended() {
      return ended;
    },
    close: () => {
      closing = true;
      socket.destroy();
    },
  };
}
