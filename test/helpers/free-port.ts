import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

/** A TCP port with nothing listening on it just now (the tests' and benches' servers take it next). */
export async function freeTcpPort(host = '127.0.0.1'): Promise<number> {
  const s = createServer();
  s.listen(0, host);
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  s.close();
  await once(s, 'close');
  return port;
}
