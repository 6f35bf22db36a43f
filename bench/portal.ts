/**
 * `npm run bench -- portal [--duration=S] [--connections=10,50] [--user-connections=2] [--attackers=20]`:
 * the representative's portal (createPortalApp, which = 'portal', behind NodeHttpServer) under
 * load from autocannon on loopback, beside a bare node:http server answering the same bytes
 * (rendered once at start): what routing, the session check and rendering cost. Then the same
 * logged-in user while 20 connections hammer POST /login with wrong passwords, and the server's
 * RSS. Each server and each load generator (the user's, the attackers') is a process of its own
 * (bench/portal/server.ts, bench/portal/load.ts), so none shares an event loop with another.
 * Loopback only; every child is bounded in time and ends with the bench.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { nextMessage } from './ipc.js';
import type { LoadResult, LoadSpec } from './portal/load.js';
import type { ServerKind, ServerReady, ServerStats } from './portal/server.js';

const SERVER = fileURLToPath(new URL('./portal/server.js', import.meta.url));
const LOAD = fileURLToPath(new URL('./portal/load.js', import.meta.url));
const WRONG = 'password=not-the-password-123';

function option(args: string[], name: string): string | undefined {
  return args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

function positive(v: string | undefined, fallback: number, what: string): number {
  const n = Number(v ?? fallback);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${what} must be a positive number, got ${v}`);
  return n;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const isReady = (m: unknown): m is ServerReady => typeof m === 'object' && m !== null && 'ready' in m;
const isStats = (m: unknown): m is { stats: ServerStats } => typeof m === 'object' && m !== null && 'stats' in m;
const isStarted = (m: unknown): m is { started: true } => typeof m === 'object' && m !== null && 'started' in m;
const isResult = (m: unknown): m is LoadResult => typeof m === 'object' && m !== null && 'okPerS' in m;

interface Server {
  kind: ServerKind;
  child: ChildProcess;
  ready: ServerReady;
  url: string;
}

async function startServer(kind: ServerKind, children: ChildProcess[]): Promise<Server> {
  const child = fork(SERVER, [kind], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  const ready = await nextMessage(child, isReady, 10_000, `${kind} server`);
  return { kind, child, ready, url: `http://127.0.0.1:${ready.port}` };
}

async function serverStats(s: Server): Promise<ServerStats> {
  const answer = nextMessage(s.child, isStats, 5_000, `${s.kind} server stats`);
  s.child.send({ cmd: 'stats' });
  return (await answer).stats;
}

/** A load generator process (bench/portal/load.ts), reused run after run. */
function startLoadProcess(children: ChildProcess[]): ChildProcess {
  const child = fork(LOAD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  return child;
}

/** Starts one run on a load process; `result` resolves when it ends (or `stop()` ends it early). */
async function startLoad(gen: ChildProcess, spec: LoadSpec): Promise<{ result: Promise<LoadResult>; stop(): void }> {
  const started = nextMessage(gen, isStarted, 10_000, `load ${spec.url}`);
  const result = nextMessage(gen, isResult, (spec.durationS + 20) * 1000, `load ${spec.url}`);
  result.catch(() => {}); // awaited by the caller; not unhandled meanwhile
  gen.send(spec);
  await started;
  return { result, stop: () => gen.connected && gen.send({ cmd: 'stop' }) };
}

async function load(gen: ChildProcess, spec: LoadSpec): Promise<LoadResult> {
  return (await startLoad(gen, spec)).result;
}

const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`;
const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} kB`;
const notOk = (r: LoadResult) =>
  Object.entries(r.codes)
    .filter(([c]) => !c.startsWith('2'))
    .reduce((n, [, k]) => n + k, 0) +
  r.errors;

export async function run(args: string[]): Promise<void> {
  const durationS = positive(option(args, 'duration'), 8, '--duration');
  const connections = (option(args, 'connections') ?? '10,50').split(',').map((c) => positive(c, 10, '--connections'));
  const userConns = positive(option(args, 'user-connections'), 2, '--user-connections');
  const attackers = positive(option(args, 'attackers'), 20, '--attackers');
  const warmS = Math.min(1, durationS);
  const leadS = 1;
  const t0 = performance.now();
  const loadBefore = loadavg()[0]!;
  const children: ChildProcess[] = [];
  const progress = (what: string) => console.log(`  [${((performance.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${what}`);
  try {
    const portal = await startServer('portal', children);
    const bare = await startServer('bare', children);
    const gen = startLoadProcess(children);
    const attackGen = startLoadProcess(children);
    const cookie = portal.ready.cookie;
    const userHeaders = { cookie, accept: 'text/html,application/xhtml+xml' };

    // The portal must answer what the reference answers, and only to a logged-in user.
    for (const path of ['/', '/api/nodes']) {
      const [a, b] = await Promise.all([fetch(portal.url + path, { headers: userHeaders }), fetch(bare.url + path)]);
      const [ta, tb] = await Promise.all([a.text(), b.text()]);
      if (a.status !== 200 || b.status !== 200 || ta !== tb) throw new Error(`GET ${path}: portal ${a.status} (${ta.length} B) and reference ${b.status} (${tb.length} B) differ`);
    }
    const anon = await fetch(`${portal.url}/`, { headers: { accept: 'text/html' } });
    await anon.arrayBuffer();
    if (anon.status !== 401) throw new Error(`GET / without a session answered ${anon.status}, not 401`);

    const endpoints = [
      { path: '/', label: `GET / (HTML, ${kb(portal.ready.pageBytes)})` },
      { path: '/api/nodes', label: `GET /api/nodes (JSON, ${kb(portal.ready.nodesBytes)})` },
    ];
    for (const s of [portal, bare]) for (const e of endpoints) await load(gen, { url: s.url + e.path, connections: 10, durationS: warmS, headers: userHeaders });

    const rows: Array<{ label: string; conns: number; p: LoadResult; b: LoadResult }> = [];
    for (const e of endpoints) {
      for (const conns of connections) {
        const p = await load(gen, { url: portal.url + e.path, connections: conns, durationS, headers: userHeaders });
        const b = await load(gen, { url: bare.url + e.path, connections: conns, durationS, headers: userHeaders });
        rows.push({ label: e.label, conns, p, b });
        progress(`GET ${e.path}, ${conns} connections: portal ${f0(p.okPerS)} req/s, bare ${f0(b.okPerS)} req/s`);
      }
    }
    progress('throughput runs done');
    const afterThroughput = await serverStats(portal);

    // The real user alone, then the same user while attackers hammer /login.
    const userSpec: LoadSpec = { url: `${portal.url}/`, connections: userConns, durationS, headers: userHeaders };
    const calm = await load(gen, userSpec);
    progress(`user alone: ${f0(calm.okPerS)} req/s; now with ${attackers} attackers`);
    const before = await serverStats(portal);
    const attack = await startLoad(attackGen, {
      url: `${portal.url}/login`,
      connections: attackers,
      durationS: durationS + leadS + 5, // a bound: stopped once the user's run is over
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: WRONG,
    });
    await sleep(leadS * 1000);
    const under = await load(gen, userSpec);
    attack.stop();
    const atk = await attack.result;
    const end = await serverStats(portal);
    const bareEnd = await serverStats(bare);

    const cpus = availableParallelism();
    const loadAfter = loadavg()[0]!;
    const lines = [
      `portal: createPortalApp (which = 'portal', 10 nodes, session cookie) behind NodeHttpServer, one process;`,
      `  reference: bare node:http answering the same bytes (same body and headers, rendered once at start), one process;`,
      `  load: autocannon in a process of its own; 127.0.0.1, keep-alive, ${durationS} s a run after ${warmS} s warm-up;`,
      `  ${cpus} CPU(s) shared by all of them (and whatever else runs: load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after)`,
      '',
      `${'request'.padEnd(30)}${'conns'.padStart(6)}   ${'portal req/s'.padStart(12)}${'p50 ms'.padStart(8)}${'p99 ms'.padStart(8)}   ${'bare req/s'.padStart(10)}${'p50 ms'.padStart(8)}${'p99 ms'.padStart(8)}   portal/bare`,
    ];
    for (const r of rows) {
      const bad = notOk(r.p) + notOk(r.b);
      lines.push(
        `${r.label.padEnd(30)}${String(r.conns).padStart(6)}   ${f0(r.p.okPerS).padStart(12)}${f2(r.p.okP50).padStart(8)}${f2(r.p.okP99).padStart(8)}   ${f0(r.b.okPerS).padStart(10)}${f2(r.b.okP50).padStart(8)}${f2(r.b.okP99).padStart(8)}   ${`${((100 * r.p.okPerS) / r.b.okPerS).toFixed(0)} %`.padStart(11)}${bad ? `  (${bad} non-2xx/errors)` : ''}`,
      );
    }
    const codes = (r: LoadResult) =>
      Object.entries(r.codes)
        .map(([c, n]) => `${c}: ${n}`)
        .join(', ');
    const dFailures = end.counters!.loginFailures - before.counters!.loginFailures;
    const dThrottled = end.counters!.loginsThrottled - before.counters!.loginsThrottled;
    lines.push(
      '',
      `a logged-in user, ${userConns} connection(s), GET / with the session cookie, ${durationS} s:`,
      `${''.padEnd(44)}${'req/s'.padStart(8)}${'p50 ms'.padStart(8)}${'p99 ms'.padStart(8)}   answers`,
      `${'  without attack'.padEnd(44)}${f0(calm.okPerS).padStart(8)}${f2(calm.okP50).padStart(8)}${f2(calm.okP99).padStart(8)}   ${codes(calm)}${calm.errors ? `, errors: ${calm.errors}` : ''}`,
      `${`  during attack (${attackers} conns POST /login)`.padEnd(44)}${f0(under.okPerS).padStart(8)}${f2(under.okP50).padStart(8)}${f2(under.okP99).padStart(8)}   ${codes(under)}${under.errors ? `, errors: ${under.errors}` : ''}`,
      `  attackers: ${(atk.allPerS).toFixed(0)} answers/s over ${atk.durationS.toFixed(1)} s (started ${leadS} s before the user); ${codes(atk)}${atk.errors ? `, errors: ${atk.errors}` : ''};`,
      `    p50 ${f2(atk.allP50)} ms, p99 ${f2(atk.allP99)} ms; the server's counters: ${dFailures} compared and wrong (401), ${dThrottled} throttled (429)`,
      '    (the counters also count answers still in flight when the attackers stopped)',
      '  note: every attacker here comes from 127.0.0.1, one address: after 5 wrong passwords it gets 429 without a',
      '    comparison (waits 1 s, 2 s, 4 s ... between compared attempts). Attackers from many addresses would each get',
      '    5 free attempts answered 401, and the throttle keeps at most 10 000 addresses.',
      '',
      `RSS portal server:  start ${mb(portal.ready.rss)}, after the throughput runs ${mb(afterThroughput.rss)}, end ${mb(end.rss)}, peak ${mb(end.maxRss)}` +
        ` (JS heap used: ${mb(portal.ready.heapUsed)} / ${mb(afterThroughput.heapUsed)} / ${mb(end.heapUsed)})`,
      `RSS bare reference: start ${mb(bare.ready.rss)}, end ${mb(bareEnd.rss)}, peak ${mb(bareEnd.maxRss)}`,
      `whole bench: ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    console.log(`\n${lines.join('\n')}`);
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill();
  }
}
