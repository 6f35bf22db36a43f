import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { esc, nodePage, portalPage, thumbnailOrigins } from '../../src/portal/pages.js';
import type { NodeStatus } from '../../src/portal/status.js';
import { samplePeer, sampleStatus } from '../helpers/node-status.js';

function status(name: string): NodeStatus {
  return sampleStatus({
    name,
    id: 'abc',
    representative: { id: 'abc', name, url: 'http://203.0.114.1:8080/' },
    nodes: [samplePeer(0, { id: 'abc', name })],
  });
}

describe('pages', () => {
  it('esc leaves no character that could open markup or end an attribute', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const out = esc(s);
        assert.ok(!/[<>"']/.test(out));
        // Reversible: nothing is lost, only written as entities.
        assert.equal(out.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n))), s);
      }),
      { numRuns: 500 },
    );
  });

  it('a host name made of markup shows as text on both pages', () => {
    const evil = '<script>alert(1)</script>';
    for (const html of [portalPage(status(evil)), nodePage(status(evil))]) {
      assert.ok(!html.includes(evil));
      assert.ok(html.includes(esc(evil)));
    }
  });
});

describe('pages: cameras', () => {
  const cam = (): NodeStatus => {
    const s = status('garden');
    s.nodes = [
      { ...(s.nodes[0] as NodeStatus['nodes'][number]), camera: true },
      samplePeer(1, { id: 'def', name: 'porch', url: null, lastSeenMsAgo: 100, camera: true }),
    ];
    s.camera = { source: 'test pattern (ffmpeg)', kind: 'test', state: 'failed', reason: 'ffmpeg is not installed', width: 640, height: 360, fps: 15, viewers: 0, frames: 0, restarts: 2 };
    return s;
  };

  it('a camera node\'s card has a thumbnail from its own port; one without a public link has none from the WAN side', () => {
    const html = portalPage(cam(), { thumbnails: 'wan' });
    assert.equal(html.match(/<img class="thumb"/g)?.length, 1);
    assert.ok(html.includes('src="http://203.0.114.1:8081/camera.jpg"'));
    assert.deepEqual(thumbnailOrigins(cam(), 'wan'), ['http://203.0.114.1:8081']);
    const lan = portalPage(cam(), { thumbnails: 'lan' });
    assert.equal(lan.match(/<img class="thumb"/g)?.length, 2);
    assert.deepEqual(thumbnailOrigins(cam(), 'lan'), ['http://192.168.77.10:8081', 'http://192.168.77.11:8081']);
  });

  it('the node page shows the live view at the camera\'s size and why there is no picture', () => {
    const html = nodePage(cam());
    assert.match(html, /<img id="live" src="\/camera\.mjpg"[^>]* width="640" height="360">/);
    assert.match(html, /<span id="camera-state">no picture: ffmpeg is not installed<\/span>/);
    assert.ok(!nodePage(status('x')).includes('id="live"'), 'no camera, no live view');
  });
});
