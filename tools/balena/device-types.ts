/**
 * The balena device types the fleet release supports (balena.yml lists them; the Dockerfile
 * template is rendered and checked for each). `arch` is what balena substitutes for
 * %%BALENA_ARCH%%: the official Node images exist for armv7hf (linux/arm/v7) and aarch64, not for
 * the armv6 `rpi` type of the Pi Zero and Pi 1, which is why those are not here.
 */
export interface DeviceType {
  /** %%BALENA_MACHINE_NAME%% */
  machine: string;
  /** %%BALENA_ARCH%% */
  arch: 'armv7hf' | 'aarch64' | 'amd64';
  label: string;
}

export const DEVICE_TYPES: readonly DeviceType[] = [
  { machine: 'raspberrypi3', arch: 'armv7hf', label: 'Raspberry Pi 3' },
  { machine: 'raspberrypi4-64', arch: 'aarch64', label: 'Raspberry Pi 4 (64-bit)' },
  { machine: 'raspberrypi5', arch: 'aarch64', label: 'Raspberry Pi 5' },
  { machine: 'raspberrypi0-2w-64', arch: 'aarch64', label: 'Raspberry Pi Zero 2 W (64-bit)' },
];

export const DEFAULT_DEVICE_TYPE = 'raspberrypi4-64';
