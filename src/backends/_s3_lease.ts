/**
 * Leases of the S3 backend's locks, shared by both lock modes.
 *
 * A lock gaib-state takes carries a lease beside Terraform's seven fields (a `GaibLease`
 * attribute of the DynamoDB item, a `GaibLease` field of the lockfile JSON; Terraform ignores
 * both). A process-bound lock's holder renews the lease in the background; another client
 * may take the lock over only once the lease has not been renewed for a whole lease period
 * past its end (which tolerates clock skew of up to one lease), and only with a conditional
 * write on exactly the record it observed. Detached locks are not renewed: they expire at
 * their TTL, or never. Locks without a lease (Terraform's) are never taken over.
 *
 * @module
 */

import { judgeLease as judgeLeaseTerms, leaseExpiry, type LeaseTerms } from "../_lease.ts";
import type { LeaseVerdict } from "../_lease.ts";
import type { LockInfo } from "../types.ts";

export type { LeaseVerdict };

/** The lease stored with a lock. */
export interface Lease extends LeaseTerms {
  /** Host and process of the holder, for people to read. */
  holder: string;
}

/** A lock record as read: Terraform's fields, the lease, and what a CAS write must match. */
export interface ObservedLock {
  info: LockInfo;
  lease: Lease | null;
  /** The DynamoDB `Info` string or the lockfile's ETag: the compare-and-swap token. */
  token: string;
  /** The raw lease as stored (DynamoDB), compared by the takeover write. */
  rawLease?: string;
}

let hostName: string | undefined;

/** Builds the lease of a new lock. */
export function newLease(options: { detached: boolean; ttlMs?: number; leaseMs: number }): Lease {
  if (hostName === undefined) {
    try {
      hostName = Deno.hostname();
    } catch {
      hostName = "unknown"; // no --allow-sys=hostname
    }
  }
  return {
    expires: leaseExpiry(options),
    leaseMs: options.leaseMs,
    detached: options.detached,
    holder: `${hostName} pid ${Deno.pid}`,
  };
}

/** The same lease, renewed from now. */
export function renewLease(lease: Lease): Lease {
  return { ...lease, expires: new Date(Date.now() + lease.leaseMs).toISOString() };
}

/** Reads a stored lease; anything that is not one is `null` (never taken over). */
export function parseLease(value: unknown): Lease | null {
  let doc = value;
  if (typeof value === "string") {
    try {
      doc = JSON.parse(value);
    } catch {
      return null;
    }
  }
  if (typeof doc !== "object" || doc === null) return null;
  const l = doc as Record<string, unknown>;
  if (
    (l.expires !== null && typeof l.expires !== "string") || typeof l.leaseMs !== "number" ||
    typeof l.detached !== "boolean"
  ) return null;
  return {
    expires: l.expires as string | null,
    leaseMs: l.leaseMs,
    detached: l.detached,
    holder: typeof l.holder === "string" ? l.holder : "",
  };
}

/** Judges a lock's lease at `now` (the rules of `../_lease.ts`). */
export function judgeLease(lease: Lease | null, now: number = Date.now()): LeaseVerdict {
  return judgeLeaseTerms(lease, lease?.holder ?? "", now);
}
