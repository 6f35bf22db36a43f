import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { bundleKey } from '../acme/bundle.js';
import { Http01Challenges } from '../acme/challenges.js';
import { AcmeClientIssuer } from '../acme/issuer.js';
import { AcmeManager } from '../acme/manager.js';
import { BundleReceiver, sendBundle } from '../acme/share.js';
import type { Camera } from '../camera/camera.js';
import type { ElectionConfigInit } from '../election/config.js';
import { electionConfig } from '../election/config.js';
import { ElectionNode } from '../election/election-node.js';
import type { ElectionState } from '../election/election-node.js';
import { deviceRank } from '../election/rules.js';
import { mapperBoundTo } from '../floating-address/bound-mapper.js';
import { createCommandRunner } from '../floating-address/command-runner.js';
import { FloatingAddress } from '../floating-address/floating-address.js';
import type { FloatingSetting } from '../floating-address/floating-address.js';
import { FloatingMapper, preferPrimaryArpSource } from '../floating-address/floating-mapper.js';
import { Membership } from '../membership/membership.js';
import { deriveKey } from '../peers/codec.js';
import type { Sender } from '../peers/messages.js';
import type { LanTransport } from '../peers/transport.js';
import { UdpTransport } from '../peers/udp-transport.js';
import type { LanMode } from '../peers/udp-transport.js';
import type { PortalCredentials } from '../portal/auth.js';
import { NodeHttpServer } from '../portal/http-server.js';
import { projectStatus } from '../portal/status.js';
import type { NodeStatus } from '../portal/status.js';
import { buildWeb } from '../portal/web.js';
import type { Web } from '../portal/web.js';
import type { DiscoverOptions, Discovery } from '../router/discover.js';
import { PendingMapper } from '../router/pending-mapper.js';
import { RouterSession } from '../router/router-session.js';
import type { RouterOptions } from '../router/router-session.js';
import type { PortMapper } from '../router/types.js';
import type { Clock, Timer } from '../runtime/clock.js';
import type { Logger } from '../runtime/log.js';
import { TlsCredentials } from '../tls/credentials.js';
import { NodeState } from './node-state.js';
import { RepresentativeDuties } from './representative-duties.js';
import { Listeners } from '../runtime/listeners.js';

/**
 * One node, put together: the router session, the LAN transport and membership, the election,
 * the representative's duties and the web. This file builds the parts, starts them in order and
 * stops them in reverse; what each part does is in its own folder, and what the node knows is in
 * its NodeState.
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
  /** This node's own page (local port). */
  httpPort: number;
  /** The local port the representative serves the portal on. */
  portalPort: number;
  /** The well-known public port: whoever the router maps it to is the representative. */
  wellKnownPort: number;
  router: RouterOptions;
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
  /** Gateway memory, the password and the certificates live here; undefined keeps nothing. */
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
  /** Router discovery (default: the real network); tests hand in a fake router. */
  discover?: (opts: DiscoverOptions) => Promise<Discovery>;
  /** The LAN for this node's identity (default: UDP as the options say); tests hand in a simulated one. */
  lan?: (self: Sender) => LanTransport;
}

/** What a user may want to know at once; also what `onEvent` hands out. */
export type AgentEvent =
  | { type: 'role'; from: ElectionState; to: ElectionState; reason: string }
  | { type: 'directory'; nodes: number }
  | { type: 'page-mapped'; publicPort: number }
  | { type: 'wan-address'; address: string };

/** A stop that has not finished by then is cut short: the container is killed soon after. */
const STOP_DEADLINE_MS = 8_000;
/** How often a node that cannot serve the portal looks whether its port is free again. */
const PORTAL_RECHECK_MS = 30_000;

export class Agent {
  private readonly opts: AgentOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly listeners: Listeners<AgentEvent>;
  private readonly random: () => number;
  private readonly components: AgentComponents;
  private readonly startedAt: number;
  private readonly scheme: 'http' | 'https';
  readonly state: NodeState;
  private readonly router: RouterSession;
  private readonly http: NodeHttpServer;
  private readonly floating: FloatingAddress | undefined;
  private readonly challenges = new Http01Challenges();
  private readonly membership: Membership;
  /** The router as the election asks it for the well-known port, once discovery found it. */
  private readonly wellKnown: PendingMapper;
  private transport: LanTransport | undefined;
  private election: ElectionNode | undefined;
  private web: Web | undefined;
  private tls: TlsCredentials | undefined;
  private acme: AcmeManager | undefined;
  private duties: RepresentativeDuties | undefined;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private portalRecheck: Timer | undefined;

