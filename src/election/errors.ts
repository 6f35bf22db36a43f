/**
 * Errors of the election. Like the router layer, callers decide on `code` or the class, never on
 * message text.
 */

import { CodedError } from '../runtime/errors.js';

export type ElectionErrorCode = 'FD_ELECTION_CONFIG';

export class ElectionError extends CodedError<ElectionErrorCode> {}

/** A timing knob or flag that would make the election unsafe or unable to finish. */
export class ElectionConfigError extends ElectionError {
  /** The offending setting, as named in ElectionConfig (`detection.probe`, `leaseMs`...). */
  readonly setting: string;
  constructor(setting: string, message: string, options?: ErrorOptions) {
    super('FD_ELECTION_CONFIG', `election setting ${setting}: ${message}`, options);
    this.setting = setting;
  }
}
