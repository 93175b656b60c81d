/**
 * S3Backend history on real servers: the history contract on a versioned bucket with DynamoDB
 * locks, ListObjectVersions paging and key filtering, a bucket without versioning, and what
 * the backend does on a store that refuses every If-Match in a versioned bucket (Ceph RGW
 * 16.2, the test store): writes under the DynamoDB lock, refusals of unlocked writes and of
 * lockfile locking.
 *
 * @module
 */

import assert from "node:assert/strict";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { createHash } from "node:crypto";
import { BackendConfigError, StateLockError } from "../src/errors.ts";
import { createEmptyState, parseStateBytes, serializeState } from "../src/state.ts";
import type { GaibState } from "../src/types.ts";
import { withLock } from "../src/lock.ts";
import { historyContract } from "./_backend_contract.ts";
import { RequestLog } from "./_aws_requests.ts";
import { s3Fixture, s3Test } from "./_s3_fixture.ts";

const LINEAGE = "11111111-2222-4333-8444-555555555555";

function state(serial: number): GaibState {
  return { ...createEmptyState(), serial, lineage: LINEAGE };
}

historyContract("S3Backend (versioned bucket, DynamoDB locks)", {
  test: (name, _needs, fn) => s3Test(name, ["versioning", "dynamodb"], fn),
  async create() {
    const fx = await s3Fixture({ versioned: true });
    const config = { dynamodb_table: fx.table };
    const layout = fx.backend(config);
    return {
      open: () => fx.backend(config),
      plant: (workspace, bytes) => fx.plantState(layout.stateKey(workspace), bytes),
      async fingerprint() {
        // Every version of every key: a refused call adds none.
        const out: Record<string, string> = {};
        for (const key of ["terraform.tfstate", "env:/staging/terraform.tfstate"]) {
          for (
            const v of await fx.backend(config).listVersions(
              key.includes("staging") ? "staging" : "default",
            )
          ) {
            out[`${key}@${v.versionId}`] = `${v.serial}/${v.size}/${v.current}`;
          }
        }
        return out;
      },
      keepsHistory: true,
      [Symbol.asyncDispose]: () => fx[Symbol.asyncDispose](),
    };
  },
});

/** Puts a state version directly (as Terraform or another tool would). */
async function putState(fx: Awaited<ReturnType<typeof s3Fixture>>, key: string, s: GaibState) {
  await fx.s3Client.send(
    new PutObjectCommand({ Bucket: fx.bucket, Key: key, Body: serializeState(s) }),
  );
}

s3Test(
  "S3Backend writes a versioned bucket under the DynamoDB lock, and reports whether the store refuses If-Match",
  ["versioning", "dynamodb"],
  async () => {
    await using fx = await s3Fixture({ versioned: true });
    const backend = fx.backend({ dynamodb_table: fx.table });
    assert.equal(backend.conditionalWrites, "unknown");
    for (let serial = 1; serial <= 3; serial++) {
      await withLock(
        backend,
        "default",
        "",
        "apply",
        ({ lockId }) => backend.setState("default", state(serial), { lockId }),
      );
    }
    assert.equal((await fx.backend({ dynamodb_table: fx.table }).getState("default"))?.serial, 3);
    // Ceph RGW 16.2 refuses every If-Match in a versioned bucket; a store that honours it
    // (AWS) must keep the conditional path.
    assert.equal(backend.conditionalWrites, fx.s3.kind === "ceph" ? "refused" : "honoured");
    assert.deepEqual((await backend.listVersions("default")).map((v) => v.serial), [3, 2, 1]);
    // A locked delete works there too, and leaves the versions (S3 adds a delete marker).
    await withLock(
      backend,
      "staging",
      "",
      "apply",
      ({ lockId }) => backend.setState("staging", state(1), { lockId }),
    );
    await withLock(
      backend,
      "staging",
      "",
      "apply",
      ({ lockId }) => backend.setState("staging", state(2), { lockId }),
    );
    await withLock(
      backend,
      "staging",
      "",
      "delete",
      ({ lockId }) => backend.deleteState("staging", { lockId }),
    );
    assert.equal(await backend.getState("staging"), null);
    const left = await backend.listVersions("staging");
    assert.deepEqual(left.map((v) => [v.serial, v.current]), [[2, false], [1, false]]);
  },
);

s3Test(
  "S3Backend refuses an unlocked write into a versioned bucket whose store refuses If-Match, changing nothing",
  ["versioning", "dynamodb"],
  async () => {
    await using fx = await s3Fixture({ versioned: true });
    if (fx.s3.kind !== "ceph") return assert.fail("this test needs Ceph RGW (GAIB_TEST_S3)");
    const config = { dynamodb_table: fx.table };
    const writer = fx.backend(config);
    for (const workspace of ["default", "staging"]) {
      for (const serial of [1, 2]) {
        await withLock(
          writer,
          workspace,
          "",
          "apply",
          ({ lockId }) => writer.setState(workspace, state(serial), { lockId }),
        );
      }
    }
    assert.equal(writer.conditionalWrites, "refused");
    const refusal = (e: unknown) => {
      assert.ok(e instanceof StateLockError, `a StateLockError, not ${e}`);
      assert.match(e.message, /without holding its DynamoDB lock/);
      assert.match(e.message, /refuses every If-Match in bucket/);
      assert.match(e.message, /Nothing was changed/);
      return true;
    };
    // The instance that knows already refuses before sending anything.
    await assert.rejects(writer.setState("default", state(3)), refusal);
    // A fresh instance finds out on this very write, and refuses it.
    const fresh = fx.backend(config);
    await assert.rejects(fresh.setState("default", state(3)), refusal);
    assert.equal(fresh.conditionalWrites, "refused");
    await assert.rejects(fx.backend(config).deleteState("staging", { force: true }), refusal);
    assert.deepEqual((await fresh.listVersions("staging")).map((v) => v.serial), [2, 1]);
    const versions = await fresh.listVersions("default");
    assert.deepEqual(versions.map((v) => v.serial), [2, 1], "no version was added");
  },
);

