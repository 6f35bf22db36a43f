import { spawnSync } from 'node:child_process';
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep, systemClock } from '../../src/runtime/clock.js';
import type { Clock } from '../../src/runtime/clock.js';
import { createLogger, silentLogger } from '../../src/runtime/log.js';
import type { Logger } from '../../src/runtime/log.js';
import { cleanupRegistry } from './cleanup-registry.js';
import type { CleanupEntry } from './cleanup-registry.js';
import { exited, isRunning, killGroup, runCommand, spawnBounded } from './command.js';
import type { CommandResult, RunOptions } from './command.js';
import { TMP_DIR_PREFIX, testbedPrefix } from './netns-names.js';
import { callInNs } from './ns-call.js';
import type { NsCallOptions } from './ns-call.js';
import {
  FIRST_HOST,
  GATEWAY,
  HOST_IFNAME,
  HTTP_PORT,
  LAN_IFNAME,
  LAN_PREFIX,
  NFT_FLUSH,
  WAN_CLIENT_IFNAME,
  WAN_IFNAME,
  buildMiniupnpdConfig,
  nftRuleset,
  parseNftDnatRules,
  readinessMarkers,
  runsDaemon,
  wanForMode,
} from './router-config.js';
import type { RouterSettings, TestbedMode, WanSetup } from './router-config.js';
import { pidAlive, removeStaleTestbeds } from './stale-cleanup.js';
import { TestbedError } from './testbed-error.js';

export type { RouterSettings, TestbedMode } from './router-config.js';

/**
 * A small internet and home LAN in network namespaces, with a real router (miniupnpd on
 * nftables) between them:
 *
 *   wan (203.0.114.2) --wan0/ext0-- rtr (203.0.114.1 | br0 192.168.77.1) --hN/eth0-- h1..hN
 *
 * Nothing touches the root namespace: veths are created directly inside the namespaces. Each
 * test bed's names carry this process's pid, so test files run in parallel and a crashed run's
 * leftovers can be told from a live run's.
 */

export const MINIUPNPD = process.env['FRONTDOOR_MINIUPNPD'] ?? '/usr/sbin/miniupnpd';
const MAX_HOSTS = 100;

export type CanRun = { ok: true } | { ok: false; reason: string };
let canRun: CanRun | undefined;

/** Whether this machine can build a test bed: Linux, root, ip/nft/miniupnpd, namespaces allowed. */
export function canRunTestbed(): CanRun {
  canRun ??= probeCanRun();
  return canRun;
}

function probeCanRun(): CanRun {
  if (process.platform !== 'linux') return { ok: false, reason: `platform is ${process.platform}, not linux` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'not running as root' };
  const works = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { stdio: 'ignore', timeout: 5000 });
    return r.error === undefined && r.status === 0;
  };
  if (!works('ip', ['-V'])) return { ok: false, reason: 'iproute2 `ip` not found' };
  if (!works('nft', ['--version'])) return { ok: false, reason: '`nft` not found (apt install nftables)' };
  if (!existsSync(MINIUPNPD)) return { ok: false, reason: `${MINIUPNPD} not found (apt install miniupnpd-nftables)` };
  // Root in a container without CAP_SYS_ADMIN cannot create namespaces; ask the kernel.
  if (!works('unshare', ['--net', '--mount', 'true'])) {
    return { ok: false, reason: 'cannot create network namespaces here (unshare --net failed)' };
  }
  return { ok: true };
}

export interface TestbedOptions extends RouterSettings {
  /** Default 'igd2'. */
  mode?: TestbedMode;
  /** LAN hosts h1..hN at 192.168.77.10, .11, ...; default 3. */
  hosts?: number;
  logger?: Logger;
  clock?: Clock;
  /** How long miniupnpd may take to bind its sockets; default 5000 ms. */
  readyTimeoutMs?: number;
  /** Leave namespaces and router up after close(); default FRONTDOOR_TESTBED_KEEP=1. */
  keep?: boolean;
  signal?: AbortSignal;
}

export interface Host {
  /** 'h1', 'h2', ... */
  readonly name: string;
  readonly ns: string;
  readonly address: string;
  /** The host's interface, inside its namespace. */
  readonly ifname: string;
  /** The other end of its cable: a port of br0 in the router's namespace. */
  readonly bridgePort: string;
}

export interface RouterNs {
  readonly ns: string;
  readonly lanAddress: string;
  readonly lanIfname: string;
  readonly wanIfname: string;
}

