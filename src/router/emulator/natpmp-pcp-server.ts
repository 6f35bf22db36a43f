import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import type { TransportProtocol } from '../types.js';
import type { EmulatorContext } from './emulator-context.js';
import { permitted } from './emulator-context.js';
import { isLoopbackV4 } from './loopback.js';
import { bind } from './ssdp-responder.js';

/** PCP result codes (RFC 6887 7.4). */
const pcp = {
  success: 0,
  unsuppVersion: 1,
  notAuthorized: 2,
  malformedRequest: 3,
  unsuppOpcode: 4,
  unsuppOption: 5,
  malformedOption: 6,
  noResources: 8,
  unsuppProtocol: 9,
  cannotProvideExternal: 11,
  addressMismatch: 12,
} as const;

/** miniupnpd's defaults (min_lifetime 120, max_lifetime 86400): a 60 s request gets 120 s. */
const pcpMinLifetime = 120;
const pcpMaxLifetime = 86400;
const pcpMaxLength = 1100;
const pcpServerVersion = 2;

interface PcpRequest {
  version: number;
  opcode: number;
  lifetime: number;
  result: number;
  nonce: Buffer;
  protocol: number;
  internalPort: number;
  externalPort: number;
  preferFailure: boolean;
  thirdParty: boolean;
  /** Offset of the opcode-specific fields in the packet. */
  bodyOffset: number;
}

/**
 * NAT-PMP (RFC 6886) and PCP (RFC 6887) on one UDP port, dispatched on the version byte as
 * miniupnpd does (version 0 is NAT-PMP, anything else PCP), with the decisions of natpmp.c and
 * pcpserver.c: a taken external port is never refused but substituted by the next free one, and
 * the mappings land in the same table UPnP lists.
 */
export class NatPmpPcpServer {
  private readonly ctx: EmulatorContext;
  private socket: Socket | undefined;

  constructor(ctx: EmulatorContext) {
    this.ctx = ctx;
  }

  get port(): number {
    return this.socket?.address().port ?? 0;
  }

  async start(port: number): Promise<void> {
    if (this.socket !== undefined) return;
    const socket = createSocket({ type: 'udp4' });
    this.socket = socket;
    socket.on('error', (err) => this.ctx.logger.warn('natpmp/pcp socket error', { error: err }));
    socket.on('message', (msg, rinfo) => {
      try {
        const reply = this.handle(msg, rinfo.address);
        if (reply !== undefined && rinfo.port !== 0) {
          socket.send(reply, rinfo.port, rinfo.address, (err) => {
            if (err) this.ctx.logger.debug('natpmp/pcp reply failed', { error: err });
          });
        }
      } catch (err) {
        this.ctx.logger.error('natpmp/pcp packet failed', { error: err });
      }
    });
    await bind(socket, port, this.ctx.settings.address);
  }

  async stop(): Promise<void> {
    const s = this.socket;
    this.socket = undefined;
    if (s !== undefined) await new Promise<void>((r) => s.close(() => r()));
  }

  /** The answer to one datagram, or undefined to stay silent. Exposed for tests. */
  handle(msg: Buffer, sender: string): Buffer | undefined {
    // Only LAN peers (get_lan_for_peer); for the emulator the LAN is loopback.
    if (!isLoopbackV4(sender) || msg.length < 1) return undefined;
    const { natpmp, pcp: pcpOn } = this.ctx.settings;
    if (msg[0] === 0) {
      if (natpmp) return this.natpmp(msg, sender);
      if (pcpOn) return this.pcpUnsupportedVersion(msg);
      return undefined;
    }
    if (pcpOn) return this.pcp(msg, sender);
    // A NAT-PMP-only server answers any other version with "unsupported version" (RFC 6886 3.5),
    // which a PCP client reads as "fall back to NAT-PMP" (RFC 6887 9).
    if (natpmp) return this.natpmp(msg, sender);
    return undefined;
  }

