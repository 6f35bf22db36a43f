import type { ChildProcess } from 'node:child_process';
import { has, nextMessage } from '../ipc.js';
import { cpuPercent, sampleCpu } from './proc.js';
import type { CpuSample } from './proc.js';
import type { ServerReady, ServerStats, ViewersCommand, ViewersSample } from './protocol.js';
import { median } from '../stats.js';

/**
 * One case of the camera bench: open the viewers, let them warm up, sample everything, wait the
 * window, sample again, close. Every figure is a difference between the two samples, each taken
 * in the process it describes (the server's counters and clock, the viewers' counts and clock,
 * /proc for CPU time) at nearly the same instant.
 */

export interface RunningServer {
  child: ChildProcess;
  ready: ServerReady;
  /** The newest ffmpeg pid seen (the camera restarts it if it dies). */
  ffmpegPid: number | undefined;
}

export interface CaseSpec {
  label: string;
  healthy: number;
  stalled: boolean;
  /** On the server with the shortened stall timeout (not compared with the others). */
  shortStall?: boolean;
  warmupS: number;
  seconds: number;
}

/** How long a paused viewer took to look stalled to the server. */
export interface StallOnset {
  afterS: number;
  /** Frames the server wrote to it meanwhile (into the kernel's buffers). */
  framesSent: number;
  /** false: no frame was skipped within the limit. */
  skipping: boolean;
}

export interface CaseResult {
  spec: CaseSpec;
  onset?: StallOnset | undefined;
  /** The window as the viewers' process measured it, and as the server did. */
  windowS: number;
  serverWindowS: number;
  /** Longest event-loop delay in the window: the server's, the viewers' process's. */
  serverLoopMaxMs: number;
  viewersLoopMaxMs: number;
  cameraFps: number;
  minFps: number;
  medianFps: number;
  maxFps: number;
  nodeCpu: number;
  /** The same from the server's own process.cpuUsage(): a cross-check of /proc. */
  nodeCpuSelf: number;
  ffmpegCpu: number;
  viewersCpu: number;
  rssEnd: number;
  peakRss: number;
  sent: number;
  skipped: number;
  /** Over the whole case, the stalled viewer's onset and the warm-up included (not only the window). */
  dropped: number;
  /** Frames the server sent that the healthy viewers did not count: the stalled one's, ± in flight. */
  sentToOthers: number;
  wireMBps: number;
  wireBytesPerFrame: number;
  frameBytes: number;
  endedViewers: number;
  /** The server still counted the stalled viewer among its viewers at the end of the window. */
  stalledConnectedAtEnd: boolean;
  restarts: number;
}

const isStats = has<{ stats: ServerStats }>('stats');
const isSample = has<{ sample: ViewersSample }>('sample');
const STALL_ONSET_LIMIT_MS = 60_000;
/** Camera frames all skipped in a row before a paused viewer counts as stalled. */
const STALL_RUN = 10;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function serverStats(s: RunningServer): Promise<ServerStats> {
  const answer = nextMessage(s.child, isStats, 5000, 'server stats');
  s.child.send({ cmd: 'stats' });
  const stats = (await answer).stats;
  s.ffmpegPid = stats.ffmpegPid ?? s.ffmpegPid;
  return stats;
}

function tell(viewers: ChildProcess, c: ViewersCommand): void {
  viewers.send(c);
}

interface Sample {
  cpu: CpuSample;
  server: ServerStats;
  viewers: ViewersSample;
}

async function sampleAll(s: RunningServer, viewers: ChildProcess): Promise<Sample> {
  const server = serverStats(s);
  const v = nextMessage(viewers, isSample, 5000, 'viewers sample');
  tell(viewers, { cmd: 'sample' });
  // Read right after asking the others, so all three describe nearly the same instant.
  const cpu = sampleCpu([s.child.pid, s.ffmpegPid, viewers.pid]);
  return { cpu, server: await server, viewers: (await v).sample };
}

async function open(s: RunningServer, viewers: ChildProcess, healthy: number, stalled: boolean, what: string): Promise<void> {
  const opened = nextMessage(viewers, has<{ opened: true }>('opened'), 25_000, what);
  tell(viewers, { cmd: 'open', port: s.ready.port, password: s.ready.password, healthy, stalled });
  await opened;
}

/**
 * The stalled viewer alone first, until the server skips frames for it: the kernel's socket
 * buffers (several MB on loopback) take frames long after the viewer stopped reading, and only
 * once they are full is the viewer stalled as the server sees it. Bounded by `limitMs`.
 */
