/**
 * One node's first contact with the router, as its own process (the benchmark runs it in a LAN
 * host of the test bed): find the gateway, claim a specific port, print both times measured from
 * process start, then release the port.
 * With a memory file, what answered last time is used and kept (a restarting node).
 * argv: <gateway> <localAddress> <externalPort> [memory file]
 */
import { performance } from 'node:perf_hooks';
import { bestMapper, discoverGateway } from '../src/router/discover.js';
import { loadGatewayMemory, rememberedLocation, saveGatewayMemory } from '../src/router/gateway-memory.js';

const [gateway, localAddress, port, memoryFile] = process.argv.slice(2) as [string, string, string, string | undefined];
const n = Number(port);
const memory = memoryFile ? await loadGatewayMemory(memoryFile) : undefined;
const knownLocation = rememberedLocation(memory, gateway, localAddress);
const d = await discoverGateway({ gateway, localAddress, ...(knownLocation ? { knownLocation } : {}) });
const mapper = bestMapper(d);
const gatewayFoundMs = performance.now();
const m = await mapper.claim({
  externalPort: n,
  internalPort: n,
  protocol: 'TCP',
  leaseSeconds: 300,
  description: 'frontdoor bench',
});
const claimedMs = performance.now();
process.stdout.write(`${JSON.stringify({ gatewayFoundMs, claimedMs, protocol: mapper.protocol, port: m.externalPort })}\n`);
await mapper.release(m);
if (memoryFile) await saveGatewayMemory(memoryFile, d);
for (const x of d.mappers) x.close();