  private natpmp(req: Buffer, sender: string): Buffer | undefined {
    const op = req[1] ?? 0;
    if (req.length < 2 || ((op === 1 || op === 2) && req.length < 12)) return undefined;
    if (op & 128) return undefined;
    const resp = Buffer.alloc(16);
    let len = 8;
    resp[0] = 0;
    resp[1] = 128 + op;
    resp.writeUInt32BE(this.ctx.epochSeconds() >>> 0, 4);
    if (req[0] !== 0) {
      resp.writeUInt16BE(1, 2);
    } else if (op === 0) {
      writeV4(resp, 8, this.ctx.settings.wanAddress);
      len = 12;
    } else if (op === 1 || op === 2) {
      const proto: TransportProtocol = op === 1 ? 'UDP' : 'TCP';
      const iport = req.readUInt16BE(4);
      let eport = req.readUInt16BE(6);
      const lifetime = req.readUInt32BE(8);
      const { table, settings, clock } = this.ctx;
      if (lifetime === 0) {
        // RFC 6886 3.4: delete; iport 0 deletes all of this client's NAT-PMP mappings.
        eport = 0;
        for (const e of table.list()) {
          if (e.internalClient !== sender || !e.description.startsWith('NAT-PMP')) continue;
          if (iport === 0 || (iport === e.internalPort && proto === e.protocol)) table.delete(e.protocol, e.externalPort);
        }
      } else if (iport === 0) {
        resp.writeUInt16BE(2, 2);
      } else {
        if (eport === 0) eport = iport;
        const first = eport;
        let anyAllowed = false;
        for (let tried = 0; ; tried++) {
          if (tried > 0 && eport === first) {
            resp.writeUInt16BE(anyAllowed ? 4 : 2, 2);
            break;
          }
          if (!permitted(settings, eport, iport)) {
            eport = nextPort(eport);
            continue;
          }
          anyAllowed = true;
          const old = table.get(proto, eport);
          if (old !== undefined && !(old.internalClient === sender && old.internalPort === iport)) {
            eport = nextPort(eport);
            continue;
          }
          // natpmp.c: the same client and port renews by delete-then-add.
          table.set({
            protocol: proto,
            externalPort: eport,
            internalClient: sender,
            internalPort: iport,
            description: `NAT-PMP ${eport} ${proto.toLowerCase()}`,
            expiresAt: clock.now() + lifetime * 1000,
            via: 'natpmp',
          });
          break;
        }
      }
      resp.writeUInt16BE(iport, 8);
      resp.writeUInt16BE(eport, 10);
      resp.writeUInt32BE(lifetime, 12);
      len = 16;
    } else {
      resp.writeUInt16BE(5, 2);
    }
    return resp.subarray(0, len);
  }

  /** A PCP-only server meeting a NAT-PMP request: UNSUPP_VERSION with the version it speaks. */
  private pcpUnsupportedVersion(req: Buffer): Buffer | undefined {
    if (req.length < 2 || (req[1]! & 128) !== 0) return undefined;
    const resp = Buffer.alloc(24);
    resp[0] = pcpServerVersion;
    resp[1] = (req[1]! & 0x7f) | 0x80;
    resp[3] = pcp.unsuppVersion;
    resp.writeUInt32BE(this.ctx.epochSeconds() >>> 0, 8);
    return resp;
  }

