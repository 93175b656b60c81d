/**
 * What the lock engine (`_lock_engine.ts`) needs from a place that keeps lock records: a
 * DynamoDB item, an S3 lockfile, and next a SQL row or an HTTP endpoint. Four conditional
 * operations on one record per key, each applied atomically by the store:
 *
 * - create the record if none exists;
 * - read it, with its version;
 * - replace it if it still has the version observed;
 * - delete it if it still has the version observed.
 *
 * A version is opaque to the engine: an ETag, the stored `Info` text, a row version. It must
 * change whenever another client changes the record (a takeover, a renewal by the holder), so
 * that of two clients that observed the same version only the first conditional write lands.
 * A store may make the versions of records it wrote itself looser than those it read (the
 * DynamoDB store matches its own record by `Info` alone, so a renewal whose answer was lost and
 * was sent again does not cost the holder its lock).
 *
 * @module
 */

import type { Lease } from "./_lease.ts";
import type { LockInfo } from "./types.ts";

/** A lock record to write: Terraform's seven fields and the lease. */
export interface LockRecord {
  info: LockInfo;
  lease: Lease;
}

/** A lock record as read: Terraform's fields, the lease (if any) and the record's version. */
export interface StoredLock {
  info: LockInfo;
  /** `null` for a record without a (readable) lease, such as Terraform's: never taken over. */
  lease: Lease | null;
  /** What a conditional replace or delete of exactly this record must match. */
  version: string;
}

/** The outcome of a create: the new record's version, or the record that was in the way. */
export type CreateResult =
  | { created: true; version: string }
  | { created: false; current: StoredLock | null };

/** One place that keeps lock records, by key. Every method is one atomic request. */
export interface LockStore {
  /** What the store is, for messages: `lockfile`, `DynamoDB table "locks"`. */
  readonly label: string;
  /**
   * Whether `delete` really checks the version. `false` for a store whose server may ignore
   * the condition (Ceph RGW ignores conditional DeleteObject): the engine then reads the record
   * and checks its ID before deleting even its own lock.
   */
  readonly deleteChecksVersion: boolean;
  /**
   * Creates the record if the key has none.
   * @returns the new version, or the record in the way (`null` when it vanished meanwhile)
   */
  create(key: string, record: LockRecord): Promise<CreateResult>;
  /** Reads the record (strongly consistent), or `null` when there is none. */
  read(key: string): Promise<StoredLock | null>;
  /**
   * Replaces the record if it still has `version`.
   * @returns the new version, or `null` when the record changed (someone else won)
   */
  replace(key: string, version: string, record: LockRecord): Promise<string | null>;
  /**
   * Deletes the record if it still has `version` (see `deleteChecksVersion`).
   * @returns `false` when the record changed
   */
  delete(key: string, version: string): Promise<boolean>;
}
