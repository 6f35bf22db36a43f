/**
 * `npm run bench -- <name> [options]`. Benchmarks print figures beside the reference they are
 * measured against; they assert nothing (tests do that).
 */
const benches: Record<string, () => Promise<{ run(args: string[]): Promise<void> }>> = {
  router: () => import('./router.js'),
  election: () => import('./election-sim.js'),
  failover: () => import('./failover.js'),
  portal: () => import('./portal.js'),
  camera: () => import('./camera.js'),
  splitter: () => import('./splitter.js'),
  soak: () => import('./soak.js'),
  start: () => import('./start.js'),
};

const [name, ...args] = process.argv.slice(2);
// Without a name: the benchmarks that need nothing but this machine (router needs root).
const names = name && !name.startsWith('-') ? [name] : ['election', 'router'];
for (const n of names) {
  const load = benches[n];
  if (!load) {
    console.error(`unknown benchmark "${n}"; known: ${Object.keys(benches).join(', ')}`);
    process.exit(2);
  }
  await (await load()).run(args);
}
