/**
 * `npm run bench -- router`: from process start to (a) gateway found and (b) a specific port
 * claimed, on the real router of the test bed (Debian's miniupnpd), beside miniupnpc's `upnpc`
 * and `natpmpc` doing the same claim in the same run. Needs root (network namespaces).
 */
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { canRunTestbed, createTestbed } from '../test/testbed/testbed.js';
import { row } from './stats.js';

const CLAIM = fileURLToPath(new URL('./router-claim.js', import.meta.url));

export async function run(args: string[]): Promise<void> {
  const can = canRunTestbed();
  if (!can.ok) {
    console.log(`router benchmark skipped: needs root and network namespaces (${can.reason})`);
    return;
  }
  const runs = Number(args.find((a) => a.startsWith('--runs='))?.slice(7) ?? 10);
  const tb = await createTestbed({ mode: 'igd2', hosts: 1 });
  const h1 = tb.hosts[0]!;
  const found: number[] = [];
  const claimed: number[] = [];
  const warmFound: number[] = [];
  const warmClaimed: number[] = [];
  const memory = `${tb.tmpDir}/gateway.json`;
  const fdWall: number[] = [];
  const upnpcWall: number[] = [];
  const natpmpcWall: number[] = [];
  let protocol = '';
  try {
    for (let i = 0; i < runs; i++) {
      const port = 20000 + i;
      let t0 = performance.now();
      const r = await tb.exec(h1, ['node', CLAIM, tb.gateway, h1.address, String(port)], { timeoutMs: 20_000 });
      fdWall.push(performance.now() - t0);
      const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { gatewayFoundMs: number; claimedMs: number; protocol: string };
      found.push(out.gatewayFoundMs);
      claimed.push(out.claimedMs);
      protocol = out.protocol;

      // The same node restarting: it remembers what answered (gateway memory in its data dir).
      if (i === 0) await tb.exec(h1, ['node', CLAIM, tb.gateway, h1.address, String(port + 3000), memory], { timeoutMs: 20_000 });
      const w = await tb.exec(h1, ['node', CLAIM, tb.gateway, h1.address, String(port + 3000), memory], { timeoutMs: 20_000 });
      const warm = JSON.parse(w.stdout.trim().split('\n').at(-1)!) as { gatewayFoundMs: number; claimedMs: number };
      warmFound.push(warm.gatewayFoundMs);
      warmClaimed.push(warm.claimedMs);

      t0 = performance.now();
      const u = await tb.exec(h1, ['upnpc', '-e', 'bench', '-a', h1.address, String(port + 1000), String(port + 1000), 'TCP'], {
        timeoutMs: 20_000,
      });
      upnpcWall.push(performance.now() - t0);
      if (!/is redirected to internal/.test(u.stdout)) throw new Error(`upnpc did not map the port:\n${u.stdout}`);
      await tb.exec(h1, ['upnpc', '-u', tb.rootDescUrl, '-d', String(port + 1000), 'TCP'], { check: false });

      t0 = performance.now();
      const n = await tb.exec(h1, ['natpmpc', '-g', tb.gateway, '-a', String(port + 2000), String(port + 2000), 'tcp', '300'], {
        timeoutMs: 20_000,
      });
      natpmpcWall.push(performance.now() - t0);
      if (n.code !== 0) throw new Error(`natpmpc failed:\n${n.stdout}${n.stderr}`);
      await tb.exec(h1, ['natpmpc', '-g', tb.gateway, '-a', String(port + 2000), '0', 'tcp', '0'], { check: false });
    }
  } finally {
    await tb.close();
  }
  console.log(`router: ${runs} runs each, miniupnpd 2.3.1 in a network namespace, client in a LAN host`);
  console.log(`frontdoor chose ${protocol}; times from process start (node start-up included)`);
  console.log(row('frontdoor  (a) gateway found', found));
  console.log(row('frontdoor  (b) port 2xxxx claimed', claimed));
  console.log(row('frontdoor  whole process (+ release, exit)', fdWall));
  console.log(row('frontdoor restarting (a) gateway found', warmFound));
  console.log(row('frontdoor restarting (b) port claimed', warmClaimed));
  console.log(row('upnpc -e .. -a (discovery + AddPortMapping)', upnpcWall));
  console.log(row('natpmpc -a (NAT-PMP, no discovery, no listing)', natpmpcWall));
  console.log('goal: (b) <= 300 ms; upnpc needs about 2.1 s (its SSDP wait)');
}
