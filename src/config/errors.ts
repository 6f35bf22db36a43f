/** A setting that cannot be used. `setting` names it the way the user wrote it (flag, variable or key). */
export class ConfigError extends Error {
  readonly code = 'FD_CONFIG';
  readonly setting: string;
  constructor(setting: string, message: string) {
    super(`${setting}: ${message}`);
    this.name = 'ConfigError';
    this.setting = setting;
  }
}
