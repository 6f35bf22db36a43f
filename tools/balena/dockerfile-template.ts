import type { DeviceType } from './device-types.js';

/**
 * What the balena builder does to Dockerfile.template before building: every %%BALENA_...%%
 * replaced by the device type's value. Done here too, since no Docker engine runs where the tests
 * do: the rendered files are what test/balena checks.
 */
export function renderDockerfileTemplate(template: string, device: DeviceType): string {
  const values: Record<string, string> = {
    BALENA_MACHINE_NAME: device.machine,
    BALENA_ARCH: device.arch,
  };
  return template.replace(/%%(BALENA_[A-Z_]+)%%/g, (whole, name: string) => values[name] ?? whole);
}
