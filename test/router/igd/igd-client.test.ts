import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  AbortedError,
  BadResponseError,
  NoGatewayError,
  NotAuthorizedError,
  PortConflictError,
  PortRefusedError,
  RouterError,
  RouterTimeoutError,
  UnsupportedError,
  UpnpError,
} from '../../../src/router/errors.js';
import { IgdClient } from '../../../src/router/igd/igd-client.js';
import type { Logger, LogFields } from '../../../src/runtime/log.js';
import type { MappingRequest } from '../../../src/router/types.js';
import { miniupnpdDescription, portMappingList, soapFault, soapResponse } from './fixtures.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { freeTcpPort } from '../../helpers/free-port.js';

interface Call {
  action: string;
  serviceType: string;
  args: Map<string, string>;
  path: string;
}

type Reply = { status?: number; body: string } | 'hang' | 'huge';
type Handler = (call: Call, n: number) => Reply;

/**
 * A minimal router: serves a description at /rootDesc.xml and answers SOAP on /ctl/IPConn
 * through a handler each test sets. Just enough of miniupnpd's behaviour to drive the client.
 */
class FakeIgd {
  server: Server;
  port = 0;
  calls: Call[] = [];
  description = miniupnpdDescription();
  handler: Handler = () => ({ status: 500, body: soapFault(401, 'Invalid Action') });
  private hanging: ServerResponse[] = [];

  constructor() {
    this.server = createServer((req, res) => void this.serve(req, res));
  }

  async start(): Promise<void> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as AddressInfo).port;
  }

  get location(): string {
    return `http://127.0.0.1:${this.port}/rootDesc.xml`;
  }

  reset(): void {
    this.calls = [];
    this.description = miniupnpdDescription();
    for (const r of this.hanging) r.destroy();
    this.hanging = [];
  }

  async stop(): Promise<void> {
    this.reset();
    this.server.closeAllConnections();
    this.server.close();
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    if (req.method === 'GET' && req.url === '/rootDesc.xml') {
      res.writeHead(200, { 'content-type': 'text/xml' }).end(this.description);
      return;
    }
    if (req.method !== 'POST' || req.url !== '/ctl/IPConn') {
      res.writeHead(404).end('not found');
      return;
    }
    const soapAction = /^"?([^#"]*)#([^"]*)"?$/.exec(String(req.headers['soapaction'] ?? ''));
    const args = new Map<string, string>();
    for (const m of body.matchAll(/<(New\w+)>([^<]*)<\/\1>/g)) args.set(m[1]!, m[2]!);
    const call: Call = { action: soapAction?.[2] ?? '', serviceType: soapAction?.[1] ?? '', args, path: req.url };
    this.calls.push(call);
    const reply = this.handler(call, this.calls.length);
    if (reply === 'hang') {
      this.hanging.push(res);
      return;
    }
    if (reply === 'huge') {
      // Streams forever (chunked, no length): the client has to cut it off.
      res.writeHead(200, { 'content-type': 'text/xml' });
      const chunk = Buffer.alloc(64 * 1024, 'a');
      const pump = () => {
        while (!res.destroyed && res.write(chunk)) {
          /* fill the buffer */
        }
        if (!res.destroyed) res.once('drain', pump);
      };
      res.on('close', () => res.removeAllListeners('drain'));
      pump();
      return;
    }
    res.writeHead(reply.status ?? 200, { 'content-type': 'text/xml; charset="utf-8"' }).end(reply.body);
  }
}

const WANIP2 = 'urn:schemas-upnp-org:service:WANIPConnection:2';
const ok = (action: string, inner = '') => ({ body: soapResponse(action, WANIP2, inner) });
const fault = (code: number, desc = 'x') => ({ status: 500, body: soapFault(code, desc) });

class RecordingLogger implements Logger {
  lines: Array<{ level: string; msg: string; fields?: LogFields }> = [];
  debug = (msg: string, fields?: LogFields) => void this.lines.push({ level: 'debug', msg, fields });
  info = (msg: string, fields?: LogFields) => void this.lines.push({ level: 'info', msg, fields });
  warn = (msg: string, fields?: LogFields) => void this.lines.push({ level: 'warn', msg, fields });
  error = (msg: string, fields?: LogFields) => void this.lines.push({ level: 'error', msg, fields });
  child = () => this;
}

