/**
 * S3Backend locks against real servers, beyond the contract every backend keeps
 * (tests/_backend_contract.ts, run for each lock mode in tests/s3_backend_test.ts):
 * Terraform's record formats, lease takeover after a holder killed with SIGKILL (and none
 * while it lives), Terraform's own locks, and the two modes together.
 *
 * @module
 */

import assert from "node:assert/strict";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { BackendConfigError, StateLockError } from "../src/errors.ts";
import { createEmptyState } from "../src/state.ts";
import type { S3BackendConfig } from "../src/config.ts";
import { spawnLockHolder } from "./_lock_holder.ts";
import { type Need, type S3Fixture, s3Fixture, s3Test } from "./_s3_fixture.ts";

const TERRAFORM_FIELDS = ["ID", "Operation", "Info", "Who", "Version", "Created", "Path"];

interface Mode {
  name: string;
  needs: Need[];
  config(fx: S3Fixture): Partial<S3BackendConfig>;
}

const DYNAMODB: Mode = {
  name: "DynamoDB",
  needs: ["dynamodb"],
  config: (fx) => ({ dynamodb_table: fx.table }),
};
const LOCKFILE: Mode = {
  name: "lockfile",
  needs: ["conditionalWrites"],
  config: () => ({ use_lockfile: true }),
};
const BOTH: Mode = {
  name: "lockfile and DynamoDB",
  needs: ["dynamodb", "conditionalWrites"],
  config: (fx) => ({ dynamodb_table: fx.table, use_lockfile: true }),
};

async function lockfileJson(fx: S3Fixture, key: string): Promise<Record<string, unknown> | null> {
  try {
    const out = await fx.s3Client.send(new GetObjectCommand({ Bucket: fx.bucket, Key: key }));
    return JSON.parse(await out.Body!.transformToString());
  } catch (error) {
    if ((error as Error).name === "NoSuchKey") return null;
    throw error;
  }
}

async function lockItem(fx: S3Fixture, lockId: string) {
  const out = await fx.dynamoClient!.send(
    new GetItemCommand({ TableName: fx.table, Key: { LockID: { S: lockId } } }),
  );
  return out.Item;
}

