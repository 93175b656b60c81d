/**
 * The `StateBackend` contract: every rule a backend must keep, as one suite that each
 * backend's test file runs with a factory for its store, the way hono runs one router case
 * suite (`src/router/common.case.test.ts`) against every router.
 *
 * A backend's test file is mostly one call:
 *
 * ```ts ignore
 * backendContract("LocalBackend", {
 *   async create() {
 *     const dir = await tempDir();
 *     ...
 *     return { open: () => new LocalBackend({ path: dir.path }), plant, fingerprint, ... };
 *   },
 * });
 * ```
 *
 * Each rule gets a fresh store. Clients opened with `store.open()` stand for separate
 * processes sharing the store; they are closed when the store is disposed.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  BackendConfigError,
  BackendError,
  createEmptyState,
  type GaibState,
  type LockInfo,
  parseState,
  rollbackState,
  serializeState,
  type StateBackend,
  StateFormatError,
  StateLineageError,
  StateLockError,
  StateSerialError,
  StateVersionNotFoundError,
  withBackend,
  withLock,
} from "../mod.ts";
import { BAD_WORKSPACE_NAMES } from "./corpus/manifest.ts";
import { expectedOutcome, fixtureFiles, PACKAGE_FIXTURES } from "./corpus/fixtures.ts";

/** One store for one rule (a temp directory, a fresh bucket and lock table). */
export interface ContractStore extends AsyncDisposable {
  /** A new client of the store, as another process would open it; closed with the store. */
  open(): StateBackend;
  /**
   * Stores `bytes` as a workspace's state behind the backend's back, the way another tool
   * (Terraform, a hand edit) would write them.
   */
  plant(workspace: string, bytes: Uint8Array): Promise<void>;
  /**
   * Everything the store holds, as name -> content fingerprint: equal before and after a
   * refused call when it changed nothing.
   */
  fingerprint(): Promise<Record<string, string>>;
  /**
   * Whether the store keeps earlier versions (`listVersions` lists them); `false` for a store
   * that keeps only the current one (an S3 bucket without versioning), which must say why.
   * @default {true}
   */
  keepsHistory?: boolean;
}

/** Rules that only some stores can keep; a backend's `test` decides what to do with them. */
export type ContractNeed =
  /** Writers racing without a lock (S3 needs conditional writes for them). */
  "racingWriters";

/** How a backend's test file runs the contract. */
export interface BackendContractOptions {
  /** A fresh, empty store for one rule. */
  create(): Promise<ContractStore>;
  /**
   * Declares one rule's test. Defaults to `Deno.test`; a backend whose servers may be missing
   * passes one that skips with the reason (and fails under `CI=true`).
   */
  test?(
    name: string,
    needs: readonly ContractNeed[],
    fn: (t: Deno.TestContext) => Promise<void>,
  ): void;
  /**
   * The backend decrypts OpenTofu envelopes (`withEncryption`): the corpus's encrypted states
   * are then refused for want of their key, or as damaged envelopes, not as "encrypted".
   */
  decrypts?: boolean;
}

/** Terraform's `LockInfo` fields, in its order. */
const TERRAFORM_LOCK_FIELDS = ["ID", "Operation", "Info", "Who", "Version", "Created", "Path"];
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

function state(serial: number, lineage = "11111111-2222-4333-8444-555555555555"): GaibState {
  return { ...createEmptyState(), serial, lineage };
}

function withOutput(base: GaibState, name: string, value: unknown): GaibState {
  return { ...base, outputs: { ...base.outputs, [name]: { value, type: "string" } } };
}

/** A state with resources: deleting it loses something. */
function stateWithResources(serial: number): GaibState {
  return {
    ...state(serial),
    resources: [{
      mode: "managed",
      type: "discord_role",
      name: "admin",
      provider: 'provider["registry.terraform.io/gaib/discord"]',
      instances: [{ schema_version: 0, attributes: { id: "1" } }],
    }],
  };
}

const encoder = new TextEncoder();

function assertHolder(error: unknown, holder: LockInfo): true {
  assert.ok(error instanceof StateLockError, `a StateLockError, not ${error}`);
  assert.deepEqual(error.lockInfo, holder, "the error carries the holder's lock info");
  return true;
}

/**
 * Runs every `StateBackend` rule against a backend.
 *
 * @param name the backend as test names show it, such as `S3Backend (lockfile)`
 * @param options the store factory, and how to declare a test
 */
