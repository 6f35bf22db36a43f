/**
 * Errors of the on-device supervisor client. Callers decide on the class or on `code`, never on
 * message text: "the supervisor is not there" (off balena, or not up yet) is a normal case to
 * fall back from, while "it answered something we cannot use" points at a bug or a changed API.
 */

import { CodedError } from '../runtime/errors.js';

export type SupervisorErrorCode = 'FD_SUPERVISOR_UNAVAILABLE' | 'FD_SUPERVISOR_RESPONSE';

export class SupervisorError extends CodedError<SupervisorErrorCode> {}

/** Nothing answered in time: refused, unreachable, timed out or aborted. */
export class SupervisorUnavailableError extends SupervisorError {
  constructor(message: string, options?: ErrorOptions) {
    super('FD_SUPERVISOR_UNAVAILABLE', message, options);
  }
}

/** The supervisor answered, but not as its documentation says (status, size, JSON or shape). */
export class SupervisorResponseError extends SupervisorError {
  /** The HTTP status, when one arrived. */
  readonly status: number | undefined;
  constructor(message: string, status?: number, options?: ErrorOptions) {
    super('FD_SUPERVISOR_RESPONSE', message, options);
    this.status = status;
  }
}