const req = (over: Partial<MappingRequest> = {}): MappingRequest => ({
  externalPort: 8080,
  internalPort: 8080,
  protocol: 'TCP',
  leaseSeconds: 3600,
  description: 'frontdoor <test> & co',
  ...over,
});

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 5000; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  assert.fail(`never happened: ${what}`);
}


const fake = new FakeIgd();
before(() => fake.start());
after(() => fake.stop());
beforeEach(() => fake.reset());

async function connect(opts: { logger?: Logger; clock?: ManualClock } = {}): Promise<IgdClient> {
  return IgdClient.connect({ location: fake.location, localAddress: '127.0.0.1', ...opts });
}

describe('IgdClient.connect', () => {
  it('reads the description: IGDv2, control URL, gateway', async () => {
    const logger = new RecordingLogger();
    const c = await connect({ logger });
    assert.equal(c.protocol, 'upnp-igd2');
    assert.equal(c.gateway, '127.0.0.1');
    assert.equal(c.localAddress, '127.0.0.1');
    assert.equal(c.canList, true);
    assert.equal(c.description.service.controlUrl, `http://127.0.0.1:${fake.port}/ctl/IPConn`);
    assert.equal(c.controlUrl, `http://127.0.0.1:${fake.port}/ctl/IPConn`);
    assert.equal(c.serviceType, WANIP2);
    assert.ok(logger.lines.some((l) => l.level === 'info' && l.fields?.['protocol'] === 'upnp-igd2'));
  });

  it('IGDv1 description gives upnp-igd1 and v1 SOAPActions', async () => {
    fake.description = miniupnpdDescription().replace(/WANIPConnection:2/g, 'WANIPConnection:1').replace(/Device:2/g, 'Device:1');
    fake.handler = (c) => ok(c.action, '<NewExternalIPAddress>203.0.114.1</NewExternalIPAddress>');
    const c = await connect();
    assert.equal(c.protocol, 'upnp-igd1');
    await c.externalAddress();
    assert.equal(fake.calls[0]!.serviceType, 'urn:schemas-upnp-org:service:WANIPConnection:1');
  });

  it('quirk: a URLBase on another host is pinned to the host that served the description', async () => {
    fake.description = miniupnpdDescription().replace('<specVersion>', `<URLBase>http://127.0.0.99:${fake.port}/</URLBase><specVersion>`);
    fake.handler = (c) => ok(c.action, '<NewExternalIPAddress>203.0.114.1</NewExternalIPAddress>');
    const c = await connect();
    assert.equal(c.description.service.controlUrl, `http://127.0.0.1:${fake.port}/ctl/IPConn`);
    assert.equal(await c.externalAddress(), '203.0.114.1');
  });

  it('a description that is not one is a BadResponseError; a 404 a RouterError', async () => {
    fake.description = '<html>hello</html>';
    await assert.rejects(connect(), BadResponseError);
    await assert.rejects(
      IgdClient.connect({ location: `http://127.0.0.1:${fake.port}/nope.xml`, localAddress: '127.0.0.1' }),
      (e: RouterError) => e.name === 'RouterError' && e.code === 'FD_ROUTER_ERROR',
    );
  });

  it('nothing listening is a RouterError, not a raw exception', async () => {
    const port = await freeTcpPort();
    await assert.rejects(
      IgdClient.connect({ location: `http://127.0.0.1:${port}/rootDesc.xml`, localAddress: '127.0.0.1' }),
      (e: RouterError) => e instanceof RouterError && e.code === 'FD_ROUTER_ERROR',
    );
  });
});

