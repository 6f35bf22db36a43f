/**
 * Why a certificate could not be had. Callers decide on the code: a router that will not open
 * the challenge port is waited out differently from a CA that said no.
 */
import { CodedError } from '../runtime/errors.js';

export type AcmeErrorCode =
  /** The router would not forward the public port the http-01 challenge needs. */
  | 'FD_ACME_PORT'
  /** The CA could not be reached, or answered with an error (rate limit, rejected identifier...). */
  | 'FD_ACME_CA'
  /** The CA's validation of our challenge failed (its connection did not reach us). */
  | 'FD_ACME_CHALLENGE'
  /** Nothing a CA would certify: the WAN address is not known yet, or not public. */
  | 'FD_ACME_NO_IDENTIFIER';

export class AcmeError extends CodedError<AcmeErrorCode> {}

/** A certificate bundle from the LAN that is not one of ours: forged, damaged or malformed. */
export class AcmeBundleError extends CodedError<'FD_ACME_BUNDLE'> {
  constructor(message: string) {
    super('FD_ACME_BUNDLE', message);
  }
}
