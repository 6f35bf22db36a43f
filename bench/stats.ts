export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function fmt(ms: number): string {
  return `${ms.toFixed(0)} ms`;
}

/** One row: label, median, min, max of a series of milliseconds. */
export function row(label: string, xs: number[]): string {
  if (xs.length === 0) return `${label.padEnd(46)} (no samples)`;
  return `${label.padEnd(46)} median ${fmt(median(xs)).padStart(8)}   min ${fmt(Math.min(...xs)).padStart(8)}   max ${fmt(Math.max(...xs)).padStart(8)}   n=${xs.length}`;
}
