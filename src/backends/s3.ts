/**
 * The S3 backend: states in an S3 bucket (or an S3-compatible store), locked the way
 * Terraform locks them, with a DynamoDB item (`dynamodb_table`), an S3 lockfile
 * (`use_lockfile`), or both. Import it as `@gaib/state/s3`, so projects that only use the
 * local backend never load the AWS SDK.
 *
 * gaib-state and Terraform share buckets, lock tables and locks: with Terraform's key layout
 * they read and write the same objects, a lock either takes blocks the other, and the digest
 * item Terraform checks is kept up to date.
 *
 * Needs `--allow-net` (to the endpoints), `--allow-env` and `--allow-read` (the AWS SDK reads
 * `AWS_*` variables and `~/.aws`), and `--allow-sys=hostname`.
 *
 * @example Lock, read, change and write a state in S3
 * ```ts ignore
 * import { createEmptyState, withBackend, withLock } from "@gaib/state";
 * import { S3Backend } from "@gaib/state/s3";
 *
 * const backend = new S3Backend({
 *   type: "s3",
 *   bucket: "my-states",
 *   key: "servers/terraform.tfstate",
 *   region: "eu-west-1",
 *   dynamodb_table: "terraform-locks",
 * });
 * await withBackend(backend, (b) =>
 *   withLock(b, "default", "", "apply", async ({ lockId }) => {
 *     const state = (await b.getState("default")) ?? createEmptyState();
 *     await b.setState("default", { ...state, serial: state.serial + 1 }, { lockId });
 *   }));
 * ```
 *
 * @module
 */

import { DescribeTableCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { S3Client } from "@aws-sdk/client-s3";
import { LockEngine, type StoreCall } from "../_lock_engine.ts";
import { checkWrite, type StoredIdentity } from "../_write_rules.ts";
import {
  ENVELOPE_DOCUMENTS,
  STATE_DOCUMENTS,
  type StoredDocumentCodec,
  storesEnvelopes,
} from "../_stored_document.ts";
import type { S3BackendConfig } from "../config.ts";
import { BackendConfigError, BackendError, StateLockError, StateSerialError } from "../errors.ts";
import { versionLimit, versionNotFound } from "../_history_rules.ts";
import { closedError, deleteLockError } from "../lock.ts";
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
} from "../types.ts";
import { checkDeletable, checkEmptyForDelete, DEFAULT_WORKSPACE } from "../workspace.ts";
import { gaibCommand, shellQuote } from "../_command_line.ts";
import { type AwsClients, createClients } from "./_aws_clients.ts";
import { awsFailure } from "./_aws_errors.ts";
import { DynamoDbDigests, type StoredDigest } from "./_dynamodb_digest.ts";
import { DynamoDbLockStore } from "./_dynamodb_lock.ts";
import { S3KeyLayout } from "./_s3_keys.ts";
import { S3LockfileStore } from "./_s3_lockfile.ts";
import { type ConditionalWrites, md5, S3Objects, type WriteCondition } from "./_s3_objects.ts";
import { checkBackendOptions } from "./_registry.ts";
import { s3Backend } from "./_s3_descriptor.ts";

export type { S3BackendConfig, S3BackendEndpoints } from "../config.ts";
export type {
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
  StateOutput,
  StateResource,
  StateResourceInstance,
  StateVersion,
} from "../types.ts";
export type { ConditionalWrites } from "./_s3_objects.ts";

/** Bytes read from the start of a state to find its lineage and serial. */
const HEADER_BYTES = 64 * 1024;
/** Version reads `listVersions` sends at once. */
const VERSION_READS = 8;
/** An S3 version ID as gaib-state accepts one: printable ASCII, no spaces. */
const S3_VERSION_ID = /^[\x21-\x7e]{1,1024}$/;

/** Options for {@linkcode S3Backend}, beside the config. */
export interface S3BackendOptions {
  /**
   * Lease of a process-bound lock: renewed every third of it while the holder lives; another
   * client may take the lock over once it has not been renewed for a whole lease past its
   * end (so clock skew of up to one lease is tolerated).
   * @default {30000}
   */
  leaseMs?: number;
  /**
   * How long a read retries while the state's MD5 differs from the digest in the lock table
   * (an upload not visible yet) before failing, like Terraform.
   * @default {10000}
   */
  consistencyTimeoutMs?: number;
  /**
   * Time allowed for one HTTP request (the connection gets at most 10 s of it).
   * @default {60000}
   */
  requestTimeoutMs?: number;
  /**
   * SDK clients to use instead of the ones the backend builds from the config: to add SDK
   * middleware (metrics, tracing, request counts), or another HTTP handler or credential
   * provider. They are used as given: the config's `region`, `profile`, `endpoint(s)`,
   * `force_path_style` and `max_retries` do not apply to them (the endpoints still name the
   * servers in messages), and `close()` leaves them open, since the caller owns them.
   * @default {{}}
   */
  clients?: S3BackendClients;
}

