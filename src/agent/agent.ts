import { randomBytes } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import type { ElectionConfigInit } from '../election/config.js';
import type { DirectoryEntry } from '../election/directory.js';
import { ElectionNode } from '../election/election-node.js';
import type { ElectionState } from '../election/election-node.js';
import { deviceRank } from '../election/rules.js';
import { deriveKey } from '../peers/codec.js';
import type { NodeInfo, Sender } from '../peers/messages.js';
import { UdpTransport } from '../peers/udp-transport.js';
import type { LanMode } from '../peers/udp-transport.js';
import { bestMapper, discoverGateway } from '../router/discover.js';
import type { ProtocolFamily } from '../router/discover.js';
import { loadGatewayMemory, rememberedLocation, saveGatewayMemory } from '../router/gateway-memory.js';
import { PortConflictError } from '../router/errors.js';
import { MappingKeeper } from '../router/mapping-keeper.js';
import type { KeeperEvent } from '../router/mapping-keeper.js';
import type { Mapping, PortMapper } from '../router/types.js';
import { classifyWanAddress } from '../router/wan-address.js';
import type { Clock, Timer } from '../runtime/clock.js';
import type { Logger } from '../runtime/log.js';
import { mapperBoundTo } from '../floating-address/bound-mapper.js';
import { createCommandRunner } from '../floating-address/command-runner.js';
import { FloatingAddress } from '../floating-address/floating-address.js';
import type { FloatingSetting } from '../floating-address/floating-address.js';
import { FloatingMapper, preferPrimaryArpSource } from '../floating-address/floating-mapper.js';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Camera } from '../camera/camera.js';
import { newCameraCounters } from '../camera/http.js';
import { createPortalApp, newCounters } from '../portal/app.js';
import { LoginThrottle, resolveCredentials } from '../portal/auth.js';
import type { PortalCredentials } from '../portal/auth.js';
import { NodeHttpServer } from '../portal/http-server.js';
import { TlsCredentials } from '../tls/credentials.js';
import { bundleKey } from '../acme/bundle.js';
import { Http01Challenges } from '../acme/challenges.js';
import { AcmeClientIssuer } from '../acme/issuer.js';
import { AcmeManager } from '../acme/manager.js';
import { BundleReceiver, sendBundle } from '../acme/share.js';
import { ipv4ToInt, networkOf } from '../router/wan-address.js';
import { interfaceOf } from '../floating-address/floating-mapper.js';
import type { NodeStatus, PeerStatus } from '../portal/status.js';

/**
 * One node: finds the router, keeps its own page mapped, speaks the LAN protocol, takes part in
 * the election and serves the pages. Everything it is made of has its own folder; this class
 * only wires them and keeps the state `frontdoor status` and the pages show.
 */

export interface AgentOptions {
  name: string;
  /** The LAN id (hashed device value) and the device rule's value. */
  id: string;
  deviceValue: string;
  /** This node's LAN address: router requests are sent from it and mappings point to it. */
  address: string;
  gateway: string;
  /** Where the HTTP servers listen (default 0.0.0.0; the demo's nodes share loopback). */
  listenAddress?: string;
  httpPort: number;
  portalPort: number;
  publicPort: number;
  router: {
    protocols: readonly ProtocolFamily[];
    discoveryTimeoutMs: number;
    requestTimeoutMs: number;
    ssdpPort: number;
    natpmpPort: number;
    /** Multicast M-SEARCH too (off on loopback). */
    multicast: boolean;
  };
  lan: {
    mode: LanMode;
    group: string;
    port: number;
    peers: string[];
    /** '' = no fleet secret: the node runs, unauthenticated, and says so. */
    secret: string;
    /** Where the LAN socket binds (default 0.0.0.0; the demo binds each node's loopback address). */
    bindAddress?: string;
    broadcastAddress?: string;
  };
  election: ElectionConfigInit;
  /** Gateway memory lives here; undefined keeps nothing. */
  dataDir?: string;
  /** The demo's router reports a loopback WAN address; real ones must not. */
  allowLoopbackWan?: boolean;
  /**
   * A spare LAN address the representative holds, the well-known port mapped to it
   * (docs/floating-address.md): crash failover without waiting for the old lease. Checked by the
   * caller (setting and NET_ADMIN); undefined maps the port to this node's own address.
   */
  floating?: FloatingSetting;
  portal?: {
    /** '' = derived from the fleet secret, else made and kept in the data directory. */
    password: string;
    /** Let clients of this LAN (not the router itself) in without a login. */
    lanOpen: boolean;
  };
  /**
   * HTTPS on the node's ports (docs/tls.md): the user's certificate files when given, else the
   * fleet's own certificate; undefined serves plain HTTP.
   */
  tls?: { certFile: string; keyFile: string };
  /**
   * A trusted certificate from an ACME CA (docs/tls.md): obtained by the representative, shared
   * with the other nodes when there is a fleet secret. Only with `tls` and no certificate files.
   */
  acme?: { directoryUrl: string; names: string[]; challengePort: number; email: string };
  /** A camera node's pictures (claim 17), served on its pages; the agent closes it on stop. */
  camera?: {
    camera: Camera;
    /** Frame-rate cap for live viewers outside the LAN; 0: none. */
    wanFps: number;
  };
}

