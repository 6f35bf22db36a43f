import { Agent } from '../agent/agent.js';
import { resolveLocalNetwork } from '../router/local-network.js';
import { systemClock } from '../runtime/clock.js';
import type { CommandContext } from './main.js';
import { agentOptions } from './node-options.js';

/** `frontdoor run`: the agent, the container's command. Runs until SIGTERM or Ctrl-C. */
export async function runCommand(ctx: CommandContext): Promise<number> {
  const s = ctx.config.settings;
  const log = ctx.logger;
  let agent: Agent;
  try {
    const net = await resolveLocalNetwork({
      gateway: s.gateway || undefined,
      localAddress: s.address || undefined,
      interface: s.interface || undefined,
      signal: ctx.signal,
    });
    const { options, identity } = agentOptions(s, net, ctx.io.env);
    log.info('identity', { name: identity.name, from: identity.nameSource, id: identity.id, deviceValueFrom: identity.deviceSource });
    agent = new Agent({ clock: systemClock, logger: log }, options);
  } catch (err) {
    ctx.io.stderr(`frontdoor run: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  if (ctx.signal.aborted) return 0;
  try {
    await agent.start();
  } catch (err) {
    ctx.io.stderr(`frontdoor run: ${err instanceof Error ? err.message : String(err)}\n`);
    await agent.stop({ graceful: true });
    return 1;
  }
  await new Promise<void>((resolve) => {
    if (ctx.signal.aborted) resolve();
    else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  log.info('stopping', { reason: String((ctx.signal.reason as Error | undefined)?.message ?? 'signal') });
  await agent.stop({ graceful: true });
  return 0;
}
