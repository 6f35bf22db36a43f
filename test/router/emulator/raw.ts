import { createSocket } from 'node:dgram';
import { request } from 'node:http';

/** Raw wire helpers for the emulator tests: nothing of frontdoor's own clients. */

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function http(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; localAddress?: string } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: opts.method ?? 'GET', headers: opts.headers, localAddress: opts.localAddress, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

export interface SoapAnswer extends HttpAnswer {
  /** UPnP errorCode of a fault, undefined on success. */
  errorCode: number | undefined;
  /** Text of an output argument. */
  arg(name: string): string | undefined;
}

export async function soap(
  controlUrl: string,
  action: string,
  args: Record<string, string | number>,
  opts: { localAddress?: string; serviceType?: string } = {},
): Promise<SoapAnswer> {
  const st = opts.serviceType ?? 'urn:schemas-upnp-org:service:WANIPConnection:2';
  const inner = Object.entries(args)
    .map(([k, v]) => `<${k}>${v}</${k}>`)
    .join('');
  const body =
    '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
    's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>' +
    `<u:${action} xmlns:u="${st}">${inner}</u:${action}></s:Body></s:Envelope>`;
  const res = await http(controlUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'text/xml; charset="utf-8"', SOAPAction: `"${st}#${action}"` },
    body,
    localAddress: opts.localAddress,
  });
  const code = /<errorCode>(\d+)<\/errorCode>/.exec(res.body);
  return {
    ...res,
    errorCode: code ? Number(code[1]) : undefined,
    arg(name: string) {
      const m = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(res.body);
      return m ? m[1] : undefined;
    },
  };
}

/** Sends one datagram from `localAddress` and collects answers for `waitMs`. */
export function udpExchange(
  port: number,
  payload: Buffer | string,
  opts: { localAddress?: string; waitMs?: number; host?: string; max?: number } = {},
): Promise<Array<{ msg: Buffer; port: number; address: string }>> {
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4');
    const got: Array<{ msg: Buffer; port: number; address: string }> = [];
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      clearTimeout(timer);
      sock.close();
      resolve(got);
    };
    sock.on('error', reject);
    sock.on('message', (msg, rinfo) => {
      got.push({ msg, port: rinfo.port, address: rinfo.address });
      if (opts.max !== undefined && got.length >= opts.max) finish();
    });
    sock.bind(0, opts.localAddress ?? '127.0.0.1', () => {
      sock.send(payload, port, opts.host ?? '127.0.0.1');
      timer = setTimeout(finish, opts.waitMs ?? 300);
    });
  });
}

export function natpmpMap(op: 1 | 2, internalPort: number, externalPort: number, lifetime: number): Buffer {
  const b = Buffer.alloc(12);
  b[0] = 0;
  b[1] = op;
  b.writeUInt16BE(internalPort, 4);
  b.writeUInt16BE(externalPort, 6);
  b.writeUInt32BE(lifetime, 8);
  return b;
}

export function pcpMap(opts: {
  client: string;
  nonce?: Buffer;
  protocol?: number;
  internalPort: number;
  externalPort: number;
  lifetime: number;
  preferFailure?: boolean;
}): Buffer {
  const b = Buffer.alloc(60 + (opts.preferFailure ? 4 : 0));
  b[0] = 2;
  b[1] = 1;
  b.writeUInt32BE(opts.lifetime, 4);
  b[18] = 0xff;
  b[19] = 0xff;
  opts.client.split('.').forEach((p, i) => {
    b[20 + i] = Number(p);
  });
  (opts.nonce ?? Buffer.from('0102030405060708090a0b0c', 'hex')).copy(b, 24);
  b[36] = opts.protocol ?? 6;
  b.writeUInt16BE(opts.internalPort, 40);
  b.writeUInt16BE(opts.externalPort, 42);
  if (opts.preferFailure) b[60] = 2;
  return b;
}
