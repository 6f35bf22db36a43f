import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * What Linux says of a process from outside: CPU time and memory from /proc, so the node, ffmpeg
 * and the viewers are measured the same way, without their cooperation.
 */

/** Clock ticks per second for /proc/<pid>/stat; 100 on every Linux this runs on, asked anyway. */
const CLK_TCK = (() => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000 }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU seconds of a process so far; undefined when it is gone. */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) may hold spaces and parentheses: count fields after its ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 (utime) and 15 (stime) of the line are 12 and 13 after the name and state.
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** A field of /proc/<pid>/status in bytes (VmRSS, VmHWM: "…:   123 kB"). */
export function statusBytes(pid: number | 'self', field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** A sample of several processes' CPU time at one instant. */
export interface CpuSample {
  atMs: number;
  seconds: Array<number | undefined>;
}

export function sampleCpu(pids: Array<number | undefined>): CpuSample {
  return { atMs: performance.now(), seconds: pids.map(cpuSeconds) };
}

/** CPU % of one core of process `i` between two samples (NaN when it was not running throughout). */
export function cpuPercent(a: CpuSample, b: CpuSample, i: number): number {
  const x = a.seconds[i];
  const y = b.seconds[i];
  if (x === undefined || y === undefined) return Number.NaN;
  return (100 * (y - x)) / ((b.atMs - a.atMs) / 1000);
}
