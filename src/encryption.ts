/**
 * Client-side state encryption, byte-compatible with OpenTofu's (1.7+): `withEncryption` wraps
 * any backend so that it stores OpenTofu's encrypted envelope and returns decrypted states.
 *
 * What OpenTofu does, and where (github.com/opentofu/opentofu at f831fa1a):
 * - the envelope and its fields: internal/encryption/base.go:23-25, 104-145, state.go:67-89
 *   (see `_encryption_envelope.ts`);
 * - decryption: base.go:156-237 (not an envelope: the state is plain, accepted only when an
 *   `unencrypted` method is configured; else each configured method in order, primary first,
 *   then fallbacks, and the first that decrypts wins; every failure is reported), state.go:91-135
 *   (the clear serial and lineage must match the decrypted state's);
 * - encryption: base.go:121-145 (the primary method encrypts; `unencrypted` writes the state as
 *   it is), keyprovider.go:159-167 and 248-286 (each key provider's metadata under
 *   `key_provider.<type>.<name>` or its `encrypted_metadata_alias`);
 * - `enforced` and fallbacks: targets.go:17-87;
 * - the key providers and the method: `_encryption_pbkdf2.ts`, `_encryption_external.ts`,
 *   `_encryption_aes_gcm.ts`; the configuration: `_encryption_config.ts`.
 *
 * Not encrypted: lock records, workspace names, the envelope's serial and lineage, the key
 * providers' metadata (salt, iterations), the S3 digest item.
 *
 * @example Encrypting a local backend
 * ```ts
 * import { createEmptyState, LocalBackend, withEncryption } from "@gaib/state";
 *
 * const root = await Deno.makeTempDir();
 * const backend = withEncryption(new LocalBackend({ path: root }), {
 *   key_provider: { pbkdf2: { mykey: { passphrase: "a passphrase of 16+ chars", iterations: 200000 } } },
 *   method: { aes_gcm: { secure: { keys: "key_provider.pbkdf2.mykey" } } },
 *   state: { method: "method.aes_gcm.secure" },
 * });
 * await backend.setState("default", createEmptyState());
 * const stored = await Deno.readTextFile(`${root}/workspaces/default/terraform.tfstate`);
 * console.log(JSON.parse(stored).encryption_version); // "v0"
 * console.log((await backend.getState("default"))?.serial); // 0
 * await backend.close();
 * await Deno.remove(root, { recursive: true });
 * ```
 *
 * @module
 */

import { checkConfig } from "./_config_rules.ts";
import {
  type EncryptionConfig,
  encryptionRule,
  methodChain,
  type MethodPlan,
  PBKDF2_MINIMUM_PASSPHRASE_LENGTH,
} from "./_encryption_config.ts";
import {
  ENVELOPE_VERSION,
  fromBase64,
  goJson,
  isEnvelope,
  serializeEnvelope,
  type StateEnvelope,
  toBase64,
} from "./_encryption_envelope.ts";
import {
  AES_KEY_LENGTHS,
  AesGcmError,
  importAesKey,
  openAesGcm,
  sealAesGcm,
} from "./_encryption_aes_gcm.ts";
import { Pbkdf2Provider } from "./_encryption_pbkdf2.ts";
import { runExternalProvider } from "./_encryption_external.ts";
import { envelopeData, storesEnvelopes } from "./_stored_document.ts";
import {
  BackendConfigError,
  BackendError,
  StateFormatError,
  StateLockError,
  StateSerialError,
} from "./errors.ts";
import { assertValidState, parseStateBytes, serializeState } from "./state.ts";
import type {
  DeleteStateOptions,
  GaibState,
  GetStateOptions,
  ListVersionsOptions,
  LockDetails,
  LockInfo,
  LockInspector,
  LockOptions,
  LockResult,
  SetStateOptions,
  StateBackend,
  StateHistory,
  StateVersion,
} from "./types.ts";
import { checkEmptyForDelete } from "./workspace.ts";

export type {
  AesGcmMethodConfig,
  EncryptionConfig,
  EncryptionTargetConfig,
  ExternalKeyProviderConfig,
  Pbkdf2KeyProviderConfig,
  StateEncryptionConfig,
} from "./_encryption_config.ts";
export type { StateEnvelope } from "./_encryption_envelope.ts";

