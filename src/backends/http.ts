/**
 * The HTTP backend: states behind a server that speaks Terraform's `http` backend protocol,
 * such as GitLab's managed Terraform state or `gaib-state serve`. Import it as
 * `@gaib/state/http`. The protocol is Terraform's client's
 * (`internal/backend/remote-state/http/client.go`): GET reads (200 a state, 204 or 404 none),
 * `update_method` (POST) writes with `?ID=<lock id>` while locked and `Content-MD5`, DELETE
 * deletes, `lock_method`/`unlock_method` (LOCK/UNLOCK) carry Terraform's LockInfo JSON, and a
 * 409 or 423 answer to a lock names the holder in its body.
 *
 * gaib-state's rules hold on top of it: a write is checked for lineage and serial against the
 * state read just before it (the server checks the lock ID), so a refusal costs no upload.
 *
 * Needs `--allow-net` to the server, and `--allow-env` for the `TF_HTTP_*` variables when the
 * factory reads them.
 *
 * @example Reading a GitLab-managed state
 * ```ts ignore
 * import { HttpBackend } from "@gaib/state/http";
 *
 * await using backend = new HttpBackend({
 *   type: "http",
 *   address: "https://gitlab.example.com/api/v4/projects/42/terraform/state/${workspace}",
 *   lock_address: "https://gitlab.example.com/api/v4/projects/42/terraform/state/${workspace}/lock",
 *   unlock_address: "https://gitlab.example.com/api/v4/projects/42/terraform/state/${workspace}/lock",
 *   lock_method: "POST",
 *   unlock_method: "DELETE",
 *   username: "ci",
 *   password: Deno.env.get("GITLAB_TOKEN"),
 * });
 * const state = await backend.getState("default");
 * console.log(state?.serial);
 * ```
 *
 * @module
 */

import { checkWrite } from "../_write_rules.ts";
import { readStateHeader } from "../_state_header.ts";
import type { HttpBackendConfig } from "../config.ts";
import {
  BackendConfigError,
  BackendError,
  StateLockError,
  UnsupportedOperationError,
} from "../errors.ts";
import {
  checkLockOptions,
  closedError,
  defaultWho,
  encodeLockJson,
  lockBusyError,
  newLockInfo,
  pickLockInfo,
  retryLock,
} from "../lock.ts";
import { versionLimit, versionNotFound } from "../_history_rules.ts";
import { assertValidState, parseStateBytes, serializeState } from "../state.ts";
import type {
  DeleteStateOptions,
  GaibState,
  GetStateOptions,
  ListVersionsOptions,
  LockInfo,
  LockOptions,
  LockResult,
  SetStateOptions,
  StateBackend,
  StateHistory,
  StateVersion,
} from "../types.ts";
import { redactUrl } from "../_url.ts";
import { DEFAULT_WORKSPACE, validateWorkspaceName } from "../workspace.ts";
import { decodeErrorBody, errorFromBody } from "./_http_protocol.ts";
import { contentMd5, type HttpAnswer, HttpTransport } from "./_http_transport.ts";
import { httpBackend, WORKSPACE_PLACEHOLDER } from "./_http_descriptor.ts";
import { checkBackendOptions } from "./_registry.ts";

export type { HttpBackendConfig } from "../config.ts";
export type {
  DeleteStateOptions,
  GaibState,
  GetStateOptions,
  ListVersionsOptions,
  LockInfo,
  LockOptions,
  LockResult,
  SetStateOptions,
  StateBackend,
  StateHistory,
  StateVersion,
} from "../types.ts";

/** Options for {@linkcode HttpBackend}, beside the config. */
export interface HttpBackendOptions {
  /**
   * Time allowed for one request (each retry has its own), in milliseconds.
   * @default {60000}
   */
  requestTimeoutMs?: number;
  /**
   * The largest answer read from the server, in bytes.
   * @default {1073741824}
   */
  maxResponseBytes?: number;
}

const decoder = new TextDecoder();

