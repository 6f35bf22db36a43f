import { diagnose, type DoctorReport, exitCodeOf, PROTOCOL_NAMES } from '../router/diagnose.js';
import { RouterEmulator } from '../router/emulator/router-emulator.js';
import { resolveLocalNetwork } from '../router/local-network.js';
import type { CommandContext } from './main.js';

/** `frontdoor doctor`: what the router offers and whether frontdoor can work behind it. */
export async function doctorCommand(ctx: CommandContext): Promise<number> {
  const s = ctx.config.settings;
  const log = ctx.logger.child('doctor');
  let emulator: RouterEmulator | undefined;
  try {
    let target: { gateway: string; localAddress: string; ssdpPort: number; natpmpPort: number; multicast: boolean };
    if (ctx.options.embedded) {
      // The embedded router listens on loopback only; it is what `frontdoor demo` runs on.
      emulator = new RouterEmulator({ address: '127.0.0.1', logger: log.child('emulator') });
      await emulator.start(ctx.signal);
      target = {
        gateway: '127.0.0.1',
        localAddress: '127.0.0.1',
        ssdpPort: emulator.ports.ssdp,
        natpmpPort: emulator.ports.pmp,
        multicast: false,
      };
    } else {
      const net = await resolveLocalNetwork({
        gateway: s.gateway || undefined,
        localAddress: s.address || undefined,
        interface: s.interface || undefined,
        signal: ctx.signal,
      });
      target = { ...net, ssdpPort: s.ssdpPort, natpmpPort: s.natpmpPort, multicast: true };
    }
    const report = await diagnose({
      ...target,
      protocols: s.routerProtocols,
      timeoutMs: s.discoveryTimeout,
      requestTimeoutMs: s.routerTimeout,
      publicPort: s.publicPort,
      // Only where a node would ask for it: TLS on, no certificate files, ACME not off.
      ...(s.tls !== 'off' && s.tlsCert === '' && s.acme !== 'off' ? { challengePort: s.acmeChallengePort } : {}),
      allowLoopbackWan: Boolean(ctx.options.embedded),
      signal: ctx.signal,
      logger: log,
    });
    ctx.io.stdout(ctx.options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report, Boolean(ctx.options.embedded)));
    return exitCodeOf(report.status);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (ctx.options.json) ctx.io.stdout(`${JSON.stringify({ status: 'error', verdict: message }, null, 2)}\n`);
    else ctx.io.stderr(`frontdoor doctor: ${message}\n`);
    return e instanceof Error && 'code' in e && e.code === 'FD_NO_GATEWAY' ? 3 : 1;
  } finally {
    await emulator?.stop();
  }
}


const WAN_CLASS_TEXT: Record<string, string> = {
  public: 'public: reachable from the internet',
  private: 'private: another router sits between this one and the internet',
  cgnat: "carrier-grade NAT: your provider's NAT sits between this router and the internet",
  reserved: 'reserved: not reachable from the internet',
  loopback: "loopback: the embedded router's stand-in for a WAN address",
  unknown: 'not an IPv4 address',
};

export function formatReport(r: DoctorReport, embedded: boolean): string {
  const out: string[] = [];
  out.push(`Router          ${r.gateway}${embedded ? ' (embedded emulator on loopback)' : ''}, asked from ${r.localAddress}`);
  for (const p of r.protocols) {
    const name = (PROTOCOL_NAMES[p.protocol] ?? p.protocol).padEnd(15);
    out.push(
      p.answered
        ? `${name} answered in ${p.elapsedMs} ms${p.variant && p.variant !== p.protocol ? ` (${PROTOCOL_NAMES[p.variant]})` : ''}`
        : `${name} no answer${p.error ? ` (${p.error})` : ''}`,
    );
  }
  if (r.using) out.push(`Using           ${PROTOCOL_NAMES[r.using] ?? r.using}`);
  if (r.wanAddress) out.push(`WAN address     ${r.wanAddress} (${WAN_CLASS_TEXT[r.wanAddressClass ?? 'unknown']})`);
  if (r.testClaim) {
    const c = r.testClaim;
    out.push(
      c.ok
        ? `Test mapping    TCP ${c.externalPort} -> ${r.localAddress}:${c.internalPort} granted in ${c.elapsedMs} ms (lease ${c.grantedLeaseSeconds} s)` +
            `${c.listed === undefined ? '' : c.listed ? ', seen in the table' : ', NOT seen in the table'}` +
            `${c.released ? ', released' : c.released === false ? ', release failed (it expires by itself)' : ''}`
        : `Test mapping    refused: ${c.error}`,
    );
  }
  const cp = r.challengePort;
  if (cp) {
    out.push(
      cp.ok
        ? `ACME port       ${cp.port} can be forwarded: the representative can get a trusted certificate (--acme)`
        : `ACME port       ${cp.port} refused (${cp.error}): no trusted certificate; the fleet serves its own. Allow port ${cp.port} for this device, or set --acme off`,
    );
  }
  const pp = r.publicPort;
  if (pp.free === true) out.push(`Public port     ${pp.port} is free: the first frontdoor node will take it`);
  else if (pp.holder) out.push(`Public port     ${pp.port} is held by ${pp.holder} ("${pp.description ?? ''}")`);
  else if (r.using) out.push(`Public port     ${pp.port}: who holds it is unknown (the router cannot list its mappings)`);
  if (r.table) {
    out.push(`Mapping table   ${r.table.length} entr${r.table.length === 1 ? 'y' : 'ies'}`);
    for (const m of r.table) {
      out.push(
        `  ${m.protocol} ${String(m.externalPort).padStart(5)} -> ${m.internalClient}:${m.internalPort}` +
          `  lease ${m.leaseSeconds || 'permanent'}  "${m.description}"`,
      );
    }
  } else if (r.listingNote) {
    out.push(`Mapping table   unknown: ${r.listingNote}`);
  }
  out.push('');
  out.push(`${r.status === 'ok' ? 'OK' : 'PROBLEM'}: ${r.verdict}`);
  return `${out.join('\n')}\n`;
}