/**
 * A state could not be encrypted or decrypted: wrong passphrase, a key provider that is not
 * configured, a changed (tampered or damaged) envelope, a key provider that failed. The message
 * never holds key material.
 *
 * @example
 * ```ts
 * import { StateEncryptionError } from "@gaib/state";
 * const error = new StateEncryptionError("Cannot decrypt", "authentication");
 * console.log(error.name, error.reason); // "StateEncryptionError" "authentication"
 * ```
 */
export class StateEncryptionError extends BackendError {
  /**
   * `"authentication"`: no configured key authenticated the state (wrong passphrase, or the
   * envelope was changed); `"format"`: the envelope is damaged; `"configuration"`: the state
   * needs a method or key provider that is not configured; `"key_provider"`: a key provider
   * failed.
   */
  readonly reason: "authentication" | "format" | "configuration" | "key_provider";

  /**
   * Creates the error.
   *
   * @param message what failed and what to do about it
   * @param reason the kind of failure
   * @param options `cause`: the underlying error
   */
  constructor(
    message: string,
    reason: StateEncryptionError["reason"],
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "StateEncryptionError";
    this.reason = reason;
  }
}

/** Options for {@linkcode withEncryption}. */
export interface WithEncryptionOptions {
  /**
   * Where `passphrase_env` variables are read.
   * @default {Deno.env}
   */
  env?: { get(name: string): string | undefined };
  /**
   * The directory a relative `passphrase_file` is relative to (the config file's).
   * @default {Deno.cwd()}
   */
  baseDir?: string;
}

/** A key provider ready to give keys. */
interface ReadyProvider {
  decryptionKey(
    meta: Uint8Array | undefined,
  ): Promise<{ key: CryptoKey; decrypted(): void } | string>;
  encryptionKey(): Promise<{ key: CryptoKey; meta: Uint8Array }>;
}

type AesMethod = Extract<MethodPlan, { type: "aes_gcm" }>;

/**
 * Wraps a backend so that it stores states encrypted, in OpenTofu's format, with the
 * configuration of OpenTofu's `encryption` block (as an object: see {@linkcode EncryptionConfig}).
 * The wrapped backend is the wrapper's from then on: it stores envelopes, so use the wrapper.
 *
 * Needs `--allow-env` for `passphrase_env`, `--allow-read` for `passphrase_file`, `--allow-run`
 * for an `external` key provider.
 *
 * @param backend the backend to wrap (local, S3, or any that supports envelopes)
 * @param encryption the `encryption` block; it needs a `state` target
 * @param options where passphrases are read from
 * @returns the wrapping backend
 * @throws {BackendConfigError} when the configuration is invalid (naming the field), has no
 *   `state` target, or the backend cannot store envelopes
 *
 * @example
 * ```ts
 * import { LocalBackend, withEncryption } from "@gaib/state";
 * const backend = withEncryption(new LocalBackend({ path: ".gaib" }), {
 *   key_provider: { pbkdf2: { k: { passphrase_env: "GAIB_STATE_PASSPHRASE" } } },
 *   method: { aes_gcm: { m: { keys: "key_provider.pbkdf2.k" } } },
 *   state: { method: "method.aes_gcm.m" },
 * });
 * console.log(backend.methods); // ["method.aes_gcm.m"]
 * await backend.close();
 * ```
 */
export function withEncryption(
  backend: StateBackend,
  encryption: EncryptionConfig,
  options: WithEncryptionOptions = {},
): EncryptedBackend {
  return new EncryptedBackend(backend, encryption, options);
}

/**
 * A backend that encrypts what it writes and decrypts what it reads (see
 * {@linkcode withEncryption}). Locks, workspaces and the lineage and serial rules are the
 * wrapped backend's, applied to the envelope's clear serial and lineage.
 */
export class EncryptedBackend implements StateBackend, StateHistory, LockInspector {
  readonly #inner: StateBackend;
  readonly #chain: MethodPlan[];
  readonly #options: WithEncryptionOptions;
  readonly #providers = new Map<string, Promise<ReadyProvider>>();

