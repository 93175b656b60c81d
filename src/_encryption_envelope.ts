/**
 * OpenTofu's encrypted state envelope, read and written byte for byte as OpenTofu does:
 * `{"serial":N,"lineage":"...","meta":{"key_provider.pbkdf2.NAME":"<base64>"},
 * "encrypted_data":"<base64>","encryption_version":"v0"}`, compact, without a trailing newline.
 *
 * OpenTofu sources (github.com/opentofu/opentofu at f831fa1a):
 * - internal/encryption/base.go:23-25 (`encryption_version` "v0"), 104-108 (the `meta`,
 *   `encrypted_data`, `encryption_version` fields; `[]byte` values are base64 in Go's JSON),
 *   133-144 (json.Marshal of the envelope), 156-201 (what counts as an envelope: a non-empty
 *   `encryption_version`; another version is refused);
 * - internal/encryption/state.go:67-89 (`serial` and `lineage` of the plain state copied in
 *   clear, first, by embedding), 112-132 (they must match the decrypted state's).
 *
 * Go's encoding/json sorts map keys and escapes `<`, `>`, `&`, U+2028 and U+2029 in strings;
 * {@linkcode serializeEnvelope} does the same, so that our bytes are OpenTofu's.
 *
 * @module
 */

import { StateFormatError } from "./errors.ts";

/** The only envelope version there is (base.go:24). */
export const ENVELOPE_VERSION = "v0";

/** An encrypted state as stored. */
export interface StateEnvelope {
  /** The plain state's serial, in clear (lost-update checks work without the key). */
  serial: number;
  /** The plain state's lineage, in clear. */
  lineage: string;
  /** Each key provider's metadata (JSON), base64, by metadata key. */
  meta: Record<string, string>;
  /** Nonce, ciphertext and tag, base64. */
  encrypted_data: string;
  /** `"v0"`. */
  encryption_version: string;
}

/** Whether a parsed document is an envelope: a mapping with a non-empty `encryption_version`. */
export function isEnvelope(doc: unknown): doc is StateEnvelope {
  return typeof doc === "object" && doc !== null && !Array.isArray(doc) &&
    typeof (doc as Record<string, unknown>).encryption_version === "string" &&
    (doc as Record<string, unknown>).encryption_version !== "";
}

/**
 * Checks the fields of a document {@linkcode isEnvelope} accepted, so that a backend stores
 * and returns only well-formed envelopes.
 *
 * @throws {StateFormatError} naming the field that is wrong
 */
export function checkEnvelope(doc: StateEnvelope, source: string): StateEnvelope {
  const bad = (what: string) =>
    new StateFormatError(
      `Invalid ${source}: it is an OpenTofu encrypted state (it has encryption_version) but ` +
        `${what}. The file is damaged or was not written by OpenTofu or gaib-state: restore it ` +
        "from a backup.",
    );
  if (doc.encryption_version !== ENVELOPE_VERSION) {
    throw bad(
      `its encryption_version is not "${ENVELOPE_VERSION}", the only version OpenTofu writes`,
    );
  }
  if (!Number.isSafeInteger(doc.serial) || doc.serial < 0) {
    throw bad('its "serial" is missing or not a whole number (OpenTofu 1.7 alpha wrote none)');
  }
  if (typeof doc.lineage !== "string") throw bad('its "lineage" is missing');
  const data = Object.getOwnPropertyDescriptor(doc, "encrypted_data");
  // A getter is the fast parse's (`_stored_document.ts`), which decoded the base64 already.
  if (data?.get === undefined && typeof doc.encrypted_data !== "string") {
    throw bad('its "encrypted_data" is not a string');
  }
  const meta = doc.meta as unknown;
  if (meta !== null && meta !== undefined) {
    if (typeof meta !== "object" || Array.isArray(meta)) throw bad('its "meta" is not a mapping');
    for (const value of Object.values(meta)) {
      if (typeof value !== "string") throw bad('a value of its "meta" is not a string');
    }
  }
  return doc;
}

/**
 * A string as Go's encoding/json writes it: `\n`, `\r`, `\t`, `\"` and `\\` short, other
 * control characters and the HTML-unsafe `<`, `>`, `&`, U+2028, U+2029 as `\u00XX`.
 */
