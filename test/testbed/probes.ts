import { createSocket } from 'node:dgram';
import { networkInterfaces } from 'node:os';

/**
 * Small network probes meant to run inside a test bed namespace through ns-call
 * (`tb.call(host, probesUrl, 'ssdpSearch', [...])`), where the real tools (upnpc) cannot say what
 * we want to check: which device types answer a search, and how fast.
 */

export interface SsdpAnswer {
  st: string;
  location: string;
  usn: string;
  server: string;
  /** Sender address:port. */
  from: string;
}

const MAX_HEADER = 1024;

/** One unicast answer to an M-SEARCH (`HTTP/1.1 200 OK` + headers); undefined for anything else. */
export function parseSsdpResponse(text: string, from = ''): SsdpAnswer | undefined {
  const lines = text.slice(0, 16 * 1024).split(/\r?\n/);
  if (!/^HTTP\/1\.[01] 200\b/.test(lines[0] ?? '')) return undefined;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1, 200)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(key)) headers.set(key, line.slice(colon + 1).trim().slice(0, MAX_HEADER));
  }
  const st = headers.get('st');
  if (st === undefined) return undefined;
  return {
    st,
    location: headers.get('location') ?? '',
    usn: headers.get('usn') ?? '',
    server: headers.get('server') ?? '',
    from: from.slice(0, 64),
  };
}

export interface SsdpSearchOptions {
  /** How long to listen; default 1500 ms (miniupnpd answers within MX = 1 s). */
  waitMs?: number;
  /** Return at the first answer. */
  untilFirst?: boolean;
}

/** Multicasts an M-SEARCH for `st` and returns the distinct answers. */
export function ssdpSearch(st: string, opts: SsdpSearchOptions = {}): Promise<SsdpAnswer[]> {
  const waitMs = Math.min(Math.max(opts.waitMs ?? 1500, 0), 30_000);
  return new Promise((resolve, reject) => {
    const sock = createSocket({ type: 'udp4' });
    const answers = new Map<string, SsdpAnswer>();
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      clearTimeout(timer);
      sock.close();
      resolve([...answers.values()]);
    };
    sock.on('error', (err) => {
      clearTimeout(timer);
      sock.close();
      reject(err);
    });
    sock.on('message', (msg, rinfo) => {
      const a = parseSsdpResponse(msg.toString('latin1'), `${rinfo.address}:${rinfo.port}`);
      if (!a || answers.size >= 100) return;
      answers.set(`${a.usn}|${a.st}|${a.location}`, a);
      if (opts.untilFirst) finish();
    });
    sock.bind(0, () => {
      const req =
        'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\n' + `ST: ${st}\r\n\r\n`;
      sock.send(req, 1900, '239.255.255.250');
      timer = setTimeout(finish, waitMs);
    });
  });
}

/** This namespace's IPv4 addresses (not loopback): proof of where the code ran. */
export function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && a.family === 'IPv4' && !a.internal)
    .map((a) => a!.address);
}
