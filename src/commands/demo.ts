import { randomBytes } from 'node:crypto';
import { Agent } from '../agent/agent.js';
import { cameraFromSettings } from '../camera/setup.js';
import { parseDuration } from '../config/settings.js';
import { electionSettings } from '../election/config.js';
import { RouterEmulator } from '../router/emulator/router-emulator.js';
import { systemClock } from '../runtime/clock.js';
import type { CommandContext } from './main.js';

/**
 * `frontdoor demo`: the embedded router and three nodes on loopback addresses, in this one
 * process, so a fresh machine without root or a router shows the whole thing. Nothing is written
 * to disk; Ctrl-C stops everything.
 */

const NODES = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
const WAN = '127.0.1.1';

export async function demoCommand(ctx: CommandContext): Promise<number> {
  const s = ctx.config.settings;
  const say = (line: string) => ctx.io.stdout(`${line}\n`);
  let failoverAfterMs: number | undefined;
  let durationMs: number | undefined;
  try {
    if (ctx.options.failover === true) failoverAfterMs = 10_000;
    if (ctx.options.duration !== undefined) durationMs = optDuration(ctx.options.duration, '--duration', 0);
  } catch (err) {
    ctx.io.stderr(`frontdoor demo: ${(err as Error).message}\n`);
    return 2;
  }
  const log = ctx.logger;
  // Up for an hour, as a home router is: one that has just started makes the nodes wait a lease
  // before the first claims the well-known port (docs/election.md).
  const emulator = new RouterEmulator({ address: '127.0.0.1', wanAddress: WAN, forward: true, upSeconds: 3600, logger: log.child('emulator') });
  const agents: Agent[] = [];
  const timers: NodeJS.Timeout[] = [];
  const secret = randomBytes(16).toString('hex');
  const portalPort = s.portalPort === 0 ? s.publicPort : s.portalPort;
  const make = async (i: number): Promise<Agent> => {
    const address = NODES[i]!;
    const name = `demo-node-${i + 1}`;
    // The first node is a camera node showing ffmpeg's test pattern (--camera none: no camera).
    const camera =
      i === 0 && s.camera !== 'none' ? await cameraFromSettings({ ...s, camera: 'test' }, { clock: systemClock, logger: log.child(`${name}.camera`) }) : undefined;
    const agent = new Agent(
      { clock: systemClock, logger: log.child(name) },
      {
        name,
        id: `demo${i + 1}`,
        deviceValue: `demo-device-${i + 1}`,
        address,
        gateway: '127.0.0.1',
        listenAddress: address,
        httpPort: s.httpPort,
        portalPort,
        wellKnownPort: s.publicPort,
        router: {
          protocols: ['upnp'],
          discoveryTimeoutMs: 2000,
          requestTimeoutMs: s.routerTimeout,
          ssdpPort: emulator.ports.ssdp,
          natpmpPort: emulator.ports.pmp,
          multicast: false,
        },
        lan: { mode: 'unicast', group: s.lanGroup, port: s.lanPort, peers: NODES, secret, bindAddress: address },
        election: electionSettings(s),
        allowLoopbackWan: true,
        portal: { password: s.password, lanOpen: false },
        ...(camera ? { camera: { camera, wanFps: s.cameraWanFps } } : {}),
        ...(s.tls === 'off' ? {} : { tls: { certFile: s.tlsCert, keyFile: s.tlsKey } }),
      },
    );
    agent.onEvent((e) => {
      if (e.type === 'role' && e.to === 'representative') say(`${name} is now the representative (${e.reason})`);
      if (e.type === 'role' && e.from === 'representative') say(`${name} is no longer the representative (${e.reason})`);
    });
    return agent;
  };
  try {
    await emulator.start(ctx.signal);
    say(`frontdoor demo: an emulated router (WAN address ${WAN}) and ${NODES.length} nodes on loopback.`);
    for (let i = 0; i < NODES.length; i++) {
      const a = await make(i);
      agents[i] = a;
      await a.start();
    }
    const ready = await waitFor(ctx.signal, 15_000, () => {
      const st = agents.map((a) => a.status());
      return st.filter((x) => x.role === 'representative').length === 1 && st.every((x) => x.ports.public > 0 && x.nodes.length === NODES.length);
    });
    if (!ready && !ctx.signal.aborted) say('The nodes have not settled within 15 s; the URLs below may not answer yet.');
    if (!ctx.signal.aborted) printUrls(agents, say);
    if (failoverAfterMs !== undefined) scheduleFailover(agents, make, failoverAfterMs, timers, say);
    say('Ctrl-C stops everything.');
    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) return resolve();
      ctx.signal.addEventListener('abort', () => resolve(), { once: true });
      if (durationMs !== undefined) timers.push(setTimeout(resolve, durationMs));
    });
    return 0;
  } catch (err) {
    ctx.io.stderr(`frontdoor demo: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    for (const t of timers) clearTimeout(t);
    await Promise.all(agents.map((a) => a.stop({ graceful: true })));
    await emulator.stop();
    say('demo stopped.');
  }
}

function printUrls(agents: Agent[], say: (l: string) => void): void {
  const st = agents.map((a) => a.status());
  const rep = st.find((x) => x.role === 'representative');
  say(`  Portal, served by the representative ${rep?.name ?? '(none yet)'}:  ${rep?.representative?.url ?? 'not ready'}`);
  say(`  Password (user admin): ${agents[0]?.password?.value ?? 'not ready'}`);
  const tls = st[0]?.tls;
  if (tls) {
    say(`  HTTPS with the fleet's own certificate: your browser warns once; its SHA-256 fingerprint is`);
    say(`    ${tls.fingerprint}`);
  }
  for (const x of st) {
    const self = x.nodes.find((n) => n.self);
    say(`  ${x.name.padEnd(12)} ${(self?.url ?? 'no public port yet').padEnd(26)} LAN ${self?.lanUrl ?? ''}  ${x.role}`);
  }
  for (const x of st) {
    const self = x.nodes.find((n) => n.self);
    if (x.camera && self?.url) say(`  Camera of ${x.name} (${x.camera.source ?? 'camera'}): live ${self.url}camera.mjpg  snapshot ${self.url}camera.jpg`);
  }
}

