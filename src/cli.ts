#!/usr/bin/env node
import { runCli } from './commands/main.js';

// SIGTERM (balena stopping the container) and Ctrl-C stop gracefully: the representative
// releases the port and tells the LAN before the process ends. A second signal does not wait.
const controller = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort(new Error(`received ${sig}`));
  });
}

const code = await runCli(process.argv.slice(2), {
  env: process.env,
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  signal: controller.signal,
});
process.exitCode = code;
// Whatever handle a library may leave open must not keep a stopped node alive.
setTimeout(() => process.exit(code), 2000).unref();