export interface AgentComponents {
  clock: Clock;
  logger: Logger;
  random?: () => number;
}

/** What a user may want to know at once; also what `onEvent` hands out. */
export type AgentEvent =
  | { type: 'role'; from: ElectionState; to: ElectionState; reason: string }
  | { type: 'directory'; nodes: number }
  | { type: 'page-mapped'; publicPort: number }
  | { type: 'wan-address'; address: string };

const RETRY_DISCOVERY_MS = [2_000, 5_000, 10_000, 30_000, 60_000];
const PAGE_PORT_TRIES = 32;
const REASSERT_AGAIN_MS = [500, 1500, 3000];

export class Agent {
  private readonly opts: AgentOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly self: Sender;
  private readonly listeners = new Set<(e: AgentEvent) => void>();
  private readonly http: NodeHttpServer;
  private transport: UdpTransport | undefined;
  private election: ElectionNode | undefined;
  private keeper: MappingKeeper | undefined;
  private mapper: PortMapper | undefined;
  private routerError: string | undefined;
  private wan: string | undefined;
  private publicPort = 0;
  private startedAt = 0;
  private roleSince = 0;
  private discoveryTimer: Timer | undefined;
  private pageTimer: Timer | undefined;
  private pageAttempt = 0;
  private discoveryAttempt = 0;
  private readonly abort = new AbortController();
  private stopping: Promise<void> | undefined;
  private readonly events: Array<{ at: string; what: string }> = [];
  private readonly floating: FloatingAddress | undefined;
  private apps: { node: RequestListener; portal: RequestListener } | undefined;
  private credentials: PortalCredentials | undefined;
  private tlsCredentials: TlsCredentials | undefined;
  /** The ACME client's duty, while representative (undefined without --acme). */
  private acme: AcmeManager | undefined;
  private readonly challenges = new Http01Challenges();
  /** http or https: the links this node gives out. */
  private readonly scheme: 'http' | 'https';
  private readonly counters = newCounters();

