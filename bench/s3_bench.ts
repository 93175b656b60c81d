/**
 * Latency and request counts of the S3 backend against the local test servers, per lock mode:
 * `lock`, `getState`, `setState`, `unlock` and the whole locked cycle, median and p90 of N
 * rounds, and the requests each operation sends (counted by an SDK middleware on the
 * backend's clients, passed in as `clients`).
 *
 *   deno run --allow-all bench/s3_bench.ts [--rounds N]
 *
 * Uses the servers in `GAIB_TEST_S3` / `GAIB_TEST_DYNAMODB` (as printed by
 * `deno run -A tests/run.ts --serve`), or starts its own (Ceph RGW and DynamoDB Local when
 * they can run here).
 *
 * @module
 */

import type { S3BackendConfig } from "../src/config.ts";
import { createEmptyState } from "../src/state.ts";
import type { GaibState } from "../src/types.ts";
import { TEST_CREDENTIALS } from "../tests/_servers.ts";
import { benchServers } from "./_servers.ts";
import { tempBucket, tempLockTable } from "../tests/_server_env.ts";
import { observedS3Backend } from "../tests/_aws_requests.ts";

type Op = "lock" | "getState" | "setState" | "unlock" | "cycle";
const OPS: Op[] = ["lock", "getState", "setState", "unlock", "cycle"];

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** A state of `resources` resources, about 1 KB each. */
function sampleState(resources: number): GaibState {
  return {
    ...createEmptyState(),
    resources: Array.from({ length: resources }, (_, i) => ({
      mode: "managed" as const,
      type: "discord_role",
      name: `role_${i}`,
      provider: 'provider["registry.terraform.io/gaib/discord"]',
      instances: [{
        schema_version: 0,
        attributes: {
          id: String(1e17 + i),
          name: `role ${i}`,
          color: i,
          permissions: "x".repeat(800),
        },
      }],
    })),
  };
}

async function main(): Promise<void> {
  const roundsArg = Deno.args.indexOf("--rounds");
  const rounds = roundsArg >= 0 ? Number(Deno.args[roundsArg + 1]) : 30;
  Deno.env.set("AWS_ACCESS_KEY_ID", TEST_CREDENTIALS.accessKeyId);
  Deno.env.set("AWS_SECRET_ACCESS_KEY", TEST_CREDENTIALS.secretAccessKey);
  await using servers = await benchServers();
  const { s3, dynamo } = servers;
  if (!s3 || !dynamo) throw new Error("the S3 benchmark needs both an S3 and a DynamoDB server");
  {
    // bucket and table go before the servers they live on
    await using bucket = await tempBucket(s3, { prefix: "gaib-bench" });
    await using table = await tempLockTable(dynamo);
    console.log(
      `S3: ${s3.kind} at ${s3.endpoint}; DynamoDB: ${dynamo.kind} at ${dynamo.endpoint}; ` +
        `${rounds} rounds; state of 20 resources (${
          (JSON.stringify(sampleState(20)).length / 1024).toFixed(0)
        } KB); times in ms (median / p90)\n`,
    );
    const modes: [string, Partial<S3BackendConfig>][] = [
      ["dynamodb_table", { dynamodb_table: table.name }],
      ["use_lockfile", { use_lockfile: true }],
      ["both", { dynamodb_table: table.name, use_lockfile: true }],
    ];
    const rows: string[] = [
      "| lock mode | " + OPS.join(" | ") + " |",
      "|---|" + OPS.map(() => "---:").join("|") + "|",
    ];
    const countRows: string[] = [
      "| lock mode | " + OPS.join(" | ") + " |",
      "|---|" + OPS.map(() => "---:").join("|") + "|",
    ];
    for (const [name, extra] of modes) {
      let requests = 0;
      const backend = observedS3Backend(
        {
          type: "s3",
          bucket: bucket.name,
          key: `${name}/terraform.tfstate`,
          region: TEST_CREDENTIALS.region,
          endpoints: { s3: s3.endpoint, dynamodb: dynamo.endpoint },
          force_path_style: true,
          ...extra,
        },
        {},
        () => requests++,
      );
      try {
        await backend.setState("default", sampleState(20));
        const times: Record<Op, number[]> = {
          lock: [],
          getState: [],
          setState: [],
          unlock: [],
          cycle: [],
        };
        const counts: Record<Op, number> = {
          lock: 0,
          getState: 0,
          setState: 0,
          unlock: 0,
          cycle: 0,
        };
        const timed = async <T>(op: Op, fn: () => Promise<T>): Promise<T> => {
          const before = requests;
          const started = performance.now();
          const result = await fn();
          times[op].push(performance.now() - started);
          counts[op] = requests - before;
          return result;
        };
        for (let i = 0; i < rounds + 3; i++) {
          const cycleStart = performance.now();
          const before = requests;
          const { lockId } = await timed("lock", () => backend.lock("default"));
          const state = (await timed("getState", () => backend.getState("default")))!;
          await timed(
            "setState",
            () => backend.setState("default", { ...state, serial: state.serial + 1 }, { lockId }),
          );
          await timed("unlock", () => backend.unlock("default", lockId));
          times.cycle.push(performance.now() - cycleStart);
          counts.cycle = requests - before;
          if (i < 3) { for (const op of OPS) times[op].length = 0; // warm-up rounds
           }
        }
        rows.push(
          `| ${name} | ` +
            OPS.map((op) =>
              `${quantile(times[op], 0.5).toFixed(1)} / ${quantile(times[op], 0.9).toFixed(1)}`
            ).join(" | ") + " |",
        );
        countRows.push(`| ${name} | ` + OPS.map((op) => String(counts[op])).join(" | ") + " |");
      } finally {
        await backend.close();
      }
    }
    console.log("Latency (ms, median / p90):\n");
    console.log(rows.join("\n"));
    console.log("\nRequests per operation:\n");
    console.log(countRows.join("\n"));
  }
}

if (import.meta.main) await main();