  constructor(components: AgentComponents, opts: AgentOptions) {
    this.opts = opts;
    this.components = components;
    this.clock = components.clock;
    this.log = components.logger;
    this.listeners = new Listeners<AgentEvent>(this.log, 'agent');
    this.random = components.random ?? Math.random;
    this.scheme = opts.tls ? 'https' : 'http';
    this.startedAt = this.clock.now();
    this.state = new NodeState({ gateway: opts.gateway, localAddress: opts.address, now: this.startedAt });
    this.wellKnown = new PendingMapper({ gateway: opts.gateway, localAddress: opts.floating?.address ?? opts.address });
    const self = { id: opts.id, boot: randomBytes(6).toString('hex') };
    this.router = new RouterSession(
      { clock: this.clock, logger: this.log, ...(components.discover ? { discover: components.discover } : {}) },
      {
        gateway: opts.gateway,
        localAddress: opts.address,
        ...opts.router,
        ...(opts.dataDir === undefined ? {} : { dataDir: opts.dataDir }),
        page: { localPort: opts.httpPort, wellKnownPort: opts.wellKnownPort, name: opts.name },
      },
    );
    const cfg = electionConfig({ ...opts.election, wellKnownPort: opts.wellKnownPort });
    // The transport exists once start() made it; membership only sends from its own start().
    const lan: LanTransport = {
      broadcast: (b) => this.transport?.broadcast(b),
      unicast: (b, a, p) => this.transport?.unicast(b, a, p),
      onMessage: (h) => this.lanHandlers.push(h),
      close: () => {},
    };
    this.membership = new Membership(
      { clock: this.clock, transport: lan, logger: this.log },
      {
        self,
        info: { name: opts.name, addresses: [opts.address], localPort: opts.httpPort, publicPort: 0, camera: opts.camera !== undefined, rank: deviceRank(opts.deviceValue) },
        lanPort: opts.lan.port,
        refreshIntervalMs: cfg.refreshIntervalMs,
        directoryTtlMs: cfg.directoryTtlMs,
      },
    );
    // The listeners ask for the certificate only when they open, after start() loaded it.
    const tls = opts.tls
      ? {
          get current() {
            return loaded().current;
          },
          onChange: (l: Parameters<TlsCredentials['onChange']>[0]) => loaded().onChange(l),
        }
      : undefined;
    const loaded = (): TlsCredentials => {
      if (this.tls === undefined) throw new Error('TLS certificate not loaded yet');
      return this.tls;
    };
    this.http = new NodeHttpServer(
      { logger: this.log.child('http') },
      {
        listenAddress: opts.listenAddress ?? '0.0.0.0',
        httpPort: opts.httpPort,
        portalPort: opts.portalPort,
        nodeApp: (req, res) => this.web?.node(req, res),
        portalApp: (req, res) => this.web?.portal(req, res),
        ...(tls ? { tls } : {}),
        ...(tls && opts.acme ? { plainAnswer: (req: IncomingMessage, res: ServerResponse) => this.answerChallenge(req, res) } : {}),
      },
    );
    if (opts.floating !== undefined) {
      this.floating = new FloatingAddress(
        { run: createCommandRunner(), clock: this.clock, logger: this.log.child('floating') },
        { ...opts.floating, onLost: (reason) => this.duties?.floatingLost(reason) },
      );
    }
    this.wire();
  }

  private readonly lanHandlers: Array<Parameters<LanTransport['onMessage']>[0]> = [];

  get id(): string {
    return this.opts.id;
  }

  get role(): ElectionState {
    return this.state.snapshot.role;
  }

  /** The portal's password and where it came from (for `frontdoor status`'s first-start hint). */
  get password(): { value: string; source: PortalCredentials['passwordSource'] } | undefined {
    const c = this.web?.credentials;
    return c ? { value: c.password, source: c.passwordSource } : undefined;
  }

  onEvent(listener: (e: AgentEvent) => void): () => void {
    return this.listeners.add(listener);
  }