  private pcp(msg: Buffer, sender: string): Buffer | undefined {
    if (msg.length < 2 || (msg[1]! & 128) !== 0) return undefined;
    if (msg.length < 3) return undefined;
    // The answer is the request, rewritten in place, as pcpserver.c does: options and nonce echo.
    const len = msg.length < 24 ? 24 : Math.min((msg.length + 3) & ~3, pcpMaxLength + 4);
    const buf = Buffer.alloc(len);
    msg.copy(buf, 0, 0, Math.min(msg.length, len));
    const req: PcpRequest = {
      version: 0,
      opcode: 0,
      lifetime: 0,
      result: pcp.success,
      nonce: Buffer.alloc(12),
      protocol: 0,
      internalPort: 0,
      externalPort: 0,
      preferFailure: false,
      thirdParty: false,
      bodyOffset: 24,
    };
    let externalIp = Buffer.alloc(16);
    const run = (): void => {
      if (msg.length < 24 || msg.length > pcpMaxLength || (msg.length & 3) !== 0) {
        req.result = pcp.malformedRequest;
        return;
      }
      req.version = msg[0]!;
      req.opcode = msg[1]! & 0x7f;
      req.lifetime = msg.readUInt32BE(4);
      if (req.version > pcpServerVersion) {
        req.result = pcp.unsuppVersion;
        return;
      }
      if (req.lifetime > pcpMaxLifetime) req.lifetime = pcpMaxLifetime;
      if (req.lifetime < pcpMinLifetime && req.lifetime !== 0) req.lifetime = pcpMinLifetime;
      if (req.version !== 1 && req.version !== 2) {
        req.result = pcp.unsuppVersion;
        return;
      }
      if (req.version === 2 && req.opcode === 0) return; // ANNOUNCE
      if (req.opcode !== 1) {
        req.result = pcp.unsuppOpcode;
        return;
      }
      const size = req.version === 1 ? 24 : 36;
      if (msg.length - 24 < size) {
        req.result = pcp.malformedRequest;
        return;
      }
      const o = 24 + (req.version === 1 ? -12 : 0);
      if (req.version === 2) msg.copy(req.nonce, 0, 24, 36);
      req.protocol = msg[o + 12]!;
      req.internalPort = msg.readUInt16BE(o + 16);
      req.externalPort = msg.readUInt16BE(o + 18);
      externalIp = Buffer.from(msg.subarray(o + 20, o + 36));
      this.pcpOptions(msg, 24 + size, req);
      if (req.result !== pcp.success) return;
      this.pcpMap(msg, sender, req, externalIp);
    };
    run();
    const ext = this.wanMapped();
    buf[0] = req.result === pcp.unsuppVersion ? pcpServerVersion : req.version;
    buf[1] = req.opcode | 0x80;
    buf[2] = 0;
    buf[3] = req.result;
    const errorLifetime = req.result === pcp.noResources ? 30 : 0;
    buf.writeUInt32BE(req.result === pcp.success ? req.lifetime : errorLifetime, 4);
    buf.writeUInt32BE(this.ctx.epochSeconds() >>> 0, 8);
    buf.fill(0, 12, 24);
    if (req.opcode === 1 && (buf[0] === 1 || buf[0] === 2) && req.bodyOffset >= 0 && buf.length >= (buf[0] === 1 ? 48 : 60)) {
      const o = buf[0] === 1 ? 12 : 24;
      buf.writeUInt16BE(req.internalPort, o + 16);
      buf.writeUInt16BE(req.externalPort, o + 18);
      ext.copy(buf, o + 20);
    }
    return buf;
  }

  private pcpOptions(msg: Buffer, start: number, req: PcpRequest): void {
    let at = start;
    while (at < msg.length) {
      const remain = msg.length - at;
      if (remain < 4) {
        req.result = pcp.malformedOption;
        return;
      }
      const code = msg[at]!;
      const optLen = msg.readUInt16BE(at + 2) + 4;
      if (remain < optLen) {
        req.result = pcp.malformedOption;
        return;
      }
      if (code === 1) {
        // THIRD_PARTY: miniupnpd refuses it unless allow_third_party is set (it is not).
        if (optLen !== 20 || req.thirdParty) {
          req.result = pcp.malformedOption;
          return;
        }
        req.thirdParty = true;
      } else if (code === 2) {
        if (optLen !== 4 || req.preferFailure) {
          req.result = pcp.malformedOption;
          return;
        }
        req.preferFailure = true;
      } else if (code === 3) {
        if (optLen !== 24) {
          req.result = pcp.malformedOption;
          return;
        }
      } else if (code < 128) {
        req.result = pcp.unsuppOption;
      }
      at += optLen;
    }
  }

