/**
 * Where the S3 backend keeps each workspace: the state object's key, its lockfile, the
 * DynamoDB item IDs, and how `listWorkspaces` finds the workspaces with one listing per 1000
 * workspaces.
 *
 * Two layouts:
 * - a `key` containing `${workspace}`: every workspace (`default` included) at the key with
 *   the name substituted;
 * - Terraform's layout otherwise: `default` at `key`, another workspace at
 *   `<workspace_key_prefix>/<name>/<key>` (prefix `env:` by default), so gaib-state and
 *   Terraform read and write the same objects.
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

/** How to list workspaces: one ListObjectsV2 prefix and delimiter, and how to read a name. */
export interface WorkspaceListing {
  /** `Prefix` of the listing. */
  prefix: string;
  /**
   * `Delimiter` of the listing: each workspace's objects roll up into one common prefix, so
   * the listing returns one entry per workspace however many objects it has. Undefined when
   * the key ends with the placeholder (the names are then read from the object keys).
   */
  delimiter: string | undefined;
  /** The workspace name of a common prefix (or an object key without delimiter), or null. */
  nameOf(entry: string): string | null;
}

/** The key layout of one backend config. */
export class S3KeyLayout {
  readonly #bucket: string;
  readonly #key: string;
  readonly #prefix: string;
  readonly #templated: boolean;
  /** The text after the first placeholder, up to the next one (templated layout). */
  readonly #after: string;

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
    if (this.#templated) {
      const rest = key.slice(key.indexOf(PLACEHOLDER) + PLACEHOLDER.length);
      const next = rest.indexOf(PLACEHOLDER);
      this.#after = next === -1 ? rest : rest.slice(0, next);
    } else {
      this.#after = "/" + key;
    }
  }

  /** Whether the key has the `${workspace}` placeholder. */
  get templated(): boolean {
    return this.#templated;
  }

  /**
   * The state object's key of a workspace.
   *
   * @throws {BackendConfigError} when the name is invalid, or cannot be told apart in a
   *   listing of this layout
   */
  stateKey(workspace: string): string {
    validateWorkspaceName(workspace);
    if (this.#templated) {
      // A name containing the text that follows the placeholder would be cut short by the
      // listing's delimiter (impossible when that text has a "/", since names have none).
      if (this.#after !== "" && !this.#after.includes("/") && workspace.includes(this.#after)) {
        throw new BackendConfigError(
          `The workspace name "${workspace}" contains "${this.#after}", which follows ` +
            `\${workspace} in backend.key "${this.#key}", so it could not be listed. Choose ` +
            "another name.",
          { path: "workspace" },
        );
      }
      if (this.#after === "" && workspace.endsWith(LOCKFILE_SUFFIX)) {
        throw new BackendConfigError(
          `The workspace name "${workspace}" ends with "${LOCKFILE_SUFFIX}", which would make ` +
            `its state look like a lockfile with backend.key "${this.#key}". Choose another name.`,
          { path: "workspace" },
        );
      }
      return this.#key.replaceAll(PLACEHOLDER, workspace);
    }
    return workspace === DEFAULT_WORKSPACE
      ? this.#key
      : `${this.#prefix}/${workspace}/${this.#key}`;
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

  /** The listing that finds the workspaces other than `default`. */
  listing(): WorkspaceListing {
    const prefix = this.#templated
      ? this.#key.slice(0, this.#key.indexOf(PLACEHOLDER))
      : `${this.#prefix}/`;
    const after = this.#after;
    const delimiter = after === "" ? undefined : after;
    const valid = (name: string): string | null => {
      try {
        return validateWorkspaceName(name);
      } catch {
        return null; // not something this layout could have written
      }
    };
    return {
      prefix,
      delimiter,
      nameOf(entry: string): string | null {
        if (!entry.startsWith(prefix)) return null;
        const rest = entry.slice(prefix.length);
        if (delimiter === undefined) {
          // Object keys: the state (`<prefix><name>`) or a lockfile (`<prefix><name>.tflock`).
          return rest.endsWith(LOCKFILE_SUFFIX) ? null : valid(rest);
        }
        if (!rest.endsWith(delimiter)) return null; // an object key, not a common prefix
        return valid(rest.slice(0, rest.length - delimiter.length));
      },
    };
  }
}