describe('IgdClient.connectFirst', () => {
  it('skips a LOCATION that fails and connects to the next (the rewritten one)', async () => {
    const deadPort = await freeTcpPort();
    const c = await IgdClient.connectFirst(
      [`http://127.0.0.1:${deadPort}/rootDesc.xml`, 'http://127.0.0.1:1/not-http', fake.location],
      { localAddress: '127.0.0.1' },
    );
    assert.equal(c.description.location, fake.location);
  });

  it('with every candidate failing, rejects with the last failure; with none, NoGatewayError', async () => {
    fake.description = '<root/>';
    await assert.rejects(IgdClient.connectFirst([fake.location], { localAddress: '127.0.0.1' }), BadResponseError);
    await assert.rejects(IgdClient.connectFirst([], { localAddress: '127.0.0.1' }), NoGatewayError);
  });

  it('an abort stops the walk', async () => {
    const reason = new AbortedError('stop');
    await assert.rejects(
      IgdClient.connectFirst([fake.location], { localAddress: '127.0.0.1', signal: AbortSignal.abort(reason) }),
      (e) => e === reason,
    );
  });
});

describe('IgdClient.externalAddress', () => {
  it('returns the address', async () => {
    fake.handler = (c) => ok(c.action, '<NewExternalIPAddress>203.0.114.1</NewExternalIPAddress>');
    const c = await connect();
    assert.equal(await c.externalAddress(), '203.0.114.1');
    assert.equal(fake.calls[0]!.action, 'GetExternalIPAddress');
    assert.equal(fake.calls[0]!.serviceType, WANIP2);
  });

  it('an empty address (WAN down, or hidden because private) is a NoWanAddressError, garbage a BadResponseError', async () => {
    const c = await connect();
    fake.handler = (call) => ok(call.action, '<NewExternalIPAddress></NewExternalIPAddress>');
    await assert.rejects(c.externalAddress(), (e: RouterError) => e.name === 'NoWanAddressError' && e.code === 'FD_NO_WAN_ADDRESS');
    fake.handler = (call) => ok(call.action, '<NewExternalIPAddress>&lt;script&gt;</NewExternalIPAddress>');
    await assert.rejects(c.externalAddress(), BadResponseError);
  });

  it('an HTTP error without SOAP is a RouterError', async () => {
    const c = await connect();
    fake.handler = () => ({ status: 401, body: 'Unauthorized' });
    await assert.rejects(c.externalAddress(), (e: RouterError) => e.name === 'RouterError' && /HTTP 401/.test(e.message));
  });
});

describe('IgdClient.tableAge', () => {
  it('is GetStatusInfo\'s uptime; a router without the action or the field does not say; garbage is a BadResponseError', async () => {
    const c = await connect();
    fake.handler = (call) => ok(call.action, '<NewConnectionStatus>Connected</NewConnectionStatus><NewUptime> 86400 </NewUptime>');
    assert.equal(await c.tableAge(), 86400);
    assert.equal(fake.calls.at(-1)!.action, 'GetStatusInfo');
    fake.handler = () => fault(401, 'Invalid Action');
    assert.equal(await c.tableAge(), undefined);
    fake.handler = (call) => ok(call.action, '<NewConnectionStatus>Connected</NewConnectionStatus>');
    assert.equal(await c.tableAge(), undefined);
    fake.handler = (call) => ok(call.action, '<NewUptime>-3</NewUptime>');
    await assert.rejects(c.tableAge(), BadResponseError);
  });
});

