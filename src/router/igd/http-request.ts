import { request } from '../../runtime/node-http.js';
import type { IncomingHttpHeaders } from 'node:http';
import type { Clock } from '../../runtime/clock.js';
import { abortReason } from '../abort.js';
import { BadResponseError, RouterError, RouterTimeoutError } from '../errors.js';

export interface HttpRequestOptions {
  url: string;
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Source address; routers in secure mode judge the request by it. */
  localAddress?: string;
  /** Bytes of body accepted before the answer is cut off and refused. */
  maxBytes: number;
  timeoutMs: number;
  clock: Clock;
  /** Names the exchange in errors ("GetExternalIPAddress", "device description"). */
  what: string;
  signal?: AbortSignal;
}

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * One HTTP exchange with the router, bounded in time and size. Every failure is a RouterError:
 * a timeout is a RouterTimeoutError, the caller's abort rejects with the signal's reason, an
 * oversized or truncated answer is a BadResponseError, anything else on the wire a RouterError.
 */
export function httpRequest(opts: HttpRequestOptions): Promise<HttpResult> {
  return new Promise<HttpResult>((resolve, reject) => {
    const { signal, what } = opts;
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    let url: URL;
    try {
      url = new URL(opts.url);
    } catch (err) {
      reject(new BadResponseError(`${what}: invalid URL ${JSON.stringify(opts.url.slice(0, 200))}`, { cause: err }));
      return;
    }
    if (url.protocol !== 'http:') {
      reject(new BadResponseError(`${what}: only http: URLs are supported, got ${url.protocol}`));
      return;
    }

    let done = false;
    const finish = (err: Error | undefined, result?: HttpResult) => {
      if (done) return;
      done = true;
      timer.cancel();
      signal?.removeEventListener('abort', onAbort);
      if (err) {
        req.destroy();
        reject(err);
      } else {
        resolve(result!);
      }
    };
    const onAbort = () => finish(abortReason(signal!));
    const timer = opts.clock.setTimeout(
      () => finish(new RouterTimeoutError(`${what}: no answer from ${url.host} within ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );

    const headers: Record<string, string> = { connection: 'close', ...opts.headers };
    if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
    const req = request(
      {
        protocol: 'http:',
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port === '' ? 80 : Number(url.port),
        path: `${url.pathname}${url.search}`,
        method: opts.method,
        headers,
        localAddress: opts.localAddress,
        // Each exchange on its own connection: miniupnpd closes after every answer anyway, and a
        // pooled socket bound to one address must not serve a request meant for another.
        agent: false,
      },
      (res) => {
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > opts.maxBytes) {
          finish(new BadResponseError(`${what}: answer of ${declared} bytes exceeds ${opts.maxBytes}`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > opts.maxBytes) {
            finish(new BadResponseError(`${what}: answer exceeds ${opts.maxBytes} bytes, cut off`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          finish(undefined, {
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          });
        });
        res.on('aborted', () => finish(new BadResponseError(`${what}: answer from ${url.host} was cut short`)));
        res.on('error', (err) => finish(new RouterError('FD_ROUTER_ERROR', `${what}: ${err.message}`, { cause: err })));
      },
    );
    req.on('error', (err) => {
      if (err instanceof RouterError) finish(err);
      else finish(new RouterError('FD_ROUTER_ERROR', `${what}: ${url.host}: ${err.message}`, { cause: err }));
    });
    signal?.addEventListener('abort', onAbort, { once: true });
    req.end(opts.body);
  });
}