export function backendContract(name: string, options: BackendContractOptions): void {
  historyContract(name, options);
  const declare = options.test ??
    ((
      testName: string,
      _needs: readonly ContractNeed[],
      fn: (t: Deno.TestContext) => Promise<void>,
    ) => Deno.test(testName, fn));
  const rule = (
    sentence: string,
    fn: (store: ContractStore, t: Deno.TestContext) => Promise<void>,
    needs: readonly ContractNeed[] = [],
  ) =>
    declare(`${name}: ${sentence}`, needs, async (t) => {
      await using store = await options.create();
      await fn(store, t);
    });

  // --- Lineage and serial --------------------------------------------------------------------

  rule("getState returns null before the first write", async (store) => {
    const backend = store.open();
    assert.equal(await backend.getState("default"), null);
    assert.equal(await backend.getState("staging"), null);
  });

  rule("setState stores a new state that another client reads back", async (store) => {
    const first = state(1);
    await store.open().setState("default", first);
    await store.open().setState("staging", state(4));
    assert.deepEqual(await store.open().getState("default"), first);
    assert.equal((await store.open().getState("staging"))?.serial, 4);
  });

  rule("setState accepts the same lineage with a higher serial", async (store) => {
    const backend = store.open();
    await backend.setState("default", state(1));
    await backend.setState("default", withOutput(state(2), "n", "two"));
    await backend.setState("default", withOutput(state(7), "n", "seven"));
    const read = await store.open().getState("default");
    assert.equal(read?.serial, 7);
    assert.equal(read?.outputs?.n?.value, "seven");
  });

  rule(
    "setState refuses a lower serial, and an equal serial with other content, changing nothing",
    async (store) => {
      const backend = store.open();
      await backend.setState("default", state(3));
      const before = await store.fingerprint();
      await assert.rejects(backend.setState("default", state(2)), (e: unknown) => {
        assert.ok(e instanceof StateSerialError, `a StateSerialError, not ${e}`);
        assert.equal(e.storedSerial, 3);
        assert.equal(e.newSerial, 2);
        return true;
      });
      await assert.rejects(
        backend.setState("default", withOutput(state(3), "x", "other")),
        (e: unknown) =>
          e instanceof StateSerialError && /equals the stored state's/.test(e.message),
      );
      assert.deepEqual(await store.fingerprint(), before, "the store changed");
      // The same serial with the same content is no change, and is accepted.
      await backend.setState("default", state(3));
      assert.deepEqual(await store.fingerprint(), before, "an unchanged write changed the store");
    },
  );

  rule("setState refuses another lineage, changing nothing", async (store) => {
    const backend = store.open();
    await backend.setState("default", state(1, "lineage-a"));
    const before = await store.fingerprint();
    await assert.rejects(backend.setState("default", state(5, "lineage-b")), (e: unknown) => {
      assert.ok(e instanceof StateLineageError, `a StateLineageError, not ${e}`);
      assert.equal(e.storedLineage, "lineage-a");
      assert.equal(e.newLineage, "lineage-b");
      assert.match(
        e.message,
        /lineage "lineage-b" differs from the stored state's lineage "lineage-a"/,
      );
      return true;
    });
    assert.deepEqual(await store.fingerprint(), before, "the store changed");
    assert.equal((await store.open().getState("default"))?.lineage, "lineage-a");
  });

  rule("setState with force skips the lineage and serial checks", async (store) => {
    const backend = store.open();
    await backend.setState("default", state(5, "lineage-a"));
    await backend.setState("default", state(9, "lineage-b"), { force: true });
    assert.equal((await store.open().getState("default"))?.lineage, "lineage-b");
    await backend.setState("default", state(1, "lineage-b"), { force: true });
    assert.equal((await store.open().getState("default"))?.serial, 1);
  });

  rule(
    "setState accepts an equal serial stored in another layout (Terraform's encoder)",
    async (store) => {
      const s = withOutput(state(4), "x", "y");
      await store.plant("default", encoder.encode(JSON.stringify(s)));
      await store.open().setState("default", s);
      await assert.rejects(store.open().setState("default", state(4)), StateSerialError);
    },
  );

  rule("setState refuses an invalid state and keeps the stored one", async (store) => {
    const backend = store.open();
    await backend.setState("default", state(1));
    const before = await store.fingerprint();
    const legacy = { ...state(2), version: 3 } as unknown as GaibState;
    await assert.rejects(backend.setState("default", legacy), (e: unknown) => {
      assert.ok(e instanceof StateFormatError, `a StateFormatError, not ${e}`);
      assert.match(e.message, /legacy format version 3/);
      return true;
    });
    const noLineage = { version: 4, serial: 2 } as unknown as GaibState;
    await assert.rejects(backend.setState("default", noLineage), StateFormatError);
    assert.deepEqual(await store.fingerprint(), before, "the store changed");
  });

  rule("setState with force replaces a damaged stored state", async (store) => {
    await store.plant("default", encoder.encode('{"version": 4, "serial": 2, "lin'));
    const backend = store.open();
    await assert.rejects(backend.getState("default"), /not valid JSON/);
    await assert.rejects(backend.setState("default", state(3)), /not valid JSON/);
    await backend.setState("default", state(3), { force: true });
    assert.equal((await store.open().getState("default"))?.serial, 3);
  });

  rule("a write built on a stale read is refused, never lost", async (store) => {
    const a = store.open();
    const b = store.open();
    await a.setState("default", state(1));
    const seenByA = (await a.getState("default"))!;
    const seenByB = (await b.getState("default"))!;
    await b.setState("default", withOutput({ ...seenByB, serial: 2 }, "by", "b"));
    await assert.rejects(
      a.setState("default", withOutput({ ...seenByA, serial: 2 }, "by", "a")),
      StateSerialError,
    );
    assert.equal((await store.open().getState("default"))?.outputs?.by?.value, "b");
  }, ["racingWriters"]);

  rule("of 20 unlocked writers racing to the same next serial exactly one lands", async (store) => {
    await store.open().setState("default", state(1));
    const writers = Array.from({ length: 20 }, () => store.open());
    const base = await Promise.all(writers.map((w) => w.getState("default")));
    const results = await Promise.allSettled(
      writers.map((w, i) =>
        w.setState("default", withOutput({ ...base[i]!, serial: 2 }, "w", String(i)))
      ),
    );
    const landed = results.flatMap((r, i) => r.status === "fulfilled" ? [i] : []);
    assert.equal(landed.length, 1, `landed: ${landed}`);
    for (const r of results) {
      if (r.status === "rejected") assert.ok(r.reason instanceof StateSerialError, r.reason);
    }
    assert.equal((await store.open().getState("default"))?.outputs?.w?.value, String(landed[0]));
  }, ["racingWriters"]);

  rule("of 10 writers racing to create a state exactly one lands", async (store) => {
    const writers = Array.from({ length: 10 }, () => store.open());
    await Promise.all(writers.map((w) => w.getState("new")));
    const created = writers.map(() => ({ ...createEmptyState(), serial: 1 }));
    const results = await Promise.allSettled(writers.map((w, i) => w.setState("new", created[i])));
    const landed = results.flatMap((r, i) => r.status === "fulfilled" ? [i] : []);
    assert.equal(landed.length, 1, `landed: ${landed}`);
    for (const r of results) {
      if (r.status === "rejected") {
        assert.ok(
          r.reason instanceof StateLineageError || r.reason instanceof StateSerialError,
          String(r.reason),
        );
      }
    }
    assert.equal((await store.open().getState("new"))?.lineage, created[landed[0]].lineage);
  }, ["racingWriters"]);

  // --- Unknown fields and big numbers ------------------------------------------------------------

  rule("a state round-trips with unknown fields and numbers beyond 2^53 kept", async (store) => {
    const text = JSON.stringify({
      version: 4,
      terraform_version: "1.9.8",
      serial: 1,
      lineage: "0e4f2b1c-9a7d-4c3e-8f21-6d5b4a3c2e10",
      future_top_level: { nested: [1, "two", null] },
      outputs: {
        big: { value: 1, type: "number", future_output_field: true },
        precise: { value: 2, type: "number" },
      },
      resources: [{
        mode: "managed",
        type: "discord_role",
        name: "admin",
        provider: 'provider["registry.terraform.io/gaib/discord"]',
        future_resource_field: "kept",
        instances: [{
          schema_version: 0,
          attributes: { id: "98765432109876543210", permissions: 3 },
          identity: { id: "x" },
          future_instance_field: 1,
        }],
      }],
      check_results: null,
    }).replace('"value":1,', '"value":123456789012345678901234567890,')
      .replace('"value":2,', '"value":0.10000000000000000555,')
      .replace('"permissions":3', '"permissions":18446744073709551615');
    const original = parseState(text)!;
    await store.open().setState("default", original);
    const read = await store.open().getState("default");
    assert.ok(read);
    const written = serializeState(read);
    assert.equal(written, serializeState(original), "the state read back is the state written");
    for (
      const kept of [
        '"value": 123456789012345678901234567890',
        '"value": 0.10000000000000000555',
        '"permissions": 18446744073709551615',
        '"future_top_level"',
        '"future_output_field": true',
        '"future_resource_field": "kept"',
        '"future_instance_field": 1',
        '"identity"',
      ]
    ) assert.ok(written.includes(kept), `${kept} is kept`);
  });

  rule(
    "every fixture of the corpus reads as MANIFEST.md says, and what reads writes back unchanged",
    async (store, t) => {
      const files = await fixtureFiles();
      assert.ok(files.length >= 50, `the package's corpus copy has ${files.length} files`);
      for (const [i, file] of files.entries()) {
        await t.step(file, async () => {
          const workspace = `fixture-${i}`;
          const bytes = await Deno.readFile(`${PACKAGE_FIXTURES}/${file}`);
          await store.plant(workspace, bytes);
          const expected = expectedOutcome(file);
          const backend = store.open();
          if ("empty" in expected) {
            assert.equal(await backend.getState(workspace), null);
          } else if ("reject" in expected) {
            await assert.rejects(backend.getState(workspace), (e: unknown) => {
              const envelope = options.decrypts && e instanceof Error &&
                (e.name === "StateEncryptionError" || /OpenTofu encrypted state/.test(e.message));
              assert.ok(envelope || e instanceof StateFormatError, `a StateFormatError, not ${e}`);
              const named = envelope
                ? /Cannot decrypt|OpenTofu encrypted state/.test(e.message)
                : e.message.includes(expected.reject);
              assert.ok(named, `names the problem: ${(e as Error).message}`);
              assert.ok(e.message.includes(workspace), `names where: ${e.message}`);
              return true;
            });
            const before = await store.fingerprint();
            await assert.rejects(
              backend.setState(workspace, state(1_000_000)),
              (e: unknown) => e instanceof StateFormatError || e instanceof StateLineageError,
            );
            assert.deepEqual(
              await store.fingerprint(),
              before,
              "a refused write changed the store",
            );
          } else {
            const read = await backend.getState(workspace);
            assert.ok(read, `${file} reads as a state`);
            const parsed = parseState(new TextDecoder().decode(bytes), file)!;
            assert.equal(serializeState(read), serializeState(parsed), "read without loss");
            const next = { ...read, serial: read.serial + 1 };
            await backend.setState(workspace, next);
            const again = await store.open().getState(workspace);
            assert.equal(serializeState(again!), serializeState(next), "written without loss");
          }
        });
      }
    },
  );

  // --- Locks -------------------------------------------------------------------------------------

  rule("lock() returns Terraform's LockInfo, which getLockInfo reads back", async (store) => {
    const backend = store.open();
    assert.equal(await backend.getLockInfo("default"), null);
    const { lockId, lockInfo } = await backend.lock("default", {
      who: "alice@ci",
      operation: "apply",
      info: "ticket-1",
    });
    assert.deepEqual(Object.keys(lockInfo), TERRAFORM_LOCK_FIELDS);
    assert.equal(lockInfo.ID, lockId);
    assert.equal(lockInfo.Who, "alice@ci");
    assert.equal(lockInfo.Operation, "apply");
    assert.equal(lockInfo.Info, "ticket-1");
    assert.match(lockInfo.Created, RFC3339);
    assert.ok(lockInfo.Version, "Version is set");
    assert.ok(lockInfo.Path, "Path is set");
    const read = await store.open().getLockInfo("default");
    assert.deepEqual(Object.keys(read!), TERRAFORM_LOCK_FIELDS);
    assert.deepEqual(read, lockInfo);
    await backend.unlock("default", lockId);
    assert.equal(await store.open().getLockInfo("default"), null);
  });

  rule("lock() refuses a second holder and names the first", async (store) => {
    const first = store.open();
    const second = store.open();
    const { lockId, lockInfo } = await first.lock("prod", { who: "alice@ci", operation: "apply" });
    await assert.rejects(second.lock("prod", { who: "bob@laptop" }), (e: unknown) => {
      assertHolder(e, lockInfo);
      const message = (e as Error).message;
      assert.match(message, /^Cannot lock workspace "prod": held by alice@ci \(apply, since /);
      assert.ok(message.includes(`lock ID ${lockId}`), message);
      assert.ok(message.includes(`gaib-state force-unlock ${lockId} -w prod`), message);
      return true;
    });
    await first.unlock("prod", lockId);
    const again = await second.lock("prod");
    assert.equal((await store.open().getLockInfo("prod"))?.ID, again.lockId);
  });

  rule("of 20 clients locking at once exactly one wins", async (store) => {
    const lockers = Array.from({ length: 20 }, () => store.open());
    const results = await Promise.allSettled(
      lockers.map((b, i) => b.lock("default", { who: `locker-${i}` })),
    );
    const winners = results.flatMap((r, i) => r.status === "fulfilled" ? [i] : []);
    assert.equal(winners.length, 1, `winners: ${winners}`);
    const { lockId } = (results[winners[0]] as PromiseFulfilledResult<{ lockId: string }>).value;
    for (const r of results) {
      if (r.status === "rejected") {
        assert.ok(r.reason instanceof StateLockError, String(r.reason));
        assert.equal(r.reason.lockInfo?.ID, lockId, "a loser names the winner");
      }
    }
    assert.equal((await store.open().getLockInfo("default"))?.ID, lockId);
    // No loser left a half-taken record behind.
    await lockers[winners[0]].unlock("default", lockId);
    assert.equal(await store.open().getLockInfo("default"), null);
  });

  rule(
    "lock() with timeoutMs calls onWait once with the holder, then waits for the release",
    async (store) => {
      const holder = store.open();
      const waiter = store.open();
      const probe = store.open();
      const { lockId } = await holder.lock("default", { who: "alice@ci" });
      const seen: string[] = [];
      let released: Promise<void> | undefined;
      // The holder lets go only once the waiter has found the lock busy and is waiting.
      const got = await waiter.lock("default", {
        who: "waiter",
        timeoutMs: 60_000,
        onWait: (info) => {
          seen.push(`${info.Who} ${info.ID}`);
          released = holder.unlock("default", lockId);
        },
      });
      await released;
      assert.deepEqual(seen, [`alice@ci ${lockId}`], "called once, with the holder");
      assert.notEqual(got.lockId, lockId);
      assert.equal((await probe.getLockInfo("default"))?.Who, "waiter");
      // Without a timeout the call does not wait, so onWait is not called.
      await assert.rejects(
        probe.lock("default", { onWait: () => seen.push("waited") }),
        StateLockError,
      );
      assert.equal(seen.length, 1);
    },
  );

  rule("a lock on a workspace without state does not make it a workspace", async (store) => {
    const backend = store.open();
    const { lockId } = await backend.lock("ghost");
    assert.deepStrictEqual(await backend.listWorkspaces(), ["default"], "not listed while locked");
    await assert.rejects(backend.deleteState("ghost"), /does not exist/);
    await backend.unlock("ghost", lockId);
    assert.deepStrictEqual(await backend.listWorkspaces(), ["default"], "nor after unlock");
    const detached = await backend.lock("ghost", { detached: true });
    await backend.forceUnlock("ghost", detached.lockId);
    assert.deepStrictEqual(await backend.listWorkspaces(), ["default"], "nor after force-unlock");
  });

  rule("lock() stops waiting when its signal aborts, naming the holder", async (store) => {
    const holder = store.open();
    const { lockInfo } = await holder.lock("default", { who: "holder" });
    const controller = new AbortController();
    const waiting = store.open().lock("default", { timeoutMs: 600_000, signal: controller.signal });
    controller.abort();
    await assert.rejects(waiting, (e: unknown) => {
      assertHolder(e, lockInfo);
      assert.match((e as Error).message, /Stopped waiting for the lock/);
      return true;
    });
    assert.equal((await store.open().getLockInfo("default"))?.ID, lockInfo.ID);
  });

  rule(
    "unlock and forceUnlock with a wrong ID fail, name the holder and keep the lock",
    async (store) => {
      const holder = store.open();
      const other = store.open();
      const { lockId, lockInfo } = await holder.lock("default", { who: "alice@ci" });
      const before = await store.fingerprint();
      for (
        const attempt of [
          () => holder.unlock("default", "not-the-id"),
          () => other.unlock("default", "not-the-id"),
          () => other.forceUnlock("default", "not-the-id"),
        ]
      ) {
        await assert.rejects(attempt(), (e: unknown) => {
          assertHolder(e, lockInfo);
          assert.match(
            (e as Error).message,
            /does not match the current lock, which is held by alice@ci/,
          );
          return true;
        });
      }
      assert.deepEqual(await store.fingerprint(), before, "the store changed");
      assert.equal((await store.open().getLockInfo("default"))?.ID, lockId);
    },
  );

  rule(
    "unlock refuses another live client's lock; forceUnlock with its ID releases it",
    async (store) => {
      const holder = store.open();
      const other = store.open();
      const { lockId, lockInfo } = await holder.lock("default", { who: "alice@ci" });
      await assert.rejects(other.unlock("default", lockId), (e: unknown) => {
        assertHolder(e, lockInfo);
        assert.match((e as Error).message, /still running/);
        assert.ok((e as Error).message.includes(`gaib-state force-unlock ${lockId}`));
        return true;
      });
      assert.equal((await store.open().getLockInfo("default"))?.ID, lockId);
      await other.forceUnlock("default", lockId);
      assert.equal(await store.open().getLockInfo("default"), null);
      await assert.rejects(other.unlock("default", lockId), /it is not locked/);
      await assert.rejects(other.forceUnlock("default", lockId), /not locked/);
    },
  );

  rule("setState needs the lock's ID while the workspace is locked", async (store) => {
    const holder = store.open();
    const other = store.open();
    await holder.setState("default", state(1));
    const { lockId, lockInfo } = await holder.lock("default", { who: "alice@ci" });
    const before = await store.fingerprint();
    await assert.rejects(other.setState("default", state(2)), (e: unknown) => {
      assertHolder(e, lockInfo);
      assert.match((e as Error).message, /it is locked, held by alice@ci/);
      return true;
    });
    await assert.rejects(
      other.setState("default", state(2), { lockId: "not-it" }),
      (e: unknown) =>
        assertHolder(e, lockInfo) &&
        /lock not-it is not the current lock, which is held by alice@ci/.test((e as Error).message),
    );
    // force skips the lineage and serial checks, never the lock.
    await assert.rejects(
      other.setState("default", state(2), { lockId: "not-it", force: true }),
      StateLockError,
    );
    await assert.rejects(other.setState("default", state(2), { force: true }), StateLockError);
    assert.deepEqual(await store.fingerprint(), before, "the store changed");
    await holder.setState("default", state(2), { lockId });
    assert.equal((await store.open().getState("default"))?.serial, 2);
  });

  rule("a write with a lock ID that is no longer held is refused", async (store) => {
    const holder = store.open();
    const other = store.open();
    await holder.setState("default", state(1));
    const { lockId } = await holder.lock("default");
    await other.forceUnlock("default", lockId); // someone breaks the lock meanwhile
    await assert.rejects(
      holder.setState("default", state(2), { lockId }),
      (e: unknown) => e instanceof StateLockError && /is no longer held/.test(e.message),
    );
    assert.equal((await store.open().getState("default"))?.serial, 1);
  });

  rule("close() releases the locks the client holds and refuses further use", async (store) => {
    const backend = store.open();
    await backend.lock("default");
    await backend.lock("staging");
    await backend.close();
    await assert.rejects(backend.getState("default"), /closed/);
    await assert.rejects(backend.lock("default"), /closed/);
    assert.equal(await store.open().getLockInfo("default"), null);
    assert.equal(await store.open().getLockInfo("staging"), null);
  });

  rule("withLock releases the lock when the work throws", async (store) => {
    const backend = store.open();
    await assert.rejects(
      withLock(backend, "default", "me", "apply", () => {
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.equal(await store.open().getLockInfo("default"), null);
  });

  rule("withLock reports a lock it could not release, with the lock ID", async (store) => {
    const backend = store.open();
    const error = await withLock(backend, "default", "me", "apply", async ({ lockId }) => {
      await store.open().forceUnlock("default", lockId); // someone breaks the lock meanwhile
      return lockId;
    }).then(() => null, (e: unknown) => e);
    assert.ok(error instanceof StateLockError, String(error));
    assert.match(error.message, /Failed to release lock [0-9a-f-]{36}/);
  });

  rule(
    "withBackend closes the backend, releasing its locks, when the work throws",
    async (store) => {
      const backend = store.open();
      await assert.rejects(
        withBackend(backend, async (b) => {
          await b.lock("default");
          throw new Error("fail");
        }),
        /fail/,
      );
      await assert.rejects(backend.getState("default"), /closed/);
      assert.equal(await store.open().getLockInfo("default"), null);
    },
  );

  // --- Detached locks and ttlMs ------------------------------------------------------------------

  rule(
    "a detached lock outlives its client's close() and is released by unlock from another",
    async (store) => {
      const first = store.open();
      const { lockId, lockInfo } = await first.lock("ci-step", { detached: true });
      await first.close();
      const other = store.open();
      assert.deepEqual(await other.getLockInfo("ci-step"), lockInfo);
      await assert.rejects(other.lock("ci-step"), (e: unknown) => {
        assertHolder(e, lockInfo);
        assert.match((e as Error).message, /detached lock without TTL/);
        return true;
      });
      await other.unlock("ci-step", lockId);
      assert.equal(await store.open().getLockInfo("ci-step"), null);
    },
  );

  rule("ttlMs is for detached locks only", async (store) => {
    const backend = store.open();
    await assert.rejects(backend.lock("default", { ttlMs: 1000 }), (e: unknown) => {
      assert.ok(e instanceof BackendError);
      assert.match(e.message, /detached locks only/);
      return true;
    });
    assert.equal(await backend.getLockInfo("default"), null);
  });

  rule("a detached lock holds until its TTL ends", async (store) => {
    const { lockInfo } = await store.open().lock("default", { detached: true, ttlMs: 3_600_000 });
    await assert.rejects(store.open().lock("default"), (e: unknown) => {
      assertHolder(e, lockInfo);
      assert.match((e as Error).message, /detached lock until /);
      return true;
    });
  });

  rule(
    "of 20 clients waiting on a detached lock whose TTL ends exactly one takes it over",
    async (store) => {
      const stale = await store.open().lock("default", { detached: true, ttlMs: 1 });
      // The contenders retry until the TTL has ended; the winner's lock then holds (its
      // holder lives), so the others give up after their timeout, naming the winner.
      const contenders = Array.from({ length: 20 }, () => store.open());
      const results = await Promise.allSettled(
        contenders.map((b) => b.lock("default", { timeoutMs: 1500 })),
      );
      const winners = results.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
      assert.equal(winners.length, 1, `winners: ${winners.length}`);
      assert.notEqual(winners[0].lockId, stale.lockId);
      for (const r of results) {
        if (r.status === "rejected") {
          assertHolder(r.reason, winners[0].lockInfo);
        }
      }
      assert.equal((await store.open().getLockInfo("default"))?.ID, winners[0].lockId);
    },
  );

  // --- Workspaces --------------------------------------------------------------------------------

  rule("listWorkspaces always includes default, and lists written ones sorted", async (store) => {
    const backend = store.open();
    assert.deepEqual(await backend.listWorkspaces(), ["default"]);
    await backend.setState("staging", state(1));
    await backend.setState("prod", state(1));
    await backend.setState("a-first", state(1));
    assert.deepEqual(await store.open().listWorkspaces(), [
      "a-first",
      "default",
      "prod",
      "staging",
    ]);
  });

  rule(
    "deleteState refuses default, a missing workspace and a locked one; deletes an unlocked one",
    async (store) => {
      const backend = store.open();
      await backend.setState("default", state(1));
      await backend.setState("staging", state(1));
      await assert.rejects(
        backend.deleteState("default"),
        (e: unknown) =>
          e instanceof BackendError && /"default" workspace cannot be deleted/.test(e.message),
      );
      await assert.rejects(
        backend.deleteState("nope"),
        (e: unknown) =>
          e instanceof BackendError && /Workspace "nope" does not exist/.test(e.message),
      );
      const holder = store.open();
      const { lockId, lockInfo } = await holder.lock("staging", { who: "alice@ci" });
      const before = await store.fingerprint();
      await assert.rejects(backend.deleteState("staging"), (e: unknown) => {
        assertHolder(e, lockInfo);
        assert.ok((e as Error).message.includes(`gaib-state force-unlock ${lockId} -w staging`));
        return true;
      });
      assert.deepEqual(await store.fingerprint(), before, "the store changed");
      await holder.unlock("staging", lockId);
      await backend.deleteState("staging");
      assert.deepEqual(await store.open().listWorkspaces(), ["default"]);
      assert.equal(await store.open().getState("staging"), null);
      assert.equal((await store.open().getState("default"))?.serial, 1);
      await assert.rejects(backend.deleteState("staging"), /does not exist/);
    },
  );

  rule(
    "every operation refuses an invalid workspace name and changes nothing",
    async (store, t) => {
      const backend = store.open();
      await backend.setState("default", state(1));
      const { lockId } = await backend.lock("default");
      const before = await store.fingerprint();
      for (const { name, value } of BAD_WORKSPACE_NAMES) {
        await t.step(name, async () => {
          const operations: [string, () => Promise<unknown>][] = [
            ["getState", () => backend.getState(value)],
            ["setState", () => backend.setState(value, state(2), { lockId })],
            ["deleteState", () => backend.deleteState(value)],
            ["lock", () => backend.lock(value)],
            ["unlock", () => backend.unlock(value, lockId)],
            ["forceUnlock", () => backend.forceUnlock(value, lockId)],
            ["getLockInfo", () => backend.getLockInfo(value)],
          ];
          for (const [operation, fn] of operations) {
            await assert.rejects(fn(), (e: unknown) => {
              assert.ok(e instanceof BackendConfigError, `${operation}: ${e}`);
              assert.match(e.message, /workspace name/, operation);
              return true;
            });
          }
        });
      }
      assert.deepEqual(await store.fingerprint(), before, "the store changed");
    },
  );

  // --- deleteState(workspace, { lockId, force }): with the hardening branch (h/backend) -----------

  rule("deleteState deletes a locked workspace only with the holder's lock ID", async (store) => {
    const backend = store.open();
    await backend.setState("staging", state(1));
    const { lockId, lockInfo } = await backend.lock("staging", { who: "alice@ci" });
    const before = await store.fingerprint();
    await assert.rejects(
      store.open().deleteState("staging", {}),
      (e: unknown) => assertHolder(e, lockInfo),
    );
    await assert.rejects(
      store.open().deleteState("staging", { lockId: "not-it" }),
      (e: unknown) => assertHolder(e, lockInfo),
    );
    // force skips the resources check, never the lock.
    await assert.rejects(
      store.open().deleteState("staging", { force: true }),
      (e: unknown) => assertHolder(e, lockInfo),
    );
    assert.deepEqual(await store.fingerprint(), before, "the store changed");
    await backend.deleteState("staging", { lockId });
    assert.equal(await store.open().getState("staging"), null);
    assert.deepEqual(await store.open().listWorkspaces(), ["default"]);
  });

  rule("deleteState refuses a state with resources unless force", async (store) => {
    const backend = store.open();
    await backend.setState("staging", stateWithResources(1));
    const before = await store.fingerprint();
    await assert.rejects(backend.deleteState("staging", {}), (e: unknown) => {
      assert.ok(e instanceof BackendError, `a BackendError, not ${e}`);
      assert.match(e.message, /resource/);
      return true;
    });
    assert.deepEqual(await store.fingerprint(), before, "the store changed");
    assert.equal((await store.open().getState("staging"))?.resources?.length, 1);
    await backend.deleteState("staging", { force: true });
    assert.equal(await store.open().getState("staging"), null);
  });
}

/** Writes a state under the workspace lock, as every writer on every store may. */
function lockedWrite(backend: StateBackend, workspace: string, next: GaibState): Promise<void> {
  return withLock(
    backend,
    workspace,
    "contract",
    "write",
    ({ lockId }) => backend.setState(workspace, next, { lockId }),
  );
}

/** IDs no backend may take for a version: each must fail with StateVersionNotFoundError. */
const UNKNOWN_VERSION_IDS = [
  "nope",
  "20261130T073501123Z-0badc0de",
  "../../../../etc/passwd",
  "../terraform.tfstate",
  "history/../terraform.tfstate.backup",
  "/etc/passwd",
  ".",
  "..",
  "",
  "a\u0000b",
  "line\nbreak",
  "x".repeat(5000),
];

/**
 * The `StateHistory` rules every backend keeps (run by {@linkcode backendContract}; a backend
 * with a second kind of store, such as S3 with a versioned bucket, runs it again for that
 * store). Writes go through the lock, which every store allows.
 *
 * @param name the backend as test names show it
 * @param options the store factory, and how to declare a test
 */
export function historyContract(name: string, options: BackendContractOptions): void {
  const declare = options.test ??
    ((
      testName: string,
      _needs: readonly ContractNeed[],
      fn: (t: Deno.TestContext) => Promise<void>,
    ) => Deno.test(testName, fn));
  const rule = (
    sentence: string,
    fn: (store: ContractStore, keeps: boolean) => Promise<void>,
  ) =>
    declare(`${name}: ${sentence}`, [], async () => {
      await using store = await options.create();
      await fn(store, store.keepsHistory !== false);
    });

  rule("listVersions lists nothing for a workspace without a state", async (store) => {
    assert.deepEqual(await store.open().listVersions("default"), []);
    assert.deepEqual(await store.open().listVersions("staging"), []);
  });

  rule(
    "listVersions lists the versions newest first, the current one flagged (or says why it keeps only that one)",
    async (store, keeps) => {
      const backend = store.open();
      const written = [state(1), withOutput(state(2), "n", "two"), withOutput(state(3), "n", "3")];
      for (const next of written) await lockedWrite(backend, "default", next);
      const versions = await store.open().listVersions("default");
      const expected = keeps ? [3, 2, 1] : [3];
      assert.deepEqual(versions.map((v) => v.serial), expected);
      assert.deepEqual(versions.map((v) => v.current), expected.map((_, i) => i === 0));
      for (const version of versions) {
        assert.equal(version.lineage, written[0].lineage);
        assert.match(version.savedAt, RFC3339);
        assert.equal(typeof version.versionId, "string");
        assert.ok(version.versionId.length > 0);
        const bytes = encoder.encode(serializeState(written[version.serial - 1]));
        if (options.decrypts) {
          // The stored document is the envelope: base64 of the ciphertext, plus its metadata.
          assert.ok(version.size > bytes.length, "size is the stored envelope's bytes");
        } else assert.equal(version.size, bytes.length, "size is the stored state's bytes");
      }
      assert.equal(new Set(versions.map((v) => v.versionId)).size, versions.length);
      const saved = versions.map((v) => Date.parse(v.savedAt));
      assert.deepEqual(saved, [...saved].sort((a, b) => b - a), "newest first");
      if (keeps) assert.equal(versions[0].noHistory, undefined);
      else assert.match(versions[0].noHistory ?? "", /\w+.*\w+/, "says why only one is kept");
      // Another workspace's versions are its own.
      await lockedWrite(backend, "staging", state(9));
      assert.deepEqual((await backend.listVersions("staging")).map((v) => v.serial), [9]);
      assert.deepEqual((await backend.listVersions("default")).map((v) => v.serial), expected);
    },
  );

  rule("listVersions honours limit, and refuses a limit below 1", async (store, keeps) => {
    const backend = store.open();
    for (let serial = 1; serial <= 4; serial++) {
      await lockedWrite(backend, "default", withOutput(state(serial), "n", String(serial)));
    }
    const two = await backend.listVersions("default", { limit: 2 });
    assert.deepEqual(two.map((v) => v.serial), keeps ? [4, 3] : [4]);
    assert.deepEqual((await backend.listVersions("default", { limit: 1 })).map((v) => v.serial), [
      4,
    ]);
    for (const limit of [0, -1, 1.5, Number.NaN]) {
      await assert.rejects(backend.listVersions("default", { limit }), BackendError);
    }
  });

  rule(
    "getStateVersion reads each listed version back exactly as it was written",
    async (store) => {
      const backend = store.open();
      // Unknown fields and numbers beyond 2^53 must come back as written.
      const first = parseState(
        '{"version":4,"serial":1,"lineage":"11111111-2222-4333-8444-555555555555",' +
          '"terraform_version":"1.9.0","outputs":{"big":{"value":12345678901234567890123,' +
          '"type":"number"}},"resources":[],"check_results":null,"future_field":{"x":[1.0]}}',
      )!;
      const second = withOutput({ ...first, serial: 2 }, "n", "two \u202e");
      await lockedWrite(backend, "default", first);
      await lockedWrite(backend, "default", second);
      for (const version of await store.open().listVersions("default")) {
        const read = await store.open().getStateVersion("default", version.versionId);
        const wrote = version.serial === 1 ? first : second;
        assert.equal(serializeState(read), serializeState(wrote), `version ${version.serial}`);
        assert.equal(read.serial, version.serial);
        assert.equal(read.lineage, version.lineage);
      }
    },
  );

  rule(
    "getStateVersion refuses unknown and hostile version IDs with StateVersionNotFoundError, changing nothing",
    async (store) => {
      const backend = store.open();
      await lockedWrite(backend, "default", state(1));
      await lockedWrite(backend, "default", state(2));
      const before = await store.fingerprint();
      for (const id of UNKNOWN_VERSION_IDS) {
        await assert.rejects(backend.getStateVersion("default", id), (e: unknown) => {
          assert.ok(e instanceof StateVersionNotFoundError, `${JSON.stringify(id)}: ${e}`);
          assert.equal(e.versionId, id);
          assert.equal(e.workspace, "default");
          assert.match(e.message, /state history/, "names the command that lists versions");
          // deno-lint-ignore no-control-regex
          assert.doesNotMatch(e.message, /[\x00-\x08\n]/, "the ID is escaped");
          return true;
        });
      }
      // An ID of one workspace is not a version of another.
      const [current] = await backend.listVersions("default");
      await assert.rejects(
        backend.getStateVersion("staging", current.versionId),
        StateVersionNotFoundError,
      );
      assert.deepEqual(await store.fingerprint(), before, "the store changed");
    },
  );

  rule(
    "rollbackState writes the version's content as the next serial, under the lock",
    async (store, keeps) => {
      const backend = store.open();
      const good = withOutput(state(1), "n", "good");
      await lockedWrite(backend, "default", good);
      await lockedWrite(backend, "default", withOutput(state(2), "n", "bad"));
      const versions = await backend.listVersions("default");
      const target = keeps ? versions.find((v) => v.serial === 1)! : versions[0];
      const result = await rollbackState(backend, "default", target.versionId);
      assert.equal(result.serial, 3);
      assert.equal(result.previousSerial, 2);
      assert.equal(result.lineage, good.lineage);
      const now = await store.open().getState("default");
      assert.equal(now?.serial, 3);
      assert.equal(now?.lineage, good.lineage);
      assert.equal(now?.outputs?.n?.value, keeps ? "good" : "bad");
      assert.equal(await backend.getLockInfo("default"), null, "the lock was released");
      if (keeps) {
        assert.deepEqual((await backend.listVersions("default")).map((v) => v.serial), [3, 2, 1]);
      }
    },
  );

  rule(
    "rollbackState refuses while another holds the lock, and another lineage unless force",
    async (store, keeps) => {
      const backend = store.open();
      await lockedWrite(backend, "default", withOutput(state(1, "lineage-a"), "n", "a"));
      const other = store.open();
      const [a] = await backend.listVersions("default");
      const held = await other.lock("default");
      const before = await store.fingerprint();
      await assert.rejects(rollbackState(backend, "default", a.versionId), StateLockError);
      await assert.rejects(
        rollbackState(backend, "default", a.versionId, { lockId: "not-the-lock" }),
        StateLockError,
      );
      // The holder itself may roll back with its lock ID.
      const done = await rollbackState(other, "default", a.versionId, { lockId: held.lockId });
      assert.equal(done.serial, 2);
      await other.unlock("default", held.lockId);
      assert.notDeepEqual(await store.fingerprint(), before);
      if (!keeps) return;
      // A forced write of another lineage, then a rollback to lineage-a.
      await withLock(
        backend,
        "default",
        "",
        "push",
        ({ lockId }) => backend.setState("default", state(1, "lineage-b"), { lockId, force: true }),
      );
      const older = (await backend.listVersions("default")).find((v) => v.lineage === "lineage-a")!;
      const unforced = await store.fingerprint();
      await assert.rejects(rollbackState(backend, "default", older.versionId), (e: unknown) => {
        assert.ok(e instanceof StateLineageError, `${e}`);
        assert.match(e.message, /state rollback --force/);
        return true;
      });
      assert.deepEqual(await store.fingerprint(), unforced, "a refused rollback changed nothing");
      const forced = await rollbackState(backend, "default", older.versionId, { force: true });
      assert.equal(forced.lineage, "lineage-a");
      assert.equal(forced.serial, 3);
      assert.equal((await backend.getState("default"))?.lineage, "lineage-a");
    },
  );
}
