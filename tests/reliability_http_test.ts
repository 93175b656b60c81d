/**
 * The reliability suites' contention and hostile-input cases through `gaib-state serve`'s
 * handler: K real processes x M locked read-increment-write cycles with HttpBackend (over a
 * local and an S3 + DynamoDB store), unlocked writers racing through the server, and the
 * corpus of hostile stored states, workspace names and lock IDs (tests/corpus/manifest.ts),
 * with every file of the state root hashed before and after.
 *
 * Sizes: `GAIB_RELIABILITY=full` runs K=8 x M=25 and the huge corpus files; the quick run
 * K=4 x M=10 without them.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createEmptyState, type GaibState, LocalBackend, StateLockError } from "../mod.ts";
import {
  BAD_LOCK_IDS,
  BAD_WORKSPACE_NAMES,
  type Expected,
  STATE_CASES,
} from "./corpus/manifest.ts";
import { serveBackend } from "./_http_serve.ts";
import { s3Fixture, s3Test } from "./_s3_fixture.ts";
import { lockedContention, unlockedRace } from "./reliability/_contention.ts";
import { sizes, snapshotTree, tempDir } from "./reliability/_util.ts";

const SIZES = sizes();
const { processes: K, cycles: M } = SIZES.contention;
const { processes: RK, attempts: RM } = SIZES.race;
const OPTIONS = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: `HttpBackend through serve (local store) loses no update when ${K} processes run ${M} ` +
    "locked read-increment-write cycles each on one workspace",
  ...OPTIONS,
  async fn() {
    await using dir = await tempDir();
    await using server = serveBackend(new LocalBackend({ path: dir.path }));
    const result = await lockedContention(server.config(), "default", K, M);
    console.log(
      `contention http->local: ${K} x ${M} locked cycles, final serial ${result.finalSerial}, ` +
        `${(K * M / (result.elapsedMs / 1000)).toFixed(1)} cycles/s`,
    );
  },
});

Deno.test({
  name: `HttpBackend through serve lands or refuses with StateSerialError every write of ${RK} ` +
    `unlocked processes racing ${RM} times each, and never loses one silently`,
  ...OPTIONS,
  async fn() {
    await using dir = await tempDir();
    await using server = serveBackend(new LocalBackend({ path: dir.path }));
    const result = await unlockedRace(server.config(), "racing", RK, RM);
    console.log(
      `race http->local: ${RK} x ${RM} unlocked attempts: ${result.landed} landed, ` +
        `${result.refused} refused, ${result.lost} lost`,
    );
    assert.equal(result.lost, 0, "a write that landed was overwritten");
  },
});

s3Test(
  `HttpBackend through serve (S3 + DynamoDB store) loses no update when ${K} processes run ` +
    `${M} locked read-increment-write cycles each on one workspace`,
  ["dynamodb"],
  async () => {
    await using fixture = await s3Fixture();
    await using server = serveBackend(fixture.backend({ dynamodb_table: fixture.table }));
    const result = await lockedContention(server.config(), "default", K, M);
    console.log(
      `contention http->s3+dynamodb: ${K} x ${M} locked cycles, final serial ` +
        `${result.finalSerial}, ${(K * M / (result.elapsedMs / 1000)).toFixed(1)} cycles/s`,
    );
  },
);

function assertExpected(error: Error | undefined, expected: Expected, what: string): void {
  assert.ok(error, `${what}: succeeded, expected ${expected.error}`);
  assert.equal(error.name, expected.error, `${what}: ${error.name}: ${error.message}`);
  assert.ok(
    error.message.toLowerCase().includes(expected.message.toLowerCase()),
    `${what}: ${JSON.stringify(error.message)} lacks ${JSON.stringify(expected.message)}`,
  );
}

async function outcome<T>(fn: () => Promise<T>): Promise<{ value?: T; error?: Error }> {
  try {
    return { value: await fn() };
  } catch (error) {
    return { error: error as Error };
  }
}

Deno.test({
  name: `HttpBackend through serve gives each of ${STATE_CASES.length} hostile stored state ` +
    "files its specific outcome and changes no file",
  ...OPTIONS,
  async fn(t) {
    for (const testCase of STATE_CASES) {
      if (testCase.huge && SIZES.name !== "full") continue;
      await t.step(`${testCase.name}: ${testCase.about}`, async () => {
        await using dir = await tempDir();
        const direct = new LocalBackend({ path: dir.path });
        const lineage = "0badc0de-0000-4000-8000-000000000001";
        await direct.setState("bystander", { ...createEmptyState(), lineage, serial: 2 });
        await direct.setState("victim", { ...createEmptyState(), lineage, serial: 2 });
        await testCase.make(direct.statePath("victim"));
        await direct.close();
        await using server = serveBackend(new LocalBackend({ path: dir.path }));
        const client = server.client();
        const { lockId } = await client.lock("victim", { detached: true, operation: "corpus" });
        const before = await snapshotTree(dir.path);
        const read = await outcome(() => client.getState("victim"));
        if (testCase.read === "none") {
          assert.equal(read.error, undefined, read.error?.message);
          assert.equal(read.value, null);
        } else if (testCase.read === "state") {
          if (
            read.error?.name === "StateFormatError" && /nested too deeply/.test(read.error.message)
          ) {
            // The server sends the state as it serializes it, and a state nested deeper than
            // the serializer goes cannot be sent: the read fails clearly instead (a difference
            // from reading the store directly, documented in the README).
            assert.equal(testCase.write?.valueOf() !== "ok", true);
            assert.deepEqual(await snapshotTree(dir.path), before, "the root changed");
            await client.forceUnlock("victim", lockId);
            return;
          }
          assert.equal(read.error, undefined, read.error?.message);
          assert.equal(read.value?.version, 4);
        } else {
          assertExpected(read.error, testCase.read, "getState");
          assert.ok(read.error!.message.includes("victim"), "the message names the workspace");
        }
        let wrote = false;
        if (testCase.write !== undefined) {
          const next: GaibState = read.value
            ? { ...read.value, serial: read.value.serial + 1 }
            : { ...createEmptyState(), serial: 1_000_000 };
          const write = await outcome(() => client.setState("victim", next, { lockId }));
          if (testCase.write === "ok") {
            assert.equal(write.error, undefined, write.error?.message);
            assert.equal((await client.getState("victim"))?.serial, next.serial);
            wrote = true;
          } else if (
            read.error?.name === "StateFormatError" && write.error?.name === read.error.name
          ) {
            // The server cannot serve a stored state it cannot read, and the client reads it
            // before writing: the write is refused for that reason instead.
            assert.match(write.error.message, /victim/);
          } else {
            assertExpected(write.error, testCase.write, "setState");
          }
        }
        if (!wrote) assert.deepEqual(await snapshotTree(dir.path), before, "the root changed");
        assert.equal((await client.getState("bystander"))?.serial, 2);
        await client.forceUnlock("victim", lockId);
      });
    }
  },
});

Deno.test({
  name: `serve refuses ${BAD_WORKSPACE_NAMES.length} hostile workspace names in the path and ` +
    `${BAD_LOCK_IDS.length} hostile lock IDs, changing nothing`,
  ...OPTIONS,
  async fn(t) {
    await using dir = await tempDir();
    await using server = serveBackend(new LocalBackend({ path: dir.path }));
    const client = server.client();
    await client.setState("victim", { ...createEmptyState(), serial: 1 });
    const { lockId } = await client.lock("victim", { detached: true });
    const before = await snapshotTree(dir.path);
    for (const { name, value } of BAD_WORKSPACE_NAMES) {
      await t.step(`workspace ${name}`, async () => {
        // Percent-encoded as a client would put it in the path (fetch keeps "/" and "..").
        const path = encodeURIComponent(value);
        for (const method of ["GET", "POST", "DELETE", "LOCK", "UNLOCK"]) {
          const response = await fetch(`${server.origin}/${path}`, {
            method,
            body: method === "GET" || method === "DELETE" ? undefined : '{"ID":"x"}',
          });
          await response.body?.cancel();
          assert.ok(
            [400, 404].includes(response.status) ||
              // "", "." and ".." become "/" (the listing) before reaching the server.
              (response.status === 200 && method === "GET" && /^\.{0,2}$/.test(value)) ||
              (response.status === 405 && /^\.{0,2}$/.test(value)),
            `${method} ${name}: ${response.status}`,
          );
        }
      });
    }
    for (const { name, value } of BAD_LOCK_IDS) {
      await t.step(`lock ID ${name}`, async () => {
        for (
          const attempt of [
            () => client.unlock("victim", value),
            () => client.forceUnlock("victim", value),
          ]
        ) {
          const result = await outcome(attempt);
          assert.ok(result.error, `${name} was accepted`);
        }
        const write = await outcome(() =>
          client.setState("victim", { ...createEmptyState(), serial: 2 }, {
            lockId: value,
            force: true,
          })
        );
        assert.ok(
          write.error instanceof StateLockError || write.error?.name === "BackendError",
          String(write.error),
        );
      });
    }
    assert.deepEqual(await snapshotTree(dir.path), before, "the state root changed");
    await client.unlock("victim", lockId);
  },
});