/** SDK clients for {@linkcode S3BackendOptions.clients}. */
export interface S3BackendClients {
  /**
   * An `S3Client` of `@aws-sdk/client-s3`. For S3-compatible stores that refuse `aws-chunked`
   * uploads (Ceph), build it with `requestChecksumCalculation: "WHEN_REQUIRED"`, as the
   * backend does.
   * @default {undefined}
   */
  s3?: AwsSdkClient;
  /**
   * A `DynamoDBClient` of `@aws-sdk/client-dynamodb`, used when `dynamodb_table` is set.
   * @default {undefined}
   */
  dynamodb?: AwsSdkClient;
}

/**
 * An AWS SDK for JavaScript v3 client (`S3Client`, `DynamoDBClient`). Only the part every such
 * client has is spelled out, so that these docs do not take in the SDK's.
 */
export interface AwsSdkClient {
  /** Sends a command: the client's `send`. */
  send(command: never, options?: never): Promise<unknown>;
  /** Closes the client's connections: the client's `destroy`. */
  destroy(): void;
}

/** What this instance last read or wrote of a state object. */
type Known =
  | { exists: false }
  | { exists: true; etag: string; identity: StoredIdentity | null };

/**
 * Stores states in S3 with Terraform's layout and locks.
 *
 * - Reads check the state's MD5 against Terraform's digest item when `dynamodb_table` is
 *   set, retrying for `consistencyTimeoutMs` before failing.
 * - Writes carry Content-MD5 (a corrupted upload is rejected by S3) and are conditional on
 *   the ETag the lineage/serial check was made against (`If-Match`, or `If-None-Match: *` for
 *   a new state), so two writers racing without a lock never lose an update silently: one
 *   lands, the other gets `StateSerialError` (on servers that support conditional writes).
 * - A lock taken here carries a lease its holder renews; a lock whose holder died is taken
 *   over after the lease expires, by a conditional write on exactly the record observed, so
 *   two contenders never both win. Terraform's locks (no lease) are never broken
 *   automatically: `forceUnlock` is the way.
 *
 * @example Configuring the backend for a local S3-compatible store
 * ```ts ignore
 * import { S3Backend } from "@gaib/state/s3";
 *
 * await using backend = new S3Backend({
 *   type: "s3",
 *   bucket: "states",
 *   key: "app/${workspace}/terraform.tfstate",
 *   region: "us-east-1",
 *   endpoint: "http://127.0.0.1:7480",
 *   force_path_style: true,
 *   use_lockfile: true,
 * });
 * console.log(await backend.listWorkspaces()); // ["default", ...]
 * ```
 */
export class S3Backend implements StateBackend, StateHistory, LockInspector {
  readonly #config: S3BackendConfig;
  readonly #keys: S3KeyLayout;
  readonly #clients: AwsClients;
  /** Whether the clients were built here (and are destroyed by `close()`). */
  readonly #ownsS3: boolean;
  readonly #ownsDynamo: boolean;
  readonly #objects: S3Objects;
  readonly #digests: DynamoDbDigests | null;
  readonly #locks: LockEngine;
  readonly #consistencyMs: number;
  readonly #known = new Map<string, Known>();
  #closed = false;
  /** What the objects hold: states, or also envelopes once wrapped by `withEncryption`. */
  #codec: StoredDocumentCodec = STATE_DOCUMENTS;

