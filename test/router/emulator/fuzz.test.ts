import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { RouterEmulator } from '../../../src/router/emulator/router-emulator.js';
import { http, soap, udpExchange } from './raw.js';

describe('router emulator: hostile input', () => {
  let router: RouterEmulator;
  let ctl: string;
  let snapshot: string;

  before(async () => {
    router = new RouterEmulator();
    await router.start();
    ctl = `http://127.0.0.1:${router.ports.http}/ctl/IPConn`;
    const made = await soap(ctl, 'AddPortMapping', {
      NewRemoteHost: '',
      NewExternalPort: 15000,
      NewProtocol: 'TCP',
      NewInternalPort: 15000,
      NewInternalClient: '127.0.0.1',
      NewEnabled: 1,
      NewPortMappingDescription: 'keep',
      NewLeaseDuration: 0,
    });
    assert.equal(made.errorCode, undefined);
    snapshot = JSON.stringify(router.mappings().map((m) => ({ ...m, leaseSeconds: 0 })));
  });
  after(() => router.stop());

  const table = () => JSON.stringify(router.mappings().map((m) => ({ ...m, leaseSeconds: 0 })));

  it('random datagrams to the NAT-PMP/PCP and SSDP ports never crash it nor change the table', async () => {
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    sock.on('message', () => {});
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            // A valid NAT-PMP mapping request is not hostile input: leave those out.
            fc.uint8Array({ minLength: 0, maxLength: 1200 }).filter((b) => !(b[0] === 0 && (b[1] === 1 || b[1] === 2) && b.length >= 12)),
            // Biased towards packets that pass the first checks: version 0/1/2, non-response opcodes.
            fc
              .tuple(fc.constantFrom(0, 1, 2), fc.integer({ min: 3, max: 127 }), fc.uint8Array({ minLength: 0, maxLength: 80 }))
              .map(([v, op, rest]) => Uint8Array.from([v, op, ...rest])),
          ),
          async (bytes) => {
            const buf = Buffer.from(bytes);
            await new Promise<void>((r) => sock.send(buf, router.ports.pmp, '127.0.0.1', () => r()));
            await new Promise<void>((r) => sock.send(buf, router.ports.ssdp, '127.0.0.1', () => r()));
            // Let the emulator read them: a flood would only overflow the kernel's receive buffer.
            await new Promise<void>((r) => setTimeout(r, 1));
          },
        ),
        { numRuns: 300 },
      );
    } finally {
      sock.close();
    }
    // Still alive and answering.
    const alive = await udpExchange(router.ports.pmp, Buffer.from([0, 0]), { max: 1, waitMs: 1000 });
    assert.equal(alive.length, 1);
    assert.equal(table(), snapshot);
  });

  it('random SOAP bodies and actions never crash it nor change the table', async () => {
    const actions = ['AddPortMapping', 'DeletePortMapping', 'AddAnyPortMapping', 'DeletePortMappingRange', 'GetGenericPortMappingEntry', 'Bogus'];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...actions),
        fc.oneof(
          fc.string({ maxLength: 2000 }),
          fc.uint8Array({ maxLength: 2000 }).map((b) => Buffer.from(b).toString('latin1')),
          // Well-formed envelopes with random argument values, from a host that owns nothing.
          fc
            .dictionary(fc.constantFrom('NewExternalPort', 'NewProtocol', 'NewInternalPort', 'NewInternalClient', 'NewStartPort', 'NewEndPort'), fc.string({ maxLength: 12 }))
            .map(
              (d) =>
                '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:X>' +
                Object.entries(d)
                  .map(([k, v]) => `<${k}>${v.replace(/[<&]/g, '')}</${k}>`)
                  .join('') +
                '</u:X></s:Body></s:Envelope>',
            ),
        ),
        async (action, body) => {
          const res = await http(ctl, {
            method: 'POST',
            headers: { SOAPAction: `"urn:schemas-upnp-org:service:WANIPConnection:2#${action}"` },
            body,
            localAddress: '127.0.0.5',
          });
          assert.ok(res.status === 200 || res.status === 500, `status ${res.status}`);
        },
      ),
      { numRuns: 200 },
    );
    // Random values never name a protocol, so nothing may have been added or removed.
    assert.equal(table(), snapshot);
  });
});