  /**
   * Wraps `inner`; prefer {@linkcode withEncryption}.
   *
   * @param inner the backend to wrap
   * @param encryption the `encryption` block
   * @param options where passphrases are read from
   * @throws {BackendConfigError} as {@linkcode withEncryption}
   */
  constructor(
    inner: StateBackend,
    encryption: EncryptionConfig,
    options: WithEncryptionOptions = {},
  ) {
    const checked = checkConfig(encryptionRule, encryption, "encryption config");
    if (checked.state === undefined) {
      throw new BackendConfigError(
        "encryption config: state is required to encrypt states (state: { method: " +
          "method.aes_gcm.NAME }).",
        { path: "encryption.state" },
      );
    }
    const accept = (inner as { [storesEnvelopes]?: () => void })[storesEnvelopes];
    if (typeof accept !== "function") {
      throw new BackendConfigError(
        "This backend cannot store encrypted states (it does not support OpenTofu's envelope).",
      );
    }
    accept.call(inner);
    this.#inner = inner;
    this.#chain = methodChain(checked);
    this.#options = options;
  }

  /** The methods, primary first, then each fallback (their addresses). */
  get methods(): string[] {
    return this.#chain.map((m) => m.address);
  }

  /** The wrapped backend. */
  get inner(): StateBackend {
    return this.#inner;
  }

