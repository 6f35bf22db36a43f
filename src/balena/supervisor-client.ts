import { request } from '../runtime/node-http.js';
import { SupervisorResponseError, SupervisorUnavailableError } from './errors.js';
import { parseDevice, parseDeviceName, parsePing, type SupervisorDevice } from './supervisor-response.js';

export interface SupervisorClientOptions {
  /** BALENA_SUPERVISOR_ADDRESS, e.g. http://127.0.0.1:48484 */
  address: string;
  /** BALENA_SUPERVISOR_API_KEY */
  apiKey: string;
  /** Per request; the supervisor is on the same device, so an answer is quick or never. */
  timeoutMs?: number;
  /** The longest body read; the documented answers are well under 2 kB. */
  maxBodyBytes?: number;
}

interface Call {
  signal?: AbortSignal;
}

/**
 * A small client of the balena supervisor's device API (no npm package does this; balena-sdk is
 * the cloud API). Every call is bounded in time and size and fails with SupervisorUnavailableError
 * (nothing answered) or SupervisorResponseError (an answer we cannot use). The API key goes in the
 * `apikey` query parameter, as the supervisor's documentation shows; it never appears in an error.
 */
export class SupervisorClient {
  readonly #base: URL;
  readonly #apiKey: string;
  readonly #timeoutMs: number;
  readonly #maxBody: number;

  constructor(opts: SupervisorClientOptions) {
    let base: URL;
    try {
      base = new URL(opts.address);
    } catch {
      throw new SupervisorUnavailableError('BALENA_SUPERVISOR_ADDRESS is not a URL');
    }
    if (base.protocol !== 'http:') throw new SupervisorUnavailableError('BALENA_SUPERVISOR_ADDRESS is not an http:// URL');
    this.#base = base;
    this.#apiKey = opts.apiKey;
    this.#timeoutMs = opts.timeoutMs ?? 2000;
    this.#maxBody = opts.maxBodyBytes ?? 64 * 1024;
  }

  /** True when the supervisor is up. */
  async ping(call: Call = {}): Promise<true> {
    const r = await this.#get('/ping', call);
    return parsePing(r.status, r.body);
  }

  async device(call: Call = {}): Promise<SupervisorDevice> {
    const r = await this.#get('/v1/device', call);
    return parseDevice(r.status, r.body);
  }

  /** The device's current name (BALENA_DEVICE_NAME_AT_INIT does not follow a rename). Supervisor v9.11 and later. */
  async deviceName(call: Call = {}): Promise<string> {
    const r = await this.#get('/v2/device/name', call);
    return parseDeviceName(r.status, r.body);
  }

  #get(path: string, call: Call): Promise<{ status: number; body: Buffer }> {
    const what = `GET ${path}`;
    const url = new URL(path, this.#base);
    // /ping needs no key on current supervisors, but older ones asked for it on every endpoint.
    url.searchParams.set('apikey', this.#apiKey);
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const signal = call.signal ? AbortSignal.any([timeout, call.signal]) : timeout;
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(new SupervisorUnavailableError(`${what}: aborted`));
        return;
      }
      const fail = (err: unknown) => {
        if (err instanceof SupervisorResponseError) reject(err);
        else if (timeout.aborted) reject(new SupervisorUnavailableError(`${what}: no answer within ${this.#timeoutMs} ms`, { cause: err }));
        else if (call.signal?.aborted) reject(new SupervisorUnavailableError(`${what}: aborted`, { cause: err }));
        else reject(new SupervisorUnavailableError(`${what}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err }));
      };
      const req = request(url, { method: 'GET', headers: { accept: 'application/json' }, signal }, (res) => {
        const status = res.statusCode ?? 0;
        const declared = Number(res.headers['content-length']);
        if (declared > this.#maxBody) {
          res.destroy();
          fail(new SupervisorResponseError(`${what}: the body is larger than ${this.#maxBody} bytes`, status));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > this.#maxBody) {
            res.destroy();
            fail(new SupervisorResponseError(`${what}: the body is larger than ${this.#maxBody} bytes`, status));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => resolve({ status, body: Buffer.concat(chunks) }));
        res.on('error', fail);
      });
      req.on('error', fail);
      req.end();
    });
  }
}
