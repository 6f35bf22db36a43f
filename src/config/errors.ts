import { CodedError } from '../runtime/errors.js';

/** A setting that cannot be used. `setting` names it the way the user wrote it (flag, variable or key). */
export class ConfigError extends CodedError<'FD_CONFIG'> {
  readonly setting: string;
  constructor(setting: string, message: string) {
    super('FD_CONFIG', `${setting}: ${message}`);
    this.setting = setting;
  }
}