  /**
   * Reads and decrypts a workspace's state.
   *
   * @param workspace the workspace
   * @param options as the wrapped backend's
   * @returns the plain state, or `null` when there is none
   * @throws {StateEncryptionError} when no configured method decrypts it, or it is plain and no
   *   `unencrypted` method is configured
   */
  async getState(workspace: string, options?: GetStateOptions): Promise<GaibState | null> {
    return await this.decrypt(await this.#inner.getState(workspace, options), workspace);
  }

  /**
   * Encrypts a state with the primary method and writes the envelope (the plain state when
   * the primary method is `unencrypted`), under the wrapped backend's rules.
   *
   * @param workspace the workspace
   * @param state the plain state
   * @param options `lockId`, `force`
   * @throws {StateEncryptionError} when the key provider fails; nothing is written then
   */
  async setState(workspace: string, state: GaibState, options?: SetStateOptions): Promise<void> {
    assertValidState(state, "state to write");
    const text = serializeState(state);
    const stored = await this.#encryptText(state, text, workspace);
    try {
      await this.#inner.setState(workspace, stored, options);
    } catch (error) {
      // The same serial with the same content is no change, but a new envelope never has the
      // same bytes (a fresh nonce): compare the decrypted states instead.
      if (!(error instanceof StateSerialError) || error.storedSerial !== state.serial) throw error;
      const current = await this.getState(workspace).catch(() => null);
      if (current === null || serializeState(current) !== text) throw error;
    }
  }

  /**
   * The text gaib-state stores for a state under this configuration: the envelope's JSON, or
   * the plain state's when the primary method is `unencrypted`. For copies (backups) that must
   * be encrypted like the state.
   *
   * @param state the plain state
   * @returns the text to store
   */
  async storedText(state: GaibState): Promise<string> {
    assertValidState(state, "state");
    const doc = await this.#encryptText(state, serializeState(state), "");
    return isEnvelope(doc) ? serializeEnvelope(doc) : serializeState(doc);
  }

  /**
   * Decrypts a stored document (what the wrapped backend returned, or a parsed file).
   *
   * @param doc an envelope, a plain state, or `null`
   * @param workspace names the state in errors
   * @returns the plain state
   * @throws {StateEncryptionError} as {@linkcode EncryptedBackend.getState}
   */
  async decrypt(
    doc: GaibState | StateEnvelope | null,
    workspace: string,
  ): Promise<GaibState | null> {
    if (doc === null) return null;
    const where = `the state of workspace "${workspace}"`;
    if (!isEnvelope(doc)) {
      if (this.#chain.some((m) => m.type === "unencrypted")) return doc as GaibState;
      throw new StateEncryptionError(
        `Cannot read ${where}: it is not encrypted, and the encryption configuration has no ` +
          "unencrypted method (enforced states must be encrypted). To encrypt an existing " +
          "plain state, add a fallback: { method: method.unencrypted.NAME } (with " +
          "method: { unencrypted: { NAME: {} } }) and write the state once " +
          '("gaib-state state rewrite"), then remove the fallback.',
        "configuration",
      );
    }
    const data = envelopeData(doc);
    if (data === null) {
      throw new StateEncryptionError(
        `Cannot decrypt ${where}: its encrypted_data is not base64 (the envelope is damaged). ` +
          "Restore it from a backup. Nothing was written.",
        "format",
      );
    }
    const failures: string[] = [];
    let onlyAuthentication = true;
    for (const method of this.#chain) {
      if (method.type !== "aes_gcm") continue;
      const label = `${method.address} (${method.provider.address})`;
      const rawMeta = doc.meta?.[method.provider.metaKey];
      const metaBytes = rawMeta === undefined ? undefined : fromBase64(rawMeta);
      if (metaBytes === null) {
        failures.push(`${label}: its metadata "${method.provider.metaKey}" is not base64`);
        onlyAuthentication = false;
        continue;
      }
      const provider = await this.#provider(method);
      const found = await provider.decryptionKey(metaBytes);
      if (typeof found === "string") {
        failures.push(`${label}: ${found}`);
        onlyAuthentication = false;
        continue;
      }
      let plain: Uint8Array;
      try {
        plain = await openAesGcm(found.key, data, method.aad);
      } catch (error) {
        if (!(error instanceof AesGcmError)) throw error;
        failures.push(`${label}: ${error.message}`);
        if (error.reason !== "authentication") onlyAuthentication = false;
        continue;
      }
      found.decrypted();
      return checkDecrypted(parseStateBytes(plain, `decrypted ${where}`), doc, where);
    }
    if (failures.length === 0) {
      throw new StateEncryptionError(
        `Cannot decrypt ${where}: it is encrypted, but the encryption configuration has only ` +
          "the unencrypted method. Configure the key it was encrypted with (key_provider and " +
          "method.aes_gcm) as the method or a fallback. Nothing was written.",
        "configuration",
      );
    }
    const stored = Object.keys(doc.meta ?? {}).join(", ") || "none";
    throw new StateEncryptionError(
      `Cannot decrypt ${where}: ${
        onlyAuthentication
          ? "authentication failed with every configured key (wrong passphrase or key, or the " +
            "envelope was changed)"
          : "no configured method could decrypt it"
      }. Tried ${failures.join("; ")}. The state names the key providers: ${stored}. ` +
        "Nothing was written.",
      onlyAuthentication ? "authentication" : "configuration",
    );
  }

  async #encryptText(state: GaibState, text: string, workspace: string): Promise<GaibState> {
    const primary = this.#chain[0];
    if (primary.type === "unencrypted") return state;
    let key: { key: CryptoKey; meta: Uint8Array };
    try {
      key = await (await this.#provider(primary)).encryptionKey();
    } catch (error) {
      if (error instanceof BackendError) throw error;
      throw new StateEncryptionError(
        `Cannot encrypt the state${workspace ? ` of workspace "${workspace}"` : ""}: ` +
          `${primary.provider.address} failed: ${(error as Error).message}. Nothing was written.`,
        "key_provider",
        { cause: error },
      );
    }
    const sealed = await sealAesGcm(key.key, new TextEncoder().encode(text), primary.aad);
    const envelope: StateEnvelope = {
      serial: state.serial,
      lineage: state.lineage,
      meta: { [primary.provider.metaKey]: toBase64(key.meta) },
      encrypted_data: toBase64(sealed),
      encryption_version: ENVELOPE_VERSION,
    };
    return envelope as unknown as GaibState;
  }

  #provider(method: AesMethod): Promise<ReadyProvider> {
    const address = method.provider.address;
    let ready = this.#providers.get(address);
    if (!ready) {
      ready = this.#makeProvider(method);
      this.#providers.set(address, ready);
      ready.catch(() => this.#providers.delete(address));
    }
    return ready;
  }

  async #makeProvider(method: AesMethod): Promise<ReadyProvider> {
    const spec = method.provider;
    if (spec.type === "external") return externalProvider(spec.config.command, spec.address);
    const c = spec.config;
    const passphrase = await this.#passphrase(spec.address, c);
    const keyLength = c.key_length ?? 32;
    if (!AES_KEY_LENGTHS.includes(keyLength)) {
      throw new BackendConfigError(
        `encryption config: ${spec.address}.key_length: ${keyLength} is not a key length ` +
          `${method.address} (AES-GCM) takes: use 16, 24 or 32.`,
        { path: `encryption.${spec.address}.key_length` },
      );
    }
    return new Pbkdf2Provider({
      passphrase,
      keyLength,
      iterations: c.iterations,
      saltLength: c.salt_length,
      hashFunction: c.hash_function,
    });
  }

  async #passphrase(
    address: string,
    c: { passphrase?: string; passphrase_env?: string; passphrase_file?: string },
  ): Promise<Uint8Array> {
    let text: string;
    let from: string;
    if (c.passphrase_env !== undefined) {
      from = `environment variable ${c.passphrase_env} (${address}.passphrase_env)`;
      let value: string | undefined;
      try {
        value = (this.#options.env ?? Deno.env).get(c.passphrase_env);
      } catch (error) {
        throw new BackendConfigError(
          `Cannot read the passphrase: ${from} may not be read (gaib-state is allowed to read ` +
            "GAIB_* variables: name one of those, or run with --allow-env=" +
            `${c.passphrase_env}).`,
          { path: `encryption.${address}.passphrase_env`, cause: error },
        );
      }
      if (value === undefined || value === "") {
        throw new BackendConfigError(
          `Cannot read the passphrase: ${from} is not set. Set it to the passphrase.`,
          { path: c.passphrase_env },
        );
      }
      text = value;
    } else if (c.passphrase_file !== undefined) {
      const base = this.#options.baseDir ?? Deno.cwd();
      const path = c.passphrase_file.startsWith("/")
        ? c.passphrase_file
        : `${base}/${c.passphrase_file}`;
      from = `file ${path} (${address}.passphrase_file)`;
      try {
        text = await Deno.readTextFile(path);
      } catch (error) {
        throw new BackendConfigError(
          `Cannot read the passphrase from ${from}: ${(error as Error).name}. Check the path.`,
          { path: `encryption.${address}.passphrase_file`, cause: error },
        );
      }
      text = text.replace(/\r?\n$/, "");
    } else {
      from = `${address}.passphrase`;
      text = c.passphrase!;
    }
    const bytes = new TextEncoder().encode(text);
    // config.go:128-132: len() of a Go string counts bytes.
    if (bytes.length < PBKDF2_MINIMUM_PASSPHRASE_LENGTH) {
      throw new BackendConfigError(
        `The passphrase from ${from} is too short: OpenTofu and gaib-state require at least ` +
          `${PBKDF2_MINIMUM_PASSPHRASE_LENGTH} characters.`,
        { path: `encryption.${address}` },
      );
    }
    return bytes;
  }

  /** Lists a workspace's stored versions (serial and lineage are in clear). */
  listVersions(workspace: string, options?: ListVersionsOptions): Promise<StateVersion[]> {
    return this.#history().listVersions(workspace, options);
  }

  /**
   * Reads and decrypts one stored version.
   *
   * @param workspace the workspace
   * @param versionId the version, as `listVersions` names it
   * @returns the plain state
   */
  async getStateVersion(workspace: string, versionId: string): Promise<GaibState> {
    const doc = await this.#history().getStateVersion(workspace, versionId);
    return (await this.decrypt(doc, workspace))!;
  }

  #history(): StateHistory {
    const inner = this.#inner as Partial<StateHistory>;
    if (typeof inner.listVersions !== "function" || typeof inner.getStateVersion !== "function") {
      throw new BackendError("This backend keeps no history of states.");
    }
    return inner as StateHistory;
  }