  constructor(components: AgentComponents, opts: AgentOptions) {
    this.opts = opts;
    this.clock = components.clock;
    this.log = components.logger;
    this.random = components.random ?? Math.random;
    this.self = { id: opts.id, boot: randomBytes(6).toString('hex') };
    this.scheme = opts.tls ? 'https' : 'http';
    // The applications need the credentials, which start() reads from the data directory; the
    // certificate too, so the listeners ask for it only when they open.
    const loaded = () => this.tlsOrThrow();
    const tls = opts.tls
      ? {
          get current() {
            return loaded().current;
          },
          onChange: (l: Parameters<TlsCredentials['onChange']>[0]) => loaded().onChange(l),
        }
      : undefined;
    this.http = new NodeHttpServer(
      { logger: this.log.child('http') },
      {
        listenAddress: opts.listenAddress ?? '0.0.0.0',
        httpPort: opts.httpPort,
        portalPort: opts.portalPort,
        nodeApp: (req, res) => this.apps?.node(req, res),
        portalApp: (req, res) => this.apps?.portal(req, res),
        ...(tls ? { tls } : {}),
        ...(tls && opts.acme ? { plainAnswer: (req: IncomingMessage, res: ServerResponse) => this.answerChallenge(req, res) } : {}),
      },
    );
    if (opts.floating !== undefined) {
      const log = this.log.child('floating');
      this.floating = new FloatingAddress(
        { run: createCommandRunner(), clock: this.clock, logger: log },
        {
          ...opts.floating,
          onLost: (reason) => {
            // Held while representative and gone (refreshes stalled, someone removed it): the
            // router's mapping points at nobody until we take it back.
            if (this.role !== 'representative') return;
            log.warn('the floating address went away while representative; taking it again', { reason });
            this.floating?.take().catch((err: unknown) => log.error('could not take the floating address back', { error: String(err) }));
          },
        },
      );
    }
  }

  get id(): string {
    return this.self.id;
  }

