/**
 * OpenTofu's `pbkdf2` key provider with Web Crypto: the key is PBKDF2 of the passphrase with the
 * salt, iterations, hash function and key length stored in the envelope's metadata.
 *
 * OpenTofu sources (github.com/opentofu/opentofu at f831fa1a):
 * - internal/encryption/keyprovider/pbkdf2/metadata.go:15-45 (the metadata: `salt` (base64),
 *   `iterations`, `hash_function`, `key_length`, in that order; present only when all four are
 *   set; negative numbers and unknown hash functions refused);
 * - internal/encryption/keyprovider/pbkdf2/provider.go:22-91 (a fresh salt of `salt_length`
 *   random bytes for encryption; the decryption key from the stored metadata);
 * - internal/encryption/keyprovider/pbkdf2/config.go:128-161 (passphrase of at least 16
 *   characters, at least 200,000 iterations), config_constants.go:13-27, descriptor.go:15-24.
 *
 * Derivation is slow on purpose (600,000 rounds by default): each key is derived once per
 * process (see {@linkcode derivedKey}); an encryption reuses the salt of a state this provider
 * decrypted with the same parameters, so a read and a write cost one derivation, not two.
 * (OpenTofu also keeps one encryption key for a whole run: base.go:50-77.)
 *
 * @module
 */

import { fromBase64, goJson, toBase64 } from "./_encryption_envelope.ts";
import { AES_KEY_LENGTHS, importAesKey } from "./_encryption_aes_gcm.ts";
import { PBKDF2_DEFAULTS } from "./_encryption_config.ts";

/** The metadata stored under the provider's key in the envelope's `meta`. */
export interface Pbkdf2Metadata {
  salt: Uint8Array;
  iterations: number;
  hash_function: "sha256" | "sha512";
  key_length: number;
}

/**
 * Decryption runs the iterations the (untrusted) stored metadata asks for: beyond this it would
 * only stall the process, and no configuration writes it (OpenTofu has no upper bound).
 */
const MAX_ITERATIONS = 100_000_000;

/** Derives raw key bytes (exported for the test vectors; no caching). */
export async function pbkdf2Bytes(
  passphrase: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  hash: "sha256" | "sha512",
  keyLength: number,
): Promise<Uint8Array> {
  const base = await crypto.subtle.importKey("raw", passphrase as BufferSource, "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits(
    {
      name: "PBKDF2",
      salt: salt as BufferSource,
      iterations,
      hash: hash === "sha256" ? "SHA-256" : "SHA-512",
    },
    base,
    keyLength * 8,
  );
  return new Uint8Array(bits);
}

/** Keys derived in this process, by a digest of everything that went into them. */
const derived = new Map<string, Promise<CryptoKey>>();

/**
 * The AES key for a passphrase and metadata, derived once per process. The cache's key is a
 * SHA-256 of the inputs, so the map holds no passphrase.
 */
export async function derivedKey(passphrase: Uint8Array, meta: Pbkdf2Metadata): Promise<CryptoKey> {
  const head = new TextEncoder().encode(
    `${meta.hash_function}|${meta.iterations}|${meta.key_length}|${toBase64(meta.salt)}|`,
  );
  const input = new Uint8Array(head.length + passphrase.length);
  input.set(head);
  input.set(passphrase, head.length);
  const id = toBase64(new Uint8Array(await crypto.subtle.digest("SHA-256", input)));
  let key = derived.get(id);
  if (!key) {
    key = pbkdf2Bytes(passphrase, meta.salt, meta.iterations, meta.hash_function, meta.key_length)
      .then(async (raw) => {
        try {
          return await importAesKey(raw);
        } finally {
          raw.fill(0);
        }
      });
    derived.set(id, key);
    key.catch(() => derived.delete(id));
  }
  return await key;
}

/** The metadata's JSON as OpenTofu writes it (struct order of metadata.go:16-19). */
export function encodePbkdf2Metadata(meta: Pbkdf2Metadata): Uint8Array {
  return new TextEncoder().encode(
    `{"salt":${goJson(toBase64(meta.salt))},"iterations":${meta.iterations},` +
      `"hash_function":${goJson(meta.hash_function)},"key_length":${meta.key_length}}`,
  );
}

/**
 * Reads stored metadata: `null` when it is not "present" (metadata.go:22-24: every field set),
 * an error message when it is invalid.
 */
