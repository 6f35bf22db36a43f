/**
 * The viewers of the camera bench, in a process of their own (forked with IPC), so counting
 * frames never shares an event loop with the server it measures, and its own CPU time can be
 * read apart. Takes ViewersCommands one at a time: `open` adds viewers and answers {opened} once
 * each new healthy viewer has had a frame (and the stalled one its headers); `sample` answers {sample:
 * ViewersSample}; `close` ends every viewer and answers {closed}. Ends when the parent goes
 * away, and after 10 minutes whatever happens. Loopback only.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { openViewer } from './viewer.js';
import type { Viewer } from './viewer.js';
import type { ViewersCommand, ViewersSample } from './protocol.js';

if (!process.send) {
  process.stderr.write('viewers.js is forked by bench/camera.js\n');
  process.exit(2);
}
process.on('disconnect', () => process.exit(0));
setTimeout(() => process.exit(3), 600_000).unref();

const OPEN_TIMEOUT_MS = 20_000;
let healthy: Viewer[] = [];
let stalled: Viewer | undefined;

function closeAll(): void {
  for (const v of healthy) v.close();
  stalled?.close();
  healthy = [];
  stalled = undefined;
}

async function open(c: Extract<ViewersCommand, { cmd: 'open' }>): Promise<void> {
  const authorization = `Basic ${Buffer.from(`admin:${c.password}`).toString('base64')}`;
  const opening: Viewer[] = Array.from({ length: c.healthy }, () => openViewer(c.port, authorization, false));
  if (c.stalled) {
    stalled?.close();
    stalled = openViewer(c.port, authorization, true);
    opening.push(stalled);
  }
  healthy.push(...opening.filter((v) => v !== stalled));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`viewers not all receiving within ${OPEN_TIMEOUT_MS} ms`)), OPEN_TIMEOUT_MS);
  });
  try {
    await Promise.race([Promise.all(opening.map((v) => v.ready)), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// A viewers' process that is itself stuck (the machine is shared) would read as a slow server.
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

function sample(): ViewersSample {
  const loopDelayMaxMs = loopDelay.max / 1e6;
  loopDelay.reset();
  return {
    atMs: performance.now(),
    loopDelayMaxMs,
    frames: healthy.map((v) => v.counter?.count ?? 0),
    bytes: healthy.map((v) => v.counter?.bytes ?? 0),
    ended: healthy.filter((v) => v.ended).length,
  };
}

process.on('message', (m: ViewersCommand) => {
  if (m.cmd === 'open') {
    open(m).then(
      () => process.send?.({ opened: true }),
      (err: Error) => {
        closeAll();
        process.send?.({ error: err.message });
      },
    );
  } else if (m.cmd === 'sample') {
    process.send?.({ sample: sample() });
  } else if (m.cmd === 'close') {
    closeAll();
    process.send?.({ closed: true });
  }
});
