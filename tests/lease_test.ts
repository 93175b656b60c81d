/**
 * The lease rules at their edges: the exact instants a lease and a TTL end, the one-lease
 * allowance for clock skew, unreadable expiries (never expired), locks without a lease, and
 * stored text that reaches a message.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  judgeLease,
  leaseExpiry,
  type LeaseTerms,
  newLease,
  parseLease,
  renewLease,
} from "../src/_lease.ts";

const T = Date.parse("2026-11-26T10:00:00.000Z");
const LEASE = 30_000;

function bound(expires: number | string | null, leaseMs = LEASE): LeaseTerms {
  return {
    expires: typeof expires === "number" ? new Date(expires).toISOString() : expires,
    leaseMs,
    detached: false,
  };
}

function detached(expires: number | string | null): LeaseTerms {
  return { ...bound(expires), detached: true };
}

Deno.test("judgeLease keeps a process-bound lock until a whole lease has passed after its end", async (t) => {
  const cases: [string, number, boolean][] = [
    ["long before the end", T - LEASE, false],
    ["at the end", T, false],
    ["just after the end (within the skew allowance)", T + 1, false],
    ["exactly one lease after the end", T + LEASE, false],
    ["one millisecond later", T + LEASE + 1, true],
    ["much later", T + 100 * LEASE, true],
  ];
  for (const [name, now, expired] of cases) {
    await t.step(name, () => {
      const verdict = judgeLease(bound(T), "ci-runner pid 42", now);
      assert.equal(verdict.expired, expired);
      assert.match(
        verdict.reason,
        expired
          ? /^Its holder \(ci-runner pid 42\) stopped renewing its lease \(expired 2026-11-26T10:00:00.000Z\)\.$/
          : /^Only its lease tells whether its holder \(ci-runner pid 42\) is alive: the lease runs until 2026-11-26T10:00:00.000Z, and unless it is renewed the lock can be taken over from 2026-11-26T10:00:\d\d.\d{3}Z\.$/,
      );
    });
  }
});

Deno.test("judgeLease allows the skew of the lease stored with the lock, not a fixed one", () => {
  assert.equal(judgeLease(bound(T, 1000), "h", T + 1000).expired, false);
  assert.equal(judgeLease(bound(T, 1000), "h", T + 1001).expired, true);
  assert.equal(judgeLease(bound(T, 0), "h", T + 1).expired, true);
});

Deno.test("judgeLease never expires a lease whose end cannot be read (the NaN rule)", async (t) => {
  for (const expires of ["", "soon", "2026-13-45T99:00:00Z", "NaN"]) {
    await t.step(JSON.stringify(expires), () => {
      assert.ok(Number.isNaN(Date.parse(expires)));
      for (const now of [0, T, Number.MAX_SAFE_INTEGER]) {
        assert.equal(judgeLease(bound(expires), "h", now).expired, false);
        assert.equal(judgeLease(detached(expires), "h", now).expired, false);
      }
    });
  }
  // Nor does a lease length that is not a number extend or shorten anything into expiry.
  assert.equal(judgeLease(bound(T, NaN), "h", T + 10 * LEASE).expired, false);
});

Deno.test("judgeLease ends a detached lock exactly at its TTL, without the skew allowance", () => {
  assert.equal(judgeLease(detached(T), "h", T - 1).expired, false);
  assert.equal(judgeLease(detached(T), "h", T).expired, false);
  const after = judgeLease(detached(T), "h", T + 1);
  assert.equal(after.expired, true);
  assert.equal(after.reason, "Its TTL ended at 2026-11-26T10:00:00.000Z.");
  assert.equal(
    judgeLease(detached(T), "h", T).reason,
    "It is a detached lock until 2026-11-26T10:00:00.000Z.",
  );
});

Deno.test("judgeLease never expires a detached lock without TTL", () => {
  for (const now of [0, T, Number.MAX_SAFE_INTEGER]) {
    const verdict = judgeLease(detached(null), "h", now);
    assert.equal(verdict.expired, false);
    assert.match(verdict.reason, /detached lock without TTL: only unlock or force-unlock/);
  }
});

Deno.test("judgeLease never expires a lock without a lease (one Terraform took)", () => {
  const verdict = judgeLease(null, "", Number.MAX_SAFE_INTEGER);
  assert.equal(verdict.expired, false);
  assert.match(verdict.reason, /not taken by gaib-state \(no lease\)/);
});

Deno.test("judgeLease names an unknown holder when the lease does not say who holds it", () => {
  assert.match(
    judgeLease(bound(T), "", T).reason,
    /^Only its lease tells whether its holder \(unknown\) is alive/,
  );
  assert.match(judgeLease(bound(T), "", T + 2 * LEASE).reason, /^Its holder \(unknown\) stopped/);
});

Deno.test("judgeLease escapes control characters of the stored holder and expiry", () => {
  const sneaky = "x\x1b[2J\ny";
  for (
    const [terms, now] of [
      [bound(sneaky), T],
      [bound(T), T],
      [bound(T), T + 2 * LEASE],
      [detached(sneaky), T],
    ] as const
  ) {
    const { reason } = judgeLease(terms, `host${sneaky} pid 1`, now);
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(reason, /[\x00-\x1f\x7f]/);
  }
  assert.match(judgeLease(bound(T), sneaky, T).reason, /x\\u001b\[2J\\u000ay/);
});

Deno.test("leaseExpiry: a process-bound lease ends a lease from now; a detached lock at its TTL or never", () => {
  assert.equal(
    leaseExpiry({ detached: false, leaseMs: 1000 }, T),
    "2026-11-26T10:00:01.000Z",
  );
  // A TTL does not bind a process-bound lock (lock() refuses that combination anyway).
  assert.equal(
    leaseExpiry({ detached: false, ttlMs: 5, leaseMs: 1000 }, T),
    "2026-11-26T10:00:01.000Z",
  );
  assert.equal(
    leaseExpiry({ detached: true, ttlMs: 5, leaseMs: 1000 }, T),
    "2026-11-26T10:00:00.005Z",
  );
  assert.equal(leaseExpiry({ detached: true, leaseMs: 1000 }, T), null);
});

Deno.test("newLease names this process as holder and renewLease moves only the end", () => {
  const lease = newLease({ detached: false, leaseMs: 1000 }, T);
  assert.equal(lease.expires, "2026-11-26T10:00:01.000Z");
  assert.match(lease.holder, new RegExp(` pid ${Deno.pid}$`));
  const renewed = renewLease(lease, T + 500);
  assert.deepEqual(renewed, { ...lease, expires: "2026-11-26T10:00:01.500Z" });
  assert.equal(lease.expires, "2026-11-26T10:00:01.000Z", "the old lease is left as it was");
});

Deno.test("parseLease reads a stored lease and turns anything else into no lease", async (t) => {
  const good = { expires: "2026-11-26T10:00:00Z", leaseMs: 5, detached: false, holder: "h" };
  assert.deepEqual(parseLease(JSON.stringify(good)), good);
  assert.deepEqual(parseLease(good), good);
  assert.deepEqual(parseLease({ ...good, holder: 7 }), { ...good, holder: "" });
  assert.deepEqual(parseLease({ ...good, expires: null, detached: true }), {
    ...good,
    expires: null,
    detached: true,
  });
  const bad: [string, unknown][] = [
    ["not JSON", "{"],
    ["JSON null", "null"],
    ["a number", 5],
    ["expires a number", { ...good, expires: 5 }],
    ["leaseMs a string", { ...good, leaseMs: "5" }],
    ["detached missing", { expires: null, leaseMs: 5 }],
  ];
  for (const [name, value] of bad) {
    await t.step(name, () => assert.equal(parseLease(value), null));
  }
});