/**
 * Answers to a request outside Terraform's protocol (a listing, a lock read) that mean the
 * server does not offer it: 200 without the expected body, no such resource, method or
 * feature. Others (401, 403, 5xx) are failures to report as such.
 */
const NOT_OFFERED = new Set([200, 400, 404, 405, 501]);

/** The MD5 (hex) of the bytes: the one version ID the protocol can name. */
function versionIdOf(bytes: Uint8Array): string {
  const b64 = contentMd5(bytes);
  const raw = atob(b64);
  let hex = "";
  for (let i = 0; i < raw.length; i++) hex += raw.charCodeAt(i).toString(16).padStart(2, "0");
  return `md5-${hex}`;
}

/**
 * Stores states behind a Terraform HTTP backend server.
 *
 * @example Settings Deno cannot honour are refused, not ignored
 * ```ts
 * import { HttpBackend } from "@gaib/state/http";
 *
 * try {
 *   new HttpBackend({
 *     type: "http",
 *     address: "https://state.example/${workspace}",
 *     skip_cert_verification: true,
 *   });
 * } catch (error) {
 *   console.log((error as Error).name); // BackendConfigError
 * }
 * ```
 *
 * - Without `${workspace}` in `address` there is only the `default` workspace, as in
 *   Terraform; with it, each workspace has its own URL.
 * - Locks are the server's: they outlive this process until unlocked (as Terraform's do).
 *   `close()` releases the locks this instance took that are not detached. The protocol
 *   cannot carry a TTL (`ttlMs` is refused): `gaib-state serve --lock-ttl` bounds them.
 * - `getLockInfo` and `listWorkspaces` (with `${workspace}`) use two requests that are not part
 *   of Terraform's protocol: GET on `lock_address`, and GET on the address up to
 *   `${workspace}`. `gaib-state serve` answers both; other servers (GitLab) cannot, and the
 *   methods then throw `UnsupportedOperationError`.
 *
 * @example Against `gaib-state serve` on this machine
 * ```ts ignore
 * import { HttpBackend } from "@gaib/state/http";
 *
 * await using backend = new HttpBackend({
 *   type: "http",
 *   address: "http://127.0.0.1:8080/${workspace}",
 *   lock_address: "http://127.0.0.1:8080/${workspace}/lock",
 *   unlock_address: "http://127.0.0.1:8080/${workspace}/lock",
 * });
 * console.log(await backend.listWorkspaces()); // ["default", ...]
 * ```
 */
export class HttpBackend implements StateBackend, StateHistory {
  readonly #config: HttpBackendConfig;
  readonly #transport: HttpTransport;
  /** Locks this instance took that `close()` releases: workspace -> lock info. */
  readonly #held = new Map<string, LockInfo>();
  #closed = false;

