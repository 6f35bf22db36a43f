import type { CaseResult } from './measure.js';

/** The camera bench's table and its goals, printed beside the figures. */

export const GOALS = { viewers: 100, minFps: 14.5, stallToleranceFps: 0.5, rssBytes: 120 * 1024 * 1024 };

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const mb = (b: number) => (b / 1048576).toFixed(1);

const COLUMNS: Array<[string, number, (r: CaseResult) => string]> = [
  ['case', 34, (r) => r.spec.label],
  ['camera fps', 11, (r) => f1(r.cameraFps)],
  ['min fps', 8, (r) => f1(r.minFps)],
  ['median', 7, (r) => f1(r.medianFps)],
  ['node CPU%', 10, (r) => f1(r.nodeCpu)],
  ['ffmpeg%', 8, (r) => f1(r.ffmpegCpu)],
  ['viewers%', 9, (r) => f1(r.viewersCpu)],
  ['RSS MB', 7, (r) => mb(r.rssEnd)],
  ['peak MB', 8, (r) => mb(r.peakRss)],
  ['sent', 7, (r) => String(r.sent)],
  ['skipped', 8, (r) => String(r.skipped)],
  ['dropped', 8, (r) => String(r.dropped)],
  ['MB/s out', 9, (r) => f1(r.wireMBps)],
  ['lag ms srv/view', 16, (r) => `${r.serverLoopMaxMs.toFixed(0)}/${r.viewersLoopMaxMs.toFixed(0)}`],
];

/**
 * A window the shared machine got in the way of: the viewers' process stuck long enough for the
 * server to skip frames for healthy viewers, or the two processes' windows far apart (a sample
 * answered late). Its figures are printed all the same, with this said beside them.
 */
export function disturbed(r: CaseResult): string | undefined {
  const why: string[] = [];
  if (r.viewersLoopMaxMs > 250) why.push(`the viewers' process was stuck ${r.viewersLoopMaxMs.toFixed(0)} ms`);
  if (r.serverLoopMaxMs > 250) why.push(`the server was stuck ${r.serverLoopMaxMs.toFixed(0)} ms`);
  if (Math.abs(r.windowS - r.serverWindowS) > 0.25) why.push(`window ${r.windowS.toFixed(2)} s in the viewers' process, ${r.serverWindowS.toFixed(2)} s in the server`);
  return why.length > 0 ? why.join(', ') : undefined;
}

export function table(rows: CaseResult[]): string[] {
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(COLUMNS[0]![1]) : c.padStart(COLUMNS[i]![1]))).join(' ');
  const out = [line(COLUMNS.map(([h]) => h))];
  for (const r of rows) out.push(line(COLUMNS.map(([, , f]) => f(r))));
  return out;
}

/** Remarks a row needs beside it: viewers cut off, a camera restart, the stalled viewer's fate. */
export function notes(rows: CaseResult[]): string[] {
  const out: string[] = [];
  for (const r of rows) {
    const bits: string[] = [];
    const d = disturbed(r);
    if (d) bits.push(`DISTURBED: ${d}`);
    if (r.endedViewers > 0) bits.push(`${r.endedViewers} healthy viewer(s) were disconnected`);
    if (r.restarts > 0) bits.push(`the camera restarted ${r.restarts} time(s) (ffmpeg CPU may miss a process)`);
    if (r.onset) {
      const o = r.onset;
      bits.push(
        o.skipping
          ? `paused alone first: the server began skipping frames for it ${f1(o.afterS)} s later, after writing it ${o.framesSent} frames (into socket buffers)`
          : `paused alone first: the server wrote it ${o.framesSent} frames in ${f1(o.afterS)} s and never skipped one`,
      );
    }
    if (r.spec.stalled) {
      bits.push(
        `stalled viewer: ${r.stalledConnectedAtEnd ? 'still served' : 'dropped by the server'} at the end of the window; ` +
          `${r.skipped} frames skipped (the camera gave ${Math.round(r.cameraFps * r.serverWindowS)}), ` +
          `${r.sentToOthers} sent that the healthy viewers did not count (the stalled one's, ± frames in flight)`,
      );
    }
    if (Math.abs(r.nodeCpu - r.nodeCpuSelf) > 5) bits.push(`node CPU by process.cpuUsage() ${f1(r.nodeCpuSelf)} %`);
    if (bits.length > 0) out.push(`  ${r.spec.label}: ${bits.join('; ')}`);
  }
  return out;
}

const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');

/** What a row's figure needs said beside a verdict: the camera as the ceiling, a disturbed window. */
function caveats(r: CaseResult): string {
  const bits: string[] = [];
  if (r.cameraFps < GOALS.minFps) bits.push(`the camera itself gave ${f1(r.cameraFps)} fps in this window: the ceiling`);
  const d = disturbed(r);
  if (d) bits.push(`disturbed: ${d}`);
  return bits.length > 0 ? ` (${bits.join('; ')})` : '';
}

export function goals(rows: CaseResult[], healthyCase: (n: number) => CaseResult | undefined, stalledCase: (n: number) => CaseResult | undefined): string[] {
  const out: string[] = [];
  const big = healthyCase(GOALS.viewers);
  out.push(
    big
      ? `  ${GOALS.viewers} viewers at >= ${GOALS.minFps} fps each: slowest viewer ${f1(big.minFps)} fps, median ${f1(big.medianFps)} (camera ${f1(big.cameraFps)}) -> ${verdict(big.minFps >= GOALS.minFps)}${caveats(big)}`
      : `  ${GOALS.viewers} viewers at >= ${GOALS.minFps} fps each: not measured (no ${GOALS.viewers} in --viewers)`,
  );
  const pairs: string[] = [];
  let allOk = true;
  for (const r of rows) {
    if (r.spec.stalled) continue;
    const s = stalledCase(r.spec.healthy);
    if (!s) continue;
    // Viewers cannot get more than the camera gives: what a stalled viewer could take from the
    // others is the gap between the camera's rate and the slowest healthy viewer's.
    const ok = s.cameraFps - s.minFps <= r.cameraFps - r.minFps + GOALS.stallToleranceFps && s.endedViewers === 0;
    allOk &&= ok;
    pairs.push(
      `${String(r.spec.healthy).padStart(3)}: slowest ${f1(r.minFps)} -> ${f1(s.minFps)}, median ${f1(r.medianFps)} -> ${f1(s.medianFps)}, camera ${f1(r.cameraFps)} -> ${f1(s.cameraFps)}` +
        `${ok ? '' : ' <- MISSED'}${caveats(s)}`,
    );
  }
  out.push(
    pairs.length > 0
      ? `  a stalled viewer changes nothing for the others (without -> with it; the slowest healthy viewer's gap to the camera's rate grows by <= ${GOALS.stallToleranceFps} fps): ${verdict(allOk)}\n      ${pairs.join('\n      ')}`
      : '  a stalled viewer changes nothing for the others: not measured',
  );
  const peak = Math.max(...rows.map((r) => r.peakRss));
  out.push(`  node RSS <= ${mb(GOALS.rssBytes)} MB: peak (VmHWM) ${mb(peak)} MB, largest at the end of a case ${mb(Math.max(...rows.map((r) => r.rssEnd)))} MB -> ${verdict(peak <= GOALS.rssBytes)}`);
  return out;
}