  /** The CA's http-01 request, on plain HTTP from anywhere; nothing else is answered here. */
  private answerChallenge(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== 'GET' || req.url === undefined) return false;
    const body = this.challenges.answer(req.url);
    if (body === undefined) return false;
    this.log.info('answered the ACME challenge', { from: req.socket.remoteAddress });
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store', connection: 'close' }).end(body);
    return true;
  }

  private tlsOrThrow(): TlsCredentials {
    if (this.tlsCredentials === undefined) throw new Error('TLS certificate not loaded yet');
    return this.tlsCredentials;
  }

  get role(): ElectionState {
    return this.election?.state ?? 'starting';
  }

  onEvent(listener: (e: AgentEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Starts serving the node's page at once, then finds the router (retrying in the background
   * if it does not answer) and joins the election. Throws only for what a retry cannot fix:
   * a port already in use, a bad LAN setting.
   */
  async start(): Promise<void> {
    this.startedAt = this.clock.now();
    const o = this.opts;
    if (o.lan.secret === '') {
      this.log.warn(
        'no fleet secret: LAN messages are not authenticated, so any host on the LAN can pose as a node. Set FRONTDOOR_SECRET to the same value on every node',
      );
    }
    await this.makeApps();
    await this.http.listenNodePage();
    // A previous run killed with the address held leaves it for up to its lifetime.
    if (this.floating !== undefined) {
      if (await this.floating.clearStale()) {
        this.log.info('removed a floating address left by an earlier run', { address: this.floating.address });
      }
      const iface = this.opts.floating?.interface ?? '';
      if ((await preferPrimaryArpSource(iface)) === undefined) {
        this.log.warn('could not set arp_announce=2: after a split brain the router may point at the wrong host for a while', { interface: iface });
      }
    }
    this.transport = new UdpTransport(
      { logger: this.log.child('lan'), clock: this.clock },
      {
        self: this.self,
        key: o.lan.secret === '' ? null : deriveKey(o.lan.secret),
        mode: o.lan.mode,
        port: o.lan.port,
        group: o.lan.group,
        interfaceAddress: o.address,
        peers: o.lan.peers.filter((a) => a !== o.address).map((address) => ({ address })),
        ...(o.lan.bindAddress === undefined ? {} : { bindAddress: o.lan.bindAddress }),
        ...(o.lan.broadcastAddress === undefined ? {} : { broadcastAddress: o.lan.broadcastAddress }),
      },
    );
    await this.transport.start();
    this.log.info('node started', {
      name: o.name,
      id: this.self.id,
      address: o.address,
      httpPort: o.httpPort,
      lan: `${o.lan.mode} ${o.lan.mode === 'multicast' ? `${o.lan.group}:` : 'port '}${o.lan.port}`,
      authenticated: o.lan.secret !== '',
    });
    await this.findRouter();
  }

  /**
   * Graceful: the portal stops and the well-known port is released and the LAN told (the
   * election does both, in that order), then the node's own mapping goes and the sockets close.
   */
  stop(opts: { graceful?: boolean } = {}): Promise<void> {
    this.stopping ??= (async () => {
      const graceful = opts.graceful ?? true;
      this.abort.abort(new Error('stopping'));
      this.discoveryTimer?.cancel();
      this.pageTimer?.cancel();
      await this.acme?.stop();
      await this.election?.stop({ graceful });
      await this.keeper?.stop({ release: graceful }).catch((err: unknown) => {
        this.log.warn('could not release this node\'s own port', { error: String(err) });
      });
      this.transport?.close();
      this.mapper?.close();
      await this.http.close();
      this.tlsCredentials?.stop();
      await this.opts.camera?.camera.close();
      if (graceful) await this.floating?.drop().catch(() => {});
      this.log.info('node stopped', { graceful });
    })();
    return this.stopping;
  }

  /** The portal's password and where it came from (for `frontdoor status`'s first-start hint). */
  get password(): { value: string; source: PortalCredentials['passwordSource'] } | undefined {
    return this.credentials ? { value: this.credentials.password, source: this.credentials.passwordSource } : undefined;
  }

  private async makeApps(): Promise<void> {
    const o = this.opts;
    if (o.tls) {
      this.tlsCredentials = await TlsCredentials.load(
        { logger: this.log.child('tls') },
        { certFile: o.tls.certFile, keyFile: o.tls.keyFile, secret: o.lan.secret, dataDir: o.dataDir },
      );
    }
    // The key the ACME certificate is sealed with for the LAN: no secret, no sharing.
    const sealKey = o.acme && o.lan.secret !== '' ? bundleKey(o.lan.secret) : undefined;
    if (o.acme && this.tlsCredentials) this.acme = this.makeAcme(o.acme, this.tlsCredentials, sealKey);
    const creds = await resolveCredentials({ password: o.portal?.password ?? '', secret: o.lan.secret, dataDir: o.dataDir });
    this.credentials = creds;
    if (creds.notKept !== undefined) {
      this.log.error('cannot keep the portal password or session key in the data directory; another is made at the next start (set FRONTDOOR_PASSWORD and FRONTDOOR_SECRET to need none)', {
        dataDir: o.dataDir,
        error: creds.notKept,
      });
    }
    if (creds.passwordSource === 'generated') {
      // Printed once, on the start that made it; `frontdoor status` shows it again.
      this.log.warn('portal password made for this node (set FRONTDOOR_PASSWORD to choose one)', { password: creds.password });
    } else if (creds.passwordSource === 'fleet-secret') {
      this.log.info('portal password derived from the fleet secret; `frontdoor status` shows it (set FRONTDOOR_PASSWORD to choose one)');
    }
    const hint =
      creds.passwordSource === 'setting'
        ? 'The password is the FRONTDOOR_PASSWORD of your fleet.'
        : 'No FRONTDOOR_PASSWORD is set: run `frontdoor status` on a node to see the password, or set FRONTDOOR_PASSWORD.';
    const lan = lanMatcher(o.address, o.gateway);
    const throttle = new LoginThrottle(() => this.clock.now());
    const common = {
      status: () => this.status(),
      credentials: creds,
      throttle,
      isLan: lan,
      lanOpen: o.portal?.lanOpen ?? false,
      logger: this.log.child('portal'),
      counters: this.counters,
      passwordHint: hint,
      ...(o.camera
        ? {
            camera: {
              http: { camera: o.camera.camera, clock: this.clock, isLan: lan, wanFps: o.camera.wanFps },
              counters: newCameraCounters(),
            },
          }
        : {}),
    };
    // Any node takes the representative's certificate, on its own port only.
    const receiver = sealKey ? new BundleReceiver({ logger: this.log.child('acme') }, { key: sealKey, credentials: () => this.tlsCredentials }) : undefined;
    this.apps = {
      node: createPortalApp({ ...common, which: 'node', ...(receiver ? { acmeBundle: (body: Buffer, from: string) => receiver.accept(body, from) } : {}) }),
      portal: createPortalApp({ ...common, which: 'portal' }),
    };
  }

  private makeAcme(acme: NonNullable<AgentOptions['acme']>, credentials: TlsCredentials, sealKey: Buffer | undefined): AcmeManager {
    const o = this.opts;
    const log = this.log.child('acme');
    if (sealKey === undefined) {
      log.warn('no fleet secret: an ACME certificate would serve the portal only, not the other nodes\' pages. Set FRONTDOOR_SECRET to share it');
    }
    return new AcmeManager(
      {
        clock: this.clock,
        logger: log,
        issuer: new AcmeClientIssuer({ logger: log }, { directoryUrl: acme.directoryUrl, dataDir: o.dataDir, email: acme.email }),
        challenges: this.challenges,
        credentials,
        mapper: () => this.mapper,
        wanAddress: () => this.election?.wanAddress ?? this.wan,
        members: () =>
          (this.election?.directory ?? [])
            .filter((e) => !e.self)
            .map((e) => ({ id: e.id, address: e.info.addresses[0] ?? e.address, port: e.info.localPort })),
        send: sendBundle,
      },
      {
        names: acme.names,
        challengePort: acme.challengePort,
        localPort: o.httpPort,
        bundleKey: sealKey,
      },
    );
  }

  status(): NodeStatus {
    const o = this.opts;
    const el = this.election;
    const repId = el?.representative;
    const dir = el?.directory ?? [];
    const wan = el?.wanAddress ?? this.wan;
    const peers: PeerStatus[] = dir.map((e) => this.peerStatus(e, repId, wan));
    const rep = peers.find((p) => p.id === repId);
    const now = this.clock.now();
    return {
      name: o.name,
      id: this.self.id,
      role: this.role,
      roleSinceMs: now - this.roleSince,
      uptimeMs: now - this.startedAt,
      representative: rep === undefined ? null : { id: rep.id, name: rep.name, url: wan ? `${this.scheme}://${hostPort(wan, o.publicPort)}/` : null },
      wanAddress: wan ?? null,
      wanAddressClass: wan ? classifyWanAddress(wan) : null,
      ports: { local: o.httpPort, public: this.publicPort, wellKnown: o.publicPort, portal: o.portalPort },
      floatingAddress: this.floating === undefined ? null : { address: this.floating.address, held: this.floating.held },
      router: this.mapper
        ? { protocol: this.mapper.protocol, gateway: this.mapper.gateway, localAddress: this.mapper.localAddress, error: this.routerError ?? null }
        : { protocol: null, gateway: o.gateway, localAddress: o.address, error: this.routerError ?? 'not found yet' },
      routerMappings: el?.routerMappings?.map(describeMapping) ?? null,
      lan: { mode: o.lan.mode, port: o.lan.port, authenticated: o.lan.secret !== '', ...lanStats(this.transport) },
      nodes: peers,
      camera: o.camera?.camera.status() ?? null,
      tls: this.tlsCredentials ? { ...this.tlsCredentials.status(), acme: this.acme?.status() ?? null } : null,
      events: [...this.events],
    };
  }

  // ---- router ---------------------------------------------------------------------------

  private async findRouter(): Promise<void> {
    const o = this.opts;
    const memoryFile = o.dataDir === undefined ? undefined : join(o.dataDir, 'gateway.json');
    const memory = memoryFile === undefined ? undefined : await loadGatewayMemory(memoryFile).catch(() => undefined);
    try {
      const knownLocation = rememberedLocation(memory, o.gateway, o.address);
      const d = await discoverGateway({
        gateway: o.gateway,
        localAddress: o.address,
        protocols: o.router.protocols,
        timeoutMs: o.router.discoveryTimeoutMs,
        requestTimeoutMs: o.router.requestTimeoutMs,
        ssdpPort: o.router.ssdpPort,
        natpmpPort: o.router.natpmpPort,
        multicast: o.router.multicast,
        ...(knownLocation === undefined ? {} : { knownLocation }),
        onReset: (reason) => this.keeper?.routerReset(reason),
        signal: this.abort.signal,
        logger: this.log.child('router'),
        clock: this.clock,
      });
      if (this.abort.signal.aborted) {
        for (const m of d.mappers) m.close();
        return;
      }
      this.mapper = bestMapper(d);
      for (const m of d.mappers) if (m !== this.mapper) m.close();
      this.routerError = undefined;
      this.log.info('router found', { protocol: this.mapper.protocol, gateway: d.gateway });
      if (memoryFile !== undefined) {
        saveGatewayMemory(memoryFile, d).catch((err: unknown) =>
          this.log.warn('could not save the router for next start', { file: memoryFile, error: String(err) }),
        );
      }
    } catch (err) {
      if (this.abort.signal.aborted) return;
      this.routerError = err instanceof Error ? err.message : String(err);
      const wait = RETRY_DISCOVERY_MS[Math.min(this.discoveryAttempt, RETRY_DISCOVERY_MS.length - 1)]!;
      this.discoveryAttempt++;
      this.log.warn('no router answered; the node serves its page on the LAN and keeps looking', {
        error: this.routerError,
        retryInMs: wait,
      });
      this.discoveryTimer = this.clock.setTimeout(() => {
        this.findRouter().catch((e: unknown) => this.log.error('router search failed', { error: String(e) }));
      }, wait);
      return;
    }
    this.startElection(this.mapper);
    void this.mapOwnPage(this.mapper);
    void this.readWanAddress(this.mapper);
  }

  private async mapOwnPage(mapper: PortMapper): Promise<void> {
    // 10 s rather than the keeper's 30: after a router reboot the node's link is dead until this check.
    const keeper = new MappingKeeper({ mapper, clock: this.clock, logger: this.log.child('keeper') }, { checkIntervalMs: 10_000 });
    this.keeper = keeper;
    keeper.on((e) => this.onKeeperEvent(e));
    await this.claimPagePort(keeper);
  }

  /**
   * The node's own public port (claim 2's "another port"): the same number as the local port
   * when free, else the next ones. Never "any port": a router's free-port choice can be the
   * well-known port while no representative holds it, and the election would later take it over.
   */
  private async claimPagePort(keeper: MappingKeeper): Promise<void> {
    const o = this.opts;
    const candidates: number[] = [];
    for (let p = o.httpPort; candidates.length < PAGE_PORT_TRIES && p <= 65535; p++) if (p !== o.publicPort) candidates.push(p);
    let last: unknown;
    for (const externalPort of candidates) {
      if (this.abort.signal.aborted) return;
      try {
        await keeper.add(
          'page',
          { externalPort, internalPort: o.httpPort, protocol: 'TCP', leaseSeconds: 3600, description: `frontdoor ${routerSafe(o.name)}` },
          'specific',
          this.abort.signal,
        );
        this.pageAttempt = 0;
        if (this.routerError?.startsWith("could not map this node's page")) this.routerError = undefined;
        return;
      } catch (err) {
        last = err;
        if (!(err instanceof PortConflictError)) break;
      }
    }
    if (this.abort.signal.aborted) return;
    this.routerError = `could not map this node's page: ${last instanceof Error ? last.message : String(last)}`;
    // A router busy at start (a timeout) must not leave the node without a link for good.
    const wait = RETRY_DISCOVERY_MS[Math.min(this.pageAttempt, RETRY_DISCOVERY_MS.length - 1)]!;
    this.pageAttempt++;
    this.log.warn("could not map this node's page; it is reachable on the LAN only until a retry succeeds", {
      error: this.routerError,
      retryInMs: wait,
    });
    this.pageTimer?.cancel();
    this.pageTimer = this.clock.setTimeout(() => {
      this.claimPagePort(keeper).catch((e: unknown) => this.log.error('page mapping retry failed', { error: String(e) }));
    }, wait);
  }

  private onKeeperEvent(e: KeeperEvent): void {
    switch (e.type) {
      case 'claimed':
      case 'moved':
        if (e.id === 'page') this.setPublicPort(e.mapping.externalPort);
        return;
      case 'wan-changed':
        this.setWan(e.to);
        return;
      case 'conflict':
        // Another host took our port while the router had forgotten us (a reboot): pick anew.
        if (e.id === 'page' && this.keeper !== undefined) {
          const keeper = this.keeper;
          this.log.warn("this node's public port was taken by another host; choosing another", { port: e.error.externalPort });
          void keeper.remove('page').catch(() => {}).then(() => this.claimPagePort(keeper));
        }
        return;
      case 'error':
        this.log.warn('router error while keeping this node\'s port', { error: e.error.message });
        return;
      default:
        return;
    }
  }

  private setPublicPort(port: number): void {
    if (port === this.publicPort) return;
    this.publicPort = port;
    this.log.info('this node\'s page is mapped', { publicPort: port, url: this.wan ? `${this.scheme}://${hostPort(this.wan, port)}/` : undefined });
    this.election?.updateInfo({ publicPort: port });
    this.emit({ type: 'page-mapped', publicPort: port });
  }

  private async readWanAddress(mapper: PortMapper): Promise<void> {
    try {
      this.setWan(await mapper.externalAddress(this.abort.signal));
    } catch (err) {
      if (!this.abort.signal.aborted) this.log.warn('could not read the WAN address', { error: String(err) });
    }
  }

  private setWan(address: string): void {
    if (address === this.wan) return;
    this.wan = address;
    const cls = classifyWanAddress(address);
    if (cls !== 'public' && !(cls === 'loopback' && this.opts.allowLoopbackWan)) {
      this.log.warn('the router\'s WAN address is not reachable from the internet (double NAT or CGNAT?): links will not work from outside', {
        address,
        class: cls,
      });
    }
    this.emit({ type: 'wan-address', address });
    // A certificate for the old address is no good for the new one.
    this.acme?.nudge();
  }

  // ---- election -------------------------------------------------------------------------

  private startElection(mapper: PortMapper): void {
    const o = this.opts;
    const transport = this.transport;
    if (transport === undefined) return;
    const info: NodeInfo = {
      name: o.name,
      addresses: [o.address],
      localPort: o.httpPort,
      publicPort: this.publicPort,
      camera: o.camera !== undefined,
      rank: deviceRank(o.deviceValue),
    };
    this.roleSince = this.clock.now();
    const floating = this.floating;
    const wellKnownMapper =
      floating === undefined
        ? mapper
        : new FloatingMapper(
            { logger: this.log.child('floating') },
            {
              base: mapper,
              floating,
              onTaking: () => this.http.openPortal(),
              onGaveUp: async () => {
                if (this.role !== 'representative') await this.http.closePortal();
              },
              bound: mapperBoundTo(mapper, floating.address, {
                logger: this.log.child('router'),
                clock: this.clock,
                requestTimeoutMs: o.router.requestTimeoutMs,
                natpmpPort: o.router.natpmpPort,
              }),
            },
          );
    const election = new ElectionNode(
      { clock: this.clock, transport, portMapper: wellKnownMapper, logger: this.log, random: this.random },
      {
        self: this.self,
        info,
        // The well-known port forwards to the portal's local port, not the node page's.
        config: { ...o.election, wellKnownPort: o.publicPort, floating: floating !== undefined },
        portalPort: o.portalPort,
        lanPort: o.lan.port,
        onRoleChange: (c) => {
          this.roleSince = this.clock.now();
          if (floating?.held && c.from === 'candidate' && c.to === 'follower') {
            // A floating claim that did not end in the role (the router unreachable, another node
            // announced): the address and the early-opened portal must not stay with us.
            void floating.drop().catch(() => {});
            void this.http.closePortal();
          }
          this.note(`${c.from} → ${c.to}: ${c.reason}`);
          this.emit({ type: 'role', from: c.from, to: c.to, reason: c.reason });
        },
        onDirectoryChange: (entries) => {
          this.acme?.membersChanged();
          this.emit({ type: 'directory', nodes: entries.length });
        },
        onBecomeRepresentative: async () => {
          await this.http.openPortal();
          this.acme?.start();
          const wan = this.election?.wanAddress ?? this.wan;
          this.log.info('serving the portal', {
            url: wan ? `${this.scheme}://${hostPort(wan, o.publicPort)}/` : undefined,
            localPort: o.portalPort,
          });
        },
        onStepDown: async (reason) => {
          await this.http.closePortal();
          void this.acme?.stop();
          // Before the withdraw goes out: the heir takes the address as soon as it hears it.
          await floating?.drop().catch((err: unknown) => this.log.warn('could not drop the floating address', { error: String(err) }));
          this.log.info('stopped serving the portal', { reason });
        },
        onReassert: () => this.reassert(),
      },
    );
    this.election = election;
    election.start();
  }

  /**
   * After a split brain: gratuitous ARPs now and twice more, since the other holder may answer an
   * ARP request from the router before it hears our newer term and drops the address, leaving the
   * router pointed at a host that no longer has it.
   */
  private reassert(): void {
    const floating = this.floating;
    if (floating === undefined) return;
    const log = this.log.child('floating');
    const again = () => {
      if (this.role !== 'representative' || !floating.held) return;
      floating.announce().catch((err: unknown) => log.warn('could not announce the floating address', { error: String(err) }));
    };
    again();
    for (const ms of REASSERT_AGAIN_MS) this.clock.setTimeout(again, ms);
  }

  private peerStatus(e: DirectoryEntry, repId: string | undefined, wan: string | undefined): PeerStatus {
    const publicPort = e.self ? this.publicPort : e.info.publicPort;
    const address = e.info.addresses[0] ?? e.address;
    return {
      id: e.id,
      name: e.info.name,
      self: e.self,
      representative: e.id === repId,
      addresses: e.info.addresses,
      localPort: e.info.localPort,
      publicPort,
      url: wan && publicPort > 0 ? `${this.scheme}://${hostPort(wan, publicPort)}/` : null,
      lanUrl: `${this.scheme}://${hostPort(address, e.info.localPort)}/`,
      lastSeenMsAgo: e.self ? 0 : Math.max(0, this.clock.now() - e.lastSeen),
      camera: e.info.camera,
    };
  }

  private note(what: string): void {
    this.events.push({ at: new Date().toISOString(), what });
    if (this.events.length > 20) this.events.shift();
  }

  private emit(e: AgentEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.log.error('agent listener failed', { error: String(err) });
      }
    }
  }
}