describe('IgdClient.claim', () => {
  it('sends AddPortMapping with the exact port, our address and the caller’s lease', async () => {
    fake.handler = (c) => ok(c.action);
    const c = await connect();
    const m = await c.claim(req({ leaseSeconds: 0 }));
    const call = fake.calls[0]!;
    assert.equal(call.action, 'AddPortMapping');
    assert.deepEqual(Object.fromEntries(call.args), {
      NewRemoteHost: '',
      NewExternalPort: '8080',
      NewProtocol: 'TCP',
      NewInternalPort: '8080',
      NewInternalClient: '127.0.0.1',
      NewEnabled: '1',
      NewPortMappingDescription: 'frontdoor &lt;test&gt; &amp; co',
      // IGDv2: 0 is what the caller asked; miniupnpd makes it a week, we do not pre-empt that.
      NewLeaseDuration: '0',
    });
    assert.deepEqual(m, {
      protocol: 'TCP',
      externalPort: 8080,
      internalClient: '127.0.0.1',
      internalPort: 8080,
      leaseSeconds: 0,
      description: 'frontdoor <test> & co',
      enabled: true,
      remoteHost: '',
      via: 'upnp-igd2',
    });
  });

  it('718 ConflictInMappingEntry and 729 ConflictWithOtherMechanisms are PortConflictError', async () => {
    const c = await connect();
    for (const code of [718, 729]) {
      fake.handler = () => fault(code, 'Conflict');
      await assert.rejects(c.claim(req()), (e: PortConflictError) => {
        assert.ok(e instanceof PortConflictError);
        assert.equal(e.code, 'FD_PORT_CONFLICT');
        assert.equal(e.externalPort, 8080);
        assert.ok(e.cause instanceof UpnpError && e.cause.upnpCode === code);
        return true;
      });
    }
  });

  it('725 OnlyPermanentLeasesSupported: retries with lease 0 once, remembers, logs once', async () => {
    const logger = new RecordingLogger();
    fake.handler = (c) => (c.args.get('NewLeaseDuration') === '0' ? ok(c.action) : fault(725, 'OnlyPermanentLeasesSupported'));
    const c = await connect({ logger });
    const m = await c.claim(req({ leaseSeconds: 120 }));
    assert.equal(m.leaseSeconds, 0);
    assert.deepEqual(
      fake.calls.map((x) => x.args.get('NewLeaseDuration')),
      ['120', '0'],
    );
    await c.claim(req({ leaseSeconds: 120 }));
    assert.deepEqual(
      fake.calls.map((x) => x.args.get('NewLeaseDuration')),
      ['120', '0', '0'],
    );
    assert.equal(logger.lines.filter((l) => l.level === 'warn' && /725/.test(l.msg)).length, 1);
  });

  it('725 twice (a lying router) ends in UpnpError, not a loop', async () => {
    fake.handler = () => fault(725, 'OnlyPermanentLeasesSupported');
    const c = await connect();
    await assert.rejects(c.claim(req()), (e: UpnpError) => e instanceof UpnpError && e.upnpCode === 725);
    assert.equal(fake.calls.length, 2);
  });

  it('606 below 1024 is PortRefusedError, above it NotAuthorizedError', async () => {
    fake.handler = () => fault(606, 'Action not authorized');
    const c = await connect();
    await assert.rejects(c.claim(req({ externalPort: 80, internalPort: 8080 })), (e: PortRefusedError) => {
      assert.ok(e instanceof PortRefusedError);
      assert.equal(e.externalPort, 80);
      return true;
    });
    await assert.rejects(c.claim(req({ internalClient: '127.0.0.9' })), (e: Error) => {
      assert.ok(e instanceof NotAuthorizedError);
      assert.equal(e.code, 'FD_NOT_AUTHORIZED');
      assert.match(e.message, /127\.0\.0\.9/);
      return true;
    });
    assert.equal(fake.calls[1]!.args.get('NewInternalClient'), '127.0.0.9');
  });

  it('402 Invalid Args below 1024 is PortRefusedError, above it stays UpnpError 402', async () => {
    fake.handler = () => fault(402, 'Invalid Args');
    const c = await connect();
    await assert.rejects(c.claim(req({ externalPort: 443 })), PortRefusedError);
    await assert.rejects(c.claim(req()), (e: Error) => !(e instanceof PortRefusedError) && e instanceof UpnpError && e.upnpCode === 402);
  });

  it('724 SamePortValuesRequired with differing ports is a clear UnsupportedError', async () => {
    fake.handler = (c) => (c.args.get('NewExternalPort') === c.args.get('NewInternalPort') ? ok(c.action) : fault(724, 'SamePortValuesRequired'));
    const c = await connect();
    await assert.rejects(c.claim(req({ externalPort: 8080, internalPort: 80 })), (e: Error) => {
      assert.ok(e instanceof UnsupportedError);
      assert.match(e.message, /724/);
      return true;
    });
    assert.equal(fake.calls.length, 1, 'claim never moves the external port');
  });

  it('727 is UnsupportedError, 728 and other faults UpnpError with their code', async () => {
    const c = await connect();
    fake.handler = () => fault(727, 'ExternalPortOnlySupportsWildcard');
    await assert.rejects(c.claim(req()), UnsupportedError);
    for (const code of [728, 716, 501, 899]) {
      fake.handler = () => fault(code, 'Whatever');
      await assert.rejects(c.claim(req()), (e: UpnpError) => e instanceof UpnpError && e.upnpCode === code);
    }
  });

  it('refuses nonsense requests before any traffic', async () => {
    const c = await connect();
    await assert.rejects(c.claim(req({ externalPort: 0 })), RangeError);
    await assert.rejects(c.claim(req({ internalPort: 65536 })), RangeError);
    await assert.rejects(c.claim(req({ leaseSeconds: -1 })), RangeError);
    assert.equal(fake.calls.length, 0);
  });
});

