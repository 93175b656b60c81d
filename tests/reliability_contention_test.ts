/**
 * Contention on the local backend with real processes: K x M locked read-increment-write
 * cycles lose no update and leave nobody hanging; unlocked writers racing each other either
 * land or are refused with `StateSerialError`, never silently lost.
 *
 * Sizes: `GAIB_RELIABILITY=full` runs K=8 x M=25; the quick run K=4 x M=10.
 *
 * @module
 */

import assert from "node:assert/strict";
import { lockedContention, unlockedRace } from "./reliability/_contention.ts";
import { sizes, tempDir } from "./reliability/_util.ts";

const SIZES = sizes();
const { processes: K, cycles: M } = SIZES.contention;
const { processes: RK, attempts: RM } = SIZES.race;
const OPTIONS = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: `LocalBackend loses no update when ${K} processes run ${M} locked ` +
    "read-increment-write cycles each on one workspace",
  ...OPTIONS,
  async fn() {
    await using dir = await tempDir();
    const result = await lockedContention({ type: "local", path: dir.path }, "default", K, M);
    console.log(
      `contention local: ${K} x ${M} locked cycles, final serial ${result.finalSerial} ` +
        `(${K * M} increments), ${(K * M / (result.elapsedMs / 1000)).toFixed(1)} cycles/s`,
    );
  },
});

Deno.test({
  name: `LocalBackend lands or refuses with StateSerialError every write of ${RK} unlocked ` +
    `processes racing ${RM} times each, and never loses one silently`,
  ...OPTIONS,
  async fn() {
    await using dir = await tempDir();
    const result = await unlockedRace({ type: "local", path: dir.path }, "racing", RK, RM);
    console.log(
      `race local: ${RK} x ${RM} unlocked attempts: ${result.landed} landed, ` +
        `${result.refused} refused with StateSerialError, ${result.lost} lost`,
    );
    assert.equal(result.lost, 0, "a write that landed was overwritten");
  },
});