export interface WanNs {
  readonly ns: string;
  readonly ifname: string;
}

/** A namespace by name, or anything that has one (`tb.wan`, `tb.router`, a Host). */
export type NsRef = string | { readonly ns: string };

export interface SpawnInNsOptions {
  env?: NodeJS.ProcessEnv;
  stdio?: StdioOptions;
}

interface Signalled {
  signal?: AbortSignal;
}

let staleSweep: Promise<unknown> | undefined;
let counter = 0;

export async function createTestbed(opts: TestbedOptions = {}): Promise<Testbed> {
  const can = canRunTestbed();
  if (!can.ok) throw new TestbedError('TB_UNAVAILABLE', `cannot build a test bed: ${can.reason}`);
  // Once per process, before its first test bed: earlier runs that died without cleaning up
  // (their pid is in the names). Our own pid counts as dead here: nothing of ours exists yet, so
  // such names are a dead run's whose pid the kernel has since given to us.
  staleSweep ??= removeStaleTestbeds({
    signal: opts.signal,
    isDead: (pid) => pid === process.pid || !pidAlive(pid),
  }).catch(() => []);
  await staleSweep;
  const logger =
    opts.logger ??
    (process.env['FRONTDOOR_TESTBED_DEBUG'] === '1' ? createLogger({ level: 'debug', component: 'testbed' }) : silentLogger);
  const tb = new Testbed({ logger, clock: opts.clock ?? systemClock }, opts);
  try {
    await tb.setUp(opts.signal);
  } catch (err) {
    await tb.close();
    throw err;
  }
  return tb;
}

export class Testbed {
  readonly prefix: string;
  readonly wan: WanNs;
  readonly router: RouterNs;
  readonly hosts: readonly Host[];
  /** The router's LAN address. */
  readonly gateway = GATEWAY;
  /** For `upnpc -u`, which skips upnpc's 2 s discovery. */
  readonly rootDescUrl = `http://${GATEWAY}:${HTTP_PORT}/rootDesc.xml`;
  /** The uuid in the router's device description; one per test bed, kept across restarts. */
  readonly uuid = randomUUID();
  readonly keep: boolean;
  /** Milliseconds setUp took (namespaces, links, firewall, router ready). */
  setupMs = 0;
  #tmpDir = '';
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #readyTimeoutMs: number;
  #mode: TestbedMode;
  #settings: RouterSettings;
  #wanSetup: WanSetup;
  #daemon: ChildProcess | undefined;
  readonly #children = new Set<ChildProcess>();
  #closing: Promise<void> | undefined;
  readonly #cleanup: CleanupEntry;

  constructor(components: { logger: Logger; clock: Clock }, init: TestbedOptions = {}) {
    const hosts = init.hosts ?? 3;
    if (!Number.isInteger(hosts) || hosts < 0 || hosts > MAX_HOSTS) {
      throw new TestbedError('TB_BAD_CONFIG', `hosts must be an integer 0..${MAX_HOSTS}, got ${hosts}`);
    }
    this.#logger = components.logger;
    this.#clock = components.clock;
    this.#readyTimeoutMs = init.readyTimeoutMs ?? 5000;
    this.keep = init.keep ?? process.env['FRONTDOOR_TESTBED_KEEP'] === '1';
    this.#mode = init.mode ?? 'igd2';
    this.#settings = pickSettings(init);
    this.#wanSetup = wanForMode(this.#mode);
    this.prefix = testbedPrefix(process.pid, ++counter);
    this.wan = { ns: `${this.prefix}-wan`, ifname: WAN_CLIENT_IFNAME };
    this.router = { ns: `${this.prefix}-rtr`, lanAddress: GATEWAY, lanIfname: LAN_IFNAME, wanIfname: WAN_IFNAME };
    this.hosts = Array.from({ length: hosts }, (_, i) => ({
      name: `h${i + 1}`,
      ns: `${this.prefix}-h${i + 1}`,
      address: `${LAN_PREFIX}.${FIRST_HOST + i}`,
      ifname: HOST_IFNAME,
      bridgePort: `h${i + 1}`,
    }));
    const self = this;
    this.#cleanup = {
      namespaces: this.namespaces,
      get tmpDir() {
        return self.#tmpDir;
      },
      keep: this.keep,
      children: () => [...this.#children, ...(this.#daemon && !this.keep ? [this.#daemon] : [])],
    };
  }