describe('IgdClient.claimAny', () => {
  it('IGDv2: AddAnyPortMapping, the router’s NewReservedPort', async () => {
    fake.handler = (c) => ok(c.action, '<NewReservedPort>8081</NewReservedPort>');
    const c = await connect();
    const m = await c.claimAny(req());
    assert.equal(fake.calls[0]!.action, 'AddAnyPortMapping');
    assert.equal(fake.calls[0]!.args.get('NewExternalPort'), '8080');
    assert.equal(m.externalPort, 8081);
    assert.equal(m.internalPort, 8080);
  });

  it('IGDv2: a NewReservedPort that is no port is a BadResponseError', async () => {
    fake.handler = (c) => ok(c.action, '<NewReservedPort>99999</NewReservedPort>');
    const c = await connect();
    await assert.rejects(c.claimAny(req()), BadResponseError);
  });

  it('IGDv2 without AddAnyPortMapping (401): falls back to successive ports and remembers', async () => {
    fake.handler = (c, n) =>
      c.action === 'AddAnyPortMapping' ? fault(401, 'Invalid Action') : n === 2 ? fault(718, 'Conflict') : ok(c.action);
    const c = await connect();
    const m = await c.claimAny(req());
    assert.equal(m.externalPort, 8081);
    await c.claimAny(req({ externalPort: 9000 }));
    assert.deepEqual(
      fake.calls.map((x) => `${x.action}:${x.args.get('NewExternalPort')}`),
      ['AddAnyPortMapping:8080', 'AddPortMapping:8080', 'AddPortMapping:8081', 'AddPortMapping:9000'],
    );
  });

  it('IGDv1: skips taken ports from the hint, gives up after the bound', async () => {
    fake.description = miniupnpdDescription().replace(/WANIPConnection:2/g, 'WANIPConnection:1');
    fake.handler = (c) => (Number(c.args.get('NewExternalPort')) < 8083 ? fault(718, 'Conflict') : ok(c.action));
    const c = await connect();
    assert.equal((await c.claimAny(req())).externalPort, 8083);
    assert.ok(fake.calls.every((x) => x.action === 'AddPortMapping'));

    fake.calls = [];
    fake.handler = () => fault(718, 'Conflict');
    const bounded = await IgdClient.connect({ location: fake.location, localAddress: '127.0.0.1', claimAnyAttempts: 5 });
    fake.calls = [];
    await assert.rejects(bounded.claimAny(req()), PortConflictError);
    assert.equal(fake.calls.length, 5);
  });

  it('IGDv1: 724 retries once with external = internal port', async () => {
    fake.description = miniupnpdDescription().replace(/WANIPConnection:2/g, 'WANIPConnection:1');
    fake.handler = (c) => (c.args.get('NewExternalPort') === c.args.get('NewInternalPort') ? ok(c.action) : fault(724, 'SamePortValuesRequired'));
    const c = await connect();
    const m = await c.claimAny(req({ externalPort: 9000, internalPort: 8080 }));
    assert.equal(m.externalPort, 8080);
    assert.deepEqual(
      fake.calls.map((x) => x.args.get('NewExternalPort')),
      ['9000', '8080'],
    );
  });

  it('other errors stop the walk at once', async () => {
    fake.description = miniupnpdDescription().replace(/WANIPConnection:2/g, 'WANIPConnection:1');
    fake.handler = () => fault(606, 'Action not authorized');
    const c = await connect();
    await assert.rejects(c.claimAny(req()), NotAuthorizedError);
    assert.equal(fake.calls.length, 1);
  });
});