export function decodePbkdf2Metadata(bytes: Uint8Array): Pbkdf2Metadata | null | string {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return "its pbkdf2 metadata is not JSON";
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    return "its pbkdf2 metadata is not a JSON object";
  }
  const { salt, iterations, hash_function, key_length } = doc as Record<string, unknown>;
  const saltBytes = typeof salt === "string" ? fromBase64(salt) : salt == null ? null : undefined;
  if (saltBytes === undefined || (typeof salt === "string" && saltBytes === null)) {
    return "the salt in its pbkdf2 metadata is not base64";
  }
  for (const [name, value] of [["iterations", iterations], ["key_length", key_length]]) {
    if (value != null && !Number.isSafeInteger(value)) {
      return `its pbkdf2 ${name} is not a whole number`;
    }
  }
  if (hash_function != null && typeof hash_function !== "string") {
    return "its pbkdf2 hash_function is not a string";
  }
  const present = saltBytes !== null && saltBytes.length > 0 && iterations && key_length &&
    hash_function;
  if (!present) return null;
  if ((iterations as number) < 0) return `invalid number of iterations (${iterations})`;
  if ((key_length as number) < 0) return `invalid key length (${key_length})`;
  if (hash_function !== "sha256" && hash_function !== "sha512") {
    return "invalid hash function name in its pbkdf2 metadata";
  }
  if ((iterations as number) > MAX_ITERATIONS) {
    return `its pbkdf2 metadata asks for ${iterations} iterations, more than gaib-state runs ` +
      `(${MAX_ITERATIONS})`;
  }
  if (!AES_KEY_LENGTHS.includes(key_length as number)) {
    return `its pbkdf2 key_length ${key_length} is not an AES-GCM key length (16, 24 or 32)`;
  }
  return {
    salt: saltBytes!,
    iterations: iterations as number,
    hash_function,
    key_length: key_length as number,
  };
}

/** The settings of a configured pbkdf2 provider, with OpenTofu's defaults. */
export interface Pbkdf2Settings {
  passphrase: Uint8Array;
  keyLength: number;
  iterations: number;
  saltLength: number;
  hashFunction: "sha256" | "sha512";
}

/** A configured pbkdf2 provider: its decryption keys and its one encryption key. */
export class Pbkdf2Provider {
  readonly #settings: Pbkdf2Settings;
  #encryption: Promise<{ key: CryptoKey; meta: Uint8Array }> | undefined;

  constructor(settings: Partial<Pbkdf2Settings> & { passphrase: Uint8Array }) {
    this.#settings = {
      passphrase: settings.passphrase,
      keyLength: settings.keyLength ?? PBKDF2_DEFAULTS.key_length,
      iterations: settings.iterations ?? PBKDF2_DEFAULTS.iterations,
      saltLength: settings.saltLength ?? PBKDF2_DEFAULTS.salt_length,
      hashFunction: settings.hashFunction ?? PBKDF2_DEFAULTS.hash_function,
    };
  }

  /**
   * The key for stored metadata (its JSON bytes), or an error message. Call `decrypted()` once
   * the key has authenticated the state: with the same parameters, later encryptions then use
   * the same salt and key instead of deriving another (never a salt that did not authenticate,
   * which whoever can write the state could have chosen).
   */
  async decryptionKey(
    metaBytes: Uint8Array | undefined,
  ): Promise<{ key: CryptoKey; decrypted(): void } | string> {
    if (metaBytes === undefined) return "the state holds no metadata for this key provider";
    const meta = decodePbkdf2Metadata(metaBytes);
    if (meta === null) return "the state holds no metadata for this key provider";
    if (typeof meta === "string") return meta;
    const key = await derivedKey(this.#settings.passphrase, meta);
    const s = this.#settings;
    const reusable = meta.iterations === s.iterations && meta.hash_function === s.hashFunction &&
      meta.key_length === s.keyLength && meta.salt.length === s.saltLength;
    return {
      key,
      decrypted: () => {
        if (reusable && this.#encryption === undefined) {
          this.#encryption = Promise.resolve({ key, meta: encodePbkdf2Metadata(meta) });
        }
      },
    };
  }

  /** The encryption key and the metadata to store, derived once. */
  encryptionKey(): Promise<{ key: CryptoKey; meta: Uint8Array }> {
    this.#encryption ??= (async () => {
      const s = this.#settings;
      const meta: Pbkdf2Metadata = {
        salt: crypto.getRandomValues(new Uint8Array(s.saltLength)),
        iterations: s.iterations,
        hash_function: s.hashFunction,
        key_length: s.keyLength,
      };
      return { key: await derivedKey(s.passphrase, meta), meta: encodePbkdf2Metadata(meta) };
    })();
    this.#encryption.catch(() => (this.#encryption = undefined));
    return this.#encryption;
  }
}
