/**
 * What balena tells a container about its device, from the variables the supervisor injects.
 * Off balena none of them is set and every field is undefined: the caller falls back to the
 * host's own values, so the same program runs unchanged on plain Debian.
 */
export interface BalenaEnvironment {
  /** BALENA=1 is set in every balena container. */
  onBalena: boolean;
  deviceUuid: string | undefined;
  /** The device's name when the container was created; it does not follow a rename. */
  deviceNameAtInit: string | undefined;
  /** e.g. raspberrypi4-64 */
  deviceType: string | undefined;
  /** Present only when the service may call the supervisor (single-container fleets always may). */
  supervisor: { address: string; apiKey: string } | undefined;
}

function value(env: NodeJS.ProcessEnv, key: string): string | undefined {
  const v = env[key]?.trim();
  return v ? v : undefined;
}

export function balenaEnvironment(env: NodeJS.ProcessEnv): BalenaEnvironment {
  const address = value(env, 'BALENA_SUPERVISOR_ADDRESS');
  const apiKey = value(env, 'BALENA_SUPERVISOR_API_KEY');
  return {
    onBalena: value(env, 'BALENA') === '1',
    deviceUuid: value(env, 'BALENA_DEVICE_UUID'),
    deviceNameAtInit: value(env, 'BALENA_DEVICE_NAME_AT_INIT'),
    deviceType: value(env, 'BALENA_DEVICE_TYPE'),
    supervisor: address !== undefined && apiKey !== undefined ? { address, apiKey } : undefined,
  };
}