  status(): NodeStatus {
    const o = this.opts;
    return projectStatus({
      now: this.clock.now(),
      node: {
        name: o.name,
        id: o.id,
        startedAt: this.startedAt,
        scheme: this.scheme,
        localPort: o.httpPort,
        wellKnownPort: o.wellKnownPort,
        portalPort: o.portalPort,
        lan: { mode: o.lan.mode, port: o.lan.port, authenticated: o.lan.secret !== '' },
      },
      state: this.state.snapshot,
      members: this.membership.entries(),
      lanStats: lanStats(this.transport),
      floating: this.floating === undefined ? null : { address: this.floating.address, held: this.floating.held },
      camera: o.camera?.camera.status() ?? null,
      tls: this.tls ? { ...this.tls.status(), acme: this.acme?.status() ?? null } : null,
    });
  }

  /**
   * Serves the node's page at once, joins the LAN, then finds the router (retrying in the
   * background if it does not answer) and the election starts once it is found. Throws only for
   * what a retry cannot fix: a port already in use, a bad LAN setting. A second call is the first.
   */
  start(): Promise<void> {
    this.starting ??= this.run();
    return this.starting;
  }

  private async run(): Promise<void> {
    const o = this.opts;
    if (o.lan.secret === '') {
      this.log.warn(
        'no fleet secret: LAN messages are not authenticated, so any host on the LAN can pose as a node. Set FRONTDOOR_SECRET to the same value on every node',
      );
    }
    await this.loadWeb();
    if (this.stopping) return;
    await this.http.listenNodePage();
    if (this.floating !== undefined) await this.clearFloating(this.floating);
    if (this.stopping) return;
    this.transport = this.components.lan?.(this.membership.self) ?? (await this.udp());
    if (this.stopping) return;
    this.transport.onMessage((msg) => {
      for (const h of this.lanHandlers) h(msg);
    });
    // The election listens for a representative while discovery runs; its first claim waits
    // for the router.
    this.startElection();
    if (!(await this.http.portalPortFree())) this.cannotServe(new Error(`port ${o.portalPort} is in use by another program`));
    this.log.info('node started', {
      name: o.name,
      id: o.id,
      address: o.address,
      httpPort: o.httpPort,
      lan: `${o.lan.mode} ${o.lan.mode === 'multicast' ? `${o.lan.group}:` : 'port '}${o.lan.port}`,
      authenticated: o.lan.secret !== '',
    });
    await this.router.start();
  }

  /**
   * Graceful: the portal stops, the well-known port is released and the LAN told (the election
   * does these, in that order), then the node's own mappings go and the sockets close; all of
   * it within one deadline, since the container is killed soon after its SIGTERM.
   */
  stop(opts: { graceful?: boolean } = {}): Promise<void> {
    this.stopping ??= (async () => {
      const graceful = opts.graceful ?? true;
      const signal = AbortSignal.timeout(STOP_DEADLINE_MS);
      // Discovery and the page's claim end here, so a start under way returns at once.
      this.router.cancel();
      this.portalRecheck?.cancel();
      await this.starting?.catch(() => {});
      const leave = async () => {
        await this.acme?.stop();
        this.membership.leave();
        await this.election?.stop({ graceful });
        this.membership.stop();
        await this.router.stop({ release: graceful, signal });
      };
      const late = new Promise<'late'>((resolve) => signal.addEventListener('abort', () => resolve('late'), { once: true }));
      if ((await Promise.race([leave(), late])) === 'late') {
        this.log.warn('the node did not leave in time; closing anyway', { deadlineMs: STOP_DEADLINE_MS });
      }
      this.wellKnown.close();
      this.transport?.close();
      await this.http.close();
      this.tls?.stop();
      await this.opts.camera?.camera.close();
      if (graceful) await this.floating?.drop().catch(() => {});
      this.log.info('node stopped', { graceful });
    })();
    return this.stopping;
  }

  // ---- wiring ---------------------------------------------------------------------------