  /**
   * Creates the backend; no request is sent until an operation needs one.
   *
   * @param given the backend config (keys as in `gaib.yaml`; `type` may be left out)
   * @param options lease, timeouts and SDK clients of your own
   * @throws {BackendConfigError} when the config breaks the rule `BackendFactory.create` checks
   *   (`bucket` or `key` missing, a bucket name S3 refuses, an unknown key...), naming the field
   */
  constructor(given: S3BackendConfig, options: S3BackendOptions = {}) {
    const config = checkBackendOptions(s3Backend, given, "S3Backend config");
    this.#config = config;
    this.#consistencyMs = options.consistencyTimeoutMs ?? 10_000;
    this.#keys = new S3KeyLayout(config.bucket, config.key, config.workspace_key_prefix);
    this.#clients = createClients(config, {
      requestTimeoutMs: options.requestTimeoutMs ?? 60_000,
      // S3BackendClients spells the SDK's types structurally (see AwsSdkClient).
      given: options.clients as { s3?: S3Client; dynamodb?: DynamoDBClient } | undefined,
    });
    this.#ownsS3 = options.clients?.s3 === undefined;
    this.#ownsDynamo = options.clients?.dynamodb === undefined;
    this.#objects = new S3Objects(this.#clients.s3, config.bucket, {
      encrypt: config.encrypt === true || config.kms_key_id !== undefined,
      kmsKeyId: config.kms_key_id,
    });
    const ddb = this.#clients.dynamodb;
    const table = config.dynamodb_table;
    this.#digests = ddb && table ? new DynamoDbDigests(ddb, table) : null;
    const lockfile = config.use_lockfile ? new S3LockfileStore(this.#objects, this.#keys) : null;
    const dynamo = ddb && table ? new DynamoDbLockStore(ddb, table, this.#keys) : null;
    this.#locks = new LockEngine({
      // Terraform's order: lockfile first, then DynamoDB.
      stores: [lockfile, dynamo].filter((store) => store !== null),
      locate: (workspace) => {
        const key = this.stateKey(workspace);
        return { key, path: this.#keys.lockPath(key) };
      },
      leaseMs: options.leaseMs,
      failure: (error, store, call) =>
        this.#failure(store === dynamo ? "dynamodb" : "s3", error, call),
      enableLocking: {
        fix: "set backend.dynamodb_table (a DynamoDB table with partition key LockID) or " +
          "backend.use_lockfile: true",
        path: "backend.use_lockfile",
      },
    });
  }

  /**
   * The state object's key of a workspace.
   *
   * @param workspace the workspace
   * @returns the key, such as `env:/staging/terraform.tfstate`
   * @throws {BackendConfigError} when the workspace name is invalid
   *
   * @example
   * ```ts ignore
   * import { S3Backend } from "@gaib/state/s3";
   * const backend = new S3Backend({ type: "s3", bucket: "b", key: "app.tfstate", region: "us-east-1" });
   * console.log(backend.stateKey("staging")); // "env:/staging/app.tfstate"
   * ```
   */
  stateKey(workspace: string): string {
    if (this.#closed) throw closedError();
    return this.#keys.stateKey(workspace);
  }

  #where(key: string): string {
    return `s3://${this.#config.bucket}/${key}`;
  }

  /**
   * Lets `withEncryption` store OpenTofu encrypted envelopes here (`../_stored_document.ts`):
   * from then on this backend also reads and writes envelopes, checking their clear lineage and
   * serial (and their digest). Use the wrapper, which encrypts and decrypts.
   */
  [storesEnvelopes](): void {
    this.#codec = ENVELOPE_DOCUMENTS;
  }

  /** Runs one SDK call, turning its failure into a gaib-state error. */
  async #call<T>(
    service: "s3" | "dynamodb",
    action: string,
    fn: () => Promise<T>,
    outcome?: string,
    uncertainOutcome?: string,
  ): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw this.#failure(service, error, { action, outcome, uncertainOutcome });
    }
  }

  #failure(service: "s3" | "dynamodb", error: unknown, call: StoreCall): Error {
    return awsFailure(error, {
      service,
      ...call,
      endpoint: service === "s3" ? this.#clients.s3Endpoint : this.#clients.dynamodbEndpoint,
      bucket: this.#config.bucket,
      table: this.#config.dynamodb_table,
    });
  }

  /**
   * Reads a workspace's state. With `dynamodb_table`, the bytes must match Terraform's digest
   * item; while they do not (an upload not visible yet), the read is retried for
   * `consistencyTimeoutMs`. With `verifyDigest: false` the object is read as it is.
   *
   * @param workspace the workspace
   * @param options `verifyDigest: false` to skip the digest check
   * @returns the state, or `null` when there is none yet
   * @throws {BackendError} when S3 or DynamoDB fails, or the digest never matches (the
   *   message names the commands that repair it)
   * @throws {StateFormatError} when the stored object is not a valid state
   *
   * @example
   * ```ts ignore
   * const state = await backend.getState("default");
   * console.log(state?.serial);
   * ```
   */
  async getState(workspace: string, options: GetStateOptions = {}): Promise<GaibState | null> {
    const key = this.stateKey(workspace);
    const action = `reading the state of workspace "${workspace}" (${this.#where(key)})`;
    const digests = options.verifyDigest === false ? null : this.#digests;
    const deadline = Date.now() + this.#consistencyMs;
    for (;;) {
      const [object, digest] = await Promise.all([
        this.#call("s3", action, () => this.#objects.get(key)),
        digests
          ? this.#call("dynamodb", action, () => digests.get(this.#keys.digestId(key)))
          : null,
      ]);
      const actual = object ? md5(object.bytes).hex : null;
      if (digest !== null && digest.md5 !== actual) {
        const newer = object && this.#newerThanDigest(object.bytes, digest);
        if (newer) {
          // A writer stopped between the upload and the digest update: the object is a
          // complete, newer state. Accept it and repair the digest (unless someone else
          // already moved it on).
          await this.#call(
            "dynamodb",
            action,
            () => this.#digests!.put(this.#keys.digestId(key), actual!, newer, digest.md5),
          );
        } else if (Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 500));
          continue;
        } else {
          throw new BackendError(
            `The state of workspace "${workspace}" in ${this.#where(key)} does not match its ` +
              `digest in DynamoDB table "${this.#config.dynamodb_table}" (item ` +
              `"${this.#keys.digestId(key)}": MD5 ${digest.md5}; the object's: ` +
              `${actual ?? "none, the object is missing"}), even after ` +
              `${this.#consistencyMs / 1000} s. The object was changed without its digest (by ` +
              "another tool, or by hand), or an upload is still on its way. Check the object, " +
              this.#digestRepair(workspace, actual !== null),
          );
        }
      }
      if (object === null) {
        this.#known.set(key, { exists: false });
        return null;
      }
      const state = this.#codec.parse(object.bytes, `state ${this.#where(key)}`);
      this.#known.set(key, {
        exists: true,
        etag: object.etag,
        identity: state && { lineage: state.lineage, serial: state.serial },
      });
      return state;
    }
  }

  /** The commands that make a state and its digest agree again (each writes the digest). */
  #digestRepair(workspace: string, objectExists: boolean): string {
    const replace = `to replace it with a state file, run "${
      gaibCommand(workspace, "state push --force", "FILE")
    }" (FILE: the state to keep).`;
    if (!objectExists) return `then, ${replace}`;
    const keep = `${gaibCommand(workspace, "state pull --ignore-digest")} | ${
      gaibCommand(workspace, "state push --force", "-")
    }`;
    return `then, to keep the object as it is, run "${keep}"; ${replace}`;
  }

  /**
   * The identity of `bytes` when they are a valid state of the digest's lineage with a higher
   * serial than the digest describes (an upload whose digest update was lost), else `null`.
   */
  #newerThanDigest(
    bytes: Uint8Array,
    digest: StoredDigest,
  ): { lineage: string; serial: number } | null {
    if (!digest.state) return null; // written by Terraform: no way to tell, so wait
    try {
      const state = this.#codec.parse(bytes, "state");
      if (
        state && state.lineage === digest.state.lineage && state.serial > digest.state.serial
      ) return { lineage: state.lineage, serial: state.serial };
    } catch {
      // not a valid state: not a complete newer write
    }
    return null;
  }

  /**
   * Writes a workspace's state after checking the lock, the lineage and the serial. The
   * write is conditional on the object the check was made against, so a concurrent writer
   * cannot be overwritten unseen.
   *
   * @param workspace the workspace
   * @param state the new state
   * @param options `lockId` (required while the workspace is locked) and `force`
   * @throws {StateLockError} when the workspace is locked and `lockId` is not that lock's,
   *   or `lockId` is given and no longer held
   * @throws {StateLineageError} when the lineage differs from the stored one
   * @throws {StateSerialError} when the serial is not newer than the stored one, or the
   *   state changed while it was being written
   * @throws {StateFormatError} when `state` is not a valid state
   * @throws {BackendError} when S3 or DynamoDB fails
   *
   * @example
   * ```ts ignore
   * const state = await backend.getState("default");
   * if (state) await backend.setState("default", { ...state, serial: state.serial + 1 }, { lockId });
   * ```
   */
  async setState(
    workspace: string,
    state: GaibState,
    options: SetStateOptions = {},
  ): Promise<void> {
    const key = this.stateKey(workspace);
    const text = this.#codec.serialize(state, "state to write");
    const bytes = new TextEncoder().encode(text);
    const sum = md5(bytes);
    const action = `writing the state of workspace "${workspace}" (${this.#where(key)})`;
    await this.#locks.checkWrite(workspace, options.lockId);
    this.#checkUnconditional(workspace, options.lockId, "write the state of");
    for (let attempt = 0;; attempt++) {
      let condition: WriteCondition = {};
      if (!options.force) {
        // What this instance last read or wrote is trusted only under the lock (nobody else
        // writes then); an unlocked write checks the object as it is now, so that even a
        // server that ignores If-Match refuses a write based on an old read.
        const cached = options.lockId !== undefined ? this.#known.get(key) : undefined;
        const stored = cached ?? await this.#readKnown(key, action);
        if (stored.exists) {
          if (stored.identity) {
            let same: boolean;
            try {
              same = await checkWrite(
                workspace,
                stored.identity,
                state,
                text,
                () => this.#readBytes(key, action),
                this.#codec,
              );
            } catch (error) {
              // A refusal based on what this instance saw earlier is checked against the
              // object as it is now (someone may have force-written an older serial).
              if (cached === undefined || attempt > 0) throw error;
              this.#known.delete(key);
              continue;
            }
            if (same) return;
          }
          condition = { ifMatch: stored.etag };
        } else {
          condition = { ifNoneMatch: true };
        }
        // A store that refuses If-Match here is written under the DynamoDB lock alone
        // (#checkUnconditional let this write through only with that lock held).
        if (this.#objects.conditionalWrites === "refused") condition = {};
      }
      const etag = await this.#call(
        "s3",
        action,
        () => this.#objects.put(key, bytes, condition, sum.base64),
        "The state was not changed.",
        `The write may or may not have reached S3: read the state ` +
          `("${gaibCommand(workspace, "state pull")}") to see whether serial ${state.serial} ` +
          "is stored before retrying.",
      );
      if (etag === null) {
        if (this.#objects.conditionalWrites === "refused") {
          // Just found out that this store refuses every If-Match: write under the lock alone,
          // or refuse.
          this.#checkUnconditional(workspace, options.lockId, "write the state of");
          continue;
        }
        // The object changed since it was checked: check again against what is there now.
        this.#known.delete(key);
        if (attempt < 3) continue;
        throw new StateSerialError(
          `Cannot write the state of workspace "${workspace}": it kept changing while it was ` +
            "being written (another writer is active). Read the state again, apply the change " +
            "to it and retry, or take the lock first.",
          0,
          state.serial,
        );
      }
      this.#known.set(key, {
        exists: true,
        etag,
        identity: { lineage: state.lineage, serial: state.serial },
      });
      if (this.#digests) {
        const id = this.#keys.digestId(key);
        await this.#call(
          "dynamodb",
          `updating the digest of workspace "${workspace}"`,
          () => this.#digests!.put(id, sum.hex, state),
          "The state object WAS written, but its digest was not updated, so reads (here and " +
            `in Terraform) may fail until it matches: set the Digest of item "${id}" to ` +
            `${sum.hex}, or ${this.#digestRepair(workspace, true)}`,
        );
      }
      return;
    }
  }

  /**
   * What this instance has seen the bucket's store do with conditional writes (`If-Match`):
   * `"unknown"` until a write needed one, `"honoured"` (AWS S3, Ceph RGW in an unversioned
   * bucket), or `"refused"` once the store refused, in both quotings, an ETag the object
   * provably has. Ceph RGW 16.2 does that for every `If-Match` in a versioned bucket, and
   * ignores `If-None-Match` there. From then on this instance writes such a bucket only under
   * a DynamoDB lock (without a condition), and refuses writes without the lock and any
   * locking with `use_lockfile` (which relies on both conditions), each with a message
   * saying so. For `doctor`-style reports.
   *
   * @example
   * ```ts ignore
   * if (backend.conditionalWrites === "refused") console.warn("writes rely on the DynamoDB lock");
   * ```
   */
  get conditionalWrites(): ConditionalWrites {
    return this.#objects.conditionalWrites;
  }

  /** Refuses what a store that refuses `If-Match` cannot keep safe; nothing elsewhere. */
  #checkUnconditional(workspace: string, lockId: string | undefined, verb: string): void {
    if (this.#objects.conditionalWrites !== "refused") return;
    this.#checkLockfile();
    if (lockId !== undefined && this.#config.dynamodb_table) return;
    throw new StateLockError(
      `Cannot ${verb} workspace "${workspace}" without holding its DynamoDB lock: the S3 ` +
        `store refuses every If-Match in bucket "${this.#config.bucket}" (Ceph RGW does so in a ` +
        "versioned bucket), so conditional writes cannot keep writers apart there and only the " +
        "lock can. Nothing was changed. Set backend.dynamodb_table and take the lock first " +
        '(gaib-state commands take it; in code, withLock or the "lockId" option), or use a ' +
        "bucket without versioning.",
    );
  }

  #checkLockfile(): void {
    if (!this.#config.use_lockfile) return;
    throw new BackendConfigError(
      `The S3 store refuses every If-Match in bucket "${this.#config.bucket}" and may ignore ` +
        "If-None-Match there (Ceph RGW does both in a versioned bucket), so an S3 lockfile " +
        "(backend.use_lockfile) cannot keep two holders apart. Nothing was changed. Lock with " +
        "DynamoDB instead (set backend.dynamodb_table and remove backend.use_lockfile), or use " +
        "a bucket without versioning.",
      { path: "backend.use_lockfile" },
    );
  }

  /** Reads the stored object's ETag, lineage and serial, from its first bytes when possible. */
  async #readKnown(key: string, action: string): Promise<Known> {
    const head = await this.#call("s3", action, () => this.#objects.get(key, HEADER_BYTES));
    if (head === null) return { exists: false };
    if (head.bytes.length === 0) return { exists: true, etag: head.etag, identity: null };
    const header = this.#codec.identity(head.bytes);
    if (header) {
      return {
        exists: true,
        etag: head.etag,
        identity: { lineage: header.lineage, serial: header.serial },
      };
    }
    // The header is not at the start: parse the whole state (a damaged one fails here, and
    // `force` is the way to replace it).
    const full = head.bytes.length < HEADER_BYTES
      ? head
      : await this.#call("s3", action, () => this.#objects.get(key));
    if (full === null) return { exists: false };
    const stored = this.#codec.parse(full.bytes, `state ${this.#where(key)}`);
    return {
      exists: true,
      etag: full.etag,
      identity: stored && { lineage: stored.lineage, serial: stored.serial },
    };
  }

  async #readBytes(key: string, action: string): Promise<Uint8Array> {
    const object = await this.#call("s3", action, () => this.#objects.get(key));
    return object?.bytes ?? new Uint8Array();
  }

  /**
   * Deletes a workspace: its state object and its digest item. The lock is checked (as
   * `setState` checks it) and, unless `force`, the state must track no managed resource
   * instance; the delete is then conditional on exactly the object that was checked, so a
   * write that lands after the check makes the delete fail instead of being deleted. Because
   * some servers (Ceph RGW) ignore `If-Match` on DELETE, the object is first replaced by an
   * empty one (read as "no state") with a conditional PUT, which every server with
   * conditional writes honours, and that empty object is what is deleted.
   *
   * @param workspace the workspace; not `default`
   * @param options `lockId` (required while the workspace is locked) and `force`
   * @throws {BackendError} for `default` or a workspace that has no state, or when the state
   *   changed while it was being deleted (nothing is deleted then)
   * @throws {StateLockError} when the workspace is locked and `lockId` is not that lock's
   * @throws {WorkspaceNotEmptyError} when the state tracks resources and `force` is not set
   * @throws {StateFormatError} when the state cannot be read and `force` is not set
   *
   * @example
   * ```ts ignore
   * await backend.deleteState("feature-x");
   * ```
   */
  async deleteState(workspace: string, options: DeleteStateOptions = {}): Promise<void> {
    const key = this.stateKey(workspace);
    if (workspace === DEFAULT_WORKSPACE) checkDeletable(workspace, this.#where(key), true);
    const action = `deleting workspace "${workspace}" (${this.#where(key)})`;
    const object = await this.#call("s3", action, () => this.#objects.get(key));
    checkDeletable(workspace, this.#where(key), object !== null);
    await this.#locks.checkWrite(workspace, options.lockId, deleteLockError);
    if (!options.force) {
      checkEmptyForDelete(
        workspace,
        this.#codec.parse(object!.bytes, `state ${this.#where(key)}`),
        false,
      );
    }
    const changed = new BackendError(
      `Cannot delete workspace "${workspace}": its state in ${this.#where(key)} changed while ` +
        "it was being deleted (another writer is active), so it was kept. Look at it again " +
        "before deleting.",
    );
    this.#known.delete(key);
    this.#checkUnconditional(workspace, options.lockId, "delete");
    const emptyObject = (condition: WriteCondition) =>
      this.#call(
        "s3",
        action,
        () => this.#objects.put(key, new Uint8Array(), condition),
        "Nothing was deleted.",
      );
    const refused = () => this.#objects.conditionalWrites === "refused";
    let empty = await emptyObject(refused() ? {} : { ifMatch: object!.etag });
    if (empty === null && refused()) {
      this.#checkUnconditional(workspace, options.lockId, "delete");
      empty = await emptyObject({});
    }
    if (empty === null) throw changed;
    const again = `delete it again with "gaib-state workspace delete --force ${
      shellQuote(workspace)
    }"`;
    // The digest goes before the object: a reader then finds an empty object ("no state")
    // and no digest, never an object its digest does not describe.
    if (this.#digests) {
      const id = this.#keys.digestId(key);
      await this.#call(
        "dynamodb",
        action,
        () => this.#digests!.delete(id),
        `The state object is now empty ("no state") but still has its digest item "${id}": ` +
          `${again}.`,
      );
    }
    const deleted = await this.#call(
      "s3",
      action,
      () => this.#objects.delete(key, empty),
      `The state object is now empty ("no state"); ${again}.`,
    );
    if (!deleted) throw changed;
  }

  /**
   * Lists a workspace's versions from S3 bucket versioning, newest first: ListObjectVersions
   * on exactly the state key (every page; other keys that share the prefix, such as the
   * lockfile, never appear), then a ranged read of each version's first bytes for its serial
   * and lineage (8 at a time). Empty versions (left by `deleteState`) and versions that are
   * not states are left out; a delete marker makes no version current. Version IDs are S3's.
   *
   * When the bucket has no versioning, S3 keeps only the current object: it is listed alone
   * (version ID `null`), with `noHistory` saying so and how to turn versioning on. Needs
   * `s3:ListBucketVersions` and `s3:GetObjectVersion`.
   *
   * @param workspace the workspace
   * @param options `limit`: at most this many (fewer pages and reads)
   * @returns the versions, newest first
   * @throws {BackendError} when S3 fails, or `limit` is below 1
   *
   * @example
   * ```ts ignore
   * for (const v of await backend.listVersions("default", { limit: 5 })) {
   *   console.log(v.versionId, v.serial, v.savedAt, v.current ? "(current)" : "");
   * }
   * ```
   */
  async listVersions(
    workspace: string,
    options: ListVersionsOptions = {},
  ): Promise<StateVersion[]> {
    const limit = versionLimit(options);
    const key = this.stateKey(workspace);
    const action = `listing the versions of workspace "${workspace}" (${this.#where(key)})`;
    type Found = { versionId: string; size: number; savedAt: string; current: boolean };
    const found: Found[] = [];
    let deleted = false;
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    for (;;) {
      const page = await this.#call(
        "s3",
        action,
        () => this.#objects.versions(key, keyMarker, versionMarker),
      );
      let otherKeys = false;
      for (const marker of page.DeleteMarkers ?? []) {
        if (marker.Key === key && marker.IsLatest) deleted = true;
      }
      for (const version of page.Versions ?? []) {
        if (version.Key !== key) {
          otherKeys = true;
          continue;
        }
        if (!version.Size || version.VersionId === undefined) continue; // no state
        found.push({
          versionId: version.VersionId,
          size: version.Size,
          savedAt: (version.LastModified ?? new Date(0)).toISOString(),
          current: version.IsLatest === true,
        });
      }
      // Keys come in order and the state key sorts before every longer one: once another key
      // shows, or enough versions are found, the rest is not needed.
      if (!page.IsTruncated || otherKeys || found.length >= limit) break;
      keyMarker = page.NextKeyMarker;
      versionMarker = page.NextVersionIdMarker;
    }
    if (deleted) { for (const version of found) version.current = false; }
    // S3 lists a key's versions newest first; the current one (when a delete marker is not
    // the latest) is first already, but say so rather than rely on it (sort is stable).
    found.sort((a, b) => Number(b.current) - Number(a.current));
    const chosen = found.slice(0, limit);
    const described: (StateVersion | null)[] = new Array(chosen.length).fill(null);
    for (let start = 0; start < chosen.length; start += VERSION_READS) {
      await Promise.all(
        chosen.slice(start, start + VERSION_READS).map(async (version, i) => {
          const identity = await this.#versionIdentity(key, version.versionId, action);
          if (identity) described[start + i] = { ...version, ...identity };
        }),
      );
    }
    const versions = described.filter((v) => v !== null);
    if (versions.length === 1 && versions[0].versionId === "null" && found.length === 1) {
      const bucket = shellQuote(this.#config.bucket);
      versions[0].noHistory = `bucket versioning is off for bucket "${this.#config.bucket}", ` +
        'so S3 keeps only the current version; turn it on with "aws s3api ' +
        `put-bucket-versioning --bucket ${bucket} --versioning-configuration Status=Enabled" ` +
        "(add --endpoint-url for an S3-compatible store)";
    }
    return versions;
  }

  /** Serial and lineage of one version, from its first bytes when possible; null: no state. */
  async #versionIdentity(
    key: string,
    versionId: string,
    action: string,
  ): Promise<{ serial: number; lineage: string } | null> {
    const head = await this.#call(
      "s3",
      action,
      () => this.#objects.get(key, HEADER_BYTES, versionId),
    );
    if (head === null || head.bytes.length === 0) return null;
    const header = this.#codec.identity(head.bytes);
    if (header) return { serial: header.serial, lineage: header.lineage };
    const full = head.bytes.length < HEADER_BYTES
      ? head
      : await this.#call("s3", action, () => this.#objects.get(key, undefined, versionId));
    try {
      const state = full && this.#codec.parse(full.bytes, "state version");
      return state ? { serial: state.serial, lineage: state.lineage } : null;
    } catch {
      return null; // not a state: not listed
    }
  }

  /**
   * Reads one version of a workspace's state, as stored (no digest check: the digest
   * describes the current object only).
   *
   * @param workspace the workspace
   * @param versionId an S3 version ID from {@linkcode S3Backend.listVersions} (`null` names
   *   the object of a bucket without versioning)
   * @returns the state of that version
   * @throws {StateVersionNotFoundError} for an unknown ID, a delete marker, an empty version,
   *   or an ID that is not printable ASCII
   * @throws {StateFormatError} when the version is not a valid state
   * @throws {BackendError} when S3 fails
   *
   * @example
   * ```ts ignore
   * const [, previous] = await backend.listVersions("default");
   * const state = await backend.getStateVersion("default", previous.versionId);
   * ```
   */
  async getStateVersion(workspace: string, versionId: string): Promise<GaibState> {
    const key = this.stateKey(workspace);
    if (!S3_VERSION_ID.test(versionId)) {
      throw versionNotFound(workspace, versionId, "an S3 version ID is printable ASCII");
    }
    const object = await this.#call(
      "s3",
      `reading version ${versionId} of workspace "${workspace}" (${this.#where(key)})`,
      () => this.#objects.get(key, undefined, versionId),
    );
    if (object === null) throw versionNotFound(workspace, versionId);
    const state = this.#codec.parse(
      object.bytes,
      `state version ${versionId} of ${this.#where(key)}`,
    );
    if (state === null) throw versionNotFound(workspace, versionId, "it holds no state");
    return state;
  }

  /**
   * Lists the workspaces: `default` and every workspace with a state object, as Terraform
   * lists them. A workspace that is only locked (a lockfile, no state yet) is not listed.
   * One ListObjectsV2 request per 1000 keys under the layout's prefix: one per workspace,
   * plus one per lockfile while it is locked.
   *
   * @returns sorted names
   * @throws {BackendError} when S3 fails
   *
   * @example
   * ```ts ignore
   * console.log(await backend.listWorkspaces()); // ["default", "staging"]
   * ```
   */
  async listWorkspaces(): Promise<string[]> {
    if (this.#closed) throw closedError();
    const listing = this.#keys.listing();
    const names = new Set([DEFAULT_WORKSPACE]);
    let token: string | undefined;
    do {
      const page = await this.#call(
        "s3",
        `listing the workspaces under ${this.#where(listing.prefix)}`,
        () => this.#objects.list(listing.prefix, undefined, token),
      );
      for (const object of page.Contents ?? []) {
        const name = listing.nameOf(object.Key ?? "");
        if (name !== null) names.add(name);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return [...names].sort();
  }

  /**
   * Locks a workspace: the lockfile first, then the DynamoDB item (Terraform's order), with
   * one ID. A lock whose lease expired is taken over; Terraform's locks never are.
   *
   * @param workspace the workspace
   * @param options who, why, how long to wait, detached locks
   * @returns the lock ID and info
   * @throws {StateLockError} when another holder has it (after `timeoutMs`), naming it
   * @throws {BackendConfigError} when neither `dynamodb_table` nor `use_lockfile` is set
   * @throws {BackendError} when S3 or DynamoDB fails
   *
   * @example
   * ```ts ignore
   * const { lockId } = await backend.lock("default", { operation: "apply", timeoutMs: 60_000 });
   * ```
   */
  async lock(workspace: string, options: LockOptions = {}): Promise<LockResult> {
    if (this.#objects.conditionalWrites === "refused") this.#checkLockfile();
    return await this.#locks.lock(workspace, options);
  }

  /**
   * Releases a lock: your own, a detached one, Terraform's, or one whose lease expired. A
   * lock another live client holds (its lease is renewed) is not released: that is what
   * `forceUnlock` is for.
   *
   * @param workspace the workspace
   * @param lockId the lock's ID
   * @throws {StateLockError} when the workspace is not locked, the ID does not match (naming
   *   the holder), or the lock belongs to another live client
   * @throws {BackendError} when S3 or DynamoDB fails
   *
   * @example
   * ```ts ignore
   * await backend.unlock("default", lockId);
   * ```
   */
  unlock(workspace: string, lockId: string): Promise<void> {
    return this.#locks.unlock(workspace, lockId);
  }

  /**
   * Releases a lock whoever holds it, given its ID: the way to clear a stuck lock.
   *
   * @param workspace the workspace
   * @param lockId the lock's ID, as shown by `getLockInfo` or the busy-lock error
   * @throws {StateLockError} when the workspace is not locked or the ID does not match
   * @throws {BackendError} when S3 or DynamoDB fails
   *
   * @example
   * ```ts ignore
   * await backend.forceUnlock("default", "7f3c1a2e-...");
   * ```
   */
  forceUnlock(workspace: string, lockId: string): Promise<void> {
    return this.#locks.forceUnlock(workspace, lockId);
  }

  /**
   * Reads the current lock of a workspace (the lockfile's, else the DynamoDB item's).
   *
   * @param workspace the workspace
   * @returns the lock info (exactly Terraform's seven fields), or `null` when not locked
   * @throws {BackendError} when S3 or DynamoDB fails
   *
   * @example
   * ```ts ignore
   * const info = await backend.getLockInfo("default");
   * if (info) console.log(`locked by ${info.Who} since ${info.Created}`);
   * ```
   */
  getLockInfo(workspace: string): Promise<LockInfo | null> {
    return this.#locks.getLockInfo(workspace);
  }

  /**
   * Describes the current lock with its lease (`GaibLease`): when it expires and from when
   * it may be taken over. Whether its holder lives is not known from S3 (`holderAlive` null).
   *
   * @param workspace the workspace
   * @returns the details, or `null` when not locked
   * @throws {BackendError} when S3 or DynamoDB fails
   *
   * @example
   * ```ts ignore
   * const details = await backend.inspectLock("default");
   * if (details?.lease) console.log(`lease until ${details.lease.expires}`);
   * ```
   */
  inspectLock(workspace: string): Promise<LockDetails | null> {
    return this.#locks.inspectLock(workspace);
  }

  /**
   * Whether the bucket is reachable (`HeadBucket`) and, when set, the lock table exists
   * (`DescribeTable`).
   *
   * @returns `true` when both are there
   *
   * @example
   * ```ts ignore
   * if (!(await backend.isConfigured())) console.error("create the bucket and table first");
   * ```
   */
  async isConfigured(): Promise<boolean> {
    if (this.#closed) return false;
    try {
      await this.#objects.headBucket();
      const ddb = this.#clients.dynamodb;
      if (ddb && this.#config.dynamodb_table) {
        const out = await ddb.send(
          new DescribeTableCommand({ TableName: this.#config.dynamodb_table }),
        );
        return out.Table !== undefined;
      }
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Stops lease renewals, releases the locks this instance still holds, and destroys the SDK
   * clients it built (not those passed in `options.clients`). Safe to call twice.
   *
   * @example
   * ```ts ignore
   * await backend.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#locks.close();
    this.#closed = true;
    if (this.#ownsS3) this.#clients.s3.destroy();
    if (this.#ownsDynamo) this.#clients.dynamodb?.destroy();
  }

  /**
   * Same as {@linkcode S3Backend.close}, for `await using`.
   *
   * @returns when the backend is closed
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
