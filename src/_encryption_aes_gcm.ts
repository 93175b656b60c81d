/**
 * OpenTofu's `aes_gcm` method with Web Crypto: a random 12-byte nonce, then the ciphertext
 * and its 16-byte tag (`nonce || Seal(...)`), with the configured AAD.
 *
 * OpenTofu sources (github.com/opentofu/opentofu at f831fa1a):
 * - internal/encryption/method/aesgcm/aesgcm.go:25-54 (Encrypt: `gcm.NonceSize()` = 12 random
 *   bytes, then `gcm.Seal(nil, nonce, data, aad)` appended), 57-106 (Decrypt: empty data and
 *   data shorter than the nonce refused, then `gcm.Open`);
 * - internal/encryption/method/aesgcm/config.go:18-66 (keys of 16, 24 or 32 bytes).
 *
 * @module
 */

const NONCE_BYTES = 12;

/** The key lengths AES-GCM takes (config.go:19). */
export const AES_KEY_LENGTHS: readonly number[] = [16, 24, 32];

/** Why a decryption failed, without any key material. */
export class AesGcmError extends Error {
  /** `"authentication"` when the tag did not verify (wrong key, changed data or AAD). */
  readonly reason: "authentication" | "format";
  constructor(message: string, reason: "authentication" | "format") {
    super(message);
    this.name = "AesGcmError";
    this.reason = reason;
  }
}

/** Imports raw key bytes as a non-extractable AES-GCM key. */
export function importAesKey(raw: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", raw as BufferSource, "AES-GCM", false, [
    "encrypt",
    "decrypt",
  ]);
}

/** Encrypts: `nonce || ciphertext || tag`. */
export async function sealAesGcm(
  key: CryptoKey,
  data: Uint8Array,
  aad?: Uint8Array,
): Promise<Uint8Array> {
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const params: AesGcmParams = { name: "AES-GCM", iv: nonce };
  if (aad !== undefined) params.additionalData = aad as BufferSource;
  const sealed = new Uint8Array(await crypto.subtle.encrypt(params, key, data as BufferSource));
  const out = new Uint8Array(NONCE_BYTES + sealed.length);
  out.set(nonce);
  out.set(sealed, NONCE_BYTES);
  return out;
}

/**
 * Decrypts `nonce || ciphertext || tag`.
 *
 * @throws {AesGcmError} when the data is too short or does not authenticate
 */
export async function openAesGcm(
  key: CryptoKey,
  data: Uint8Array,
  aad?: Uint8Array,
): Promise<Uint8Array> {
  if (data.length === 0) throw new AesGcmError("cannot decrypt empty data", "format");
  if (data.length < NONCE_BYTES + 16) {
    throw new AesGcmError(
      "the encrypted data is too short to hold a nonce and a tag (likely data corruption)",
      "format",
    );
  }
  const params: AesGcmParams = {
    name: "AES-GCM",
    iv: data.subarray(0, NONCE_BYTES) as BufferSource,
  };
  if (aad !== undefined) params.additionalData = aad as BufferSource;
  try {
    return new Uint8Array(
      await crypto.subtle.decrypt(params, key, data.subarray(NONCE_BYTES) as BufferSource),
    );
  } catch (error) {
    if (!(error instanceof DOMException) || error.name !== "OperationError") throw error;
    throw new AesGcmError(
      "authentication failed: the key is wrong (wrong passphrase or key provider), or the " +
        "encrypted data, its metadata or the AAD was changed",
      "authentication",
    );
  }
}
