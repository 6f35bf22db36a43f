// Prints Dockerfile.template as the balena builder would render it for one device type, e.g.
//   node scripts/render-dockerfile.mjs raspberrypi4-64 > /tmp/Dockerfile
// for a local `docker build -f /tmp/Dockerfile .`. Reads the compiled code: run `npm run build`
// first (FRONTDOOR_BUILD_DIR picks another build folder). Without an argument: the device types.
import { readFileSync } from 'node:fs';
const root = new URL('../', import.meta.url);
const build = new URL(`${process.env.FRONTDOOR_BUILD_DIR ?? 'dist'}/`, root);
const { DEVICE_TYPES } = await import(new URL('tools/balena/device-types.js', build).href);
const { renderDockerfileTemplate } = await import(new URL('tools/balena/dockerfile-template.js', build).href);
const machine = process.argv[2];
const device = DEVICE_TYPES.find((d) => d.machine === machine);
if (!device) {
  console.error(`usage: node scripts/render-dockerfile.mjs <${DEVICE_TYPES.map((d) => d.machine).join('|')}>`);
  process.exit(machine ? 2 : 0);
}
process.stdout.write(renderDockerfileTemplate(readFileSync(new URL('Dockerfile.template', root), 'utf8'), device));
