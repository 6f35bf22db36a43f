/**
 * The service behind the public port in the failover bench: an HTTP server whose every answer is
 * its host's label, so the WAN-side meter knows who served it. Each answer closes its connection.
 * argv: <label> [port = 8080] [address = 0.0.0.0]; prints `listening <label> <port>` when ready.
 */
import { createServer } from 'node:http';

const [label, portArg, address = '0.0.0.0'] = process.argv.slice(2);
if (!label) {
  process.stderr.write('usage: label-server.js <label> [port] [address]\n');
  process.exit(2);
}
const port = Number(portArg ?? 8080);
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' });
  res.end(`${label}\n`);
});
server.listen(port, address, () => process.stdout.write(`listening ${label} ${port}\n`));
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));
