/**
 * MJPEG viewers of the soak, as one process in the test bed's WAN namespace: for each URL (a
 * camera node's public `/camera.mjpg`) one viewer that stays connected, counts the parts it
 * receives, and reconnects 1 s after its stream ends or fails (the node was stopped, its mapping
 * moved). Every `reportMs` and at the end it prints one JSON line per viewer:
 *   {"url":..., "frames":n, "bytes":n, "connects":n, "errors":{"ECONNREFUSED":n,...}, "connected":bool}
 * The end of stdin ends it. The scheme is the URL's (https: the fleet certificate is not checked).
 * argv: <reportMs> <url>... (the password in FRONTDOOR_POLL_PASSWORD)
 */
import { request as httpRequest } from 'node:http';
import type { ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

const [reportArg, ...urls] = process.argv.slice(2);
const reportMs = Number(reportArg ?? 5000);
const auth = `Basic ${Buffer.from(`admin:${process.env['FRONTDOOR_POLL_PASSWORD'] ?? ''}`).toString('base64')}`;
const BOUNDARY = Buffer.from('--frontdoor-frame');
/** A stream silent this long is given up and reconnected (a dead node's socket never closes). */
const SILENT_MS = 10_000;

interface Viewer {
  url: string;
  frames: number;
  bytes: number;
  connects: number;
  errors: Record<string, number>;
  connected: boolean;
  req?: ClientRequest;
}

const viewers: Viewer[] = urls.map((url) => ({ url, frames: 0, bytes: 0, connects: 0, errors: {}, connected: false }));
let stopping = false;

function connect(v: Viewer): void {
  if (stopping) return;
  const https = v.url.startsWith('https:');
  let tail = Buffer.alloc(0);
  let silence: NodeJS.Timeout | undefined;
  let ended = false;
  const again = (why: string) => {
    if (ended) return;
    ended = true;
    clearTimeout(silence);
    v.connected = false;
    v.errors[why] = (v.errors[why] ?? 0) + 1;
    req.destroy();
    setTimeout(() => connect(v), 1000);
  };
  const quiet = () => {
    clearTimeout(silence);
    silence = setTimeout(() => again('silent'), SILENT_MS);
  };
  const req = (https ? httpsRequest : httpRequest)(
    v.url,
    { agent: false, headers: { authorization: auth }, ...(https ? { rejectUnauthorized: false } : {}) },
    (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        again(`HTTP ${res.statusCode}`);
        return;
      }
      v.connects++;
      v.connected = true;
      quiet();
      res.on('data', (c: Buffer) => {
        v.bytes += c.length;
        quiet();
        // Count boundaries, also one cut across two chunks.
        const buf = Buffer.concat([tail, c]);
        let at = buf.indexOf(BOUNDARY);
        let lastEnd = 0;
        while (at >= 0) {
          v.frames++;
          lastEnd = at + BOUNDARY.length;
          at = buf.indexOf(BOUNDARY, lastEnd);
        }
        tail = buf.subarray(Math.max(lastEnd, buf.length - BOUNDARY.length + 1));
      });
      res.on('end', () => again('ended'));
      res.on('error', (e: NodeJS.ErrnoException) => again(e.code ?? 'error'));
    },
  );
  v.req = req;
  req.setTimeout(5000, () => {
    if (!v.connected) again('timeout');
  });
  req.on('error', (e: NodeJS.ErrnoException) => again(e.code ?? e.message));
  req.end();
}

function report(): void {
  for (const v of viewers) {
    process.stdout.write(`${JSON.stringify({ url: v.url, frames: v.frames, bytes: v.bytes, connects: v.connects, errors: v.errors, connected: v.connected })}\n`);
  }
}

for (const v of viewers) connect(v);
const ticker = setInterval(report, reportMs);
process.stdin.resume();
process.stdin.on('end', () => {
  stopping = true;
  clearInterval(ticker);
  for (const v of viewers) v.req?.destroy();
  report();
  process.stdout.write('', () => process.exit(0));
});