function scheduleFailover(
  agents: Agent[],
  make: (i: number) => Promise<Agent>,
  afterMs: number,
  timers: NodeJS.Timeout[],
  say: (l: string) => void,
): void {
  timers.push(
    setTimeout(() => {
      const i = agents.findIndex((a) => a.role === 'representative');
      if (i < 0) return;
      const old = agents[i]!;
      say(`Stopping the representative demo-node-${i + 1} (as a container stop would); watch another take over.`);
      const t0 = performance.now();
      const off = agents
        .filter((a) => a !== old)
        .map((a) =>
          a.onEvent((e) => {
            if (e.type === 'role' && e.to === 'representative') say(`  takeover after ${Math.round(performance.now() - t0)} ms`);
          }),
        );
      void old.stop({ graceful: true }).then(() => {
        timers.push(
          setTimeout(() => {
            for (const f of off) f();
            say(`Starting demo-node-${i + 1} again; it rejoins as a member.`);
            make(i)
              .then((again) => {
                agents[i] = again;
                return again.start();
              })
              .catch((err: unknown) => say(`  could not restart: ${String(err)}`));
          }, afterMs),
        );
      });
    }, afterMs),
  );
}

function optDuration(v: string | boolean | undefined, name: string, dflt: number): number {
  if (v === true || v === '') return dflt;
  const ms = parseDuration(String(v));
  if (ms === undefined) throw new Error(`${name}: "${String(v)}" is not a duration (e.g. 10s)`);
  return ms;
}

async function waitFor(signal: AbortSignal, ms: number, cond: () => boolean): Promise<boolean> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (signal.aborted || performance.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}
