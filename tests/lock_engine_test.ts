/**
 * The lock engine against in-memory lock stores: acquisition in every store, conflicts
 * naming the holder, detached locks and TTLs, takeover of an expired lease and none while it
 * is renewed, unlock and forceUnlock, store failures (an answer lost after the write landed,
 * a request sent twice), `onWait`, and property-style races of many contenders whose requests
 * the stores delay at random.
 *
 * The races are seeded: each step is named after its seed, and `GAIB_TEST_SEED=<seed>` runs
 * that seed alone. Nothing waits on the wall clock: a fake clock drives leases and renewals,
 * and tests wait for the stores' changes.
 *
 * @module
 */

import assert from "node:assert/strict";
import { LockEngine, type LockEngineOptions } from "../src/_lock_engine.ts";
import { BackendConfigError, BackendError, StateLockError } from "../src/errors.ts";
import type { LockInfo, LockResult } from "../src/types.ts";
import { VERSION } from "../src/version.ts";
import {
  Connection,
  FakeClock,
  jitter,
  MemoryLockStore,
  seededRandom,
  yieldTurns,
} from "./_memory_lock_store.ts";

const LEASE = 3_000;
const T0 = Date.parse("2026-11-26T10:00:00.000Z");
const KEY = "states/default";

const TERRAFORM_LOCK: LockInfo = {
  ID: "0b4f7c5e-terraform",
  Operation: "OperationTypeApply",
  Info: "",
  Who: "terraform@ci",
  Version: "1.9.0",
  Created: "2026-11-26T09:00:00Z",
  Path: "mem/default",
};

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Stores shared by every client, a clock, and a log of requests in the order sent. */
interface World {
  clock: FakeClock;
  stores: MemoryLockStore[];
  log: string[];
}

function world(stores = 2, delay?: () => Promise<void>): World {
  return {
    clock: new FakeClock(T0),
    stores: Array.from({ length: stores }, (_, i) => new MemoryLockStore(`store-${i}`, delay)),
    log: [],
  };
}

/** One client (a backend instance): its own connections to the stores, and its engine. */
interface Client {
  engine: LockEngine;
  connections: Connection[];
}

function client(
  w: World,
  options: Partial<LockEngineOptions> & { deleteChecksVersion?: boolean } = {},
): Client {
  const connections = w.stores.map((store) =>
    new Connection(store, { deleteChecksVersion: options.deleteChecksVersion, log: w.log })
  );
  const engine = new LockEngine({
    stores: connections,
    locate: (workspace) => ({ key: `states/${workspace}`, path: `mem/${workspace}` }),
    leaseMs: LEASE,
    clock: w.clock,
    ...options,
  });
  return { engine, connections };
}

function cut(c: Client, down = true): void {
  for (const connection of c.connections) connection.down = down;
}

/** Resolves once every store's record of KEY is `lockId`'s with a lease ending after `after`. */
function renewedPast(w: World, lockId: string, after: number): Promise<void[]> {
  return Promise.all(w.stores.map((store) =>
    store.until(
      KEY,
      (r) => r?.info.ID === lockId && Date.parse(r.lease?.expires ?? "") > after,
    )
  ));
}

function heldBy(lockId: string) {
  return (error: unknown) => {
    assert.ok(error instanceof StateLockError, String(error));
    assert.equal(error.lockInfo?.ID, lockId);
    return true;
  };
}

Deno.test("LockEngine.lock takes a free lock in every store in order, with one ID and a lease it renews", async () => {
  const w = world();
  const a = client(w);
  const { lockId, lockInfo } = await a.engine.lock("default", {
    who: "alice@ci",
    operation: "apply",
    info: "run 42",
  });
  assert.deepEqual(lockInfo, {
    ID: lockId,
    Operation: "apply",
    Info: "run 42",
    Who: "alice@ci",
    Version: VERSION,
    Created: lockInfo.Created,
    Path: "mem/default",
  });
  assert.deepEqual(w.log, ["store-0 create", "store-1 create"]);
  for (const store of w.stores) {
    const record = store.peek(KEY)!;
    assert.deepEqual(record.info, lockInfo);
    assert.equal(record.lease?.expires, iso(T0 + LEASE));
    assert.equal(record.lease?.leaseMs, LEASE);
    assert.equal(record.lease?.detached, false);
    assert.match(record.lease?.holder ?? "", new RegExp(` pid ${Deno.pid}$`));
  }
  assert.equal(w.clock.timers, 1);
  await w.clock.advance(LEASE / 3);
  await renewedPast(w, lockId, T0 + LEASE);
  assert.equal(w.stores[0].peek(KEY)?.lease?.expires, iso(T0 + LEASE / 3 + LEASE));
  assert.deepEqual(await a.engine.getLockInfo("default"), lockInfo);
  await a.engine.unlock("default", lockId);
  assert.deepEqual(w.stores.map((s) => s.peek(KEY)), [null, null]);
  assert.equal(w.clock.timers, 0, "renewals stop at unlock");
});

