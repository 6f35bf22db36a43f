/**
 * The internet client's view of the portal, as its own process in the test bed's WAN namespace
 * (started with `tb.spawn`): starts `GET <url>` every `intervalMs` whatever earlier requests are
 * doing, each on a new connection (no agent, `Connection: close`, so every request goes through
 * the router's current forwarding) and logged in with basic auth, and prints one JSON line per
 * request:
 *   {"s":<sent>,"d":<done>,"n":"<name>","r":"<role>"}   HTTP 200 from /api/status: the serving node
 *   {"s":<sent>,"d":<done>,"e":"<why>"}                  a failure (errno code, "timeout", "HTTP 503")
 * Times are CLOCK_MONOTONIC ms (bench/failover/outage.ts: shared by every namespace).
 *
 * The scheme is the URL's: for https the fleet's self-made certificate is not checked
 * (`rejectUnauthorized: false`), as `curl -k` does.
 *
 * First line {"ready":<now>}; the end of stdin (or `stop`) ends it, so it ends with its parent.
 * argv: <url> <intervalMs> <timeoutMs> (the password comes in FRONTDOOR_POLL_PASSWORD, not argv)
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createInterface } from 'node:readline';
import { monoMs } from '../failover/outage.js';

const [url, intervalArg, timeoutArg] = process.argv.slice(2);
if (!url) {
  process.stderr.write('usage: portal-poller.js <url> [intervalMs] [timeoutMs]\n');
  process.exit(2);
}
const intervalMs = Number(intervalArg ?? 200);
const timeoutMs = Number(timeoutArg ?? 1000);
const auth = `Basic ${Buffer.from(`admin:${process.env['FRONTDOOR_POLL_PASSWORD'] ?? ''}`).toString('base64')}`;
const https = url.startsWith('https:');
const MAX_BODY = 64 * 1024;

function emit(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function probe(): void {
  const sent = monoMs();
  let finished = false;
  const finish = (outcome: { n: string; r: string } | { e: string }) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    emit({ s: sent, d: monoMs(), ...outcome });
  };
  const opts = { agent: false as const, headers: { connection: 'close', authorization: auth }, ...(https ? { rejectUnauthorized: false } : {}) };
  const req = (https ? httpsRequest : httpRequest)(url!, opts, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      if (body.length < MAX_BODY) body += c;
    });
    res.on('end', () => {
      if (res.statusCode !== 200) return finish({ e: `HTTP ${res.statusCode}` });
      try {
        const s = JSON.parse(body) as { name?: unknown; role?: unknown };
        finish({ n: String(s.name), r: String(s.role) });
      } catch {
        finish({ e: 'not JSON' });
      }
    });
    res.on('error', (e: NodeJS.ErrnoException) => finish({ e: e.code ?? e.message }));
  });
  const timer = setTimeout(() => {
    finish({ e: 'timeout' });
    req.destroy();
  }, timeoutMs);
  req.on('error', (e: NodeJS.ErrnoException) => finish({ e: e.code ?? e.message }));
  req.end();
}

// Fixed rate: a request that hangs does not delay the next one, so an outage's end is seen within one interval.
const ticker = setInterval(probe, intervalMs);
emit({ ready: monoMs() });
probe();

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line.trim() === 'stop') rl.close();
});
rl.on('close', () => {
  clearInterval(ticker);
  process.stdout.write('', () => process.exit(0));
});
