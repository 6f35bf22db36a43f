import { readdirSync, readFileSync } from 'node:fs';

/** What a process holds: resident memory (VmRSS) and open file descriptors, from /proc. */
export interface ProcStats {
  pid: number;
  rssKb: number;
  fds: number;
}

/** undefined once the process is gone (or /proc does not have it). */
export function procStats(pid: number | undefined): ProcStats | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /^VmRSS:\s+(\d+) kB/m.exec(status);
    const fds = readdirSync(`/proc/${pid}/fd`).length;
    return { pid, rssKb: rss ? Number(rss[1]) : 0, fds };
  } catch {
    return undefined;
  }
}