s3Test(
  "S3Backend writes Terraform's lock item and lockfile, with the lease in fields Terraform ignores",
  ["dynamodb", "conditionalWrites"],
  async () => {
    await using fx = await s3Fixture();
    const config = { ...BOTH.config(fx), key: "app/terraform.tfstate" };
    const backend = fx.backend(config);
    const { lockId, lockInfo } = await backend.lock("staging", {
      who: "alice@ci",
      operation: "apply",
      info: "run 42",
    });
    const stateKey = "env:/staging/app/terraform.tfstate";
    assert.equal(lockInfo.Path, `${fx.bucket}/${stateKey}`);
    const item = await lockItem(fx, `${fx.bucket}/${stateKey}`);
    assert.ok(item?.Info?.S && item.GaibLease?.S);
    const info = JSON.parse(item.Info.S);
    assert.deepEqual(Object.keys(info), TERRAFORM_FIELDS);
    assert.deepEqual(info, lockInfo);
    assert.match(info.Created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const file = await lockfileJson(fx, `${stateKey}.tflock`);
    assert.deepEqual(Object.keys(file!), [...TERRAFORM_FIELDS, "GaibLease"]);
    assert.equal(file!.ID, lockId);
    // getLockInfo gives exactly Terraform's fields.
    assert.deepEqual(await fx.backend(config).getLockInfo("staging"), lockInfo);
    await backend.unlock("staging", lockId);
    assert.equal(await lockItem(fx, `${fx.bucket}/${stateKey}`), undefined);
    assert.equal(await lockfileJson(fx, `${stateKey}.tflock`), null);
    assert.equal(await backend.getLockInfo("staging"), null);
  },
);

for (const mode of [DYNAMODB, LOCKFILE, BOTH]) {
  s3Test(
    `S3Backend (${mode.name}) takes over the lock of a holder killed with SIGKILL once its lease expires, never while it lives`,
    mode.needs,
    async () => {
      await using fx = await s3Fixture();
      const leaseMs = 1500;
      await using holder = await spawnLockHolder({
        backend: fx.config(mode.config(fx)),
        workspace: "default",
        leaseMs,
        who: "holder@subprocess",
      });
      const contender = fx.backend(mode.config(fx));
      // While the holder lives it renews its lease: waiting three leases does not help.
      await assert.rejects(contender.lock("default", { timeoutMs: 3 * leaseMs }), (e: Error) => {
        assert.ok(e instanceof StateLockError);
        assert.equal(e.lockInfo?.ID, holder.lockId);
        return true;
      });
      await assert.rejects(contender.unlock("default", holder.lockId), /still running/);
      await holder.kill();
      const killedAt = Date.now();
      const { lockId } = await contender.lock("default", { timeoutMs: 6 * leaseMs });
      assert.notEqual(lockId, holder.lockId);
      // A safety bound, not a speed figure: its last renewal was at most a third of a lease
      // before the kill, and the lease plus the skew allowance had to pass after it.
      assert.ok(Date.now() - killedAt >= leaseMs / 2, "taken over only after the lease");
      assert.equal((await contender.getLockInfo("default"))?.ID, lockId);
      await contender.unlock("default", lockId);
    },
  );
}

s3Test(
  "S3Backend never takes over a Terraform lock (no lease), however old; forceUnlock clears it",
  ["dynamodb"],
  async () => {
    await using fx = await s3Fixture();
    const info = {
      ID: "0b5a3c52-3c3c-4e3e-9a38-7d7c7f3c0001",
      Operation: "OperationTypeApply",
      Info: "",
      Who: "terraform@build-7",
      Version: "1.9.8",
      Created: "2020-01-01T00:00:00.123456789Z",
      Path: `${fx.bucket}/terraform.tfstate`,
    };
    await fx.dynamoClient!.send(
      new PutItemCommand({
        TableName: fx.table,
        Item: { LockID: { S: info.Path }, Info: { S: JSON.stringify(info) } },
        ConditionExpression: "attribute_not_exists(LockID)",
      }),
    );
    const backend = fx.backend(DYNAMODB.config(fx));
    await assert.rejects(backend.lock("default", { timeoutMs: 300 }), (error: Error) => {
      assert.ok(error instanceof StateLockError);
      assert.deepEqual(error.lockInfo, info);
      assert.match(error.message, /not taken by gaib-state/);
      return true;
    });
    await backend.forceUnlock("default", info.ID);
    const { lockId } = await backend.lock("default");
    await backend.unlock("default", lockId);
  },
);

s3Test(
  "S3Backend with both lock modes gives the lockfile back when the DynamoDB lock is busy",
  ["dynamodb", "conditionalWrites"],
  async () => {
    await using fx = await s3Fixture();
    const dynamoOnly = fx.backend(DYNAMODB.config(fx));
    const both = fx.backend(BOTH.config(fx));
    const { lockId } = await dynamoOnly.lock("default", { who: "terraform@old-config" });
    await assert.rejects(both.lock("default"), /held by terraform@old-config/);
    assert.equal(await lockfileJson(fx, "terraform.tfstate.tflock"), null);
    await dynamoOnly.unlock("default", lockId);
  },
);

s3Test(
  "S3Backend with key states/${workspace} and DynamoDB refuses workspace X-md5, whose lock item is X's digest item",
  ["dynamodb"],
  async () => {
    await using fx = await s3Fixture();
    const config = { ...DYNAMODB.config(fx), key: "states/${workspace}" };
    const backend = fx.backend(config);
    for (
      const attempt of [
        () => backend.lock("X-md5"),
        () => backend.setState("X-md5", createEmptyState()),
        () => backend.getState("X-md5"),
      ]
    ) {
      await assert.rejects(attempt(), (error: Error) => {
        assert.ok(error instanceof BackendConfigError, String(error));
        assert.match(error.message, /digest item .* of workspace "X"/);
        return true;
      });
    }
    // X itself works, and its digest is where X-md5's lock would have been.
    const { lockId } = await backend.lock("X");
    await backend.setState("X", createEmptyState(), { lockId });
    await backend.unlock("X", lockId);
    const digest = await lockItem(fx, `${fx.bucket}/states/X-md5`);
    assert.match(digest?.Digest?.S ?? "", /^[0-9a-f]{32}$/);
  },
);

s3Test(
  "S3Backend.unlock and forceUnlock release a DynamoDB lock item without Info (such as a digest where a lock was)",
  ["dynamodb"],
  async () => {
    await using fx = await s3Fixture();
    const backend = fx.backend(DYNAMODB.config(fx));
    const plant = () =>
      fx.dynamoClient!.send(
        new PutItemCommand({
          TableName: fx.table,
          Item: {
            LockID: { S: `${fx.bucket}/terraform.tfstate` },
            Digest: { S: "0123456789abcdef0123456789abcdef" },
          },
        }),
      );
    for (const release of ["unlock", "forceUnlock"] as const) {
      await plant();
      const error = await backend.lock("default").then(() => null, (e: Error) => e);
      assert.ok(error instanceof StateLockError, String(error));
      assert.equal(error.lockInfo?.ID, "");
      // The printed command names the empty ID so that it can be pasted.
      assert.ok(
        error.message.includes(`"gaib-state force-unlock '' -w default"`),
        error.message,
      );
      await backend[release]("default", "");
      assert.equal(await lockItem(fx, `${fx.bucket}/terraform.tfstate`), undefined, release);
      const { lockId } = await backend.lock("default");
      await backend.unlock("default", lockId);
    }
  },
);