function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function describeMapping(m: Mapping): NodeStatus['routerMappings'] extends Array<infer T> | null ? T : never {
  return {
    protocol: m.protocol,
    externalPort: m.externalPort,
    internalClient: m.internalClient,
    internalPort: m.internalPort,
    description: m.description,
    leaseSeconds: m.leaseSeconds,
    frontdoor: m.description.startsWith('frontdoor'),
  };
}

function lanStats(t: UdpTransport | undefined): { dropped: number; received: number } {
  if (t === undefined) return { dropped: 0, received: 0 };
  const s = t.stats();
  // The unicast fallback's second copy of every message is a duplicate by design: counted, it
  // made a healthy fleet report a third of its messages dropped and hid what an attack adds.
  const dropped = Object.entries(s.dropped).reduce((a, [reason, n]) => (reason === 'FD_PEER_DUPLICATE' ? a : a + (n ?? 0)), 0);
  return { dropped, received: s.received };
}

/**
 * "This LAN" for `--lan-open`: the node's own subnet, without the router's address. Routers that
 * masquerade forwarded traffic make every internet client look like the router, which would
 * otherwise let the whole internet in.
 */
function lanMatcher(address: string, gateway: string): (source: string) => boolean {
  const local = interfaceOf(address);
  if (local === undefined) return () => false;
  const net = networkOf(ipv4ToInt(address), local.prefixLength);
  return (source) => {
    const v4 = source.startsWith('::ffff:') ? source.slice(7) : source;
    if (!isIPv4(v4) || v4 === gateway) return false;
    return networkOf(ipv4ToInt(v4), local.prefixLength) === net;
  };
}

/** The name as a router's admin page may show it unescaped: letters, digits, space, . _ - only. */
function routerSafe(name: string): string {
  return name.replace(/[^A-Za-z0-9 ._-]/g, '').slice(0, 40) || 'node';
}
