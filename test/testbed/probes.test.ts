import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseSsdpResponse } from './probes.js';

// ssdpSearch and interfaceAddresses touch the network: they run inside a test bed only
// (testbed.test.ts), never in this machine's own namespace.

describe('parseSsdpResponse', () => {
  it('reads a miniupnpd answer', () => {
    const text =
      'HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n' +
      'USN: uuid:abc::urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\nEXT:\r\n' +
      'SERVER: Debian/12 UPnP/1.1 MiniUPnPd/2.3.1\r\nLOCATION: http://192.168.77.1:5000/rootDesc.xml\r\n\r\n';
    assert.deepEqual(parseSsdpResponse(text, '192.168.77.1:1900'), {
      st: 'urn:schemas-upnp-org:device:InternetGatewayDevice:2',
      location: 'http://192.168.77.1:5000/rootDesc.xml',
      usn: 'uuid:abc::urn:schemas-upnp-org:device:InternetGatewayDevice:2',
      server: 'Debian/12 UPnP/1.1 MiniUPnPd/2.3.1',
      from: '192.168.77.1:1900',
    });
  });

  it('ignores searches, notifications and answers without ST', () => {
    assert.equal(parseSsdpResponse('M-SEARCH * HTTP/1.1\r\nST: ssdp:all\r\n\r\n'), undefined);
    assert.equal(parseSsdpResponse('NOTIFY * HTTP/1.1\r\nNT: upnp:rootdevice\r\n\r\n'), undefined);
    assert.equal(parseSsdpResponse('HTTP/1.1 200 OK\r\nLOCATION: http://x/\r\n\r\n'), undefined);
    assert.equal(parseSsdpResponse('HTTP/1.1 404 Not Found\r\nST: x\r\n\r\n'), undefined);
  });

  it('any bytes: undefined or bounded fields', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 3000 }),
          fc.string({ maxLength: 3000 }).map((s) => `HTTP/1.1 200 OK\r\nST:${s}\r\nLOCATION: ${s}${s}`),
          fc.uint8Array({ maxLength: 3000 }).map((b) => `HTTP/1.1 200 OK\r\n${Buffer.from(b).toString('latin1')}`),
        ),
        fc.string({ maxLength: 200 }),
        (text, from) => {
          const a = parseSsdpResponse(text, from);
          if (a === undefined) return;
          for (const v of [a.st, a.location, a.usn, a.server]) assert.ok(v.length <= 1024);
          assert.ok(a.from.length <= 64);
        },
      ),
      { numRuns: 400 },
    );
  });
});