  /**
   * Creates the backend; no request is sent until an operation needs one.
   *
   * @param given the backend config (keys as in `gaib.yaml`; `type` may be left out)
   * @param options request timeout and answer size
   * @throws {BackendConfigError} when the config breaks the rule `BackendFactory.create`
   *   checks, asks for `skip_cert_verification` (Deno cannot do it for one client), or its TLS
   *   certificates cannot be read
   */
  constructor(given: HttpBackendConfig, options: HttpBackendOptions = {}) {
    this.#config = checkBackendOptions(httpBackend, given, "HttpBackend config");
    this.#transport = new HttpTransport(this.#config, {
      requestTimeoutMs: options.requestTimeoutMs ?? 60_000,
      maxResponseBytes: options.maxResponseBytes ?? 1024 ** 3,
    });
  }

  /**
   * How many HTTP requests this instance has sent (each retry counts).
   *
   * @returns the count
   *
   * @example
   * ```ts ignore
   * console.log(backend.requestCount); // 0 before the first operation
   * ```
   */
  get requestCount(): number {
    return this.#transport.requests;
  }

  /** A configured URL for a workspace; `undefined` when that URL is not configured. */
  #url(template: string | undefined, workspace: string): string | undefined {
    if (this.#closed) throw closedError();
    validateWorkspaceName(workspace);
    if (template === undefined) return undefined;
    if (template.includes(WORKSPACE_PLACEHOLDER)) {
      // A valid name equals its URL path-escaped form: it goes in as it is.
      return template.replaceAll(WORKSPACE_PLACEHOLDER, workspace);
    }
    if (workspace !== DEFAULT_WORKSPACE) {
      throw new BackendConfigError(
        `The HTTP backend's address has no "${WORKSPACE_PLACEHOLDER}", so it holds only the ` +
          `"default" workspace (as in Terraform), not "${workspace}". Put ` +
          `"${WORKSPACE_PLACEHOLDER}" in backend.address (and the lock addresses) to give ` +
          "each workspace its own state.",
        { path: "backend.address" },
      );
    }
    return template;
  }

  #stateUrl(workspace: string): string {
    return this.#url(this.#config.address, workspace)!;
  }

  #lockUrl(workspace: string, unlock: boolean): string {
    const url = this.#url(
      unlock ? this.#config.unlock_address : this.#config.lock_address,
      workspace,
    );
    if (url === undefined) {
      const field = unlock ? "unlock_address" : "lock_address";
      throw new BackendConfigError(
        `Cannot ${unlock ? "unlock" : "lock"} workspace "${workspace}": the HTTP backend has ` +
          `no ${field}, so the server offers no locks (as in Terraform). Set backend.${field} ` +
          "(gaib-state serve: the address followed by /lock; GitLab: the address followed by " +
          "/lock, with lock_method POST and unlock_method DELETE).",
        { path: `backend.${field}` },
      );
    }
    return url;
  }

  /** The error for an answer none of the expected statuses. */
  #refusal(answer: HttpAnswer, what: string, url: string): BackendError {
    const text = decoder.decode(answer.bytes);
    const fromServer = answer.status === 401 || answer.status === 403
      ? null
      : errorFromBody(decodeErrorBody(text));
    if (fromServer) return fromServer;
    // Terraform's messages for these (client.go lines 98-101, 161-166).
    const reason = answer.status === 401
      ? "the server requires authentication: set backend.username and backend.password " +
        "(or TF_HTTP_USERNAME and TF_HTTP_PASSWORD)"
      : answer.status === 403
      ? "the server refused the credentials: check backend.username and backend.password " +
        "(or TF_HTTP_USERNAME and TF_HTTP_PASSWORD)"
      : answer.status >= 300 && answer.status < 400
      // Redirects are not followed: credentials must not travel to another address unseen.
      ? `the server redirects (HTTP ${answer.status}) to ${
        redactUrl(answer.headers.get("location") ?? "another address")
      }; put the final address in the config`
      : `unexpected HTTP status ${answer.status}`;
    return new BackendError(`Cannot ${what} (${redactUrl(url)}): ${reason}.`);
  }

  /** Reads the stored bytes: `null` when there is no state. */
  async #read(workspace: string): Promise<Uint8Array | null> {
    const url = this.#stateUrl(workspace);
    const what = `read the state of workspace "${workspace}"`;
    const answer = await this.#transport.request("GET", url, undefined, what);
    // client.go lines 153-169: 200 a state, 204 and 404 none.
    if (answer.status === 204 || answer.status === 404) return null;
    if (answer.status !== 200) throw this.#refusal(answer, what, url);
    if (answer.bytes.length === 0) return null;
    const sent = answer.headers.get("content-md5");
    if (sent !== null && sent !== contentMd5(answer.bytes)) {
      throw new BackendError(
        `Cannot ${what} (${redactUrl(url)}): the body does not match its Content-MD5 ` +
          "(damaged on the way). Retry; if it persists, check the server.",
      );
    }
    return answer.bytes;
  }

  /**
   * Reads a workspace's state (GET on the address).
   *
   * @param workspace the workspace
   * @param _options accepted for the interface; the protocol keeps no digest beside the state
   * @returns the state, or `null` when the server has none (204, 404 or an empty body)
   * @throws {StateFormatError} when the stored state is not valid
   * @throws {BackendError} when the server fails or refuses
   *
   * @example
   * ```ts ignore
   * const state = await backend.getState("default");
   * ```
   */
  async getState(workspace: string, _options: GetStateOptions = {}): Promise<GaibState | null> {
    const bytes = await this.#read(workspace);
    if (bytes === null) return null;
    return parseStateBytes(
      bytes,
      `state of workspace "${workspace}" (${redactUrl(this.#stateUrl(workspace))})`,
    );
  }

  /**
   * Writes a workspace's state: reads the stored one to check lineage and serial (unless
   * `force`), then uploads with `update_method`, `?ID=<lockId>` and `Content-MD5`. The server
   * checks the lock (gaib-state serve checks lineage and serial again, under its lock).
   *
   * @param workspace the workspace
   * @param state the new state
   * @param options `lockId` (required while the workspace is locked) and `force`
   * @throws {StateLineageError} when the lineage differs from the stored one
   * @throws {StateSerialError} when the serial is not newer than the stored one
   * @throws {StateLockError} when the server refuses the lock ID, naming the holder
   * @throws {BackendError} when the server fails or refuses
   *
   * @example
   * ```ts ignore
   * await backend.setState("default", { ...state, serial: state.serial + 1 }, { lockId });
   * ```
   */
  async setState(
    workspace: string,
    state: GaibState,
    options: SetStateOptions = {},
  ): Promise<void> {
    const url = new URL(this.#stateUrl(workspace));
    assertValidState(state, "state to write");
    const text = serializeState(state);
    const bytes = new TextEncoder().encode(text);
    if (!options.force) {
      const stored = await this.#read(workspace);
      // The rules need the lineage and serial only: read from the first bytes when they are
      // plain (as the other backends do), else from the whole state (which names a problem).
      const header = stored && readStateHeader(stored);
      const identity = header && header.version === 4
        ? header
        : stored && parseStateBytes(stored, `state of workspace "${workspace}"`);
      if (stored && identity) {
        const same = await checkWrite(
          workspace,
          identity,
          state,
          text,
          () => Promise.resolve(stored),
        );
        if (same) return;
      }
    }
    // client.go lines 208-215: the lock ID as the ID query parameter.
    if (options.lockId !== undefined) url.searchParams.set("ID", options.lockId);
    // The parameter Terraform's client has commented out (client.go lines 217-224).
    if (options.force) url.searchParams.set("force", "true");
    const what = `write the state of workspace "${workspace}"`;
    const method = this.#config.update_method ?? "POST";
    const answer = await this.#transport.request(method, url.href, bytes, what);
    // client.go lines 237-239.
    if (answer.status === 200 || answer.status === 201 || answer.status === 204) return;
    throw this.#refusal(answer, what, url.href);
  }

  /**
   * Deletes a workspace's state (DELETE on the address, with `?ID=` under a lock). gaib-state
   * serve applies the rules of `deleteState` (the lock, no resources unless `force`, never
   * `default`); another server applies its own.
   *
   * @param workspace the workspace
   * @param options `lockId` and `force`
   * @throws {StateLockError} when the server refuses the lock ID
   * @throws {BackendError} when the server fails or refuses
   *
   * @example
   * ```ts ignore
   * await backend.deleteState("feature-x");
   * ```
   */
  async deleteState(workspace: string, options: DeleteStateOptions = {}): Promise<void> {
    const url = new URL(this.#stateUrl(workspace));
    if (options.lockId !== undefined) url.searchParams.set("ID", options.lockId);
    if (options.force) url.searchParams.set("force", "true");
    const what = `delete workspace "${workspace}"`;
    const answer = await this.#transport.request("DELETE", url.href, undefined, what);
    // client.go lines 256-258: only 200 is success.
    if (answer.status === 200) return;
    throw this.#refusal(answer, what, url.href);
  }

  /**
   * Lists the workspaces. Without `${workspace}` in the address only `default` exists. With
   * it, the address up to `${workspace}` is asked with GET for `{"workspaces": [...]}`, which
   * `gaib-state serve` answers (Terraform's protocol has no listing).
   *
   * @returns sorted names, `default` included
   * @throws {UnsupportedOperationError} when the server does not list workspaces (GitLab)
   * @throws {BackendError} when the server fails or refuses
   *
   * @example
   * ```ts ignore
   * console.log(await backend.listWorkspaces()); // ["default", "staging"]
   * ```
   */
  async listWorkspaces(): Promise<string[]> {
    if (this.#closed) throw closedError();
    const template = this.#config.address;
    const at = template.indexOf(WORKSPACE_PLACEHOLDER);
    if (at < 0) return [DEFAULT_WORKSPACE];
    const url = template.slice(0, at);
    const what = "list the workspaces";
    const answer = await this.#transport.request("GET", url, undefined, what);
    let names: unknown;
    try {
      names = answer.status === 200 ? JSON.parse(decoder.decode(answer.bytes)).workspaces : null;
    } catch {
      names = null;
    }
    if (!Array.isArray(names)) {
      if (!NOT_OFFERED.has(answer.status)) throw this.#refusal(answer, what, url);
      throw new UnsupportedOperationError(
        `Cannot ${what}: the server at ${redactUrl(url)} does not list workspaces (GET answered ` +
          `${answer.status}${answer.status === 200 ? " without a workspace list" : ""}); ` +
          "Terraform's protocol has no listing. gaib-state serve lists them; with another " +
          "server, name the workspace with -w.",
        "listWorkspaces",
      );
    }
    const valid = new Set([DEFAULT_WORKSPACE]);
    for (const name of names) {
      try {
        if (typeof name === "string") valid.add(validateWorkspaceName(name));
      } catch {
        // A name no workspace can have is not listed (the server is not trusted).
      }
    }
    return [...valid].sort();
  }

  /**
   * Locks a workspace: `lock_method` on `lock_address` with Terraform's LockInfo JSON; a 409
   * or 423 answer names the holder. An answer that names this very lock (a retried request
   * whose first answer was lost) means the lock is taken.
   *
   * @param workspace the workspace
   * @param options who, why, how long to wait; `ttlMs` is refused (the protocol cannot carry
   *   it)
   * @returns the lock ID and info
   * @throws {StateLockError} when another holder has it (after `timeoutMs`), naming it
   * @throws {BackendConfigError} when no `lock_address` is configured
   * @throws {BackendError} when the server fails
   *
   * @example
   * ```ts ignore
   * const { lockId } = await backend.lock("default", { operation: "apply" });
   * ```
   */
  async lock(workspace: string, options: LockOptions = {}): Promise<LockResult> {
    checkLockOptions(options);
    const url = this.#lockUrl(workspace, false);
    if (options.ttlMs !== undefined) {
      throw new BackendError(
        "ttlMs cannot be given to an HTTP backend: Terraform's lock request carries no TTL. " +
          "The server decides how long locks last (gaib-state serve --lock-ttl).",
      );
    }
    const path = redactUrl(this.#stateUrl(workspace));
    const result = await retryLock(async () => {
      const info = newLockInfo(path, options);
      const body = new TextEncoder().encode(encodeLockJson(info));
      const what = `lock workspace "${workspace}"`;
      const method = this.#config.lock_method ?? "LOCK";
      const answer = await this.#transport.request(method, url, body, what);
      const decoded = decodeErrorBody(decoder.decode(answer.bytes));
      if (answer.status === 200) {
        // gaib-state serve answers with the lock as stored; Terraform ignores the body.
        const stored = decoded.holder?.ID === info.ID ? decoded.holder : info;
        return { lockId: info.ID, lockInfo: stored };
      }
      if (answer.status === 409 || answer.status === 423) {
        if (decoded.holder?.ID === info.ID) return { lockId: info.ID, lockInfo: decoded.holder };
        const holder = decoded.holder ?? {
          ...pickLockInfo({}),
          Info: "the server did not say who holds it",
        };
        const fromServer = errorFromBody(decoded);
        if (fromServer instanceof StateLockError && fromServer.lockInfo !== null) throw fromServer;
        throw lockBusyError(workspace, holder);
      }
      throw this.#refusal(answer, what, url);
    }, options);
    if (!options.detached) this.#held.set(workspace, result.lockInfo);
    return result;
  }

  async #unlock(workspace: string, lockId: string, force: boolean): Promise<void> {
    const url = new URL(this.#lockUrl(workspace, true));
    const held = this.#held.get(workspace);
    // A LockInfo with the ID alone means force-unlock to gaib-state serve (OpenTofu sends that).
    const info = held?.ID === lockId
      ? held
      : { ...pickLockInfo({}), ID: lockId, Operation: "unlock", Who: defaultWho() };
    if (force) url.searchParams.set("force", "true");
    const what = `unlock workspace "${workspace}"`;
    const method = this.#config.unlock_method ?? "UNLOCK";
    const body = new TextEncoder().encode(encodeLockJson(info));
    const answer = await this.#transport.request(method, url.href, body, what);
    // client.go lines 137-142: only 200 is success.
    if (answer.status !== 200) throw this.#refusal(answer, what, url.href);
    if (held?.ID === lockId) this.#held.delete(workspace);
  }

  /**
   * Releases a lock: `unlock_method` on `unlock_address` with the lock's LockInfo JSON.
   *
   * @param workspace the workspace
   * @param lockId the lock's ID
   * @throws {StateLockError} when the server refuses (not locked, another ID: naming the holder)
   * @throws {BackendError} when the server fails
   *
   * @example
   * ```ts ignore
   * await backend.unlock("default", lockId);
   * ```
   */
  unlock(workspace: string, lockId: string): Promise<void> {
    return this.#unlock(workspace, lockId, false);
  }

  /**
   * Releases a lock whoever holds it, given its ID (`?force=true`, which gaib-state serve reads
   * as force-unlock; another server treats it as an unlock).
   *
   * @param workspace the workspace
   * @param lockId the lock's ID
   * @throws {StateLockError} when the workspace is not locked or the ID does not match
   * @throws {BackendError} when the server fails
   *
   * @example
   * ```ts ignore
   * await backend.forceUnlock("default", "7f3c1a2e-...");
   * ```
   */
  forceUnlock(workspace: string, lockId: string): Promise<void> {
    return this.#unlock(workspace, lockId, true);
  }

  /**
   * Reads the current lock: GET on `lock_address`, which gaib-state serve answers with the
   * LockInfo (200) or 204 when unlocked. Not part of Terraform's protocol: another server's
   * answer is an error that says so.
   *
   * @param workspace the workspace
   * @returns the lock info, or `null` when not locked
   * @throws {UnsupportedOperationError} when the server does not report locks (GitLab)
   * @throws {BackendError} when the server fails or refuses
   *
   * @example
   * ```ts ignore
   * const info = await backend.getLockInfo("default");
   * ```
   */
  async getLockInfo(workspace: string): Promise<LockInfo | null> {
    const url = this.#lockUrl(workspace, false);
    const what = `read the lock of workspace "${workspace}"`;
    if (url === this.#stateUrl(workspace)) {
      throw new UnsupportedOperationError(
        `Cannot ${what}: lock_address is the state's address, where GET reads the state. ` +
          "Use a lock address of its own (gaib-state serve: the address followed by /lock).",
        "getLockInfo",
      );
    }
    const answer = await this.#transport.request("GET", url, undefined, what);
    if (answer.status === 204) return null;
    const { holder } = decodeErrorBody(decoder.decode(answer.bytes));
    if (answer.status === 200 && holder !== null) return holder;
    if (NOT_OFFERED.has(answer.status)) {
      throw new UnsupportedOperationError(
        `Cannot ${what}: the server at ${redactUrl(url)} does not report locks (GET answered ` +
          `${answer.status}); Terraform's protocol cannot read a lock. gaib-state serve does.`,
        "getLockInfo",
      );
    }
    throw this.#refusal(answer, what, url);
  }

  /**
   * Lists the stored versions: only the current one, because Terraform's HTTP protocol keeps
   * no history (a server may keep one, as GitLab does, but cannot be asked for it). Its ID is
   * the MD5 of the stored bytes; `savedAt` is the server's `Last-Modified`, else empty.
   *
   * @param workspace the workspace
   * @param options `limit` (0 lists nothing)
   * @returns the current version, or nothing when there is no state
   *
   * @example
   * ```ts ignore
   * const [current] = await backend.listVersions("default");
   * ```
   */
  async listVersions(
    workspace: string,
    options: ListVersionsOptions = {},
  ): Promise<StateVersion[]> {
    versionLimit(options);
    const url = this.#stateUrl(workspace);
    const what = `read the state of workspace "${workspace}"`;
    const answer = await this.#transport.request("GET", url, undefined, what);
    if (answer.status === 204 || answer.status === 404) return [];
    if (answer.status !== 200) throw this.#refusal(answer, what, url);
    if (answer.bytes.length === 0) return [];
    const state = parseStateBytes(answer.bytes, `state of workspace "${workspace}"`);
    if (state === null) return [];
    // When the server does not say when the state was saved, the time of its answer stands in.
    const saved = [answer.headers.get("last-modified"), answer.headers.get("date")]
      .map((header) => Date.parse(header ?? "")).find((time) => Number.isFinite(time));
    return [{
      versionId: versionIdOf(answer.bytes),
      serial: state.serial,
      lineage: state.lineage,
      savedAt: new Date(saved ?? Date.now()).toISOString(),
      size: answer.bytes.length,
      current: true,
      noHistory: "Terraform's HTTP backend protocol has no history: only the current state " +
        "can be listed (a server may keep versions of its own, as GitLab does, in its own UI).",
    }];
  }

  /**
   * Reads a stored version: only the current one exists (see `listVersions`).
   *
   * @param workspace the workspace
   * @param versionId an ID from `listVersions`
   * @returns the state
   * @throws {StateVersionNotFoundError} when the ID is not the current version's
   *
   * @example
   * ```ts ignore
   * const state = await backend.getStateVersion("default", current.versionId);
   * ```
   */
  async getStateVersion(workspace: string, versionId: string): Promise<GaibState> {
    const bytes = await this.#read(workspace);
    const state = bytes && parseStateBytes(bytes, `state of workspace "${workspace}"`);
    if (bytes === null || state === null || versionIdOf(bytes) !== versionId) {
      throw versionNotFound(
        workspace,
        versionId,
        "an HTTP backend keeps only the current state (Terraform's protocol has no history)",
      );
    }
    return state;
  }

  /**
   * Whether the server answers a read of the `default` state.
   *
   * @returns `true` when it does, with 200, 204 or 404
   *
   * @example
   * ```ts ignore
   * if (!(await backend.isConfigured())) console.error("check the address and credentials");
   * ```
   */
  async isConfigured(): Promise<boolean> {
    if (this.#closed) return false;
    try {
      await this.#read(DEFAULT_WORKSPACE);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Releases the locks this instance took (not detached ones) and closes its TLS client. Safe
   * to call twice.
   *
   * @example
   * ```ts ignore
   * await backend.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    const held = [...this.#held];
    for (const [workspace, info] of held) {
      await this.#unlock(workspace, info.ID, false).catch(() => {});
    }
    this.#closed = true;
    this.#transport.close();
  }

  /**
   * Same as {@linkcode HttpBackend.close}, for `await using`.
   *
   * @returns when the backend is closed
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
