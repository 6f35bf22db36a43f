/**
 * The http-01 challenges in flight (RFC 8555 8.3): the CA fetches
 * `http://<identifier>/.well-known/acme-challenge/<token>` and expects the key authorization.
 * Served on plain HTTP from anywhere, before the redirect to https: the CA does not follow a
 * redirect to another port.
 */

const PREFIX = '/.well-known/acme-challenge/';
/** A token is base64url (RFC 8555 8.1: at least 128 bits); 256 characters is far more than any CA uses. */
const TOKEN = /^[A-Za-z0-9_-]{16,256}$/;

/** The token a request path asks for, or undefined when it is not a challenge path. */
export function challengeToken(path: string): string | undefined {
  if (!path.startsWith(PREFIX)) return undefined;
  const token = path.slice(PREFIX.length);
  return TOKEN.test(token) ? token : undefined;
}

export class Http01Challenges {
  private readonly answers = new Map<string, string>();

  put(token: string, keyAuthorization: string): void {
    if (!TOKEN.test(token)) throw new Error(`not an ACME token: ${JSON.stringify(token.slice(0, 40))}`);
    this.answers.set(token, keyAuthorization);
  }

  remove(token: string): void {
    this.answers.delete(token);
  }

  get pending(): number {
    return this.answers.size;
  }

  /** The body for a request path, or undefined: not a challenge, or not one we have. */
  answer(path: string): string | undefined {
    const token = challengeToken(path);
    return token === undefined ? undefined : this.answers.get(token);
  }
}
