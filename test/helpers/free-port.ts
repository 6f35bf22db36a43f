import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';

/**
 * Ports the kernel picks, not the tests: another test run on the same machine (several share
 * it) holds whatever it picked, so a port drawn at random may be taken.
 */

/** A TCP port with nothing listening on it just now (the tests' and benches' servers take it next). */
export async function freeTcpPort(host = '127.0.0.1'): Promise<number> {
  const [port] = await freeTcpPorts(1, host);
  return port!;
}

/** `n` different TCP ports, free just now: held open together while picked, so no two are the same. */
export async function freeTcpPorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = createServer();
      servers.push(s);
      s.listen(0, host);
      await once(s, 'listening');
    }
    return servers.map((s) => (s.address() as AddressInfo).port);
  } finally {
    await Promise.all(
      servers.map(async (s) => {
        if (!s.listening) return;
        s.close();
        await once(s, 'close');
      }),
    );
  }
}

/** A UDP port nothing is bound to just now, for a LAN transport every node must share. */
export async function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  const s = createSocket('udp4');
  s.bind(0, host);
  await once(s, 'listening');
  const port = s.address().port;
  s.close();
  await once(s, 'close');
  return port;
}
