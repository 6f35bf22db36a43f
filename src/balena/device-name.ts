import { type Identity, withCurrentName } from '../agent/identity.js';
import type { Logger } from '../runtime/log.js';
import { balenaEnvironment } from './environment.js';
import { SupervisorClient } from './supervisor-client.js';

export interface SupervisorNameOptions {
  logger: Logger;
  signal?: AbortSignal;
  /** How long the start may wait for the supervisor; it is on the same device. */
  timeoutMs?: number;
  /** For tests: the client to ask (default: one made from the environment). */
  client?: Pick<SupervisorClient, 'deviceName'>;
}

/**
 * The identity with the device's current name from the balena supervisor, which follows a rename
 * in the dashboard where BALENA_DEVICE_NAME_AT_INIT does not. A name set by the user (--name)
 * wins and nothing is asked. Never fails: off balena there is no supervisor to ask, and when the
 * supervisor does not answer in time the start goes on with the name it had, saying why.
 */
export async function withSupervisorName(identity: Identity, env: NodeJS.ProcessEnv, opts: SupervisorNameOptions): Promise<Identity> {
  if (identity.nameSource === 'setting') return identity;
  const balena = balenaEnvironment(env);
  if (balena.onBalena) opts.logger.info('balena device', { deviceType: balena.deviceType ?? 'unknown', supervisorApi: balena.supervisor !== undefined });
  if (!opts.client && !balena.supervisor) return identity;
  try {
    const client = opts.client ?? new SupervisorClient({ ...balena.supervisor!, timeoutMs: opts.timeoutMs ?? 2000 });
    const name = await client.deviceName(opts.signal ? { signal: opts.signal } : {});
    const next = withCurrentName(identity, name);
    if (next.name !== identity.name) opts.logger.info('device name from the balena supervisor', { name: next.name, was: identity.name });
    return next;
  } catch (err) {
    opts.logger.warn('could not ask the balena supervisor for the device name; keeping the one found at start', {
      name: identity.name,
      from: identity.nameSource,
      error: err,
    });
    return identity;
  }
}
