/**
 * `npm run bench -- <name> [options]`. Benchmarks print figures beside the reference they are
 * measured against; they assert nothing (tests do that).
 */
const benches: Record<string, () => Promise<{ run(args: string[]): Promise<void> }>> = {
  router: () => import('./router.js'),
};

const [name, ...args] = process.argv.slice(2);
const names = name ? [name] : Object.keys(benches);
for (const n of names) {
  const load = benches[n];
  if (!load) {
    console.error(`unknown benchmark "${n}"; known: ${Object.keys(benches).join(', ')}`);
    process.exit(2);
  }
  await (await load()).run(args);
}
