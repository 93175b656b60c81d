/**
 * Terraform's S3 lockfile (`use_lockfile`): the object `<state key>.tflock` holding the
 * LockInfo JSON, created with `If-None-Match: *`. gaib-state adds a `GaibLease` field that
 * Terraform ignores.
 *
 * Compare-and-swap uses the object's ETag: a renewal or takeover writes with `If-Match:
 * <ETag observed>`. S3 (and Ceph RGW, whose `If-Match` on PutObject is checked atomically
 * with the write in RADOS) applies conditional writes to one key one at a time, so of two
 * contenders that observed the same ETag only the first write matches; the second sees a new
 * ETag and fails with 412. Each write changes the ETag because the lease changes the bytes.
 *
 * Known gaps: Ceph RGW 16.2 ignores `If-None-Match` in versioned buckets (two creators could
 * both win there: use an unversioned bucket for locks on RGW 16.2) and ignores conditional
 * DeleteObject (so unlock reads the lockfile, checks its ID, then deletes; only an expired
 * lease or a force-unlock can slip between those two requests).
 *
 * @module
 */

import { parseLease } from "../_lease.ts";
import type { CreateResult, LockRecord, LockStore, StoredLock } from "../_lock_store.ts";
import { decodeLockJson, encodeLockJson } from "../lock.ts";
import type { S3KeyLayout } from "./_s3_keys.ts";
import type { S3Objects } from "./_s3_objects.ts";

/** The lockfile lock store of one bucket; a record's version is the lockfile's ETag. */
export class S3LockfileStore implements LockStore {
  readonly #objects: S3Objects;
  readonly #keys: S3KeyLayout;
  readonly label: string = "lockfile";
  /** Ceph RGW ignores conditional DeleteObject. */
  readonly deleteChecksVersion: boolean = false;

  /**
   * @param objects the bucket's objects
   * @param keys the key layout (for the lockfile key)
   */
  constructor(objects: S3Objects, keys: S3KeyLayout) {
    this.#objects = objects;
    this.#keys = keys;
  }

  async create(stateKey: string, record: LockRecord): Promise<CreateResult> {
    const etag = await this.#objects.put(this.#keys.lockfileKey(stateKey), encode(record), {
      ifNoneMatch: true,
    });
    if (etag !== null) return { created: true, version: etag };
    return { created: false, current: await this.read(stateKey) };
  }

  async read(stateKey: string): Promise<StoredLock | null> {
    const object = await this.#objects.get(this.#keys.lockfileKey(stateKey));
    if (object === null) return null;
    const { info, doc } = decodeLockJson(new TextDecoder().decode(object.bytes), "lockfile");
    return { info, lease: parseLease(doc.GaibLease), version: object.etag };
  }

  replace(stateKey: string, version: string, record: LockRecord): Promise<string | null> {
    return this.#objects.put(this.#keys.lockfileKey(stateKey), encode(record), {
      ifMatch: version,
    });
  }

  delete(stateKey: string, version: string): Promise<boolean> {
    return this.#objects.delete(this.#keys.lockfileKey(stateKey), version);
  }
}

/** Terraform's seven fields in Terraform's order, then the lease. */
function encode(record: LockRecord): Uint8Array {
  return new TextEncoder().encode(encodeLockJson(record.info, { GaibLease: record.lease }));
}
