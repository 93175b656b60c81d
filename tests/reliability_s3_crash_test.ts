/**
 * Crash consistency of the S3 backend: a process holding a DynamoDB lock or an S3 lockfile
 * is killed with SIGKILL at random instants while it reads and writes. After every kill the
 * state object must be exactly one of the versions written, and a lock left behind must be
 * recoverable as the lease rules say: refused (naming the force-unlock command) while the
 * lease may still be renewed, taken over by the next client once a whole lease has passed
 * after its end, never earlier.
 *
 * Sizes: `GAIB_RELIABILITY=full` kills 25 holders per lock mode; the quick run 4.
 *
 * @module
 */

import assert from "node:assert/strict";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { type S3BackendConfig, StateLockError } from "../mod.ts";
import { S3Backend } from "../src/backends/s3.ts";
import { type S3Fixture, s3Fixture, s3Test } from "./_s3_fixture.ts";
import { template, versionText } from "./reliability/_states.ts";
import { Script, sizes } from "./reliability/_util.ts";

const WRITER = new URL("./reliability/_s3_writer.ts", import.meta.url).pathname;
const SIZES = sizes();
const LEASE_MS = 1500;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function rawObject(fixture: S3Fixture, key: string): Promise<string | null> {
  try {
    const object = await fixture.s3Client.send(
      new GetObjectCommand({ Bucket: fixture.bucket, Key: key }),
    );
    return await object.Body!.transformToString();
  } catch (error) {
    if ((error as Error).name === "NoSuchKey") return null;
    throw error;
  }
}

/** The stored lease's end (ms since the epoch), read behind the backend's back. */
async function leaseEnd(
  fixture: S3Fixture,
  mode: "dynamodb" | "lockfile",
  key: string,
): Promise<number | null> {
  let lease: unknown;
  if (mode === "dynamodb") {
    const item = await fixture.dynamoClient!.send(
      new GetItemCommand({
        TableName: fixture.table,
        Key: { LockID: { S: `${fixture.bucket}/${key}` } },
        ConsistentRead: true,
      }),
    );
    lease = item.Item?.GaibLease?.S ? JSON.parse(item.Item.GaibLease.S) : undefined;
  } else {
    const text = await rawObject(fixture, `${key}.tflock`);
    lease = text ? JSON.parse(text).GaibLease : undefined;
  }
  const expires = (lease as { expires?: string } | undefined)?.expires;
  return expires ? Date.parse(expires) : null;
}

interface S3CrashStats {
  kills: number;
  locksLeft: number;
  refusedWhileLeased: number;
  takenOverAfterLease: number;
}