  get mode(): TestbedMode {
    return this.#mode;
  }

  /** The router's WAN address (changes with setWanAddress and reconfigure). */
  get wanAddress(): string {
    return this.#wanSetup.address;
  }

  get wanPrefixLength(): number {
    return this.#wanSetup.prefixLength;
  }

  /** The internet client's address, in the `wan` namespace. */
  get wanClientAddress(): string {
    return this.#wanSetup.clientAddress;
  }

  get namespaces(): string[] {
    return [this.wan.ns, this.router.ns, ...this.hosts.map((h) => h.ns)];
  }

  /** Per-test-bed directory: miniupnpd.conf, miniupnpd.pid, miniupnpd.log, rules.nft. */
  get tmpDir(): string {
    return this.#tmpDir;
  }

  get routerLogPath(): string {
    return join(this.#tmpDir, 'miniupnpd.log');
  }

  /** The running miniupnpd's pid, if one runs. */
  get routerPid(): number | undefined {
    return this.#daemon && isRunning(this.#daemon) ? this.#daemon.pid : undefined;
  }

  host(name: string): Host {
    const h = this.hosts.find((x) => x.name === name || x.ns === name);
    if (!h) throw new TestbedError('TB_BAD_CONFIG', `no host ${name}`);
    return h;
  }

  /** @internal called by createTestbed. */
  async setUp(signal?: AbortSignal): Promise<void> {
    const t0 = this.#clock.now();
    this.#tmpDir = await mkdtemp(join(tmpdir(), `${TMP_DIR_PREFIX}${this.prefix}-`));
    // Registered before the first namespace exists, so a crash half-way still cleans up.
    cleanupRegistry.add(this.#cleanup);
    await this.#ip(null, this.namespaces.map((n) => `netns add ${n}`), signal);
    const w = this.#wanSetup;
    await this.#ip(
      this.router.ns,
      [
        'link set lo up',
        `link add ${WAN_IFNAME} type veth peer name ${WAN_CLIENT_IFNAME} netns ${this.wan.ns}`,
        `addr add ${w.address}/${w.prefixLength} dev ${WAN_IFNAME}`,
        `link set ${WAN_IFNAME} up`,
        // Without snooping, multicast (SSDP) is flooded to every port; no IGMP querier needed.
        `link add ${LAN_IFNAME} type bridge mcast_snooping 0`,
        `addr add ${GATEWAY}/24 dev ${LAN_IFNAME}`,
        `link set ${LAN_IFNAME} up`,
        ...this.hosts.flatMap((h) => [
          `link add ${h.bridgePort} type veth peer name ${h.ifname} netns ${h.ns}`,
          `link set ${h.bridgePort} master ${LAN_IFNAME}`,
          `link set ${h.bridgePort} up`,
        ]),
      ],
      signal,
    );
    const rules = join(this.#tmpDir, 'rules.nft');
    await writeFile(rules, nftRuleset());
    await Promise.all([
      this.#ip(this.wan.ns, ['link set lo up', `addr add ${w.clientAddress}/${w.prefixLength} dev ${WAN_CLIENT_IFNAME}`, `link set ${WAN_CLIENT_IFNAME} up`], signal),
      ...this.hosts.map((h) =>
        this.#ip(
          h.ns,
          ['link set lo up', `addr add ${h.address}/24 dev ${h.ifname}`, `link set ${h.ifname} up`, `route add default via ${GATEWAY}`],
          signal,
        ),
      ),
      // One process for both: under load every spawn costs tens of milliseconds.
      this.exec(this.router, ['sh', '-c', 'sysctl -qw net.ipv4.ip_forward=1 && nft -f "$1"', 'sh', rules], {
        check: true,
        signal,
      }),
    ]);
    await this.startRouter({ signal });
    this.setupMs = Math.round(this.#clock.now() - t0);
    this.#logger.debug('test bed up', { prefix: this.prefix, mode: this.#mode, hosts: this.hosts.length, ms: this.setupMs });
  }

  /** Runs `argv` inside a namespace (`ip netns exec`). Resolves with the exit code; never throws on it unless `check`. */
  exec(where: NsRef, argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    if (this.#closing) return Promise.reject(new TestbedError('TB_CLOSED', 'test bed is closed'));
    return runCommand(['ip', 'netns', 'exec', nsOf(where), ...argv], opts);
  }

  /** Starts a long-running process inside a namespace; it is killed by close() (and dies with us). */
  spawn(where: NsRef, argv: readonly string[], opts: SpawnInNsOptions = {}): ChildProcess {
    if (this.#closing) throw new TestbedError('TB_CLOSED', 'test bed is closed');
    const child = spawnBounded(['ip', 'netns', 'exec', nsOf(where), ...argv], { env: opts.env, stdio: opts.stdio });
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    child.once('error', () => this.#children.delete(child));
    return child;
  }

  /** Runs an export of our own compiled code inside a namespace (see ns-call.ts). */
  call<T = unknown>(
    where: NsRef,
    module: string | URL,
    exportName: string,
    args: readonly unknown[] = [],
    opts: NsCallOptions = {},
  ): Promise<T> {
    if (this.#closing) return Promise.reject(new TestbedError('TB_CLOSED', 'test bed is closed'));
    return callInNs<T>(nsOf(where), module, exportName, args, opts);
  }

  /** Starts miniupnpd if the mode has one and it is not running; resolves once its sockets are bound. */
  async startRouter(opts: Signalled = {}): Promise<void> {
    this.#assertOpen();
    if (!runsDaemon(this.#mode) || (this.#daemon && isRunning(this.#daemon))) return;
    const conf = buildMiniupnpdConfig({ mode: this.#mode, uuid: this.uuid, ...this.#settings });
    const confPath = join(this.#tmpDir, 'miniupnpd.conf');
    const pidPath = join(this.#tmpDir, 'miniupnpd.pid');
    await writeFile(confPath, conf);
    // miniupnpd refuses to start while its pid file names a live process.
    await rm(pidPath, { force: true });
    await appendFile(this.routerLogPath, `--- ${new Date().toISOString()} starting miniupnpd, mode ${this.#mode}\n`);
    const offset = statSync(this.routerLogPath).size;
    // The log goes straight to a file: it survives us (FRONTDOOR_TESTBED_KEEP) and needs no pipe.
    const fd = openSync(this.routerLogPath, 'a');
    let child: ChildProcess;
    try {
      child = spawnBounded(['ip', 'netns', 'exec', this.router.ns, MINIUPNPD, '-d', '-f', confPath, '-P', pidPath], {
        stdio: ['ignore', fd, fd],
        outlivesParent: this.keep,
      });
    } finally {
      closeSync(fd);
    }
    this.#daemon = child;
    child.once('error', (err) => this.#logger.warn('miniupnpd did not start', { err: err.message }));
    child.once('exit', (code, sig) => {
      if (this.#daemon === child) this.#logger.debug('miniupnpd exited', { code, sig });
    });
    await this.#waitReady(child, offset, readinessMarkers(conf), opts.signal);
    // A forgotten close() must not keep the test process alive; the exit handler kills it then.
    child.unref();
  }

  async #waitReady(child: ChildProcess, offset: number, markers: string[], signal?: AbortSignal): Promise<void> {
    const deadline = this.#clock.now() + this.#readyTimeoutMs;
    for (;;) {
      const text = this.#readLog(offset);
      if (markers.every((m) => text.includes(m))) return;
      if (child.pid === undefined || !isRunning(child)) {
        throw new TestbedError(
          'TB_ROUTER_START',
          `miniupnpd exited (${child.exitCode ?? child.signalCode ?? 'failed to spawn'}) before it was ready; its log:\n${text}`,
        );
      }
      if (this.#clock.now() >= deadline) {
        killGroup(child);
        throw new TestbedError('TB_TIMEOUT', `miniupnpd not ready within ${this.#readyTimeoutMs} ms; its log:\n${text}`);
      }
      // Polling the log: the daemon writes it directly, so there is no stream to listen to.
      await sleep(this.#clock, 10, signal);
    }
  }

  /**
   * Stops miniupnpd (SIGTERM). It leaves its nftables rules behind (measured), so the mappings keep
   * forwarding unless `flush`.
   */
  async stopRouter(opts: Signalled & { flush?: boolean } = {}): Promise<void> {
    const d = this.#daemon;
    this.#daemon = undefined;
    if (d) await stopChild(d, 3000);
    if (opts.flush) await this.flushRouterRules(opts);
  }

  /**
   * A router reboot: stop, empty miniupnpd's chains (all mappings gone; the SSDP boot id and
   * NAT-PMP epoch restart), start. `flush: false` is a daemon restart that keeps the kernel's rules.
   * Conntrack entries survive (no conntrack tool here): a TCP connection already established
   * through a mapping keeps working, new ones do not.
   */
  async restartRouter(opts: Signalled & { flush?: boolean } = {}): Promise<void> {
    await this.stopRouter({ flush: opts.flush ?? true, signal: opts.signal });
    await this.startRouter(opts);
  }

  /**
   * Turns the router into another `mode` without rebuilding the network: stop, flush, WAN address
   * of that mode, new config, start. `settings` replace those given before (omitted = defaults).
   */
  async reconfigure(mode: TestbedMode, settings: RouterSettings = {}, opts: Signalled = {}): Promise<void> {
    this.#assertOpen();
    await this.stopRouter({ flush: true, signal: opts.signal });
    this.#mode = mode;
    this.#settings = pickSettings(settings);
    const w = wanForMode(mode);
    if (w.address !== this.#wanSetup.address || w.prefixLength !== this.#wanSetup.prefixLength) {
      await this.setWanAddress(w.address, { prefixLength: w.prefixLength, clientAddress: w.clientAddress, signal: opts.signal });
    }
    await this.startRouter(opts);
  }

  /**
   * The provider hands the router a new WAN address. The internet client moves along (same link),
   * by default to the next address. miniupnpd is not restarted: it reads the address per request.
   */
  async setWanAddress(
    address: string,
    opts: Signalled & { prefixLength?: number; clientAddress?: string } = {},
  ): Promise<void> {
    this.#assertOpen();
    const prefixLength = opts.prefixLength ?? 24;
    const clientAddress = opts.clientAddress ?? neighbour(address);
    if (!isIPv4(address) || !isIPv4(clientAddress) || !Number.isInteger(prefixLength) || prefixLength < 1 || prefixLength > 30) {
      throw new TestbedError('TB_BAD_CONFIG', `bad WAN address ${address}/${prefixLength} (client ${clientAddress})`);
    }
    // scope global: leave the IPv6 link-local address alone.
    await Promise.all([
      this.#ip(this.router.ns, [`addr flush dev ${WAN_IFNAME} scope global`, `addr add ${address}/${prefixLength} dev ${WAN_IFNAME}`], opts.signal),
      this.#ip(this.wan.ns, [`addr flush dev ${WAN_CLIENT_IFNAME} scope global`, `addr add ${clientAddress}/${prefixLength} dev ${WAN_CLIENT_IFNAME}`], opts.signal),
    ]);
    this.#wanSetup = { address, prefixLength, clientAddress };
  }

  /** Pulls the host's cable: its bridge port goes down, so the host sees NO-CARRIER but keeps its addresses and routes. */
  async linkDown(host: Host | string, opts: Signalled = {}): Promise<void> {
    const h = typeof host === 'string' ? this.host(host) : host;
    await this.#ip(this.router.ns, [`link set ${h.bridgePort} down`], opts.signal);
  }

  async linkUp(host: Host | string, opts: Signalled = {}): Promise<void> {
    const h = typeof host === 'string' ? this.host(host) : host;
    await this.#ip(this.router.ns, [`link set ${h.bridgePort} up`], opts.signal);
  }

  /** Empties miniupnpd's nftables chains (the daemon's own table of mappings is not touched). */
  async flushRouterRules(opts: Signalled = {}): Promise<void> {
    await this.exec(this.router, ['nft', '-f', '-'], { input: NFT_FLUSH, check: true, signal: opts.signal });
  }

  /** The port forwardings in the router's kernel right now, as nft prints them. */
  async routerRules(opts: Signalled = {}): Promise<string[]> {
    const r = await this.exec(this.router, ['nft', 'list', 'chain', 'inet', 'nat', 'prerouting_miniupnpd'], {
      check: true,
      signal: opts.signal,
    });
    return parseNftDnatRules(r.stdout);
  }

  /** Everything miniupnpd wrote to stderr since this test bed started, restarts marked by `---` lines. */
  routerLog(): string {
    return this.#readLog(0);
  }

  /** A summary for a failing test's message: names, mode, addresses, the end of the router log. */
  explain(lines = 60): string {
    const log = this.routerLog().split('\n').slice(-lines).join('\n');
    return [
      `test bed ${this.prefix}: mode ${this.#mode}, WAN ${this.wanAddress}/${this.wanPrefixLength}, client ${this.wanClientAddress}`,
      `namespaces: ${this.namespaces.join(' ')}`,
      `temp dir: ${this.#tmpDir}`,
      `router log (last ${lines} lines, ${this.routerLogPath}):`,
      log,
    ].join('\n');
  }

  /** Kills everything it started and deletes the namespaces and temp dir. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await Promise.all([...this.#children].map((c) => stopChild(c, 0)));
    if (this.keep) {
      process.stderr.write(
        `frontdoor test bed kept (FRONTDOOR_TESTBED_KEEP=1): ${this.namespaces.join(' ')}\n` +
          `  router log: ${this.routerLogPath}\n` +
          `  look: ip netns exec ${this.router.ns} nft list ruleset\n` +
          `  remove: for n in ${this.namespaces.join(' ')}; do ip netns pids $n | xargs -r kill; ip netns del $n; done; rm -r ${this.#tmpDir}\n` +
          '  (the next test bed run without KEEP removes them too)\n',
      );
      cleanupRegistry.delete(this.#cleanup);
      return;
    }
    const d = this.#daemon;
    this.#daemon = undefined;
    if (d) await stopChild(d, 0);
    // Whatever still runs inside (an exec whose caller gave up) would keep a namespace alive unnamed.
    const existing = await runCommand(['ip', 'netns', 'list'], { timeoutMs: 10_000 }).catch(() => undefined);
    const ours = this.namespaces.filter((n) => existing?.stdout.split('\n').some((l) => l.split(' ')[0] === n) ?? true);
    await Promise.all(
      ours.map(async (n) => {
        const r = await runCommand(['ip', 'netns', 'pids', n], { timeoutMs: 10_000 }).catch(() => undefined);
        for (const p of r?.stdout.split('\n') ?? []) {
          const pid = Number(p);
          if (Number.isInteger(pid) && pid > 1) {
            try {
              process.kill(pid, 'SIGKILL');
            } catch {
              // gone meanwhile
            }
          }
        }
      }),
    );
    if (ours.length > 0) {
      await runCommand(['ip', '-force', '-batch', '-'], {
        input: ours.map((n) => `netns delete ${n}`).join('\n'),
        timeoutMs: 10_000,
      });
    }
    if (this.#tmpDir) await rm(this.#tmpDir, { recursive: true, force: true });
    cleanupRegistry.delete(this.#cleanup);
    this.#logger.debug('test bed closed', { prefix: this.prefix });
  }

  #assertOpen(): void {
    if (this.#closing) throw new TestbedError('TB_CLOSED', 'test bed is closed');
  }

  /** `ip -batch` in a namespace (or the root one for `netns add`): one process for many commands. */
  async #ip(ns: string | null, lines: readonly string[], signal?: AbortSignal): Promise<void> {
    const argv = ns === null ? ['ip', '-batch', '-'] : ['ip', '-n', ns, '-batch', '-'];
    await runCommand(argv, { input: `${lines.join('\n')}\n`, check: true, signal, timeoutMs: 10_000 });
  }

  #readLog(offset: number): string {
    try {
      if (offset === 0) return readFileSync(this.routerLogPath, 'utf8');
      const fd = openSync(this.routerLogPath, 'r');
      try {
        const size = statSync(this.routerLogPath).size;
        const buf = Buffer.alloc(Math.max(0, size - offset));
        readSync(fd, buf, 0, buf.length, offset);
        return buf.toString('utf8');
      } finally {
        closeSync(fd);
      }
    } catch {
      return '';
    }
  }
}

function nsOf(where: NsRef): string {
  return typeof where === 'string' ? where : where.ns;
}

function pickSettings(s: RouterSettings): RouterSettings {
  return { allow: s.allow, miniupnpdConf: s.miniupnpdConf, minLifetime: s.minLifetime, maxLifetime: s.maxLifetime };
}

/** The next address on the link (the previous one for .254 and up). */
function neighbour(address: string): string {
  const p = address.split('.').map(Number);
  if (p.length !== 4) return address;
  const last = p[3]!;
  p[3] = last >= 254 ? last - 1 : last + 1;
  return p.join('.');
}

/** SIGTERM, then SIGKILL after `graceMs` (at once for 0); resolves when it has exited. */
async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (!isRunning(child)) return;
  // An unref'd child (the router) would let the loop end while we wait for its exit.
  child.ref();
  const gone = exited(child);
  if (graceMs > 0) {
    killGroup(child, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([gone, late]);
    clearTimeout(timer);
  }
  killGroup(child, 'SIGKILL');
  await gone;
}