s3Test(
  "S3Backend refuses lockfile locking in a versioned bucket whose store refuses If-Match",
  ["versioning", "dynamodb"],
  async () => {
    await using fx = await s3Fixture({ versioned: true });
    if (fx.s3.kind !== "ceph") return assert.fail("this test needs Ceph RGW (GAIB_TEST_S3)");
    for (
      const config of [{ use_lockfile: true }, { use_lockfile: true, dynamodb_table: fx.table }]
    ) {
      const key = `${Object.keys(config).length}/terraform.tfstate`;
      const backend = fx.backend({ ...config, key });
      await putState(fx, key, state(1));
      if (config.dynamodb_table) {
        const digest = createHash("md5").update(serializeState(state(1))).digest("hex");
        await fx.dynamoClient!.send(
          new PutItemCommand({
            TableName: fx.table,
            Item: { LockID: { S: `${fx.bucket}/${key}-md5` }, Digest: { S: digest } },
          }),
        );
      }
      const refusal = (e: unknown) => {
        assert.ok(e instanceof BackendConfigError, `a BackendConfigError, not ${e}`);
        assert.equal(e.path, "backend.use_lockfile");
        assert.match(e.message, /cannot keep two holders apart/);
        assert.match(e.message, /set backend\.dynamodb_table and remove backend\.use_lockfile/);
        return true;
      };
      // The lock is taken before the store is known; the write finds out and is refused.
      await assert.rejects(
        withLock(
          backend,
          "default",
          "",
          "apply",
          ({ lockId }) => backend.setState("default", state(2), { lockId }),
        ),
        refusal,
      );
      assert.equal(backend.conditionalWrites, "refused");
      const stored = await fx.s3Client.send(new GetObjectCommand({ Bucket: fx.bucket, Key: key }));
      const bytes = await stored.Body!.transformToByteArray();
      assert.equal(parseStateBytes(bytes, "stored")?.serial, 1, "nothing was written");
      // From then on this instance refuses to lock at all.
      await assert.rejects(backend.lock("default"), refusal);
      assert.equal(await backend.getLockInfo("default"), null, "no lock left behind");
    }
  },
);

s3Test(
  "S3Backend lists the current version alone in a bucket without versioning, saying how to turn it on",
  ["dynamodb"],
  async () => {
    await using fx = await s3Fixture();
    const backend = fx.backend({ dynamodb_table: fx.table, bucket: fx.bucket });
    for (const serial of [1, 2]) {
      await withLock(
        backend,
        "default",
        "",
        "apply",
        ({ lockId }) => backend.setState("default", state(serial), { lockId }),
      );
    }
    // Without versioning the store honours If-Match: the conditional path stays.
    assert.equal(backend.conditionalWrites, "honoured");
    const versions = await backend.listVersions("default");
    assert.deepEqual(versions.map((v) => [v.serial, v.current, v.versionId]), [[2, true, "null"]]);
    assert.match(versions[0].noHistory!, /bucket versioning is off for bucket/);
    assert.ok(
      versions[0].noHistory!.includes(
        `aws s3api put-bucket-versioning --bucket ${fx.bucket} --versioning-configuration ` +
          "Status=Enabled",
      ),
    );
    assert.equal((await backend.getStateVersion("default", "null")).serial, 2);
  },
);

s3Test(
  "S3Backend.listVersions follows ListObjectVersions pages and lists only the state key",
  ["versioning", "dynamodb"],
  async () => {
    await using fx = await s3Fixture({ versioned: true });
    const key = "terraform.tfstate";
    const count = 1005;
    // Other keys that share the prefix, each with versions: never listed.
    for (const other of [`${key}.tflock`, `${key}-md5`, `${key}.backup`, `${key}x`]) {
      await putState(fx, other, state(999));
      await putState(fx, other, state(998));
    }
    for (let serial = 1; serial <= count; serial++) await putState(fx, key, state(serial));
    const log = new RequestLog();
    const backend = fx.backend({ dynamodb_table: fx.table }, { onRequest: log.record });
    const versions = await backend.listVersions("default");
    assert.equal(versions.length, count);
    assert.deepEqual(
      versions.map((v) => v.serial),
      Array.from({ length: count }, (_, i) => count - i),
      "every version, newest first",
    );
    assert.deepEqual(versions.map((v) => v.current), versions.map((_, i) => i === 0));
    const requests = log.take();
    // Pages hold at most 1000 keys (Ceph RGW sends smaller ones): more than one was read.
    assert.ok(requests.filter((r) => r === "s3:ListObjectVersions").length >= 2, "pages followed");
    assert.equal(requests.filter((r) => r === "s3:GetObject").length, count, "one read each");
    // A limit stops after the first page and reads only what it lists.
    const three = await backend.listVersions("default", { limit: 3 });
    assert.deepEqual(three.map((v) => v.serial), [count, count - 1, count - 2]);
    assert.deepEqual(log.take().sort(), [
      "s3:GetObject",
      "s3:GetObject",
      "s3:GetObject",
      "s3:ListObjectVersions",
    ]);
  },
);
