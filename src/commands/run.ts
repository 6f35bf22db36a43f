import { Agent } from '../agent/agent.js';
import { cameraFromSettings } from '../camera/setup.js';
import { resolveLocalNetwork } from '../router/local-network.js';
import { systemClock } from '../runtime/clock.js';
import { ConfigError } from '../config/errors.js';
import { createCommandRunner } from '../floating-address/command-runner.js';
import { floatingCapability, resolveFloatingSetting } from '../floating-address/floating-address.js';
import type { FloatingSetting } from '../floating-address/floating-address.js';
import { interfaceOf } from '../floating-address/floating-mapper.js';
import type { LocalNetwork } from '../router/local-network.js';
import type { CommandContext } from './main.js';
import { agentOptions } from './node-options.js';
import { withSupervisorName } from '../balena/device-name.js';

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
    const { options, identity: atStart } = agentOptions(s, net, ctx.io.env);
    const identity = await withSupervisorName(atStart, ctx.io.env, { logger: log, signal: ctx.signal });
    options.name = identity.name;
    log.info('identity', { name: identity.name, from: identity.nameSource, id: identity.id, deviceValueFrom: identity.deviceSource });
    const floating = await floatingOption(s.floatingAddress, net, ctx);
    if (floating !== undefined) options.floating = floating;
    const camera = await cameraFromSettings(s, { clock: systemClock, logger: log.child('camera') }, { signal: ctx.signal });
    if (camera !== undefined) options.camera = { camera, wanFps: s.cameraWanFps };
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

/**
 * The floating address setting, checked against this node's subnet (a bad value stops the start)
 * and its privileges (missing NET_ADMIN only warns: the node keeps working, failing over at the
 * old lease's pace, as the issue of nodes that may not change addresses asks).
 */
async function floatingOption(value: string, net: LocalNetwork, ctx: CommandContext): Promise<FloatingSetting | undefined> {
  if (value.trim().toLowerCase() === 'off') return undefined;
  const local = interfaceOf(net.localAddress);
  if (local === undefined) {
    throw new ConfigError('--floating-address', `this node's address ${net.localAddress} is on no local interface`);
  }
  let setting: FloatingSetting | undefined;
  try {
    setting = resolveFloatingSetting(value, { ...local, gateway: net.gateway });
  } catch (err) {
    throw new ConfigError('--floating-address', err instanceof Error ? err.message : String(err));
  }
  if (setting === undefined) return undefined;
  const can = await floatingCapability(createCommandRunner({ timeoutMs: 3000 }), { signal: ctx.signal });
  if (!can.ok) {
    ctx.logger.warn('floating address off: crash failover waits for the old lease', { reason: can.reason });
    return undefined;
  }
  return setting;
}