Deno.test("LockEngine.lock refuses a second holder, names the first, and leaves no record behind", async () => {
  const w = world();
  const a = client(w);
  const b = client(w);
  const { lockId } = await a.engine.lock("default", { who: "alice@ci", operation: "apply" });
  await assert.rejects(b.engine.lock("default", { who: "bob@laptop" }), (error: Error) => {
    heldBy(lockId)(error);
    assert.match(error.message, /^Cannot lock workspace "default": held by alice@ci \(apply, /);
    assert.match(error.message, /Only its lease tells whether its holder \(.* pid \d+\) is alive/);
    assert.match(error.message, new RegExp(`run "gaib-state force-unlock ${lockId} -w default"`));
    return true;
  });
  await a.engine.unlock("default", lockId);
  // A lock in the second store only (Terraform's, without lease): the first store's record,
  // taken on the way, is released again.
  w.stores[1].put(KEY, TERRAFORM_LOCK, null);
  await assert.rejects(b.engine.lock("default"), (error: Error) => {
    heldBy(TERRAFORM_LOCK.ID)(error);
    assert.match(error.message, /not taken by gaib-state \(no lease\)/);
    return true;
  });
  assert.equal(w.stores[0].peek(KEY), null);
  assert.equal(w.clock.timers, 0);
});

Deno.test("LockEngine.getLockInfo reads the first store that has a lock", async () => {
  const w = world();
  const a = client(w);
  assert.equal(await a.engine.getLockInfo("default"), null);
  w.stores[1].put(KEY, TERRAFORM_LOCK, null);
  assert.deepEqual(await a.engine.getLockInfo("default"), TERRAFORM_LOCK);
  w.stores[0].put(KEY, { ...TERRAFORM_LOCK, ID: "first" }, null);
  assert.equal((await a.engine.getLockInfo("default"))?.ID, "first");
});

Deno.test("LockEngine: a detached lock is not renewed, outlives its client and ends at its TTL or never", async (t) => {
  await t.step("with ttlMs: taken over only after the TTL", async () => {
    const w = world();
    const a = client(w);
    const { lockId } = await a.engine.lock("default", { detached: true, ttlMs: 10_000 });
    assert.equal(w.clock.timers, 0, "no renewal");
    assert.deepEqual(
      { ...w.stores[0].peek(KEY)?.lease, holder: "" },
      { expires: iso(T0 + 10_000), leaseMs: LEASE, detached: true, holder: "" },
    );
    await a.engine.close();
    assert.equal(w.stores[1].peek(KEY)?.info.ID, lockId, "close leaves a detached lock");
    const b = client(w);
    await w.clock.advance(10_000);
    await assert.rejects(b.engine.lock("default"), (error: Error) => {
      heldBy(lockId)(error);
      assert.match(error.message, /It is a detached lock until /);
      return true;
    });
    await w.clock.advance(1);
    const taken = await b.engine.lock("default");
    assert.notEqual(taken.lockId, lockId);
    assert.deepEqual(w.stores.map((s) => s.peek(KEY)?.info.ID), [taken.lockId, taken.lockId]);
  });

  await t.step("without ttlMs: never taken over, released by a later step", async () => {
    const w = world();
    const a = client(w);
    const { lockId } = await a.engine.lock("default", { detached: true });
    assert.equal(w.stores[0].peek(KEY)?.lease?.expires, null);
    const b = client(w);
    await w.clock.advance(10 * 365 * 24 * 3600_000);
    await assert.rejects(b.engine.lock("default"), (error: Error) => {
      heldBy(lockId)(error);
      assert.match(error.message, /detached lock without TTL/);
      return true;
    });
    await b.engine.unlock("default", lockId);
    assert.deepEqual(w.stores.map((s) => s.peek(KEY)), [null, null]);
  });

  await t.step("ttlMs without detached is refused before any request", async () => {
    const w = world();
    const a = client(w);
    await assert.rejects(
      a.engine.lock("default", { ttlMs: 5 }),
      (error: Error) =>
        error instanceof BackendError && /ttlMs applies to detached locks only/.test(error.message),
    );
    assert.deepEqual(w.log, []);
  });
});

Deno.test("LockEngine takes over a lock whose holder stopped renewing, once a whole lease has passed after its end", async () => {
  const w = world();
  const a = client(w);
  const b = client(w);
  const { lockId: old } = await a.engine.lock("default", { who: "alice" });
  cut(a); // the holder is cut off: its renewals fail from now on
  await w.clock.advance(2 * LEASE); // its lease ended at T0 + LEASE; one more lease of skew allowed
  await assert.rejects(b.engine.lock("default"), (error: Error) => {
    heldBy(old)(error);
    assert.match(error.message, /Only its lease tells whether its holder/);
    return true;
  });
  await w.clock.advance(1);
  const taken = await b.engine.lock("default", { who: "bob" });
  assert.deepEqual(w.stores.map((s) => s.peek(KEY)?.info.ID), [taken.lockId, taken.lockId]);

  // The old holder comes back: it may not write, its unlock names the new holder, and its
  // renewals and release leave the new holder's records alone.
  cut(a, false);
  await assert.rejects(a.engine.checkWrite("default", old), (error: Error) => {
    heldBy(taken.lockId)(error);
    assert.match(error.message, /is not the current lock, which is held by bob/);
    return true;
  });
  await assert.rejects(a.engine.unlock("default", old), (error: Error) => {
    heldBy(taken.lockId)(error);
    assert.match(error.message, /does not match the current lock, which is held by bob/);
    return true;
  });
  await w.clock.advance(LEASE / 3);
  await a.engine.close();
  await renewedPast(w, taken.lockId, T0 + 2 * LEASE + 1 + LEASE);
  assert.equal(w.clock.timers, 1, "only the new holder renews");
  await b.engine.unlock("default", taken.lockId);
});

Deno.test("LockEngine never takes over a lock without a lease (Terraform's), but unlocks it by ID", async () => {
  const w = world(1);
  w.stores[0].put(KEY, TERRAFORM_LOCK, null);
  const a = client(w);
  await w.clock.advance(10 * 365 * 24 * 3600_000);
  await assert.rejects(a.engine.lock("default"), heldBy(TERRAFORM_LOCK.ID));
  await a.engine.unlock("default", TERRAFORM_LOCK.ID);
  assert.equal(w.stores[0].peek(KEY), null);
});

Deno.test("LockEngine.unlock refuses another live client's lock and a wrong ID; forceUnlock releases it", async () => {
  const w = world();
  const a = client(w);
  const b = client(w);
  const { lockId } = await a.engine.lock("default", { who: "alice" });
  await assert.rejects(b.engine.unlock("default", lockId), (error: Error) => {
    heldBy(lockId)(error);
    assert.match(error.message, /belongs to another client that is still running/);
    return true;
  });
  for (const release of [b.engine.unlock, b.engine.forceUnlock]) {
    await assert.rejects(release.call(b.engine, "default", "wrong-id"), (error: Error) => {
      heldBy(lockId)(error);
      assert.match(error.message, /lock ID "wrong-id" does not match the current lock/);
      return true;
    });
  }
  assert.deepEqual(w.stores.map((s) => s.peek(KEY)?.info.ID), [lockId, lockId]);
  await b.engine.forceUnlock("default", lockId);
  assert.deepEqual(w.stores.map((s) => s.peek(KEY)), [null, null]);
  // The holder's renewal finds its record gone and stops; its writes are refused.
  await assert.rejects(a.engine.checkWrite("default", lockId), /is no longer held/);
  await w.clock.advance(LEASE / 3);
  assert.deepEqual(w.stores.map((s) => s.peek(KEY)), [null, null]);
  for (const c of [a, b]) {
    await assert.rejects(c.engine.unlock("default", lockId), (error: Error) => {
      assert.ok(error instanceof StateLockError);
      assert.equal(error.lockInfo, null);
      assert.match(error.message, /it is not locked/);
      return true;
    });
  }
});

Deno.test("LockEngine.unlock deletes its own record in one request where the store checks the version", async (t) => {
  for (const deleteChecksVersion of [true, false]) {
    await t.step(`deleteChecksVersion: ${deleteChecksVersion}`, async () => {
      const w = world(1);
      const a = client(w, { deleteChecksVersion });
      const { lockId } = await a.engine.lock("default");
      w.log.length = 0;
      await a.engine.unlock("default", lockId);
      assert.deepEqual(
        w.log,
        deleteChecksVersion ? ["store-0 delete"] : ["store-0 read", "store-0 delete"],
      );
      assert.equal(w.stores[0].peek(KEY), null);
    });
  }
});

Deno.test("LockEngine.checkWrite lets only the current lock's holder write, reading one store given an ID", async () => {
  const w = world();
  const a = client(w);
  await a.engine.checkWrite("default", undefined);
  await assert.rejects(a.engine.checkWrite("default", "gone"), /lock gone is no longer held/);
  const { lockId } = await a.engine.lock("default", { who: "alice" });
  w.log.length = 0;
  await a.engine.checkWrite("default", lockId);
  assert.deepEqual(w.log, ["store-1 read"], "the store taken last tells");
  await assert.rejects(a.engine.checkWrite("default", undefined), (error: Error) => {
    heldBy(lockId)(error);
    assert.match(error.message, /it is locked, held by alice/);
    return true;
  });
  await assert.rejects(a.engine.checkWrite("default", "other"), heldBy(lockId));
  // Without an ID, a lock in any store blocks the write.
  await a.engine.unlock("default", lockId);
  w.stores[0].put(KEY, TERRAFORM_LOCK, null);
  await assert.rejects(a.engine.checkWrite("default", undefined), heldBy(TERRAFORM_LOCK.ID));
});

Deno.test("LockEngine without stores: no locking, and writes with a lock ID are refused", async () => {
  const engine = new LockEngine({
    stores: [],
    locate: (workspace) => ({ key: workspace, path: workspace }),
    enableLocking: { fix: "set backend.locks: true", path: "backend.locks" },
  });
  await assert.rejects(engine.lock("default"), (error: Error) => {
    assert.ok(error instanceof BackendConfigError);
    assert.equal(error.path, "backend.locks");
    assert.equal(error.message, "This backend has no locking: set backend.locks: true.");
    return true;
  });
  await assert.rejects(engine.unlock("default", "x"), /it is not locked/);
  await assert.rejects(engine.forceUnlock("default", "x"), /it is not locked/);
  assert.equal(await engine.getLockInfo("default"), null);
  await engine.checkWrite("default", undefined);
  await assert.rejects(
    engine.checkWrite("default", "x"),
    /lock x is not held, because this backend has no locking: set backend.locks: true\./,
  );
});

Deno.test("LockEngine.lock: an answer lost after the record landed names the lock ID and the command that clears it", async () => {
  const w = world();
  const a = client(w);
  a.connections[0].loseAnswers = 1;
  const error = await a.engine.lock("default").then(() => null, (e: Error) => e);
  assert.ok(error instanceof BackendError && !(error instanceof StateLockError), String(error));
  const landed = w.stores[0].peek(KEY)!.info.ID;
  assert.match(error.message, /no answer from store-0/);
  assert.ok(
    error.message.includes(
      `if "gaib-state lock status -w default" shows lock ID ${landed}, release it with ` +
        `"gaib-state force-unlock ${landed} -w default"`,
    ),
    error.message,
  );
  assert.equal(w.stores[1].peek(KEY), null);
  await client(w).engine.forceUnlock("default", landed);
  assert.equal(w.stores[0].peek(KEY), null);
});

Deno.test("LockEngine.lock: a create sent again after its answer was lost finds its own record and keeps it", async () => {
  const w = world();
  const a = client(w);
  a.connections[1].sendTwice = 1;
  const { lockId } = await a.engine.lock("default");
  assert.deepEqual(a.connections[1].sent, ["create", "create"]);
  assert.deepEqual(w.stores.map((s) => s.peek(KEY)?.info.ID), [lockId, lockId]);
  await w.clock.advance(LEASE / 3);
  await renewedPast(w, lockId, T0 + LEASE);
  await a.engine.unlock("default", lockId);
  assert.deepEqual(w.stores.map((s) => s.peek(KEY)), [null, null]);
});

Deno.test("LockEngine.lock: a failing second store releases the first store's record", async () => {
  const w = world();
  const a = client(w);
  a.connections[1].down = true;
  await assert.rejects(
    a.engine.lock("default"),
    (error: Error) =>
      error instanceof BackendError &&
      /^The store-1 failed while locking workspace "default" \(store-1\): connection to store-1 lost\./
        .test(error.message),
  );
  assert.deepEqual(w.stores.map((s) => s.peek(KEY)), [null, null]);
  assert.equal(w.clock.timers, 0);
});

Deno.test("LockEngine hands store failures to the failure option with what was being done", async () => {
  const w = world(1);
  const calls: string[] = [];
  const a = client(w, {
    failure: (error, store, call) => {
      calls.push(`${store.label}: ${call.action} | ${call.outcome} | ${!!call.uncertainOutcome}`);
      return new BackendError("translated", { cause: error });
    },
  });
  cut(a);
  await assert.rejects(a.engine.lock("default"), { message: "translated" });
  await assert.rejects(a.engine.checkWrite("default", undefined), { message: "translated" });
  await assert.rejects(a.engine.unlock("default", "x"), { message: "translated" });
  assert.deepEqual(calls, [
    'store-0: locking workspace "default" (store-0) | undefined | true',
    'store-0: checking the lock of workspace "default" | The state was not changed. | false',
    'store-0: unlocking workspace "default" (store-0) | undefined | false',
  ]);
});

Deno.test("LockEngine retries a failed renewal at the next tick: two missed renewals cost nothing", async () => {
  const w = world();
  const a = client(w);
  const b = client(w);
  const { lockId } = await a.engine.lock("default");
  cut(a);
  await w.clock.advance((2 * LEASE) / 3); // two renewals fail
  cut(a, false);
  await w.clock.advance(LEASE / 3);
  await renewedPast(w, lockId, T0 + LEASE);
  await w.clock.advance(LEASE);
  await assert.rejects(b.engine.lock("default"), heldBy(lockId));
  await a.engine.unlock("default", lockId);
});

Deno.test("LockEngine.lock calls onWait once, with the holder, when it is going to wait", async () => {
  const w = world();
  const a = client(w);
  const b = client(w);
  const held = await a.engine.lock("default", { who: "alice" });
  const seen: LockInfo[] = [];
  // No wait, no call: a lock that fails at once, and a free lock.
  await assert.rejects(
    b.engine.lock("default", { onWait: (holder) => seen.push(holder) }),
    heldBy(held.lockId),
  );
  assert.equal(seen.length, 0);
  // The holder lets go only after the waiter has been refused once more: it waits twice.
  let released: Promise<void> | undefined;
  const waited = b.engine.lock("default", {
    timeoutMs: 600_000,
    onWait: (holder) => {
      seen.push(holder);
      released = b.connections[0].answered().then(() => a.engine.unlock("default", held.lockId));
    },
  });
  const got = await waited;
  await released;
  assert.deepEqual(seen, [held.lockInfo]);
  assert.ok(
    b.connections[0].sent.filter((m) => m === "create").length >= 4,
    "refused at once, then twice while waiting, then taken",
  );
  assert.deepEqual(w.stores.map((s) => s.peek(KEY)?.info.ID), [got.lockId, got.lockId]);
  const free = client(world());
  await free.engine.lock("default", { timeoutMs: 1000, onWait: () => seen.push(held.lockInfo) });
  assert.equal(seen.length, 1);
});

/** The seeds of the races: `GAIB_TEST_SEED` alone, or five new ones each run. */
function seeds(): number[] {
  const given = Deno.env.get("GAIB_TEST_SEED");
  if (given !== undefined) return [Number(given)];
  return [...crypto.getRandomValues(new Uint32Array(5))];
}

/** A world whose stores delay every request at random, and 20 to 50 contenders. */
function race(seed: number) {
  const random = seededRandom(seed);
  const w = world(2, jitter(random));
  const contenders = Array.from({ length: 20 + Math.floor(random() * 31) }, () => client(w));
  return { random, w, contenders };
}

/** Exactly one fulfilled result; every other one a StateLockError naming a holder. */
function oneWinner(results: PromiseSettledResult<LockResult>[]): LockResult {
  const won = results.filter((r) => r.status === "fulfilled");
  assert.equal(won.length, 1, `${won.length} winners`);
  for (const r of results) {
    if (r.status === "rejected") {
      assert.ok(r.reason instanceof StateLockError, String(r.reason));
      assert.notEqual(r.reason.lockInfo, null);
    }
  }
  return won[0].value;
}

Deno.test("LockEngine race: of 20 to 50 contenders for a free lock, exactly one wins", async (t) => {
  for (const seed of seeds()) {
    await t.step(`seed ${seed}`, async () => {
      const { w, contenders } = race(seed);
      const results = await Promise.allSettled(
        contenders.map((c, i) => c.engine.lock("default", { who: `contender-${i}` })),
      );
      const winner = oneWinner(results);
      for (const r of results) {
        if (r.status === "rejected") assert.equal(r.reason.lockInfo.ID, winner.lockId);
      }
      assert.deepEqual(w.stores.map((s) => s.peek(KEY)?.info.ID), [winner.lockId, winner.lockId]);
      assert.equal(w.clock.timers, 1);
    });
  }
});

Deno.test("LockEngine race: the holder's lock is never taken over while it renews its lease; once it stops, exactly one contender takes it", async (t) => {
  for (const seed of seeds()) {
    await t.step(`seed ${seed}`, async () => {
      const { w, contenders } = race(seed);
      const holder = client(w);
      const held = await holder.engine.lock("default", { who: "holder" });
      // Each round the clock moves a whole lease on (the lease would have ended) while the
      // holder renews and every contender tries to take the lock at the same time.
      for (let round = 0; round < 6; round++) {
        const ticking = w.clock.advance(LEASE);
        const results = await Promise.allSettled(
          contenders.map((c, i) => c.engine.lock("default", { who: `contender-${i}` })),
        );
        await ticking;
        for (const r of results) {
          assert.equal(r.status, "rejected", `round ${round}: the lock was taken over`);
          heldBy(held.lockId)(r.reason);
        }
        await holder.engine.checkWrite("default", held.lockId);
      }
      assert.deepEqual(w.stores.map((s) => s.peek(KEY)?.info.ID), [held.lockId, held.lockId]);
      // The holder is cut off: a lease and the skew allowance later, one contender wins.
      cut(holder);
      await w.clock.advance(2 * LEASE + 1);
      const winner = oneWinner(
        await Promise.allSettled(
          contenders.map((c, i) => c.engine.lock("default", { who: `contender-${i}` })),
        ),
      );
      assert.deepEqual(w.stores.map((s) => s.peek(KEY)?.info.ID), [winner.lockId, winner.lockId]);
      cut(holder, false);
      await assert.rejects(holder.engine.checkWrite("default", held.lockId), heldBy(winner.lockId));
    });
  }
});

Deno.test("LockEngine race: 20 to 50 contenders taking turns never hold the lock two at a time, and each gets it", async (t) => {
  for (const seed of seeds()) {
    await t.step(`seed ${seed}`, async () => {
      const { random, w, contenders } = race(seed);
      let inside = 0;
      let turns = 0;
      await Promise.all(contenders.map(async (c, i) => {
        for (;;) {
          // Listen before trying, so a release during the attempt is not missed.
          const changed = Promise.race(w.stores.map((s) => s.nextChange()));
          let lock: LockResult;
          try {
            lock = await c.engine.lock("default", { who: `contender-${i}` });
          } catch (error) {
            if (!(error instanceof StateLockError)) throw error;
            await changed;
            continue;
          }
          inside++;
          assert.equal(inside, 1, `contender ${i} holds the lock with ${inside - 1} other(s)`);
          await c.engine.checkWrite("default", lock.lockId);
          await yieldTurns(Math.floor(random() * 20));
          turns++;
          inside--;
          await c.engine.unlock("default", lock.lockId);
          return;
        }
      }));
      assert.equal(turns, contenders.length);
      assert.deepEqual(w.stores.map((s) => s.peek(KEY)), [null, null]);
      assert.equal(w.clock.timers, 0);
    });
  }
});
