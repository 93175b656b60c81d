/**
 * `migrateStates` of 200 small workspaces from a local state root to S3, per lock mode: wall
 * time, requests per workspace (by operation, counted by an SDK middleware on the target's
 * clients), and the same for a re-run that finds everything copied. The floor is a bare loop
 * of unlocked `setState` calls putting the same 200 states into a fresh bucket in the same run.
 *
 *   deno run --allow-all bench/migrate_bench.ts [--workspaces N]
 *
 * Uses the servers in `GAIB_TEST_S3` / `GAIB_TEST_DYNAMODB`, or starts its own.
 *
 * @module
 */

import { LocalBackend } from "../src/backends/local.ts";
import type { S3BackendConfig } from "../src/config.ts";
import { migrateStates } from "../src/migrate.ts";
import { createEmptyState } from "../src/state.ts";
import type { GaibState } from "../src/types.ts";
import { TEST_CREDENTIALS } from "../tests/_servers.ts";
import { tempBucket, tempLockTable } from "../tests/_server_env.ts";
import { observedS3Backend, RequestLog } from "../tests/_aws_requests.ts";
import { benchServers } from "./_servers.ts";

/** A small state: two resources, one output (about 1 KB). */
function smallState(i: number): GaibState {
  return {
    ...createEmptyState(),
    serial: i + 1,
    outputs: { guild: { value: String(1e17 + i), type: "string" } },
    resources: [0, 1].map((r) => ({
      mode: "managed" as const,
      type: "discord_channel",
      name: `channel_${r}`,
      provider: 'provider["registry.terraform.io/gaib/discord"]',
      instances: [{ schema_version: 0, attributes: { id: String(1e17 + r), name: `c${r}` } }],
    })),
  };
}

function perWorkspace(log: RequestLog, count: number): { total: number; detail: string } {
  const byOperation = new Map<string, number>();
  for (const request of log.take()) byOperation.set(request, (byOperation.get(request) ?? 0) + 1);
  const total = [...byOperation.values()].reduce((a, b) => a + b, 0);
  const detail = [...byOperation.entries()].sort()
    .map(([operation, n]) => `${operation} ${(n / count).toFixed(2)}`).join(", ");
  return { total: total / count, detail };
}

async function main(): Promise<void> {
  const countArg = Deno.args.indexOf("--workspaces");
  const count = countArg >= 0 ? Number(Deno.args[countArg + 1]) : 200;
  Deno.env.set("AWS_ACCESS_KEY_ID", TEST_CREDENTIALS.accessKeyId);
  Deno.env.set("AWS_SECRET_ACCESS_KEY", TEST_CREDENTIALS.secretAccessKey);
  await using servers = await benchServers();
  const { s3, dynamo } = servers;
  if (!s3 || !dynamo) throw new Error("the migration benchmark needs S3 and DynamoDB servers");
  const root = await Deno.makeTempDir({ prefix: "gaib-migrate-bench-" });
  try {
    const names = Array.from({ length: count }, (_, i) => `ws-${String(i).padStart(3, "0")}`);
    const states = names.map((_, i) => smallState(i));
    const source = new LocalBackend({ path: root });
    for (const [i, ws] of names.entries()) await source.setState(ws, states[i]);
    console.log(
      `${count} workspaces local -> S3 (${s3.kind} at ${s3.endpoint}; DynamoDB: ${dynamo.kind}); ` +
        `states of ${JSON.stringify(states[0]).length} bytes; unversioned buckets\n`,
    );
    const rows = [
      "| lock mode | run | wall time | per workspace | ratio to floor | requests per workspace |",
      "|---|---|---:|---:|---:|---|",
    ];
    for (const mode of ["dynamodb_table", "use_lockfile"] as const) {
      await using bucket = await tempBucket(s3, { prefix: "gaib-bench" });
      await using floorBucket = await tempBucket(s3, { prefix: "gaib-bench-floor" });
      await using table = await tempLockTable(dynamo);
      const config = (name: string): S3BackendConfig => ({
        type: "s3",
        bucket: name,
        key: "discord/terraform.tfstate",
        region: TEST_CREDENTIALS.region,
        endpoints: { s3: s3.endpoint, dynamodb: dynamo.endpoint },
        force_path_style: true,
        ...(mode === "dynamodb_table" ? { dynamodb_table: table.name } : { use_lockfile: true }),
      });
      const log = new RequestLog();
      // The floor: the same states put with no lock, no read, no check of the target.
      const floorTarget = observedS3Backend(config(floorBucket.name), {}, log.record);
      let began = performance.now();
      for (const [i, ws] of names.entries()) await floorTarget.setState(ws, states[i]);
      const floorMs = performance.now() - began;
      const floor = perWorkspace(log, count);
      await floorTarget.close();
      const target = observedS3Backend(config(bucket.name), {}, log.record);
      const timed = async (run: string, expected: string) => {
        began = performance.now();
        const results = await migrateStates(source, target, { workspaces: names });
        const ms = performance.now() - began;
        const wrong = results.filter((e) => e.action !== expected);
        if (wrong.length > 0) throw new Error(`${run}: ${JSON.stringify(wrong[0])}`);
        const requests = perWorkspace(log, count);
        rows.push(
          `| ${mode} | ${run} | ${(ms / 1000).toFixed(2)} s | ${(ms / count).toFixed(1)} ms | ` +
            `${(ms / floorMs).toFixed(2)} | ${requests.total.toFixed(2)}: ${requests.detail} |`,
        );
      };
      await timed("migrate (all copied)", "copied");
      await timed("re-run (all unchanged)", "unchanged");
      rows.push(
        `| ${mode} | floor: unlocked setState loop | ${(floorMs / 1000).toFixed(2)} s | ` +
          `${(floorMs / count).toFixed(1)} ms | 1.00 | ${
            floor.total.toFixed(2)
          }: ${floor.detail} |`,
      );
      await target.close();
    }
    await source.close();
    console.log(rows.join("\n"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

if (import.meta.main) await main();