  /** Facts flow into the node state from their one writer each; the rest reads them there. */
  private wire(): void {
    this.router.on((e) => {
      switch (e.type) {
        case 'found': {
          this.state.setRouter({ protocol: e.protocol, gateway: e.gateway, localAddress: e.localAddress });
          const mapper = this.router.mapper;
          if (mapper !== undefined && this.duties !== undefined) this.wellKnown.resolve(this.wellKnownMapper(mapper, this.duties));
          return;
        }
        case 'problem':
          this.state.setRouter({ error: e.error });
          return;
        case 'page':
          this.state.update({ ownPublicPort: e.publicPort });
          return;
        case 'wan':
          this.state.setWan(e.address);
          return;
        case 'table':
          this.state.update({ table: e.mappings });
          this.election?.checkRouterTable(e.mappings);
          return;
      }
    });
    this.state.onChange((s, changed) => {
      if (changed.has('ownPublicPort')) {
        this.membership.updateInfo({ publicPort: s.ownPublicPort });
        this.emit({ type: 'page-mapped', publicPort: s.ownPublicPort });
      }
      if (changed.has('wan') && s.wan !== undefined) this.wanChanged(s.wan.address, s.wan.class);
    });
    this.membership.on((e) => {
      if (e.type !== 'changed') return;
      this.acme?.membersChanged();
      this.emit({ type: 'directory', nodes: e.entries.length });
    });
  }

  private wanChanged(address: string, cls: string): void {
    if (cls !== 'public' && !(cls === 'loopback' && this.opts.allowLoopbackWan)) {
      this.log.warn("the router's WAN address is not reachable from the internet (double NAT or CGNAT?): links will not work from outside", {
        address,
        class: cls,
      });
    }
    this.emit({ type: 'wan-address', address });
    // A certificate for the old address is no good for the new one.
    this.acme?.nudge();
  }

  private startElection(): void {
    if (this.election !== undefined || this.transport === undefined) return;
    const o = this.opts;
    const duties = new RepresentativeDuties(
      {
        clock: this.clock,
        logger: this.log,
        state: this.state,
        portal: this.http,
        acme: this.acme,
        floating: this.floating,
        checkRouter: () => this.router.checkNow(),
        cannotServe: (err) => this.cannotServe(err),
      },
      { scheme: this.scheme, wellKnownPort: o.wellKnownPort, portalPort: o.portalPort },
    );
    this.duties = duties;
    const election = new ElectionNode(
      {
        clock: this.clock,
        transport: this.transport,
        membership: this.membership,
        portMapper: this.wellKnown,
        logger: this.log,
        random: this.random,
        wanAddress: () => this.state.snapshot.wan?.address,
      },
      {
        // The well-known port forwards to the portal's local port, not the node page's.
        config: { ...o.election, wellKnownPort: o.wellKnownPort, floating: this.floating !== undefined },
        portalPort: o.portalPort,
        onRoleChange: (c) => {
          this.state.update({ role: c.to, roleSince: this.clock.now(), representative: c.representative, term: election.term });
          duties.roleChanged(c);
          this.state.note(`${c.from} → ${c.to}: ${c.reason}`);
          this.emit({ type: 'role', from: c.from, to: c.to, reason: c.reason });
        },
        onBecomeRepresentative: (e) => duties.becameRepresentative(e),
        onStepDown: (reason) => duties.steppedDown(reason),
        onReassert: () => duties.reassert(),
      },
    );
    this.election = election;
    this.membership.start();
    election.start();
  }

  /** The well-known port goes to the floating address when there is one, else to this node. */
  private wellKnownMapper(mapper: PortMapper, duties: RepresentativeDuties): PortMapper {
    const floating = this.floating;
    if (floating === undefined) return mapper;
    return new FloatingMapper(
      { logger: this.log.child('floating') },
      {
        base: mapper,
        floating,
        onTaking: () => duties.takingFloating(),
        onGaveUp: () => duties.gaveUpFloating(),
        bound: mapperBoundTo(mapper, floating.address, { requestTimeoutMs: this.opts.router.requestTimeoutMs }),
      },
    );
  }

  /**
   * Another program holds the portal's port: this node gives up the role (or never claims it),
   * says so once, and looks again now and then; the others serve the portal meanwhile.
   */
  private cannotServe(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    const first = this.state.snapshot.portalError === undefined;
    this.state.update({ portalError: message });
    this.election?.resign(`cannot serve the portal: ${message}`);
    if (first) {
      this.log.error('this node cannot serve the portal, so it will not take the well-known port: another node serves it', {
        port: this.opts.portalPort,
        error: err,
      });
    }
    this.portalRecheck?.cancel();
    this.portalRecheck = this.clock.setTimeout(() => {
      this.http.portalPortFree().then(
        (free) => {
          if (this.stopping) return;
          if (!free) return this.cannotServe(err);
          this.state.update({ portalError: undefined });
          this.log.info('the portal port is free again: this node may take the well-known port', { port: this.opts.portalPort });
          this.election?.setEligible(true);
        },
        (e: unknown) => this.log.error('could not check the portal port', { error: e }),
      );
    }, PORTAL_RECHECK_MS);
  }