async function stall(s: RunningServer, viewers: ChildProcess, limitMs: number): Promise<StallOnset> {
  const before = await serverStats(s);
  const t0 = performance.now();
  await open(s, viewers, 0, true, 'opening the stalled viewer');
  // A skip may also come from a late 'drain' on a busy machine: the onset is the first skip of
  // a run in which every one of STALL_RUN camera frames was skipped.
  let run: { atMs: number; frames: number; skipped: number; sent: number } | undefined;
  for (;;) {
    const now = await serverStats(s);
    const c = now.counters;
    if (run === undefined && c.streamFramesSkipped > before.counters.streamFramesSkipped) {
      run = { atMs: performance.now(), frames: now.camera.frames, skipped: c.streamFramesSkipped, sent: c.streamFramesSent };
    } else if (run !== undefined && c.streamFramesSent > run.sent) {
      run = undefined; // it drained again: not stalled yet
    } else if (run !== undefined && now.camera.frames - run.frames >= STALL_RUN) {
      return { afterS: (run.atMs - t0) / 1000, framesSent: run.sent - before.counters.streamFramesSent, skipping: true };
    }
    if (performance.now() - t0 > limitMs) return { afterS: (performance.now() - t0) / 1000, framesSent: c.streamFramesSent - before.counters.streamFramesSent, skipping: false };
    await sleep(50);
  }
}

export async function measureCase(s: RunningServer, viewers: ChildProcess, spec: CaseSpec): Promise<CaseResult> {
  const start = await serverStats(s);
  const onset = spec.stalled ? await stall(s, viewers, STALL_ONSET_LIMIT_MS) : undefined;
  await open(s, viewers, spec.healthy, false, `${spec.label}: opening the viewers`);
  await sleep(spec.warmupS * 1000);
  const a = await sampleAll(s, viewers);
  await sleep(spec.seconds * 1000);
  const b = await sampleAll(s, viewers);
  const closed = nextMessage(viewers, has<{ closed: true }>('closed'), 5000, 'closing the viewers');
  tell(viewers, { cmd: 'close' });
  await closed;
  // The next case starts from a server with no viewer left.
  const until = Date.now() + 5000;
  while ((await serverStats(s)).camera.viewers > 0 && Date.now() < until) await sleep(50);
  return { ...result(spec, a, b), onset, dropped: b.server.counters.streamsDroppedStalled - start.counters.streamsDroppedStalled };
}

function result(spec: CaseSpec, a: Sample, b: Sample): Omit<CaseResult, 'onset' | 'dropped'> {
  const vS = (b.viewers.atMs - a.viewers.atMs) / 1000;
  const sS = (b.server.atMs - a.server.atMs) / 1000;
  const fps = b.viewers.frames.map((f, i) => (f - (a.viewers.frames[i] ?? 0)) / vS);
  const frames = b.viewers.frames.reduce((n, f, i) => n + f - (a.viewers.frames[i] ?? 0), 0);
  const bytes = b.viewers.bytes.reduce((n, x, i) => n + x - (a.viewers.bytes[i] ?? 0), 0);
  const d = (k: keyof ServerStats['counters']) => b.server.counters[k] - a.server.counters[k];
  const selfUs = b.server.cpuUserUs + b.server.cpuSystemUs - a.server.cpuUserUs - a.server.cpuSystemUs;
  return {
    spec,
    windowS: vS,
    serverWindowS: sS,
    serverLoopMaxMs: b.server.loopDelayMaxMs,
    viewersLoopMaxMs: b.viewers.loopDelayMaxMs,
    cameraFps: (b.server.camera.frames - a.server.camera.frames) / sS,
    minFps: Math.min(...fps),
    medianFps: median(fps),
    maxFps: Math.max(...fps),
    nodeCpu: cpuPercent(a.cpu, b.cpu, 0),
    nodeCpuSelf: selfUs / 1e4 / sS,
    ffmpegCpu: cpuPercent(a.cpu, b.cpu, 1),
    viewersCpu: cpuPercent(a.cpu, b.cpu, 2),
    rssEnd: b.server.rss,
    peakRss: b.server.peakRss,
    sent: d('streamFramesSent'),
    skipped: d('streamFramesSkipped'),
    sentToOthers: d('streamFramesSent') - frames,
    wireMBps: bytes / vS / 1e6,
    wireBytesPerFrame: frames > 0 ? bytes / frames : Number.NaN,
    frameBytes: b.server.frameBytes,
    endedViewers: b.viewers.ended,
    // The server's view: a dropped viewer's FIN waits behind the data it never read.
    stalledConnectedAtEnd: b.server.camera.viewers > spec.healthy,
    restarts: b.server.camera.restarts - a.server.camera.restarts,
  };
}
