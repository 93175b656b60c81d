/**
 * S3Backend locks against real servers, in both lock modes: Terraform's record formats,
 * conflicts naming the holder, races with exactly one winner, lease takeover after a holder
 * killed with SIGKILL (and none while it lives), unlock rules and lock checks on writes.
 *
 * @module
 */

import assert from "node:assert/strict";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { BackendConfigError, StateLockError } from "../src/errors.ts";
import { createEmptyState } from "../src/state.ts";
import type { S3BackendConfig } from "../src/config.ts";
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
    `S3Backend.lock (${mode.name}) refuses a second holder and names the first`,
    mode.needs,
    async () => {
      await using fx = await s3Fixture();
      const first = fx.backend(mode.config(fx));
      const second = fx.backend(mode.config(fx));
      const { lockId } = await first.lock("default", { who: "alice@ci", operation: "apply" });
      await assert.rejects(second.lock("default", { who: "bob@laptop" }), (error: Error) => {
        assert.ok(error instanceof StateLockError);
        assert.equal(error.lockInfo?.ID, lockId);
        assert.equal(error.lockInfo?.Who, "alice@ci");
        assert.match(error.message, /held by alice@ci \(apply, since .*, lock ID /);
        assert.match(error.message, /Only its lease tells whether its holder .* is alive/);
        assert.doesNotMatch(error.message, /renews its lease/);
        return true;
      });
      await first.unlock("default", lockId);
      const again = await second.lock("default");
      await second.unlock("default", again.lockId);
    },
  );

  s3Test(
    `S3Backend.lock (${mode.name}) lets exactly one of 20 concurrent lockers win`,
    mode.needs,
    async () => {
      await using fx = await s3Fixture();
      const lockers = Array.from({ length: 20 }, () => fx.backend(mode.config(fx)));
      const results = await Promise.allSettled(
        lockers.map((b, i) => b.lock("default", { who: `locker-${i}` })),
      );
      const winners = results.flatMap((r, i) => r.status === "fulfilled" ? [i] : []);
      assert.equal(winners.length, 1, `winners: ${winners}`);
      const winner = (results[winners[0]] as PromiseFulfilledResult<{ lockId: string }>).value;
      for (const r of results) {
        if (r.status === "rejected") {
          assert.ok(r.reason instanceof StateLockError, String(r.reason));
        }
      }
      assert.equal((await lockers[0].getLockInfo("default"))?.ID, winner.lockId);
      // Neither record was left half-taken by a loser.
      await lockers[winners[0]].unlock("default", winner.lockId);
      assert.equal(await lockers[0].getLockInfo("default"), null);
    },
  );

  s3Test(
    `S3Backend (${mode.name}) lets exactly one of 20 contenders take over an expired lock`,
    mode.needs,
    async () => {
      await using fx = await s3Fixture();
      // A detached lock whose TTL has ended may be taken over.
      const stale = await fx.backend(mode.config(fx)).lock("default", {
        detached: true,
        ttlMs: 1,
      });
      await new Promise((resolve) => setTimeout(resolve, 20));
      const contenders = Array.from({ length: 20 }, () => fx.backend(mode.config(fx)));
      const results = await Promise.allSettled(contenders.map((b) => b.lock("default")));
      const winners = results.filter((r) => r.status === "fulfilled");
      assert.equal(winners.length, 1);
      const info = await contenders[0].getLockInfo("default");
      assert.notEqual(info?.ID, stale.lockId);
      assert.equal(
        info?.ID,
        (winners[0] as PromiseFulfilledResult<{ lockId: string }>).value.lockId,
      );
    },
  );

  s3Test(
    `S3Backend (${mode.name}) takes over the lock of a holder killed with SIGKILL once its lease expires, never while it lives`,
    mode.needs,
    async () => {
      await using fx = await s3Fixture();
      const leaseMs = 1500;
      const holder = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("./_s3_holder.ts", import.meta.url).pathname,
          JSON.stringify(fx.config(mode.config(fx))),
          "default",
          String(leaseMs),
        ],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      try {
        const reader = holder.stdout.getReader();
        let out = "";
        while (!out.includes("\n")) {
          const { value, done } = await reader.read();
          if (done) break;
          out += new TextDecoder().decode(value);
        }
        reader.releaseLock();
        const holderId = /^LOCKED (\S+)/.exec(out)?.[1];
        assert.ok(holderId, `the holder did not lock: ${out}`);
        const contender = fx.backend(mode.config(fx));
        // While the holder lives it renews its lease: waiting three leases does not help.
        await assert.rejects(contender.lock("default", { timeoutMs: 3 * leaseMs }), (e: Error) => {
          assert.ok(e instanceof StateLockError);
          assert.equal(e.lockInfo?.ID, holderId);
          return true;
        });
        await assert.rejects(contender.unlock("default", holderId), /still running/);
        holder.kill("SIGKILL");
        await holder.status;
        const killedAt = Date.now();
        const { lockId } = await contender.lock("default", { timeoutMs: 6 * leaseMs });
        assert.notEqual(lockId, holderId);
        assert.ok(Date.now() - killedAt >= leaseMs / 2, "taken over only after the lease");
        assert.equal((await contender.getLockInfo("default"))?.ID, lockId);
        await contender.unlock("default", lockId);
      } finally {
        try {
          holder.kill("SIGKILL");
        } catch {
          // already dead
        }
        await holder.status;
        await holder.stdout.cancel().catch(() => {});
      }
    },
  );

  s3Test(
    `S3Backend.unlock (${mode.name}) refuses a wrong ID and names the holder; forceUnlock needs the right one`,
    mode.needs,
    async () => {
      await using fx = await s3Fixture();
      const holder = fx.backend(mode.config(fx));
      const other = fx.backend(mode.config(fx));
      const { lockId } = await holder.lock("default", { who: "alice@ci" });
      for (
        const attempt of [
          () => other.unlock("default", "wrong"),
          () => other.forceUnlock("default", "x"),
        ]
      ) {
        await assert.rejects(attempt(), (error: Error) => {
          assert.ok(error instanceof StateLockError);
          assert.match(error.message, /does not match the current lock, which is held by alice@ci/);
          assert.equal(error.lockInfo?.ID, lockId);
          return true;
        });
      }
      // A live holder's lock is not another client's to unlock, but force-unlock clears it.
      await assert.rejects(other.unlock("default", lockId), /still running/);
      await other.forceUnlock("default", lockId);
      assert.equal(await holder.getLockInfo("default"), null);
      await assert.rejects(other.unlock("default", lockId), /it is not locked/);
    },
  );

  s3Test(
    `S3Backend.setState (${mode.name}) checks the lock: no ID, a wrong ID, a lock no longer held`,
    mode.needs,
    async () => {
      await using fx = await s3Fixture();
      const holder = fx.backend(mode.config(fx));
      const other = fx.backend(mode.config(fx));
      const state = createEmptyState();
      await holder.setState("default", state);
      const { lockId } = await holder.lock("default", { who: "alice@ci" });
      const next = { ...state, serial: 1 };
      await assert.rejects(other.setState("default", next), (error: Error) => {
        assert.ok(error instanceof StateLockError);
        assert.match(error.message, /it is locked, held by alice@ci/);
        return true;
      });
      await assert.rejects(
        other.setState("default", next, { lockId: "not-it" }),
        /lock not-it is not the current lock, which is held by alice@ci/,
      );
      await holder.setState("default", next, { lockId });
      // Another client force-unlocks: the holder's next write is refused.
      await other.forceUnlock("default", lockId);
      await assert.rejects(
        holder.setState("default", { ...next, serial: 2 }, { lockId }),
        /is no longer held/,
      );
      assert.equal((await other.getState("default"))?.serial, 1);
    },
  );

  s3Test(
    `S3Backend.unlock (${mode.name}) releases a detached lock from another client, and close() releases held locks`,
    mode.needs,
    async () => {
      await using fx = await s3Fixture();
      const first = fx.backend(mode.config(fx));
      const detached = await first.lock("ci-step", { detached: true });
      await first.close();
      assert.equal((await fx.backend(mode.config(fx)).getLockInfo("ci-step"))?.ID, detached.lockId);
      await fx.backend(mode.config(fx)).unlock("ci-step", detached.lockId);
      const second = fx.backend(mode.config(fx));
      await second.lock("default");
      await second.close();
      assert.equal(await fx.backend(mode.config(fx)).getLockInfo("default"), null);
    },
  );
}

for (const mode of [DYNAMODB, LOCKFILE]) {
  s3Test(
    `S3Backend.lock (${mode.name}) with timeoutMs calls onWait once with the holder, then waits until it releases the lock`,
    mode.needs,
    async () => {
      await using fx = await s3Fixture();
      const holder = fx.backend(mode.config(fx));
      const waiter = fx.backend(mode.config(fx));
      const { lockId } = await holder.lock("default", { who: "alice@ci" });
      const seen: string[] = [];
      let released: Promise<void> | undefined;
      const got = await waiter.lock("default", {
        timeoutMs: 60_000,
        onWait: (info) => {
          seen.push(`${info.Who} ${info.ID}`);
          released = holder.unlock("default", lockId);
        },
      });
      await released;
      assert.deepEqual(seen, [`alice@ci ${lockId}`]);
      assert.notEqual(got.lockId, lockId);
      await waiter.unlock("default", got.lockId);
    },
  );
}

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
