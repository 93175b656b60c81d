/**
 * The lease rules every backend's locks follow.
 *
 * A process-bound lock carries a lease that its live holder renews every third of it. Another
 * client may take the lock over only once the lease has not been renewed for a whole lease
 * period past its end, which tolerates clock skew of up to one lease between machines. A
 * detached lock is not renewed: it expires at its TTL, or never. A lock without a lease (one
 * Terraform took) is never taken over.
 *
 * @module
 */

/** What a lease says, as stored with a lock. */
export interface LeaseTerms {
  /** When the lease (or a detached lock's TTL) ends, RFC 3339; `null`: never. */
  expires: string | null;
  /** Lease length, so readers know how much clock skew to allow. */
  leaseMs: number;
  /** Not tied to a process: never renewed. */
  detached: boolean;
}

/** Whether a lock may be taken over, and why (for the busy-lock message). */
export interface LeaseVerdict {
  expired: boolean;
  reason: string;
}

/** When a new lock's lease (or a detached lock's TTL) ends. */
export function leaseExpiry(
  options: { detached: boolean; ttlMs?: number; leaseMs: number },
  now: number = Date.now(),
): string | null {
  if (!options.detached) return new Date(now + options.leaseMs).toISOString();
  return options.ttlMs === undefined ? null : new Date(now + options.ttlMs).toISOString();
}

/**
 * Judges a lease at `now`.
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
  if (terms.detached) {
    if (expires !== null && now > expires) {
      return { expired: true, reason: `Its TTL ended at ${terms.expires}.` };
    }
    return {
      expired: false,
      reason: expires === null
        ? "It is a detached lock without TTL: only unlock or force-unlock release it."
        : `It is a detached lock until ${terms.expires}.`,
    };
  }
  // An unreadable expiry (NaN) never counts as expired.
  if (expires !== null && now > expires + terms.leaseMs) {
    return {
      expired: true,
      reason: `Its holder (${holder || "unknown"}) stopped renewing its lease ` +
        `(expired ${terms.expires}).`,
    };
  }
  // Whether the holder still runs cannot be seen from here: say what the lease says, never
  // that the holder renews it (a dead holder's lease runs on until it expires).
  const takeover = expires === null || Number.isNaN(expires)
    ? "never"
    : `from ${new Date(expires + terms.leaseMs).toISOString()}`;
  return {
    expired: false,
    reason: `Only its lease tells whether its holder (${holder || "unknown"}) is alive: the ` +
      `lease runs until ${terms.expires}, and unless it is renewed the lock can be taken ` +
      `over ${takeover}.`,
  };
}
