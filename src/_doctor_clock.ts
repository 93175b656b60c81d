/**
 * The doctor's clock check, shared by every backend whose servers send a `Date` header: the
 * samples taken around each request, and the judgement of the worst skew against a quarter of
 * the lease.
 *
 * @module
 */

import { type CheckOutcome, result } from "./_doctor_types.ts";

/** One answer's `Date` header against this machine's clock. */
export interface DateSample {
  /** Who answered, for messages (`s3`, `dynamodb`, `the server`). */
  service: string;
  /** The server's time (its header has whole seconds). */
  server: number;
  /** This machine's clock halfway through the request. */
  local: number;
  /** The request's round trip, in milliseconds. */
  rtt: number;
  /**
   * How coarse `server` is, in milliseconds: a `Date` header's whole seconds (the default),
   * or 0 for a server's own clock read exactly (PostgreSQL's `now()`).
   * @default {1000}
   */
  resolution?: number;
}

/**
 * A sample from an answer's `Date` header, or `undefined` when it has none (or not a date).
 *
 * @param service who answered
 * @param date the header's value
 * @param sent this machine's clock when the request was sent
 * @param received this machine's clock when the answer came
 */
export function dateSample(
  service: string,
  date: string | null | undefined,
  sent: number,
  received: number,
): DateSample | undefined {
  const server = date == null ? NaN : Date.parse(date);
  if (Number.isNaN(server)) return undefined;
  return { service, server, local: (sent + received) / 2, rtt: received - sent };
}

/** What a skew beyond a quarter of the lease means for a backend. */
export interface SkewLimit {
  /** `fail` when this machine judges leases, `warn` when only what it shows is off. */
  status: "fail" | "warn";
  /** What goes wrong, after "more than a quarter of the lease: ". */
  consequence: string;
}

/** For backends whose locks this machine judges by their lease (S3). */
const LEASE_LIMIT: SkewLimit = {
  status: "fail",
  consequence: "a lock could be judged expired while its holder still renews it, or kept too long",
};

/**
 * Judges the worst skew of the samples against a quarter of the lease.
 *
 * @param samples the answers' `Date` headers
 * @param leaseMs the lease, in milliseconds
 * @param limit what a larger skew means
 * @returns ok, the limit's status, or skipped without samples
 */
export function judgeClockSkew(
  samples: readonly DateSample[],
  leaseMs: number,
  limit: SkewLimit = LEASE_LIMIT,
): CheckOutcome {
  if (samples.length === 0) return result("skipped", "no answer carried a Date header");
  // A Date header is truncated to the second: the server's time is within [D, D + 1 s).
  const skews = samples.map((d) => {
    const half = (d.resolution ?? 1000) / 2;
    return { ...d, half, skew: d.server + half - d.local };
  });
  const worst = skews.reduce((a, b) => Math.abs(b.skew) > Math.abs(a.skew) ? b : a);
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const ahead = worst.skew > 0 ? "behind" : "ahead of";
  const said = `this clock is ${seconds(Math.abs(worst.skew))} ${ahead} ${worst.service}'s ` +
    `(±${seconds(worst.half + worst.rtt / 2)}, from ${skews.length} answers)`;
  if (Math.abs(worst.skew) > leaseMs / 4) {
    return result(
      limit.status,
      `${said}, more than a quarter of the ${seconds(leaseMs)} lease: ${limit.consequence}`,
      "synchronise the clock (NTP: systemd-timesyncd, chrony)",
    );
  }
  return result("ok", `${said}; within a quarter of the ${seconds(leaseMs)} lease`);
}
