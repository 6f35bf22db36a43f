import type { AcmeManager } from '../acme/manager.js';
import type { BecameRepresentative, RoleChange } from '../election/election-node.js';
import type { FloatingAddress } from '../floating-address/floating-address.js';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/log.js';
import type { NodeState } from './node-state.js';
import { hostPort } from '../runtime/urls.js';

/**
 * What the representative does besides holding the port, in one place: serve the portal, get
 * the ACME certificate, hold the floating address. The election says when (these are its
 * hooks); the order inside each step is what makes a failover clean, so each is awaited.
 */

/** The portal's listener: the well-known port's local side. */
export interface PortalListener {
  openPortal(): Promise<void>;
  closePortal(): Promise<void>;
}

export interface DutiesComponents {
  clock: Clock;
  logger: Logger;
  state: NodeState;
  portal: PortalListener;
  /** The ACME certificate's duty (undefined: none). */
  acme?: AcmeManager | undefined;
  /** The spare LAN address the well-known port is mapped to (undefined: none). */
  floating?: FloatingAddress | undefined;
  /** A look at the router now, so a new representative's page shows the table at once. */
  checkRouter: () => void;
  /** The portal would not open: the role must go to a node that can serve it. */
  cannotServe: (error: unknown) => void;
}

export interface DutiesInit {
  scheme: 'http' | 'https';
  wellKnownPort: number;
  portalPort: number;
}

/** After a split brain the gratuitous ARP is sent now and again after these delays. */
const REASSERT_AGAIN_MS = [500, 1500, 3000];

export class RepresentativeDuties {
  private readonly c: DutiesComponents;
  private readonly init: DutiesInit;
  private readonly log: Logger;

  constructor(components: DutiesComponents, init: DutiesInit) {
    this.c = components;
    this.init = init;
    this.log = components.logger;
  }

  private get representative(): boolean {
    return this.c.state.snapshot.role === 'representative';
  }

  /** The router granted the well-known port: serve it. */
  async becameRepresentative(_e?: BecameRepresentative): Promise<void> {
    try {
      await this.c.portal.openPortal();
    } catch (err) {
      // Another program on the portal's port: the internet, forwarded here, would see it.
      this.c.cannotServe(err);
      return;
    }
    this.c.acme?.start();
    this.c.checkRouter();
    const wan = this.c.state.snapshot.wan?.address;
    this.log.info('serving the portal', {
      url: wan ? `${this.init.scheme}://${hostPort(wan, this.init.wellKnownPort)}/` : undefined,
      localPort: this.init.portalPort,
    });
  }

  /** The role ended (or the node stops): stop serving before anyone else may take the port. */
  async steppedDown(reason: string): Promise<void> {
    await this.c.portal.closePortal();
    void this.c.acme?.stop();
    // Before the withdraw goes out: the heir takes the address as soon as it hears it.
    await this.c.floating?.drop().catch((err: unknown) => this.log.warn('could not drop the floating address', { error: err }));
    this.log.info('stopped serving the portal', { reason });
  }

  roleChanged(c: RoleChange): void {
    const floating = this.c.floating;
    if (floating?.held && c.from === 'candidate' && c.to === 'follower') {
      // A floating claim that did not end in the role (the router unreachable, another node
      // announced): the address and the early-opened portal must not stay with us.
      void floating.drop().catch(() => {});
      void this.c.portal.closePortal();
    }
  }

  /**
   * Floating mode: the router forwards to whoever holds the address from its gratuitous ARP on,
   * so the portal must listen before the address is taken.
   */
  async takingFloating(): Promise<void> {
    try {
      await this.c.portal.openPortal();
    } catch (err) {
      this.c.cannotServe(err);
      throw err;
    }
  }

  /** Floating mode: the take did not end in the role. */
  async gaveUpFloating(): Promise<void> {
    if (!this.representative) await this.c.portal.closePortal();
  }

  /** The floating address went away while representative (refreshes stalled, someone removed it). */
  floatingLost(reason: string): void {
    const floating = this.c.floating;
    if (floating === undefined || !this.representative) return;
    this.log.warn('the floating address went away while representative; taking it again', { reason });
    floating.take().catch((err: unknown) => this.log.error('could not take the floating address back', { error: err }));
  }

  /**
   * After a split brain: gratuitous ARPs now and twice more, since the other holder may answer an
   * ARP request from the router before it hears our newer term and drops the address, leaving the
   * router pointed at a host that no longer has it.
   */
  reassert(): void {
    const floating = this.c.floating;
    if (floating === undefined) return;
    const again = () => {
      if (!this.representative || !floating.held) return;
      floating.announce().catch((err: unknown) => this.log.warn('could not announce the floating address', { error: err }));
    };
    again();
    for (const ms of REASSERT_AGAIN_MS) this.c.clock.setTimeout(again, ms);
  }
}
