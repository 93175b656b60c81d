/**
 * The lease rules every backend's locks follow, and the lease stored with a lock.
 *
 * A process-bound lock carries a lease that its live holder renews every third of it. Another
 * client may take the lock over only once the lease has not been renewed for a whole lease
 * period past its end, which tolerates clock skew of up to one lease between machines. A
 * detached lock is not renewed: it expires at its TTL, or never. A lock without a lease (one
 * Terraform took) is never taken over.
 *
 * Stores keep the lease beside Terraform's seven fields, where Terraform ignores it (a
 * `GaibLease` attribute of a DynamoDB item, a `GaibLease` field of a lockfile, a `Holder`
 * object of the local lock file).
 *
 * @module
 */

import { printable } from "./lock.ts";

/** What a lease says, as stored with a lock. */
export interface LeaseTerms {
  /** When the lease (or a detached lock's TTL) ends, RFC 3339; `null`: never. */
  expires: string | null;
  /** Lease length, so readers know how much clock skew to allow. */
  leaseMs: number;
  /** Not tied to a process: never renewed. */
  detached: boolean;
}

/** The lease stored with a lock: its terms and who renews it. */
export interface Lease extends LeaseTerms {
  /** Host and process of the holder, for people to read. */
  holder: string;
}

/** What a new lock's lease depends on. */
export interface LeaseOptions {
  /** Not tied to a process (never renewed). */
  detached: boolean;
  /** A detached lock's TTL; without it a detached lock never expires. */
  ttlMs?: number;
  /** Lease length of a process-bound lock. */
  leaseMs: number;
}

/** Whether a lock may be taken over, and why (for the busy-lock message). */
export interface LeaseVerdict {
  expired: boolean;
  reason: string;
}

/** When a new lock's lease (or a detached lock's TTL) ends. */
export function leaseExpiry(options: LeaseOptions, now: number = Date.now()): string | null {
  if (!options.detached) return new Date(now + options.leaseMs).toISOString();
  return options.ttlMs === undefined ? null : new Date(now + options.ttlMs).toISOString();
}

let hostName: string | undefined;

/** `<host> pid <pid>` of this process, for the lease's `holder`. */
function thisHolder(): string {
  if (hostName === undefined) {
    try {
      hostName = Deno.hostname();
    } catch {
      hostName = "unknown"; // no --allow-sys=hostname
    }
  }
  return `${hostName} pid ${Deno.pid}`;
}

/** Builds the lease of a new lock taken by this process. */
export function newLease(options: LeaseOptions, now: number = Date.now()): Lease {
  return {
    expires: leaseExpiry(options, now),
    leaseMs: options.leaseMs,
    detached: options.detached,
    holder: thisHolder(),
  };
}

/** The same lease, renewed from `now`. */
export function renewLease<T extends LeaseTerms>(lease: T, now: number = Date.now()): T {
  return { ...lease, expires: new Date(now + lease.leaseMs).toISOString() };
}

/** Reads a stored lease (JSON text or a parsed value); anything else is `null` (no lease). */
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

/**
 * Judges a lease at `now`. An expiry that cannot be read (NaN) never counts as expired.
 * Stored text in the reason is escaped for the terminal: a lease comes from storage that
 * others can write.
 *
 * @param terms the stored lease, or `null` for a lock without one
 * @param holder who renews it, for the message (such as `ci-runner pid 4242`)
 */
export function judgeLease(
  terms: LeaseTerms | null,
  holder: string,
  now: number = Date.now(),
): LeaseVerdict {
  if (terms === null) {
    return {
      expired: false,
      reason: "The lock was not taken by gaib-state (no lease), so it is never taken over " +
        "automatically.",
    };
  }
  const expires = terms.expires === null ? null : Date.parse(terms.expires);
  const until = printable(String(terms.expires));
  const who = printable(holder) || "unknown";
  if (terms.detached) {
    if (expires !== null && now > expires) {
      return { expired: true, reason: `Its TTL ended at ${until}.` };
    }
    return {
      expired: false,
      reason: expires === null
        ? "It is a detached lock without TTL: only unlock or force-unlock release it."
        : `It is a detached lock until ${until}.`,
    };
  }
  // NaN (an unreadable expiry or lease length) fails every comparison: never expired.
  if (expires !== null && now > expires + terms.leaseMs) {
    return {
      expired: true,
      reason: `Its holder (${who}) stopped renewing its lease (expired ${until}).`,
    };
  }
  // Whether the holder still runs cannot be seen from here: say what the lease says, never
  // that the holder renews it (a dead holder's lease runs on until it expires).
  const end = expires === null ? NaN : expires + terms.leaseMs;
  const takeover = Number.isFinite(end) && Math.abs(end) <= 8.64e15
    ? `from ${new Date(end).toISOString()}`
    : "never";
  return {
    expired: false,
    reason: `Only its lease tells whether its holder (${who}) is alive: the lease runs until ` +
      `${until}, and unless it is renewed the lock can be taken over ${takeover}.`,
  };
}

/**
 * When a lock with these lease terms may be taken over if nothing renews it: a whole lease
 * after the lease ends, or at a detached lock's TTL; `null` for never (no lease, a detached
 * lock without TTL, an unreadable expiry).
 */
export function takeoverTime(terms: LeaseTerms | null): string | null {
  if (terms === null || terms.expires === null) return null;
  const end = Date.parse(terms.expires) + (terms.detached ? 0 : terms.leaseMs);
  return Number.isFinite(end) && Math.abs(end) <= 8.64e15 ? new Date(end).toISOString() : null;
}