  private pcpMap(msg: Buffer, sender: string, req: PcpRequest, suggestedExt: Buffer): void {
    const { table, settings, clock } = this.ctx;
    // RFC 6887 8.2: the client's own idea of its address must be the one we see.
    if (!msg.subarray(8, 24).equals(mapped(sender))) {
      req.result = pcp.addressMismatch;
      return;
    }
    if (req.thirdParty) {
      req.result = pcp.unsuppOption;
      return;
    }
    if (req.protocol === 0 && req.internalPort !== 0) {
      req.result = pcp.malformedRequest;
      return;
    }
    const unspecified = suggestedExt.equals(Buffer.alloc(16)) || suggestedExt.equals(mapped('0.0.0.0'));
    if (req.preferFailure && unspecified && req.externalPort === 0) {
      req.result = pcp.malformedOption;
      return;
    }
    if (!unspecified && !suggestedExt.equals(this.wanMapped()) && req.preferFailure) {
      req.result = pcp.cannotProvideExternal;
      return;
    }
    const proto: TransportProtocol | undefined = req.protocol === 6 ? 'TCP' : req.protocol === 17 ? 'UDP' : undefined;
    const desc = `PCP MAP ${req.nonce.toString('hex')}`;
    if (req.lifetime === 0) {
      // DeletePCPMap: the first rule of this client (and port, unless 0) must carry our nonce.
      for (const e of table.list()) {
        if (e.internalClient !== sender || e.protocol !== proto) continue;
        if (e.internalPort !== req.internalPort && req.internalPort !== 0) continue;
        if (e.description !== desc) {
          req.result = pcp.notAuthorized;
          return;
        }
        table.delete(e.protocol, e.externalPort);
        return;
      }
      // miniupnpd 2.3.1 answers NO_RESOURCES when there was nothing to delete.
      req.result = pcp.noResources;
      return;
    }
    if (proto === undefined) {
      req.result = pcp.unsuppProtocol;
      return;
    }
    if (req.externalPort === 0) req.externalPort = req.internalPort;
    if (req.externalPort === 0) {
      req.result = pcp.malformedRequest;
      return;
    }
    const first = req.externalPort;
    let anyAllowed = false;
    for (let tried = 0; ; tried++) {
      if (tried > 0 && req.externalPort === first) {
        req.result = anyAllowed ? pcp.noResources : pcp.notAuthorized;
        return;
      }
      if (!permitted(settings, req.externalPort, req.internalPort)) {
        // PREFER_FAILURE is honoured only for ports the allow/deny rules refuse.
        if (req.preferFailure) {
          req.result = pcp.cannotProvideExternal;
          return;
        }
        req.externalPort = nextPort(req.externalPort);
        continue;
      }
      anyAllowed = true;
      const old = table.get(proto, req.externalPort);
      // Measured on miniupnpd 2.3.1: a port held by another mapping is substituted even under
      // PREFER_FAILURE (its port_in_use() check runs first and just moves on).
      if (old !== undefined && !(old.internalClient === sender && old.internalPort === req.internalPort)) {
        req.externalPort = nextPort(req.externalPort);
        continue;
      }
      table.set({
        protocol: proto,
        externalPort: req.externalPort,
        internalClient: sender,
        internalPort: req.internalPort,
        description: desc,
        expiresAt: clock.now() + req.lifetime * 1000,
        via: 'pcp',
      });
      return;
    }
  }

  private wanMapped(): Buffer {
    return mapped(this.ctx.settings.wanAddress);
  }
}

function nextPort(p: number): number {
  const n = (p + 1) & 0xffff;
  return n === 0 ? 1 : n;
}

function writeV4(buf: Buffer, at: number, addr: string): void {
  const parts = addr.split('.').map(Number);
  for (let i = 0; i < 4; i++) buf[at + i] = parts[i] ?? 0;
}

/** IPv4-mapped IPv6 (::ffff:a.b.c.d), the form PCP carries IPv4 addresses in. */
function mapped(addr: string): Buffer {
  const b = Buffer.alloc(16);
  b[10] = 0xff;
  b[11] = 0xff;
  writeV4(b, 12, addr);
  return b;
}
