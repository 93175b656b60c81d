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

import { decodeLockJson, encodeLockJson } from "../lock.ts";
import type { LockInfo } from "../types.ts";
import type { CreateResult, Locker } from "./_s3_locker.ts";
import { type Lease, type ObservedLock, parseLease } from "./_s3_lease.ts";
import type { S3KeyLayout } from "./_s3_keys.ts";
import type { S3Objects } from "./_s3_objects.ts";

/** The lockfile lock of one bucket. */
export class S3Lockfile implements Locker {
  readonly #objects: S3Objects;
  readonly #keys: S3KeyLayout;
  readonly label: string = "lockfile";

  /**
   * @param objects the bucket's objects
   * @param keys the key layout (for the lockfile key)
   */
  constructor(objects: S3Objects, keys: S3KeyLayout) {
    this.#objects = objects;
    this.#keys = keys;
  }

  async create(stateKey: string, info: LockInfo, lease: Lease): Promise<CreateResult> {
    const etag = await this.#objects.put(this.#keys.lockfileKey(stateKey), encode(info, lease), {
      ifNoneMatch: true,
    });
    if (etag !== null) return { created: true, token: etag };
    return { created: false, current: await this.read(stateKey) };
  }

  async read(stateKey: string): Promise<ObservedLock | null> {
    const object = await this.#objects.get(this.#keys.lockfileKey(stateKey));
    if (object === null) return null;
    const { info, doc } = decodeLockJson(new TextDecoder().decode(object.bytes), "lockfile");
    return { info, lease: parseLease(doc.GaibLease), token: object.etag };
  }

  replace(
    stateKey: string,
    observed: ObservedLock,
    info: LockInfo,
    lease: Lease,
  ): Promise<string | null> {
    return this.#objects.put(this.#keys.lockfileKey(stateKey), encode(info, lease), {
      ifMatch: observed.token,
    });
  }

  renew(stateKey: string, own: string, info: LockInfo, lease: Lease): Promise<string | null> {
    return this.#objects.put(this.#keys.lockfileKey(stateKey), encode(info, lease), {
      ifMatch: own,
    });
  }

  remove(stateKey: string, observed: ObservedLock): Promise<boolean> {
    return this.#objects.delete(this.#keys.lockfileKey(stateKey), observed.token);
  }
}

/** Terraform's seven fields in Terraform's order, then the lease. */
function encode(info: LockInfo, lease: Lease): Uint8Array {
  return new TextEncoder().encode(encodeLockJson(info, { GaibLease: lease }));
}
