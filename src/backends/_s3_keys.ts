/**
 * Where the S3 backend keeps each workspace: the state object's key, its lockfile, the
 * DynamoDB item IDs, and how `listWorkspaces` finds the workspaces.
 *
 * Two layouts:
 * - a `key` containing `${workspace}`: every workspace (`default` included) at the key with
 *   the name substituted;
 * - Terraform's layout otherwise: `default` at `key`, another workspace at
 *   `<workspace_key_prefix>/<name>/<key>` (prefix `env:` by default), so gaib-state and
 *   Terraform read and write the same objects.
 *
 * Every workspace W owns four names: its state object K(W) and lockfile K(W)`.tflock` in the
 * bucket, its lock item `<bucket>/`K(W) and digest item `<bucket>/`K(W)`-md5` in the lock
 * table. Two workspaces collide when the state key of one is the lockfile or the digest of
 * the other (`key: states/${workspace}`: workspace `X-md5`'s lock item is `X`'s digest item,
 * so every write to `X` would replace a lock on `X-md5`). Such a name is refused: a name whose
 * state key is another workspace's state key plus `.tflock` or `-md5`. (The layouts are
 * one-to-one, so no two names share a state key; every other pair of names differs in K.)
 *
 * @module
 */

import { BackendConfigError } from "../errors.ts";
import { DEFAULT_WORKSPACE, validateWorkspaceName } from "../workspace.ts";

const PLACEHOLDER = "${workspace}";

/** Suffix of the lockfile object (`use_lockfile`), after the state key. */
export const LOCKFILE_SUFFIX = ".tflock";
/** Suffix of the digest item's `LockID`, after `<bucket>/<state key>`. */
export const DIGEST_SUFFIX = "-md5";

/** The suffixes a layout derives from a state key, and what each names. */
const DERIVED: ReadonlyArray<{ suffix: string; what: string }> = [
  { suffix: LOCKFILE_SUFFIX, what: "lockfile (S3 object)" },
  { suffix: DIGEST_SUFFIX, what: "digest item (in the DynamoDB table, where its lock item is)" },
];

/** How to list workspaces: one ListObjectsV2 prefix, and how to read a name from a key. */
export interface WorkspaceListing {
  /** `Prefix` of the listing. */
  prefix: string;
  /** The workspace whose state object `key` is, or null (a lockfile, another project's key). */
  nameOf(key: string): string | null;
}

/** The key layout of one backend config. */
export class S3KeyLayout {
  readonly #bucket: string;
  readonly #key: string;
  readonly #prefix: string;
  readonly #templated: boolean;
  /** The key split at its placeholders (templated layout). */
  readonly #parts: string[];

  /**
   * @param bucket the bucket
   * @param key the configured key, with or without `${workspace}`
   * @param workspaceKeyPrefix Terraform's `workspace_key_prefix` (default `env:`)
   */
  constructor(bucket: string, key: string, workspaceKeyPrefix = "env:") {
    this.#bucket = bucket;
    this.#key = key;
    this.#prefix = workspaceKeyPrefix;
    this.#templated = key.includes(PLACEHOLDER);
    this.#parts = key.split(PLACEHOLDER);
  }

  /** Whether the key has the `${workspace}` placeholder. */
  get templated(): boolean {
    return this.#templated;
  }

  /** The state key of a name, unchecked. */
  #keyOf(workspace: string): string {
    if (this.#templated) return this.#parts.join(workspace);
    return workspace === DEFAULT_WORKSPACE
      ? this.#key
      : `${this.#prefix}/${workspace}/${this.#key}`;
  }

  /**
   * The state object's key of a workspace.
   *
   * @throws {BackendConfigError} when the name is invalid, or its state key is another
   *   workspace's lockfile or digest item in this layout
   */
  stateKey(workspace: string): string {
    validateWorkspaceName(workspace);
    const key = this.#keyOf(workspace);
    for (const { suffix, what } of DERIVED) {
      if (!key.endsWith(suffix)) continue;
      const other = this.workspaceOf(key.slice(0, key.length - suffix.length));
      if (other === null) continue;
      throw new BackendConfigError(
        `The workspace name "${workspace}" cannot be used with backend.key "${this.#key}": its ` +
          `state key "${key}" is also the ${what} of workspace "${other}", so the two would ` +
          `overwrite each other's records. Choose a name that does not end with "${suffix}".`,
        { path: "workspace" },
      );
    }
    return key;
  }

  /**
   * The workspace name whose state key `key` is in this layout, or `null`. The name is
   * checked for syntax only (it may still be refused by {@linkcode S3KeyLayout.stateKey}).
   */
  workspaceOf(key: string): string | null {
    let name: string;
    if (this.#templated) {
      const parts = this.#parts;
      const fixed = parts.reduce((n, part) => n + part.length, 0);
      const count = parts.length - 1;
      const length = (key.length - fixed) / count;
      if (!Number.isInteger(length) || length <= 0) return null;
      name = key.slice(parts[0].length, parts[0].length + length);
    } else {
      if (key === this.#key) return DEFAULT_WORKSPACE;
      const head = `${this.#prefix}/`;
      const tail = `/${this.#key}`;
      if (!key.startsWith(head) || !key.endsWith(tail)) return null;
      name = key.slice(head.length, key.length - tail.length);
    }
    try {
      validateWorkspaceName(name);
    } catch {
      return null; // not a name this layout could have written
    }
    return this.#keyOf(name) === key ? name : null;
  }

  /** The lockfile key of a state key. */
  lockfileKey(stateKey: string): string {
    return stateKey + LOCKFILE_SUFFIX;
  }

  /** `LockID` of the lock item, and `Path` of lock infos: `<bucket>/<state key>`. */
  lockPath(stateKey: string): string {
    return `${this.#bucket}/${stateKey}`;
  }

  /** `LockID` of the digest item: `<bucket>/<state key>-md5`. */
  digestId(stateKey: string): string {
    return `${this.#bucket}/${stateKey}${DIGEST_SUFFIX}`;
  }

  /**
   * The listing that finds the workspaces: every key under the layout's prefix, of which the
   * state objects of usable names count (as Terraform lists them). No delimiter: one would
   * roll a workspace's lockfile up with its state, and a workspace that is only locked would
   * then look like one that has a state.
   */
  listing(): WorkspaceListing {
    const prefix = this.#templated ? this.#parts[0] : `${this.#prefix}/`;
    return {
      prefix,
      nameOf: (key: string): string | null => {
        const name = this.workspaceOf(key);
        if (name === null) return null;
        try {
          this.stateKey(name);
          return name;
        } catch {
          return null; // a lockfile or digest-like name: not a workspace
        }
      },
    };
  }
}
