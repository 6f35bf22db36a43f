/**
 * The one shape of frontdoor's typed errors: a stable, machine-readable `code` that callers
 * decide on (never the message text), and the class's own name in stack traces and logs.
 */
export class CodedError<C extends string> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
