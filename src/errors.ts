/**
 * Error classes. Every error this library throws on purpose extends {@linkcode BackendError},
 * keeps the underlying error as `cause`, and says what failed and what to do next.
 *
 * @module
 */

import type { LockInfo } from "./types.ts";

/**
 * Base class of every error gaib-state throws on purpose.
 *
 * @example Telling gaib-state's errors apart from others
 * ```ts
 * import { BackendError, StateSerialError } from "@gaib/state";
 *
 * const error: unknown = new StateSerialError("serial 3 is older than the stored 5");
 * console.log(error instanceof BackendError); // true
 * ```
 */
export class BackendError extends Error {
  /**
   * Creates the error.
   *
   * @param message what failed and what to do about it
   * @param options `cause`: the underlying error
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BackendError";
  }
}

/**
 * A lock could not be taken, released, or a write was refused because of a lock.
 *
 * `lockInfo` holds the current holder's lock info when there is one.
 *
 * @example Showing who holds a lock
 * ```ts
 * import { StateLockError } from "@gaib/state";
 *
 * const error = new StateLockError("workspace is locked", {
 *   ID: "7f3c", Operation: "apply", Info: "", Who: "alice@ci", Version: "0.1.0",
 *   Created: "2026-11-26T10:02:11Z", Path: "default",
 * });
 * console.log(error.lockInfo?.Who); // "alice@ci"
 * ```
 */
export class StateLockError extends BackendError {
  /** The holder's lock info, or `null` when the workspace is not locked. */
  readonly lockInfo: LockInfo | null;

  /**
   * Creates the error.
   *
   * @param message what failed and what to do about it
   * @param lockInfo the current holder's lock info, when known
   * @param options `cause`: the underlying error
   */
  constructor(message: string, lockInfo: LockInfo | null = null, options?: ErrorOptions) {
    super(message, options);
    this.name = "StateLockError";
    this.lockInfo = lockInfo;
  }
}

/**
 * A write was refused because the new state's lineage differs from the stored state's: they
 * are histories of different infrastructure.
 *
 * @example
 * ```ts
 * import { StateLineageError } from "@gaib/state";
 *
 * const error = new StateLineageError("lineage differs", "aaa", "bbb");
 * console.log(error.storedLineage, error.newLineage); // "aaa" "bbb"
 * ```
 */
export class StateLineageError extends BackendError {
  /** Lineage of the stored state. */
  readonly storedLineage: string;
  /** Lineage of the refused state. */
  readonly newLineage: string;

  /**
   * Creates the error.
   *
   * @param message what failed and what to do about it
   * @param storedLineage lineage of the stored state
   * @param newLineage lineage of the refused state
   * @param options `cause`: the underlying error
   */
  constructor(
    message: string,
    storedLineage = "",
    newLineage = "",
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "StateLineageError";
    this.storedLineage = storedLineage;
    this.newLineage = newLineage;
  }
}

/**
 * A write was refused because its serial is not newer than the stored state's: writing it
 * would lose an update someone else made.
 *
 * @example
 * ```ts
 * import { StateSerialError } from "@gaib/state";
 *
 * const error = new StateSerialError("serial is stale", 5, 3);
 * console.log(error.storedSerial > error.newSerial); // true
 * ```
 */
export class StateSerialError extends BackendError {
  /** Serial of the stored state. */
  readonly storedSerial: number;
  /** Serial of the refused state. */
  readonly newSerial: number;

  /**
   * Creates the error.
   *
   * @param message what failed and what to do about it
   * @param storedSerial serial of the stored state
   * @param newSerial serial of the refused state
   * @param options `cause`: the underlying error
   */
  constructor(message: string, storedSerial = 0, newSerial = 0, options?: ErrorOptions) {
    super(message, options);
    this.name = "StateSerialError";
    this.storedSerial = storedSerial;
    this.newSerial = newSerial;
  }
}

/**
 * A workspace was not deleted because its state still tracks managed resource instances:
 * deleting it would leave them running with nothing tracking them. Delete with `force` to do
 * it anyway.
 *
 * @example
 * ```ts
 * import { WorkspaceNotEmptyError } from "@gaib/state";
 *
 * const error = new WorkspaceNotEmptyError("still has 3 resource instances", "staging", 3);
 * console.log(error.workspace, error.instances); // "staging" 3
 * ```
 */
export class WorkspaceNotEmptyError extends BackendError {
  /** The workspace that was not deleted. */
  readonly workspace: string;
  /** How many managed resource instances its state tracks. */
  readonly instances: number;

