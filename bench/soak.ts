/**
 * `npm run bench -- soak [--minutes=30] [--nodes=5] [--failover-every=60s] [--restart-after=10s]
 * [--floating=on|off] [--rule=device|ports|random] [--scheme=https|http]` (or SOAK_MINUTES=N, the
 * setting that makes it short in CI): a fleet in the real-router test bed for that long, the
 * representative stopped every minute (SIGTERM and SIGKILL in turn) and started again 10 s later,
 * MJPEG viewers on the cameras and the portal polled from the WAN every 200 ms. Prints the
 * portal's availability, the failovers the poller saw, the longest outage, and per node RSS and
 * file descriptors at start and end. Needs root (network namespaces).
 */
import { canRunTestbed } from '../test/testbed/testbed.js';
import { AVAILABILITY_DEFINITION } from './soak/availability.js';
import { fmtS, fmtStats, runSoak, SOAK_DEFAULTS } from './soak/soak.js';
import type { SoakOptions, SoakReport } from './soak/soak.js';

function option(args: string[], name: string): string | undefined {
  return args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

/** "60s", "1m", "500ms", "1.5m" or plain milliseconds. */
export function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(v.trim());
  if (!m) throw new Error(`not a duration: ${v}`);
  const n = Number(m[1]);
  return m[2] === 'm' ? n * 60_000 : m[2] === 's' ? n * 1000 : n;
}

export async function run(args: string[]): Promise<void> {
  const can = canRunTestbed();
  if (!can.ok) {
    console.log(`soak benchmark skipped: needs root and network namespaces (${can.reason})`);
    return;
  }
  const minutes = Number(option(args, 'minutes') ?? process.env['SOAK_MINUTES'] ?? SOAK_DEFAULTS.durationMs / 60_000);
  if (!(minutes > 0)) throw new Error(`minutes must be positive, got ${minutes}`);
  const rule = option(args, 'rule') ?? SOAK_DEFAULTS.rule;
  if (rule !== 'device' && rule !== 'ports' && rule !== 'random') throw new Error(`rule must be device, ports or random, got ${rule}`);
  const scheme = option(args, 'scheme') ?? SOAK_DEFAULTS.scheme;
  if (scheme !== 'https' && scheme !== 'http') throw new Error(`scheme must be https or http, got ${scheme}`);
  const o: Partial<SoakOptions> = {
    durationMs: minutes * 60_000,
    nodes: Number(option(args, 'nodes') ?? SOAK_DEFAULTS.nodes),
    failoverEveryMs: parseDuration(option(args, 'failover-every') ?? String(SOAK_DEFAULTS.failoverEveryMs)),
    restartAfterMs: parseDuration(option(args, 'restart-after') ?? String(SOAK_DEFAULTS.restartAfterMs)),
    floating: (option(args, 'floating') ?? 'on') !== 'off',
    rule,
    scheme,
    log: (l) => console.log(`  ${l}`),
  };
  console.log(`soak: ${minutes} min, ${o.nodes} nodes, a failover every ${fmtS(o.failoverEveryMs!)}`);
  const r = await runSoak(o);
  console.log('');
  console.log(report(r));
  if (r.crashes.length > 0) process.exitCode = 1;
}

export function report(r: SoakReport): string {
  const a = r.availability;
  const seen = r.failovers.filter((f) => f.next !== null).length;
  const lines = [
    `soak: ${r.options.nodes} nodes, ${fmtS(r.measuredMs)} measured, a failover every ${fmtS(r.options.failoverEveryMs)} (SIGTERM and SIGKILL in turn, restart after ${fmtS(r.options.restartAfterMs)}),`,
    `  rule ${r.options.rule}, ${r.options.floating ? 'floating address (crash failover ~1 s)' : 'router lease only (crash failover ~6 s lease)'}, ${r.options.scheme}, portal polled every ${r.options.pollMs} ms from the WAN`,
    `  ${AVAILABILITY_DEFINITION}`,
    '',
    `portal availability: ${a.availabilityPct.toFixed(2)} % (${a.good} of ${a.polls} requests; errors ${JSON.stringify(a.errors)})`,
    `failovers: ${r.failovers.length} made, ${seen} seen by the poller as another node answering; representative changes seen ${a.changes.length}`,
    `max outage: ${Math.round(a.maxOutageMs)} ms (${a.outages.length} outages${a.outages.some((o) => o.open) ? ', the last still open' : ''})`,
  ];
  for (const f of r.failovers) {
    lines.push(`  ${f.sig.padEnd(7)} ${f.victim} → ${f.next ?? 'nobody'}${f.outageMs === null ? '' : ` in ${Math.round(f.outageMs)} ms`}`);
  }
  lines.push('', 'per node (start = after warm-up, end = before stopping):');
  for (const n of r.nodes) {
    const growth =
      n.sameProcess && n.start && n.end
        ? `; growth RSS ${((n.end.rssKb - n.start.rssKb) / 1024).toFixed(1)} MiB, fds ${n.end.fds - n.start.fds}`
        : `; restarted (${n.processes} processes), not comparable`;
    lines.push(`  ${n.name}${n.camera ? ' (camera)' : ''}: start ${fmtStats(n.start)}; end ${fmtStats(n.end)}${growth}`);
  }
  if (r.viewers.length > 0) {
    lines.push('', 'MJPEG viewers (from the WAN):');
    for (const v of r.viewers) lines.push(`  ${v.url}: ${v.frames} frames, ${(v.bytes / 1e6).toFixed(1)} MB, ${v.connects} connections, ${JSON.stringify(v.errors)}`);
  }
  lines.push(`nodes that exited by themselves: ${r.crashes.length === 0 ? 'none' : r.crashes.join(', ')}`);
  return lines.join('\n');
}
