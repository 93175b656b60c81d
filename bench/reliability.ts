/**
 * Figures of the reliability suites that no other bench prints, in one run:
 *
 * - contention throughput: K processes x M locked read-increment-write cycles on one
 *   workspace (real processes, as in tests/reliability_contention_test.ts), cycles per second,
 *   for the local backend, S3 with DynamoDB locks and S3 with lockfiles;
 * - unlocked races: K x M unlocked writers, how many landed and how many were refused;
 * - lock + unlock cycles per second of one process on S3 (DynamoDB and lockfile);
 * - crash harness pace: SIGKILLed writers per minute for 4 KB and 1 MB states.
 *
 *   deno run --allow-all bench/reliability.ts [--quick]
 *
 * Uses the servers in `GAIB_TEST_S3` / `GAIB_TEST_DYNAMODB` (as printed by
 * `deno run -A tests/run.ts --serve`), or starts its own; the S3 lines are skipped when none
 * can run here. `--quick` uses K=4 x M=10 instead of K=8 x M=25.
 *
 * @module
 */

import { createEmptyState } from "../mod.ts";
import type { S3BackendConfig } from "../src/config.ts";
import { S3Backend } from "../src/backends/s3.ts";
import { TEST_CREDENTIALS } from "../tests/_servers.ts";
import { benchServers } from "./_servers.ts";
import { tempBucket, tempLockTable } from "../tests/_server_env.ts";
import { lockedContention, unlockedRace } from "../tests/reliability/_contention.ts";
import { Script, tempDir } from "../tests/reliability/_util.ts";

const QUICK = Deno.args.includes("--quick");
const K = QUICK ? 4 : 8;
const M = QUICK ? 10 : 25;
const LOCK_CYCLES = QUICK ? 20 : 50;
const KILLS = QUICK ? 5 : 20;

Deno.env.set("AWS_ACCESS_KEY_ID", TEST_CREDENTIALS.accessKeyId);
Deno.env.set("AWS_SECRET_ACCESS_KEY", TEST_CREDENTIALS.secretAccessKey);
Deno.env.set("AWS_REGION", TEST_CREDENTIALS.region);

const rows: string[] = [];
function row(label: string, value: string): void {
  const line = `  ${label.padEnd(58)} ${value}`;
  rows.push(line);
  console.error(line);
}

async function contention(name: string, config: S3BackendConfig | { type: "local"; path: string }) {
  const locked = await lockedContention(config, "bench", K, M);
  row(
    `contention ${name}: ${K} x ${M} locked cycles`,
    `${
      (K * M / (locked.elapsedMs / 1000)).toFixed(1)
    } cycles/s (final serial ${locked.finalSerial})`,
  );
  const race = await unlockedRace(config, "bench-race", K, M);
  row(
    `unlocked race ${name}: ${K} x ${M} attempts`,
    `${race.landed} landed, ${race.refused} refused, ${race.lost} lost ` +
      `(${(K * M / (race.elapsedMs / 1000)).toFixed(1)} attempts/s)`,
  );
}

async function s3LockRate(name: string, config: S3BackendConfig): Promise<void> {
  const backend = new S3Backend(config);
  try {
    await backend.setState("rate", { ...createEmptyState(), serial: 1 });
    const started = performance.now();
    for (let i = 0; i < LOCK_CYCLES; i++) {
      const { lockId } = await backend.lock("rate");
      await backend.unlock("rate", lockId);
    }
    const seconds = (performance.now() - started) / 1000;
    row(`lock + unlock cycles per second, ${name}`, `${(LOCK_CYCLES / seconds).toFixed(1)}/s`);
  } finally {
    await backend.close();
  }
}

/** SIGKILLs writers at random instants, as the crash suite does, to show its pace. */
async function killRate(profile: "small" | "medium"): Promise<void> {
  await using dir = await tempDir();
  const writer = new URL("../tests/reliability/_crash_writer.ts", import.meta.url).pathname;
  const args = [JSON.stringify({ root: dir.path, workspace: "default", profile })];
  const started = performance.now();
  for (let k = 0; k < KILLS; k++) {
    const script = new Script(writer, args);
    await script.until((line) => line === "ready");
    await script.until((line) => line.startsWith("write "));
    await script.kill();
  }
  const minutes = (performance.now() - started) / 60_000;
  row(`crash harness pace, ${profile} states`, `${(KILLS / minutes).toFixed(0)} kills/min`);
}

if (import.meta.main) {
  console.error(`reliability bench (${QUICK ? "quick" : "full"} sizes)`);
  await using local = await tempDir();
  await contention("local", { type: "local", path: local.path });
  {
    await using servers = await benchServers();
    const { s3, dynamo } = servers;
    if (s3) {
      await using bucket = await tempBucket(s3, { prefix: "gaib-bench" });
      const base: S3BackendConfig = {
        type: "s3",
        bucket: bucket.name,
        key: "terraform.tfstate",
        region: TEST_CREDENTIALS.region,
        endpoints: { s3: s3.endpoint, dynamodb: dynamo?.endpoint },
        force_path_style: true,
      };
      if (dynamo) {
        await using table = await tempLockTable(dynamo);
        const config = { ...base, dynamodb_table: table.name };
        await s3LockRate(`S3 + DynamoDB (${s3.kind}, ${dynamo.kind})`, config);
        await contention(`S3 + DynamoDB`, config);
      }
      if (s3.conditionalWrites) {
        const config = { ...base, key: "lockfile/terraform.tfstate", use_lockfile: true };
        await s3LockRate(`S3 lockfile (${s3.kind})`, config);
        await contention("S3 lockfile", config);
      }
    }
  }
  await killRate("small");
  await killRate("medium");
  console.log(`Reliability (${QUICK ? "quick" : "full"} sizes, ${new Date().toISOString()}):`);
  console.log(rows.join("\n"));
}
