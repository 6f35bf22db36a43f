/**
 * The internet client's fixed-rate poller, as its own process in the test bed's WAN namespace
 * (started with `tb.spawn`), shared by the failover bench's outage meter and the soak's portal
 * poller. It starts `GET <url>` every `intervalMs` whatever earlier requests are doing, each on a
 * new connection (no agent, `Connection: close`, so every request goes through the router's
 * current forwarding) with a `timeoutMs` limit, and prints one JSON line per request
 * (poll-line.ts):
 *   {"s":<sent>,"d":<done>,"h":"<name>",...}  HTTP 200: h = a JSON body's "name", else the body's first
 *                                            line; from frontdoor's /api/status also r (its role),
 *                                            t (ms in that role), n (the nodes listed), l (those with a link)
 *   {"s":<sent>,"d":<done>,"e":"<why>"}       a failure (errno code, "timeout", "HTTP 503")
 * Times are CLOCK_MONOTONIC ms (failover/outage.ts: the one clock every namespace shares).
 *
 * `keep-alive` instead keeps connections open for the next requests: for watching one node at its
 * own address often without a TLS handshake per request weighing on the node being watched.
 *
 * The scheme is the URL's; for https the fleet's self-made certificate is not checked, as
 * `curl -k` does. Basic auth from FRONTDOOR_POLL_PASSWORD (user admin; kept out of argv, where
 * `ps` shows it), else from the URL's user info.
 *
 * First line {"ready":<now>}. stdin, one command a line: `ping <n>` prints {"pong":<n>,"at":<now>}
 * (the meter checks that the clocks agree); `stop` or the end of stdin ends it, so it ends with
 * its parent.
 *
 * argv: <url> [intervalMs = 200] [timeoutMs = 1000] [close | keep-alive = close]
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createInterface } from 'node:readline';
import { monoMs } from './failover/outage.js';
import { pollLine, readAnswer } from './poll-line.js';
import type { PollAnswer } from './poll-line.js';

const [url, intervalArg, timeoutArg, connectionArg = 'close'] = process.argv.slice(2);
if (!url || (connectionArg !== 'close' && connectionArg !== 'keep-alive')) {
  process.stderr.write('usage: poll-process.js <url> [intervalMs] [timeoutMs] [close | keep-alive]\n');
  process.exit(2);
}
const intervalMs = Number(intervalArg ?? 200);
const timeoutMs = Number(timeoutArg ?? 1000);
const password = process.env['FRONTDOOR_POLL_PASSWORD'];
const https = url.startsWith('https:');
const MAX_BODY = 64 * 1024;
const keepAlive = connectionArg === 'keep-alive';
const agent = keepAlive ? new (https ? HttpsAgent : HttpAgent)({ keepAlive: true }) : false;

function emit(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function probe(): void {
  const sent = monoMs();
  let finished = false;
  const finish = (outcome: PollAnswer | { e: string }) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    process.stdout.write(`${pollLine(sent, monoMs(), outcome)}\n`);
  };
  const headers: Record<string, string> = keepAlive ? {} : { connection: 'close' };
  if (password !== undefined) headers['authorization'] = `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`;
  const opts = { agent, headers, ...(https ? { rejectUnauthorized: false } : {}) };
  const req = (https ? httpsRequest : httpRequest)(url!, opts, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      if (body.length < MAX_BODY) body += c;
    });
    res.on('end', () => {
      if (res.statusCode !== 200) return finish({ e: `HTTP ${res.statusCode}` });
      finish(readAnswer(body) ?? { e: 'no name in the answer' });
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
  const [cmd, arg] = line.trim().split(/\s+/);
  if (cmd === 'ping') emit({ pong: Number(arg), at: monoMs() });
  else if (cmd === 'stop') rl.close();
});
rl.on('close', () => {
  clearInterval(ticker);
  if (agent) agent.destroy();
  // Requests in flight are dropped: the parent has stopped listening.
  process.stdout.write('', () => process.exit(0));
});