describe('IgdClient.release', () => {
  it('sends DeletePortMapping; 714 NoSuchEntryInArray is success', async () => {
    const c = await connect();
    fake.handler = (x) => ok(x.action);
    await c.release({ protocol: 'UDP', externalPort: 5000, internalPort: 5000 });
    assert.deepEqual(Object.fromEntries(fake.calls[0]!.args), { NewRemoteHost: '', NewExternalPort: '5000', NewProtocol: 'UDP' });
    assert.equal(fake.calls[0]!.action, 'DeletePortMapping');
    fake.handler = () => fault(714, 'NoSuchEntryInArray');
    await c.release({ protocol: 'UDP', externalPort: 5000, internalPort: 5000 });
  });

  it('606 (another host’s mapping in secure mode) is NotAuthorizedError, others UpnpError', async () => {
    const c = await connect();
    fake.handler = () => fault(606, 'Action not authorized');
    await assert.rejects(c.release({ protocol: 'TCP', externalPort: 80, internalPort: 80 }), NotAuthorizedError);
    fake.handler = () => fault(501, 'Action Failed');
    await assert.rejects(c.release({ protocol: 'TCP', externalPort: 80, internalPort: 80 }), (e: UpnpError) => e.upnpCode === 501);
  });
});

const entry = (port: number, proto = 'TCP') => ({
  externalPort: port,
  protocol: proto,
  internalPort: port,
  internalClient: '192.168.77.20',
  description: `m${port}`,
  lease: 100,
});

function genericEntry(action: string, port: number): { body: string } {
  return ok(
    action,
    '<NewRemoteHost></NewRemoteHost>' +
      `<NewExternalPort>${port}</NewExternalPort><NewProtocol>TCP</NewProtocol><NewInternalPort>${port}</NewInternalPort>` +
      '<NewInternalClient>192.168.77.20</NewInternalClient><NewEnabled>1</NewEnabled>' +
      `<NewPortMappingDescription>m${port}</NewPortMappingDescription><NewLeaseDuration>0</NewLeaseDuration>`,
  );
}

