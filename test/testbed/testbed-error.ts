/**
 * Errors of the test bed itself (not of the router layer: a failing `ip` command is a broken
 * test machine, not a router answer, so these stay out of src/router/errors.ts). Tests decide on
 * `code`, never on message text.
 */
export type TestbedErrorCode =
  | 'TB_UNAVAILABLE'
  | 'TB_COMMAND_FAILED'
  | 'TB_TIMEOUT'
  | 'TB_ROUTER_START'
  | 'TB_BAD_CONFIG'
  | 'TB_BAD_OUTPUT'
  | 'TB_CLOSED';

export class TestbedError extends Error {
  readonly code: TestbedErrorCode;
  constructor(code: TestbedErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TestbedError';
    this.code = code;
  }
}

/**
 * An error thrown by code that ran in another process (see ns-call.ts), rebuilt here with the
 * remote `name`, `code` and message, so `assert.rejects(p, { name: 'PortConflictError' })` works
 * across the namespace boundary. Other primitive fields of the remote error (`externalPort`,
 * `upnpCode`...) are copied onto it too.
 */
export class RemoteError extends Error {
  readonly code: string | undefined;
  readonly remoteStack: string | undefined;
  [field: string]: unknown;
  constructor(name: string, message: string, code?: string, remoteStack?: string) {
    super(message);
    this.name = name;
    this.code = code;
    this.remoteStack = remoteStack;
  }
}