async function s3CrashRun(mode: "dynamodb" | "lockfile", kills: number): Promise<S3CrashStats> {
  await using fixture = await s3Fixture();
  const config: S3BackendConfig = fixture.config(
    mode === "dynamodb" ? { dynamodb_table: fixture.table } : { use_lockfile: true },
  );
  const workspace = "default";
  const key = config.key;
  const base = await template("small");
  const args = (iterations?: number) => [
    JSON.stringify({ config, workspace, leaseMs: LEASE_MS, iterations }),
  ];
  const observer = new S3Backend(config, { leaseMs: LEASE_MS, consistencyTimeoutMs: 3000 });
  const stats: S3CrashStats = {
    kills: 0,
    locksLeft: 0,
    refusedWhileLeased: 0,
    takenOverAfterLease: 0,
  };
  try {
    const calibration = new Script(WRITER, args(2));
    await calibration.until((line) => line === "ready");
    const started = performance.now();
    const calibrated = await calibration.finished;
    assert.equal(calibrated.status.code, 0, calibrated.stderr);
    const cycleMs = (performance.now() - started) / 2;
    let survived = 2;

    for (let k = 0; k < kills; k++) {
      const writer = new Script(WRITER, args());
      await writer.until((line) => line === "ready");
      if (k % 2 === 0) await sleep(Math.random() * cycleMs * 2.5);
      else {
        await writer.until((line) => line.startsWith("write "));
        await sleep(Math.random() * cycleMs * 0.5);
      }
      const { status, stderr } = await writer.kill();
      const killedAt = Date.now();
      assert.equal(status.signal, "SIGKILL", `kill ${k}: the writer stopped by itself:\n${stderr}`);
      stats.kills++;
      let lastWrite = survived;
      let lastDone = survived;
      for (const line of writer.lines) {
        const [word, value] = line.split(" ");
        if (word === "write") {
          if (lastWrite === survived) {
            assert.equal(Number(value), survived + 1, `kill ${k}: the writer read a stale state`);
          }
          lastWrite = Number(value);
        }
        if (word === "done") lastDone = Number(value);
      }

      // A lock left behind: refused while its lease may still be renewed, naming the command
      // that clears it; taken over once a whole lease has passed after its end.
      const left = await observer.getLockInfo(workspace);
      if (left) {
        stats.locksLeft++;
        const end = await leaseEnd(fixture, mode, key);
        assert.ok(end !== null, `kill ${k}: the lock left behind has no lease`);
        let early: unknown;
        try {
          const { lockId } = await observer.lock(workspace, { timeoutMs: 0 });
          await observer.unlock(workspace, lockId);
        } catch (error) {
          early = error;
        }
        if (Date.now() < end + LEASE_MS) {
          assert.ok(
            early instanceof StateLockError,
            `kill ${k}: lock taken before the lease ended`,
          );
          assert.ok(
            early.message.includes(`force-unlock ${left.ID}`),
            `kill ${k}: the message does not name the command: ${early.message}`,
          );
          stats.refusedWhileLeased++;
        }
        if (early) {
          const { lockId } = await observer.lock(workspace, { timeoutMs: 20 * LEASE_MS });
          assert.ok(
            Date.now() >= end + LEASE_MS,
            `kill ${k}: taken over before the lease rules allow`,
          );
          await observer.unlock(workspace, lockId);
          stats.takenOverAfterLease++;
        }
      }
      assert.equal(await observer.getLockInfo(workspace), null);

      // The state object is one complete version: the last finished or the one being written.
      const text = await rawObject(fixture, key);
      assert.ok(text !== null, `kill ${k}: the state object is gone`);
      const serial = Number(/"serial": (\d+)/.exec(text)?.[1]);
      assert.ok(
        serial >= lastDone && serial <= lastWrite,
        `kill ${k}: serial ${serial}, expected ${lastDone}..${lastWrite} (killed ${
          Date.now() - killedAt
        } ms ago)`,
      );
      assert.ok(
        text === versionText(base, serial),
        `kill ${k}: the object is not version ${serial}`,
      );
      const read = await observer.getState(workspace);
      assert.equal(read?.serial, serial, `kill ${k}: the backend reads another version`);
      survived = serial;
    }

    const last = new Script(WRITER, args(2));
    const finished = await last.finished;
    assert.equal(finished.status.code, 0, finished.stderr);
    assert.equal((await observer.getState(workspace))?.serial, survived + 2);
  } finally {
    await observer.close();
  }
  return stats;
}

function report(mode: string, stats: S3CrashStats): void {
  console.log(
    `crash s3+${mode}: ${stats.kills} kills survived; ${stats.locksLeft} locks left behind, ` +
      `${stats.refusedWhileLeased} refused while leased (message names force-unlock), ` +
      `${stats.takenOverAfterLease} taken over after the lease`,
  );
}

s3Test(
  `S3Backend survives ${SIZES.s3Kills} SIGKILLs of a DynamoDB lock holder: the state object ` +
    "is a complete version and the lock is recovered as the lease rules say",
  ["dynamodb"],
  async () => report("dynamodb", await s3CrashRun("dynamodb", SIZES.s3Kills)),
);

s3Test(
  `S3Backend survives ${SIZES.s3Kills} SIGKILLs of an S3 lockfile holder: the state object ` +
    "is a complete version and the lock is recovered as the lease rules say",
  ["conditionalWrites"],
  async () => report("lockfile", await s3CrashRun("lockfile", SIZES.s3Kills)),
);
