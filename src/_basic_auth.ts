/**
 * HTTP basic authentication for `gaib-state serve`: the expected credentials come from the
 * environment only, and a request's are compared in constant time (SHA-256 of both, then every
 * byte), so the answer's timing says nothing about how much of a guess was right.
 *
 * @module
 */

const encoder = new TextEncoder();

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

/** Checks `Authorization: Basic ...` headers against one user name and password. */
export class BasicAuth {
  readonly #expected: Promise<Uint8Array>;

  /**
   * @param username the user name
   * @param password the password
   */
  constructor(username: string, password: string) {
    this.#expected = sha256(`${username}:${password}`);
  }

  /**
   * Whether a request's `Authorization` header carries the credentials.
   *
   * @param header the header, or `null`
   * @returns `true` when it does
   */
  async accepts(header: string | null): Promise<boolean> {
    let given = "";
    const match = header?.match(/^Basic +([A-Za-z0-9+/=]+) *$/i);
    if (match) {
      try {
        const binary = atob(match[1]);
        given = new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
      } catch {
        given = "";
      }
    }
    // Hash even a missing header, so that every refusal costs the same.
    const [a, b] = await Promise.all([sha256(given), this.#expected]);
    let difference = match ? 0 : 1;
    for (let i = 0; i < a.length; i++) difference |= a[i] ^ b[i];
    return difference === 0;
  }
}
