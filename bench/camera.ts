/**
 * `npm run bench -- camera [--seconds=5] [--viewers=1,10,50,100] [--warmup=2] [--stall-timeout=2]
 * [--cpu-prof=DIR]`: a camera node's /camera.mjpg (Camera + ffmpeg's test pattern at the
 * settings' defaults, 1280x720, 15 fps, quality 80, served by createPortalApp (which = 'node')
 * behind NodeHttpServer) to N viewers on loopback, then N viewers beside one that stalls. For
 * each case: the frames each viewer gets per second (slowest and median) beside the camera's own
 * rate, the CPU of the node and of ffmpeg (from /proc), the node's RSS, and the server's
 * sent/skipped/dropped counters. `--stall-timeout=S` adds a last case on a server whose stall
 * timeout is S seconds (0: none), to show the stalled viewer dropped.
 *
 * The server (bench/camera/server.ts, with ffmpeg as its child) and the viewers
 * (bench/camera/viewers.ts) are processes of their own; this one only samples. Loopback only;
 * every child is bounded in time and ends with the bench, also on Ctrl-C.
 */
import { execFileSync, fork, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { has, nextMessage } from './ipc.js';
import { measureCase, serverStats } from './camera/measure.js';
import type { CaseResult, CaseSpec, RunningServer } from './camera/measure.js';
import type { ServerConfig, ServerReady } from './camera/protocol.js';
import { goals, notes, table } from './camera/report.js';

const SERVER = fileURLToPath(new URL('./camera/server.js', import.meta.url));
const VIEWERS = fileURLToPath(new URL('./camera/viewers.js', import.meta.url));
/** The settings' defaults (src/config/settings.ts): what a node runs unless told otherwise. */
const FORMAT = { width: 1280, height: 720, fps: 15, quality: 80 };
const DEFAULT_STALL_MS = 30_000;

function option(args: string[], name: string): string | undefined {
  return args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

function number(v: string | undefined, fallback: number, what: string, min = 0): number {
  const n = Number(v ?? fallback);
  if (!Number.isFinite(n) || n < min) throw new Error(`${what} must be a number >= ${min}, got ${v}`);
  return n;
}

async function startServer(config: ServerConfig, children: ChildProcess[], cpuProfDir: string | undefined): Promise<RunningServer> {
  const child = fork(SERVER, [JSON.stringify(config)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [],
  });
  children.push(child);
  const ready = await nextMessage(child, has<ServerReady>('ready'), 30_000, 'camera server');
  return { child, ready, ffmpegPid: ready.ffmpegPid };
}

/** Asks the server to stop (so ffmpeg ends and a CPU profile is written), then waits, bounded. */
async function stopServer(s: RunningServer): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  const gone = new Promise<void>((r) => s.child.once('exit', () => r()));
  s.child.send({ cmd: 'stop' });
  await Promise.race([gone, new Promise((r) => setTimeout(r, 8000))]);
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
}

/** Why µStreamer, the reference, can or cannot run here. It only reads V4L2 devices. */
function referenceLine(): string {
  const devices = existsSync('/dev') ? readdirSync('/dev').filter((n) => /^video\d+$/.test(n)) : [];
  const installed = spawnSync('sh', ['-c', 'command -v ustreamer'], { encoding: 'utf8', timeout: 2000 }).stdout.trim();
  const loopback = existsSync('/sys/module/v4l2loopback');
  const what = `ustreamer ${installed ? `installed (${installed})` : 'not installed'}, v4l2loopback module ${loopback ? 'loaded' : 'not loaded'}`;
  if (devices.length === 0) {
    return `reference (µStreamer): NOT RUN: no V4L2 device on this machine (no /dev/video*; ${what}); µStreamer reads only V4L2 devices, so it cannot serve the ffmpeg test pattern here`;
  }
  return `reference (µStreamer): NOT RUN: V4L2 device(s) ${devices.map((d) => `/dev/${d}`).join(', ')} exist (${what}), but this bench does not drive ustreamer; the figures above are frontdoor's alone`;
}

export async function run(args: string[]): Promise<void> {
  const seconds = number(option(args, 'seconds'), 5, '--seconds', 1);
  const warmupS = number(option(args, 'warmup'), 2, '--warmup');
  const counts = (option(args, 'viewers') ?? '1,10,50,100').split(',').map((c) => Math.round(number(c, 1, '--viewers', 1)));
  const shortStallS = number(option(args, 'stall-timeout'), 2, '--stall-timeout');
  const cpuProfDir = option(args, 'cpu-prof');
  try {
    execFileSync('ffmpeg', ['-version'], { stdio: 'ignore', timeout: 5000 });
  } catch {
    console.log('camera bench: needs ffmpeg (Debian package ffmpeg) for the test pattern; not run');
    return;
  }

  const t0 = performance.now();
  const loadBefore = loadavg();
  const children: ChildProcess[] = [];
  const killAll = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  };
  // Ctrl-C reaches the children too (same process group); this covers a signal sent to us alone.
  const onSignal = () => {
    killAll();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const progress = (what: string) => console.log(`  [${((performance.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${what}`);
  const rows: CaseResult[] = [];
  let command = '';
  let frameBytes = 0;
  try {
    const server = await startServer({ ...FORMAT, stallTimeoutMs: DEFAULT_STALL_MS }, children, cpuProfDir);
    command = server.ready.command;
    const viewers = fork(VIEWERS, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(viewers);
    frameBytes = (await serverStats(server)).frameBytes;
    progress(`camera live (ffmpeg pid ${server.ready.ffmpegPid}), frame ${frameBytes} bytes`);

    const cases: CaseSpec[] = counts.flatMap((n) => [
      { label: `${n} viewer${n === 1 ? '' : 's'}`, healthy: n, stalled: false, warmupS, seconds },
      { label: `${n} viewer${n === 1 ? '' : 's'} + 1 stalled`, healthy: n, stalled: true, warmupS, seconds },
    ]);
    for (const c of cases) {
      const r = await measureCase(server, viewers, c);
      rows.push(r);
      progress(`${c.label}: min ${r.minFps.toFixed(1)} fps, median ${r.medianFps.toFixed(1)}, camera ${r.cameraFps.toFixed(1)}, node CPU ${r.nodeCpu.toFixed(0)} %`);
    }
    await stopServer(server);

    if (shortStallS > 0) {
      // A server of its own: the stall timeout is fixed when the app is made.
      const n = Math.min(10, Math.max(...counts));
      const short = await startServer({ ...FORMAT, stallTimeoutMs: shortStallS * 1000 }, children, cpuProfDir);
      const c: CaseSpec = { label: `${n} viewers + 1 stalled, stall ${shortStallS} s`, healthy: n, stalled: true, shortStall: true, warmupS, seconds };
      const r = await measureCase(short, viewers, c);
      rows.push(r);
      progress(`${c.label}: dropped ${r.dropped}, min ${r.minFps.toFixed(1)} fps`);
      await stopServer(short);
    }
  } finally {
    killAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  const loadAfter = loadavg();
  const mean = rows.filter((r) => !r.spec.stalled && Number.isFinite(r.wireBytesPerFrame));
  const wire = mean.length > 0 ? mean.reduce((n, r) => n + r.wireBytesPerFrame, 0) / mean.length : Number.NaN;
  const byCase = (stalled: boolean) => (n: number) => rows.find((r) => r.spec.healthy === n && r.spec.stalled === stalled && !r.spec.shortStall);
  console.log(
    [
      '',
      `camera: Camera + ffmpeg test pattern ${FORMAT.width}x${FORMAT.height}, ${FORMAT.fps} fps, quality ${FORMAT.quality}, always on;`,
      `  served by createPortalApp (which = 'node') behind NodeHttpServer on 127.0.0.1, basic auth, stall timeout ${DEFAULT_STALL_MS / 1000} s`,
      `  ffmpeg: ${command}`,
      `  frame: ${frameBytes} bytes (JPEG, newest at start); ${Number.isFinite(wire) ? Math.round(wire) : '-'} bytes a frame on the wire (part header, CRLF, chunked framing)`,
      `  processes: node server (1) | ffmpeg (its child) | viewers (1 process, raw TCP, boundary counting) | this bench (sampling only);`,
      `  ${availableParallelism()} CPU(s) shared by all (and whatever else runs: load average ${loadBefore[0]!.toFixed(1)} before, ${loadAfter[0]!.toFixed(1)} after)`,
      `  each case: ${warmupS} s warm-up, then ${seconds} s measured; fps per viewer = part headers counted / window; CPU % of one core from /proc/<pid>/stat;`,
      "  lag: the longest event-loop delay in the window (server / viewers' process), ms",
      '  sent/skipped: stream frames in the window (server counters); dropped: stalled viewers dropped over the whole case',
      '',
      ...table(rows),
      ...(notes(rows).length > 0 ? ['', 'notes:', ...notes(rows)] : []),
      '',
      'goals:',
      ...goals(rows, byCase(false), byCase(true)),
      '',
      referenceLine(),
      `whole bench: ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    ].join('\n'),
  );
}