  /**
   * Creates the error.
   *
   * @param message what failed and what to do about it
   * @param workspace the workspace
   * @param instances how many managed resource instances its state tracks
   * @param options `cause`: the underlying error
   */
  constructor(message: string, workspace: string, instances: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "WorkspaceNotEmptyError";
    this.workspace = workspace;
    this.instances = instances;
  }
}

/**
 * The backend, or the server behind it, cannot do this at all: a Terraform HTTP server such as
 * GitLab's cannot list workspaces (`listWorkspaces`) or report a lock (`getLockInfo`), because
 * Terraform's protocol has no request for either. Not a failure of the store: a caller can
 * fall back (check one workspace with `getState`) or say what it cannot tell.
 *
 * @example Falling back when workspaces cannot be listed
 * ```ts
 * import { UnsupportedOperationError } from "@gaib/state";
 *
 * const error = new UnsupportedOperationError("the server cannot list workspaces", "listWorkspaces");
 * if (error.operation !== "listWorkspaces") throw new Error("wrong operation");
 * ```
 */
export class UnsupportedOperationError extends BackendError {
  /** The `StateBackend` method that cannot be done, such as `listWorkspaces`. */
  readonly operation: string;

  /**
   * Creates the error.
   *
   * @param message what cannot be done, why, and what to do instead
   * @param operation the `StateBackend` method, such as `listWorkspaces` or `getLockInfo`
   * @param options `cause`: the underlying error
   */
  constructor(message: string, operation: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UnsupportedOperationError";
    this.operation = operation;
  }
}

/**
 * A configuration (file, object, environment variable or workspace name) is invalid.
 *
 * `file` names the config file when there is one; `path` is the field path, such as
 * `backend.bucket`.
 *
 * @example
 * ```ts
 * import { BackendConfigError } from "@gaib/state";
 *
 * const error = new BackendConfigError("bucket is required", { file: "gaib.yaml", path: "backend.bucket" });
 * console.log(error.file, error.path); // "gaib.yaml" "backend.bucket"
 * ```
 */
export class BackendConfigError extends BackendError {
  /** The config file, when the config came from one. */
  readonly file: string | undefined;
  /** The dotted path of the offending field, when there is one. */
  readonly path: string | undefined;

  /**
   * Creates the error.
   *
   * @param message what is wrong and how to fix it
   * @param options `file`, `path` and `cause`
   */
  constructor(message: string, options?: BackendConfigErrorOptions) {
    super(message, options);
    this.name = "BackendConfigError";
    this.file = options?.file;
    this.path = options?.path;
  }
}

/** Options for {@linkcode BackendConfigError}. */
export interface BackendConfigErrorOptions extends ErrorOptions {
  /**
   * The config file the error is about.
   * @default {undefined}
   */
  file?: string;
  /**
   * Dotted path of the offending field, such as `backend.bucket`.
   * @default {undefined}
   */
  path?: string;
}

/**
 * A state file is not a valid Terraform v4 state. The message says what is wrong and where.
 *
 * @example
 * ```ts
 * import { parseState, StateFormatError } from "@gaib/state";
 *
 * try {
 *   parseState('{"version": 3, "serial": 1}');
 * } catch (error) {
 *   console.log(error instanceof StateFormatError); // true
 * }
 * ```
 */
export class StateFormatError extends BackendError {
  /**
   * Creates the error.
   *
   * @param message what is wrong with the state and where
   * @param options `cause`: the underlying error
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StateFormatError";
  }
}

/**
 * A workspace has no stored version with the ID asked for: unknown, pruned from the history,
 * or not an ID its backend makes. `versionId` is the ID as given.
 *
 * @example
 * ```ts
 * import { StateVersionNotFoundError } from "@gaib/state";
 *
 * const error = new StateVersionNotFoundError("no version v9 of prod", "prod", "v9");
 * console.log(error.workspace, error.versionId); // "prod" "v9"
 * ```
 */
export class StateVersionNotFoundError extends BackendError {
  /** The workspace. */
  readonly workspace: string;
  /** The version ID asked for, as given. */
  readonly versionId: string;

  /**
   * Creates the error.
   *
   * @param message what was not found and how to list the versions there are
   * @param workspace the workspace
   * @param versionId the version ID asked for
   * @param options `cause`: the underlying error
   */
  constructor(message: string, workspace: string, versionId: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StateVersionNotFoundError";
    this.workspace = workspace;
    this.versionId = versionId;
  }
}

/** Why a state edit (`state mv`, `taint`, `state replace-provider`...) was refused. */
export type StateEditProblem =
  | "InvalidAddress"
  | "InvalidMove"
  | "NoMatch"
  | "DestinationExists"
  | "NotManaged"
  | "InvalidProvider";

/**
 * An edit of a state was refused: an address that names nothing, a destination that exists,
 * a move Terraform would not make. Nothing was changed. `problem` says which, `address` names
 * the address concerned.
 *
 * @example
 * ```ts
 * import { BackendError, StateEditError } from "@gaib/state";
 *
 * const error = new StateEditError('No resource instance matches "x.y".', "NoMatch", "x.y");
 * console.log(error instanceof BackendError, error.problem); // true NoMatch
 * ```
 */
export class StateEditError extends BackendError {
  /** Which kind of refusal. */
  readonly problem: StateEditProblem;
  /** The address concerned, as given. */
  readonly address: string | undefined;

  /**
   * Creates the error.
   *
   * @param message what was refused and what to do
   * @param problem which kind of refusal
   * @param address the address concerned
   */
  constructor(message: string, problem: StateEditProblem, address?: string) {
    super(message);
    this.name = "StateEditError";
    this.problem = problem;
    this.address = address;
  }
}