  /**
   * Deletes a workspace: decrypts its state to check that it tracks no managed resource
   * instance (unless `force`), then deletes it through the wrapped backend.
   *
   * @param workspace the workspace
   * @param options `lockId`, `force`
   */
  async deleteState(workspace: string, options: DeleteStateOptions = {}): Promise<void> {
    if (options.force) return await this.#inner.deleteState(workspace, options);
    // The wrapped backend cannot see inside an envelope, so the check is made here, under a
    // lock (the caller's, or one taken for the check and the delete) so that no write can
    // land between the check and the delete.
    let held: LockResult | undefined;
    if (options.lockId === undefined) {
      try {
        held = await this.#inner.lock(workspace, { operation: "workspace delete" });
      } catch (error) {
        // A workspace without a state is reported as such, locked or not, by the wrapped
        // backend (a lock held on it would otherwise hide that there is nothing to delete).
        if (error instanceof StateLockError && await this.#inner.getState(workspace) === null) {
          return await this.#inner.deleteState(workspace, options);
        }
        throw error;
      }
    }
    const lockId = options.lockId ?? held!.lockId;
    try {
      checkEmptyForDelete(workspace, await this.getState(workspace), false);
      await this.#inner.deleteState(workspace, { lockId, force: true });
    } finally {
      if (held) await this.#inner.unlock(workspace, held.lockId);
    }
  }

