/**
 * Contention on the S3 backend with real processes against the test servers (Ceph RGW and
 * DynamoDB Local, started by `deno task test`): K x M locked read-increment-write cycles with
 * DynamoDB locks and with S3 lockfiles lose no update and leave nobody hanging; unlocked
 * writers racing each other either land or are refused with `StateSerialError` (conditional
 * writes), never silently lost.
 *
 * Sizes: `GAIB_RELIABILITY=full` runs K=8 x M=25; the quick run K=4 x M=10.
 *
 * @module
 */

import assert from "node:assert/strict";
import { s3Fixture, s3Test } from "./_s3_fixture.ts";
import { lockedContention, unlockedRace } from "./reliability/_contention.ts";
import { sizes } from "./reliability/_util.ts";

const SIZES = sizes();
const { processes: K, cycles: M } = SIZES.contention;
const { processes: RK, attempts: RM } = SIZES.race;

s3Test(
  `S3Backend with DynamoDB locks loses no update when ${K} processes run ${M} locked ` +
    "read-increment-write cycles each on one workspace",
  ["dynamodb"],
  async () => {
    await using fixture = await s3Fixture();
    const config = fixture.config({ dynamodb_table: fixture.table });
    const result = await lockedContention(config, "default", K, M);
    console.log(
      `contention s3+dynamodb: ${K} x ${M} locked cycles, final serial ${result.finalSerial} ` +
        `(${K * M} increments), ${(K * M / (result.elapsedMs / 1000)).toFixed(1)} cycles/s`,
    );
  },
);

s3Test(
  `S3Backend with S3 lockfiles loses no update when ${K} processes run ${M} locked ` +
    "read-increment-write cycles each on one workspace",
  ["conditionalWrites"],
  async () => {
    await using fixture = await s3Fixture();
    const config = fixture.config({ use_lockfile: true });
    const result = await lockedContention(config, "staging", K, M);
    console.log(
      `contention s3+lockfile: ${K} x ${M} locked cycles, final serial ${result.finalSerial} ` +
        `(${K * M} increments), ${(K * M / (result.elapsedMs / 1000)).toFixed(1)} cycles/s`,
    );
  },
);

s3Test(
  `S3Backend lands or refuses with StateSerialError every write of ${RK} unlocked processes ` +
    `racing ${RM} times each, and never loses one silently`,
  ["conditionalWrites", "dynamodb"],
  async () => {
    await using fixture = await s3Fixture();
    const config = fixture.config({ dynamodb_table: fixture.table });
    const result = await unlockedRace(config, "racing", RK, RM);
    console.log(
      `race s3: ${RK} x ${RM} unlocked attempts: ${result.landed} landed, ` +
        `${result.refused} refused with StateSerialError, ${result.lost} lost`,
    );
    assert.equal(result.lost, 0, "a write that landed was overwritten");
  },
);
