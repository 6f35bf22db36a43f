import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import type { EmulatorContext } from './emulator-context.js';
import type { DeviceIds } from './igd-description.js';
import { deviceType, paths, serverString, wanCfgServiceType, wanIpcServiceType } from './igd-description.js';
import { isLoopbackV4 } from './loopback.js';

interface KnownType {
  /** Without the version number, as minissdp.c compares a prefix. */
  prefix: string;
  version: number;
  uuid: keyof DeviceIds;
}

/**
 * Answers unicast M-SEARCH like miniupnpd's minissdp.c: one answer per matching device or
 * service type, the ST echoed in the version searched (SSDP_RESPOND_SAME_VERSION, the default
 * build), and for ssdp:all every type plus the three device UUIDs. No NOTIFY: the emulator is
 * searched for, it does not advertise (that would need multicast beyond loopback).
 */
export class SsdpResponder {
  private readonly ctx: EmulatorContext;
  private readonly ids: DeviceIds;
  private readonly httpPort: () => number;
  private socket: Socket | undefined;
  private replySocket: Socket | undefined;
  private replySocketPort: number | undefined;

  constructor(ctx: EmulatorContext, ids: DeviceIds, httpPort: () => number) {
    this.ctx = ctx;
    this.ids = ids;
    this.httpPort = httpPort;
  }

  get port(): number {
    return this.socket?.address().port ?? 0;
  }

  async start(port: number): Promise<void> {
    if (this.socket !== undefined) return;
    const socket = createSocket({ type: 'udp4' });
    this.socket = socket;
    socket.on('error', (err) => this.ctx.logger.warn('ssdp socket error', { error: err }));
    socket.on('message', (msg, rinfo) => {
      try {
        this.onMessage(msg, rinfo.address, rinfo.port);
      } catch (err) {
        this.ctx.logger.error('ssdp message failed', { error: err });
      }
    });
    await bind(socket, port, this.ctx.settings.address);
  }

  async stop(): Promise<void> {
    const sockets = [this.socket, this.replySocket];
    this.socket = undefined;
    this.replySocket = undefined;
    this.replySocketPort = undefined;
    await Promise.all(sockets.map((s) => (s === undefined ? undefined : new Promise<void>((r) => s.close(() => r())))));
  }

  private knownTypes(): KnownType[] {
    const v = this.ctx.settings.igdVersion;
    const strip = (t: string) => t.slice(0, t.lastIndexOf(':') + 1);
    return [
      { prefix: 'upnp:rootdevice', version: 0, uuid: 'igd' },
      { prefix: strip(deviceType('InternetGatewayDevice', v)), version: v, uuid: 'igd' },
      { prefix: strip(deviceType('WANConnectionDevice', v)), version: v, uuid: 'wcd' },
      { prefix: strip(deviceType('WANDevice', v)), version: v, uuid: 'wan' },
      { prefix: strip(wanIpcServiceType(v)), version: v, uuid: 'wcd' },
      { prefix: strip(wanCfgServiceType), version: 1, uuid: 'wan' },
    ];
  }

  private onMessage(msg: Buffer, address: string, port: number): void {
    // get_lan_for_peer(): only LAN hosts are answered; here the LAN is loopback.
    if (!isLoopbackV4(address) || port === 0) return;
    const text = msg.toString('latin1');
    if (!text.startsWith('M-SEARCH')) return;
    let st: string | undefined;
    for (const line of text.split('\r\n').slice(1)) {
      if (line.slice(0, 3).toLowerCase() === 'st:') st = line.slice(3).replace(/^[ \t]+/, '');
    }
    if (st === undefined || st.length === 0) return;
    const v = this.ctx.settings.igdVersion;
    const stVersion = Number.parseInt(st.slice(st.lastIndexOf(':') + 1), 10) || 0;
    const answers: Array<[st: string, uuid: string]> = [];
    for (const k of this.knownTypes()) {
      if (!st.startsWith(k.prefix)) continue;
      // A truly IGDv1-only router does not answer searches for version 2 types (a miniupnpd
      // with force_igd_desc_v1 still does: see real-router.md).
      if (v === 1 && stVersion > k.version) continue;
      answers.push([st, this.ids[k.uuid]]);
      break;
    }
    if (st === 'ssdp:all') {
      for (const k of this.knownTypes()) {
        answers.push([k.version === 0 ? k.prefix : `${k.prefix}${k.version}`, this.ids[k.uuid]]);
      }
      for (const id of [this.ids.igd, this.ids.wan, this.ids.wcd]) answers.push([`uuid:${id}`, id]);
    } else {
      for (const id of [this.ids.igd, this.ids.wan, this.ids.wcd]) {
        if (st === `uuid:${id}`) answers.push([st, id]);
      }
    }
    if (answers.length === 0) return;
    void this.reply(answers, address, port);
  }

  private async reply(answers: Array<[string, string]>, address: string, port: number): Promise<void> {
    const socket = await this.sendingSocket();
    if (socket === undefined) return;
    const s = this.ctx.settings;
    const host = s.locationHost ?? s.address;
    const boot = this.ctx.bootId();
    for (const [st, uuid] of answers) {
      const usn = st === `uuid:${uuid}` ? st : `uuid:${uuid}::${st}`;
      const packet =
        'HTTP/1.1 200 OK\r\n' +
        'CACHE-CONTROL: max-age=120\r\n' +
        `ST: ${st}\r\n` +
        `USN: ${usn}\r\n` +
        'EXT:\r\n' +
        `SERVER: ${serverString}\r\n` +
        `LOCATION: http://${host}:${this.httpPort()}${paths.rootDesc}\r\n` +
        'OPT: "http://schemas.upnp.org/upnp/1/0/"; ns=01\r\n' +
        `01-NLS: ${boot}\r\n` +
        `BOOTID.UPNP.ORG: ${boot}\r\n` +
        'CONFIGID.UPNP.ORG: 1337\r\n' +
        '\r\n';
      socket.send(packet, port, address, (err) => {
        if (err) this.ctx.logger.debug('ssdp reply failed', { error: err });
      });
    }
  }

  /** The search socket, or (quirk) a second socket so the answer comes from another port. */
  private async sendingSocket(): Promise<Socket | undefined> {
    const want = this.ctx.settings.ssdpReplyPort;
    if (want === undefined) return this.socket;
    if (this.replySocket !== undefined && this.replySocketPort === want) return this.replySocket;
    const old = this.replySocket;
    this.replySocket = undefined;
    old?.close();
    const socket = createSocket({ type: 'udp4' });
    socket.on('error', (err) => this.ctx.logger.warn('ssdp reply socket error', { error: err }));
    try {
      await bind(socket, want, this.ctx.settings.address);
    } catch (err) {
      this.ctx.logger.warn('cannot bind the ssdp reply port', { port: want, error: err });
      socket.close();
      return undefined;
    }
    if (this.socket === undefined) {
      socket.close();
      return undefined;
    }
    this.replySocket = socket;
    this.replySocketPort = want;
    return socket;
  }
}

export function bind(socket: Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    socket.once('error', onError);
    socket.bind(port, address, () => {
      socket.off('error', onError);
      resolve();
    });
  });
}
