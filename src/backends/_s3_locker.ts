/**
 * What a lock mode of the S3 backend provides (DynamoDB item or S3 lockfile): create a record
 * only when none exists, read it, replace exactly an observed record (compare-and-swap),
 * renew its own lease, and delete a record only when it is the observed one.
 *
 * @module
 */

import type { LockInfo } from "../types.ts";
import type { Lease, ObservedLock } from "./_s3_lease.ts";

/** The outcome of a create: the new record's token, or the record that was in the way. */
export type CreateResult =
  | { created: true; token: string }
  | { created: false; current: ObservedLock | null };

/** One lock mode. Every method is a single conditional request unless it says otherwise. */
export interface Locker {
  /** `"DynamoDB table T"` or `"lockfile"`, for messages. */
  readonly label: string;
  /** Creates the record if no record exists. */
  create(stateKey: string, info: LockInfo, lease: Lease): Promise<CreateResult>;
  /** Reads the record (strongly consistent), or `null`. */
  read(stateKey: string): Promise<ObservedLock | null>;
  /**
   * Replaces `observed` with a new record if the stored record is still exactly `observed`.
   * @returns the new token, or `null` when the record changed (someone else won)
   */
  replace(
    stateKey: string,
    observed: ObservedLock,
    info: LockInfo,
    lease: Lease,
  ): Promise<string | null>;
  /**
   * Renews the lease of our record (token `own`).
   * @returns the new token, or `null` when the record is no longer ours
   */
  renew(stateKey: string, own: string, info: LockInfo, lease: Lease): Promise<string | null>;
  /**
   * Deletes the record if it still is `observed` (where the store can make that condition).
   * @returns `false` when the record changed
   */
  remove(stateKey: string, observed: ObservedLock): Promise<boolean>;
}
