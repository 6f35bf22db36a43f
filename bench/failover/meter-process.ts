/**
 * The WAN-side outage meter, as its own process in the internet client's namespace (the bench
 * starts it with `tb.spawn`): starts `GET <url>` every `intervalMs` whatever the earlier requests
 * are doing, each on a new connection (`Connection: close`, no agent) with a `timeoutMs` limit,
 * and prints every outcome as one JSON line on stdout:
 *   {"s":<sent>,"d":<done>,"h":"<host>"}   a good answer (HTTP 200; h = first line of the body, or a JSON body's "name")
 *   {"s":<sent>,"d":<done>,"e":"<why>"}    a failure (errno code, "timeout", "HTTP 503")
 * Times are CLOCK_MONOTONIC milliseconds (outage.ts explains why that clock is shared).
 *
 * First line: {"ready":<now>}. stdin, one command a line: `ping <n>` prints {"pong":<n>,"at":<now>} (the bench checks the
 * clocks agree); `stop` or the end of stdin ends the process (so it ends with the bench).
 *
 * argv: <url> [intervalMs = 20] [timeoutMs = 150]
 */
import { request } from 'node:http';
import { createInterface } from 'node:readline';
import { monoMs } from './outage.js';

const [url, intervalArg, timeoutArg] = process.argv.slice(2);
if (!url) {
  process.stderr.write('usage: meter-process.js <url> [intervalMs] [timeoutMs]\n');
  process.exit(2);
}
const intervalMs = Number(intervalArg ?? 20);
const timeoutMs = Number(timeoutArg ?? 150);
const MAX_BODY = 256;

function emit(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function probe(): void {
  const sent = monoMs();
  let finished = false;
  const finish = (outcome: { h: string } | { e: string }) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    emit({ s: sent, d: monoMs(), ...outcome });
  };
  const req = request(url!, { agent: false, headers: { Connection: 'close' } }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      if (body.length < MAX_BODY) body += c;
    });
    res.on('end', () => {
      if (res.statusCode !== 200) finish({ e: `HTTP ${res.statusCode}` });
      else {
        // A JSON answer (frontdoor's /api/status) names its node in "name"; a label server's
        // first line is the name.
        const named = body.startsWith('{') ? /"name":"([^"\\]{1,64})"/.exec(body)?.[1] : undefined;
        const host = named ?? body.split('\n')[0]!.trim().slice(0, 64);
        finish(host ? { h: host } : { e: 'empty body' });
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

// Fixed rate: a request that hangs does not delay the next one, so the end of an outage is seen
// within one interval.
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
  // Requests in flight are dropped: the bench has stopped listening.
  process.stdout.write('', () => process.exit(0));
});