  /** The wrapped backend's workspaces. */
  listWorkspaces(): Promise<string[]> {
    return this.#inner.listWorkspaces();
  }
  /** Locks with the wrapped backend (lock records are not encrypted). */
  lock(workspace: string, options?: LockOptions): Promise<LockResult> {
    return this.#inner.lock(workspace, options);
  }
  /** Unlocks with the wrapped backend. */
  unlock(workspace: string, lockId: string): Promise<void> {
    return this.#inner.unlock(workspace, lockId);
  }
  /** Force-unlocks with the wrapped backend. */
  forceUnlock(workspace: string, lockId: string): Promise<void> {
    return this.#inner.forceUnlock(workspace, lockId);
  }
  /** The wrapped backend's lock info. */
  getLockInfo(workspace: string): Promise<LockInfo | null> {
    return this.#inner.getLockInfo(workspace);
  }
  /**
   * The wrapped backend's lock details (lease, holder alive), or its lock info alone when it
   * cannot say more.
   */
  async inspectLock(workspace: string): Promise<LockDetails | null> {
    const inner = this.#inner as StateBackend & Partial<LockInspector>;
    if (typeof inner.inspectLock === "function") return await inner.inspectLock(workspace);
    const info = await inner.getLockInfo(workspace);
    return info && { info, lease: null, holderAlive: null, takeoverFrom: null, reason: "" };
  }
  /** Whether the wrapped backend is configured. */
  isConfigured(): Promise<boolean> {
    return this.#inner.isConfigured();
  }
  /** Closes the wrapped backend. */
  close(): Promise<void> {
    return this.#inner.close();
  }
  /** Same as {@linkcode EncryptedBackend.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** state.go:112-132: the clear serial and lineage must be the decrypted state's. */
function checkDecrypted(state: GaibState | null, doc: StateEnvelope, where: string): GaibState {
  if (state === null) {
    throw new StateFormatError(`Invalid ${where}: it decrypted to an empty document.`);
  }
  if (state.serial !== doc.serial || state.lineage !== doc.lineage) {
    throw new StateEncryptionError(
      `Cannot read ${where}: the serial and lineage in clear (${doc.serial}, ` +
        `"${doc.lineage}") are not the encrypted state's (${state.serial}, "${state.lineage}"): ` +
        "the envelope was changed. Restore it from a backup. Nothing was written.",
      "format",
    );
  }
  return state;
}

/** An external key provider: the command runs once for encryption and once per stored meta. */
function externalProvider(command: string[], address: string): ReadyProvider {
  const runs = new Map<string, ReturnType<typeof runExternalProvider>>();
  const run = (input: Uint8Array | undefined) => {
    const id = input === undefined ? "" : toBase64(input);
    let result = runs.get(id);
    if (!result) {
      result = runExternalProvider(command, input);
      runs.set(id, result);
      result.catch(() => runs.delete(id));
    }
    return result;
  };
  const fail = (error: unknown): never => {
    throw new StateEncryptionError(
      `${address} failed: ${(error as Error).message}.`,
      "key_provider",
      { cause: error },
    );
  };
  return {
    async decryptionKey(meta) {
      // meta.go:19-27: the stored metadata is decoded and encoded again; none is "null".
      let input: Uint8Array | undefined;
      if (meta !== undefined) {
        let external: unknown;
        try {
          external = (JSON.parse(new TextDecoder().decode(meta)) ?? {}).external_data;
        } catch {
          return "its external key provider metadata is not JSON";
        }
        input = external == null
          ? undefined
          : new TextEncoder().encode(goJson({ external_data: external }));
      }
      const keys = await run(input).catch(fail);
      if (!keys.decryptionKey) return "the external key provider returned no decryption key";
      if (!AES_KEY_LENGTHS.includes(keys.decryptionKey.length)) {
        return `the external key provider returned a ${keys.decryptionKey.length}-byte key; ` +
          "AES-GCM takes 16, 24 or 32";
      }
      return { key: await importAesKey(keys.decryptionKey), decrypted() {} };
    },
    async encryptionKey() {
      const keys = await run(undefined).catch(fail);
      if (!AES_KEY_LENGTHS.includes(keys.encryptionKey.length)) {
        throw new StateEncryptionError(
          `${address} returned a ${keys.encryptionKey.length}-byte encryption key; AES-GCM ` +
            "takes 16, 24 or 32.",
          "key_provider",
        );
      }
      return { key: await importAesKey(keys.encryptionKey), meta: keys.meta };
    },
  };
}