describe('IgdClient.list', () => {
  it('IGDv2: GetListOfPortMappings over the whole range for TCP and UDP', async () => {
    fake.handler = (c) =>
      ok(
        c.action,
        `<NewPortListing><![CDATA[${portMappingList(c.args.get('NewProtocol') === 'TCP' ? [entry(80), entry(8080)] : [entry(5353, 'UDP')])}]]></NewPortListing>`,
      );
    const c = await connect();
    const list = await c.list();
    assert.deepEqual(
      list.map((m) => `${m.protocol}:${m.externalPort}:${m.via}`),
      ['TCP:80:upnp-igd2', 'TCP:8080:upnp-igd2', 'UDP:5353:upnp-igd2'],
    );
    assert.deepEqual(
      fake.calls.map((x) => [x.action, x.args.get('NewStartPort'), x.args.get('NewEndPort'), x.args.get('NewProtocol')]),
      [
        ['GetListOfPortMappings', '1', '65535', 'TCP'],
        ['GetListOfPortMappings', '1', '65535', 'UDP'],
      ],
    );
  });

  it('IGDv2: 730 PortMappingNotFound is an empty range', async () => {
    fake.handler = () => fault(730, 'PortMappingNotFound');
    const c = await connect();
    assert.deepEqual(await c.list(), []);
    assert.equal(fake.calls.length, 2);
  });

  it('IGDv2: falls back to GetGenericPortMappingEntry when GetListOfPortMappings fails', async () => {
    fake.handler = (c) => {
      if (c.action === 'GetListOfPortMappings') return fault(401, 'Invalid Action');
      const i = Number(c.args.get('NewPortMappingIndex'));
      return i < 2 ? genericEntry(c.action, 7000 + i) : fault(713, 'SpecifiedArrayIndexInvalid');
    };
    const c = await connect();
    assert.deepEqual(
      (await c.list()).map((m) => m.externalPort),
      [7000, 7001],
    );
    fake.calls = [];
    await c.list();
    assert.equal(fake.calls[0]!.action, 'GetGenericPortMappingEntry', 'remembers the missing action');
  });

  for (const end of [713, 714, 402, 501]) {
    it(`IGDv1: reads entries from index 0 until ${end}`, async () => {
      fake.description = miniupnpdDescription().replace(/WANIPConnection:2/g, 'WANIPConnection:1');
      fake.handler = (c) => {
        const i = Number(c.args.get('NewPortMappingIndex'));
        return i < 3 ? genericEntry(c.action, 6000 + i) : fault(end, 'End');
      };
      const c = await connect();
      const list = await c.list();
      assert.deepEqual(
        list.map((m) => [m.externalPort, m.via]),
        [
          [6000, 'upnp-igd1'],
          [6001, 'upnp-igd1'],
          [6002, 'upnp-igd1'],
        ],
      );
      assert.deepEqual(
        fake.calls.map((x) => x.args.get('NewPortMappingIndex')),
        ['0', '1', '2', '3'],
      );
    });
  }

  it('IGDv1: a table that never ends is capped', async () => {
    fake.description = miniupnpdDescription().replace(/WANIPConnection:2/g, 'WANIPConnection:1');
    fake.handler = (c) => genericEntry(c.action, 6000);
    const c = await IgdClient.connect({ location: fake.location, localAddress: '127.0.0.1', maxListEntries: 20 });
    assert.equal((await c.list()).length, 20);
    assert.equal(fake.calls.length, 20);
  });

  it('IGDv1: 606 is NotAuthorizedError', async () => {
    fake.description = miniupnpdDescription().replace(/WANIPConnection:2/g, 'WANIPConnection:1');
    fake.handler = () => fault(606, 'Action not authorized');
    const c = await connect();
    await assert.rejects(c.list(), NotAuthorizedError);
  });
});

describe('IgdClient: time, cancellation, size', () => {
  it('a router that never answers is a RouterTimeoutError when the clock runs out', async () => {
    const clock = new ManualClock();
    const c = await IgdClient.connect({ location: fake.location, localAddress: '127.0.0.1', clock, timeoutMs: 3000 });
    fake.handler = () => 'hang';
    const p = c.externalAddress();
    await until(() => fake.calls.length === 1, 'the request reached the router');
    clock.advance(2999);
    let settled = false;
    void p.catch(() => {}).finally(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, false);
    clock.advance(1);
    await assert.rejects(p, (e: Error) => e instanceof RouterTimeoutError && e.code === 'FD_ROUTER_TIMEOUT');
  });

  it('aborting rejects with the caller’s reason; close() aborts with AbortedError', async () => {
    const c = await connect();
    fake.handler = () => 'hang';
    const ac = new AbortController();
    const p = c.claim(req(), ac.signal);
    await until(() => fake.calls.length === 1, 'the request reached the router');
    const reason = new AbortedError('caller gave up');
    ac.abort(reason);
    await assert.rejects(p, (e) => e === reason);

    const q = c.list();
    await until(() => fake.calls.length === 2, 'the second request');
    c.close();
    c.close();
    await assert.rejects(q, AbortedError);
    await assert.rejects(c.externalAddress(), AbortedError);
    assert.equal(fake.calls.length, 2, 'nothing sent after close');
  });

  it('an already aborted signal sends nothing', async () => {
    const c = await connect();
    await assert.rejects(c.externalAddress(AbortSignal.abort(new AbortedError())), AbortedError);
    assert.equal(fake.calls.length, 0);
  });

  it('an endless answer is cut off (1 MiB) as BadResponseError', async () => {
    const c = await connect();
    fake.handler = () => 'huge';
    await assert.rejects(c.externalAddress(), (e: Error) => e instanceof BadResponseError && /exceeds/.test(e.message));
  });
});