  // ---- parts made at start ---------------------------------------------------------------

  private async udp(): Promise<UdpTransport> {
    const o = this.opts;
    const t = new UdpTransport(
      { logger: this.log.child('lan'), clock: this.clock },
      {
        self: this.membership.self,
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
    await t.start();
    return t;
  }

  /** A previous run killed with the address held leaves it for up to its lifetime. */
  private async clearFloating(floating: FloatingAddress): Promise<void> {
    if (await floating.clearStale()) this.log.info('removed a floating address left by an earlier run', { address: floating.address });
    const iface = this.opts.floating?.interface ?? '';
    if ((await preferPrimaryArpSource(iface)) === undefined) {
      this.log.warn('could not set arp_announce=2: after a split brain the router may point at the wrong host for a while', { interface: iface });
    }
  }

  /** The certificate, the ACME duty and the two web applications with their login. */
  private async loadWeb(): Promise<void> {
    const o = this.opts;
    if (o.tls) {
      this.tls = await TlsCredentials.load(
        { logger: this.log.child('tls') },
        { certFile: o.tls.certFile, keyFile: o.tls.keyFile, secret: o.lan.secret, dataDir: o.dataDir },
      );
    }
    // The key the ACME certificate is sealed with for the LAN: no secret, no sharing.
    const sealKey = o.acme && o.lan.secret !== '' ? bundleKey(o.lan.secret) : undefined;
    if (o.acme && this.tls) this.acme = this.makeAcme(o.acme, this.tls, sealKey);
    // Any node takes the representative's certificate, on its own port only.
    const receiver = sealKey ? new BundleReceiver({ logger: this.log.child('acme') }, { key: sealKey, credentials: () => this.tls }) : undefined;
    this.web = await buildWeb(
      { clock: this.clock, logger: this.log.child('portal'), status: () => this.status() },
      {
        password: o.portal?.password ?? '',
        secret: o.lan.secret,
        dataDir: o.dataDir,
        lanOpen: o.portal?.lanOpen ?? false,
        address: o.address,
        gateway: o.gateway,
        camera: o.camera,
        acmeBundle: receiver ? (body, from) => receiver.accept(body, from) : undefined,
      },
    );
  }

  private makeAcme(acme: NonNullable<AgentOptions['acme']>, credentials: TlsCredentials, sealKey: Buffer | undefined): AcmeManager {
    const log = this.log.child('acme');
    if (sealKey === undefined) {
      log.warn("no fleet secret: an ACME certificate would serve the portal only, not the other nodes' pages. Set FRONTDOOR_SECRET to share it");
    }
    return new AcmeManager(
      {
        clock: this.clock,
        logger: log,
        issuer: new AcmeClientIssuer({ logger: log }, { directoryUrl: acme.directoryUrl, dataDir: this.opts.dataDir, email: acme.email }),
        challenges: this.challenges,
        credentials,
        ports: () => (this.router.mapper === undefined ? undefined : this.router.temporary),
        wanAddress: () => this.state.snapshot.wan?.address,
        members: () =>
          this.membership
            .entries()
            .filter((e) => !e.self)
            .map((e) => ({ id: e.id, address: e.info.addresses[0] ?? e.address, port: e.info.localPort })),
        send: sendBundle,
      },
      { names: acme.names, challengePort: acme.challengePort, localPort: this.opts.httpPort, bundleKey: sealKey },
    );
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

  private emit(e: AgentEvent): void {
    this.listeners.emit(e);
  }
}

function lanStats(t: LanTransport | undefined): { dropped: number; received: number } {
  if (!(t instanceof UdpTransport)) return { dropped: 0, received: 0 };
  const s = t.stats();
  // The unicast fallback's second copy of every message is a duplicate by design: counted, it
  // made a healthy fleet report a third of its messages dropped and hid what an attack adds.
  const dropped = Object.entries(s.dropped).reduce((a, [reason, n]) => (reason === 'FD_PEER_DUPLICATE' ? a : a + (n ?? 0)), 0);
  return { dropped, received: s.received };
}