function goString(text: string): string {
  let out = '"';
  for (const c of text) {
    const code = c.codePointAt(0)!;
    if (c === '"' || c === "\\") out += "\\" + c;
    else if (c === "\n") out += "\\n";
    else if (c === "\r") out += "\\r";
    else if (c === "\t") out += "\\t";
    else if (
      code < 0x20 || c === "<" || c === ">" || c === "&" || code === 0x2028 || code === 0x2029
    ) {
      out += `\\u${code.toString(16).padStart(4, "0")}`;
    } else out += c;
  }
  return out + '"';
}

/** A JSON value as Go's encoding/json writes it: compact, map keys sorted by bytes. */
export function goJson(value: unknown): string {
  if (typeof value === "string") return goString(value);
  if (typeof value !== "object" || value === null) return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(goJson).join(",")}]`;
  const keys = Object.keys(value).sort(compareBytes);
  return `{${
    keys.map((k) => `${goString(k)}:${goJson((value as Record<string, unknown>)[k])}`).join(",")
  }}`;
}

function compareBytes(a: string, b: string): number {
  const ea = new TextEncoder().encode(a);
  const eb = new TextEncoder().encode(b);
  for (let i = 0; i < Math.min(ea.length, eb.length); i++) {
    if (ea[i] !== eb[i]) return ea[i] - eb[i];
  }
  return ea.length - eb.length;
}

/**
 * The envelope's bytes as OpenTofu writes them: the struct order `serial`, `lineage`, `meta`,
 * `encrypted_data`, `encryption_version` (state.go:81-87 embeds statedata before basedata).
 */
export function serializeEnvelope(envelope: StateEnvelope): string {
  return `{"serial":${envelope.serial},"lineage":${goString(envelope.lineage)},"meta":${
    goJson(envelope.meta)
  },"encrypted_data":${
    // Base64 needs no escapes: writing it as it is saves a pass over tens of megabytes.
    /^[A-Za-z0-9+/=]*$/.test(envelope.encrypted_data)
      ? `"${envelope.encrypted_data}"`
      : goString(envelope.encrypted_data)},"encryption_version":${
    goString(envelope.encryption_version)
  }}`;
}

/** Base64 (standard alphabet, padded), as Go's encoding/json writes `[]byte`. */
export function toBase64(bytes: Uint8Array): string {
  return (bytes as Uint8Array & { toBase64(): string }).toBase64();
}

/**
 * Decodes base64 as Go's encoding/json reads `[]byte`; `null` when it is not base64. Stricter
 * than Go in one point: non-zero padding bits (which no encoder writes) are refused, so that
 * every changed character of a salt or ciphertext is a refusal, not an equivalent text.
 */
export function fromBase64(text: string): Uint8Array | null {
  try {
    return (Uint8Array as unknown as {
      fromBase64(s: string, o: { lastChunkHandling: "strict" }): Uint8Array;
    }).fromBase64(text, { lastChunkHandling: "strict" });
  } catch {
    return null;
  }
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const VALUES = new Int16Array(256).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) VALUES[ALPHABET.charCodeAt(i)] = i;

/**
 * Decodes base64 given as ASCII bytes (a slice of a stored envelope), as strictly as
 * {@linkcode fromBase64} but without making a string of tens of megabytes first.
 *
 * @returns the bytes, or `null` when the slice is not canonical padded base64
 */
export function base64BytesToBytes(text: Uint8Array): Uint8Array | null {
  if (text.length % 4 !== 0) return null;
  const padding = text.length === 0
    ? 0
    : text[text.length - 1] === 61
    ? (text[text.length - 2] === 61 ? 2 : 1)
    : 0;
  const out = new Uint8Array((text.length / 4) * 3 - padding);
  let o = 0;
  const full = padding ? text.length - 4 : text.length;
  for (let i = 0; i < full; i += 4) {
    const a = VALUES[text[i]],
      b = VALUES[text[i + 1]],
      c = VALUES[text[i + 2]],
      d = VALUES[text[i + 3]];
    if ((a | b | c | d) < 0) return null;
    const n = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 0xff;
    out[o++] = n & 0xff;
  }
  if (padding) {
    const i = full;
    const a = VALUES[text[i]], b = VALUES[text[i + 1]];
    const c = padding === 2 ? 0 : VALUES[text[i + 2]];
    if ((a | b | c) < 0) return null;
    const n = (a << 18) | (b << 12) | (c << 6);
    // Non-zero padding bits: not what any encoder writes.
    if (padding === 2 ? (n & 0xffff) !== 0 : (n & 0xff) !== 0) return null;
    out[o++] = n >> 16;
    if (padding === 1) out[o++] = (n >> 8) & 0xff;
  }
  return out;
}
