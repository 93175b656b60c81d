/**
 * `listVersions` with 100 stored versions (20 KB states): requests made and time, on the local
 * backend (`history: 100`) and on S3 (a versioned bucket), each against a floor in the same
 * run: one `getState` of the same workspace.
 *
 *   deno run --allow-all bench/history_bench.ts [--rounds N]
 *
 * Uses the servers in `GAIB_TEST_S3` / `GAIB_TEST_DYNAMODB`, or starts its own (see
 * `bench/_servers.ts`). S3 requests are counted by an SDK middleware on the backend's clients.
 *
 * @module
 */

import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { LocalBackend } from "../src/backends/local.ts";
import { createEmptyState, serializeState } from "../src/state.ts";
import type { GaibState, StateBackend } from "../src/types.ts";
import { TEST_CREDENTIALS } from "../tests/_servers.ts";
import { s3ClientConfig, tempBucket } from "../tests/_server_env.ts";
import { observedS3Backend } from "../tests/_aws_requests.ts";
import { benchServers } from "./_servers.ts";

const VERSIONS = 100;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** A state of about 20 KB. */
function sampleState(serial: number): GaibState {
  return {
    ...createEmptyState(),
    serial,
    lineage: "bench-lineage",
    resources: Array.from({ length: 20 }, (_, i) => ({
      mode: "managed" as const,
      type: "discord_role",
      name: `role_${i}`,
      provider: 'provider["registry.terraform.io/gaib/discord"]',
      instances: [{ schema_version: 0, attributes: { id: String(i), blob: "x".repeat(900) } }],
    })),
  };
}

async function time(rounds: number, fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const began = performance.now();
    await fn();
    times.push(performance.now() - began);
  }
  return median(times);
}

async function measure(
  label: string,
  backend: StateBackend,
  rounds: number,
  requests: (limit: number) => string[],
): Promise<string> {
  requests(0);
  const listed = await backend.listVersions("default");
  if (listed.length !== VERSIONS) throw new Error(`${label}: listed ${listed.length}`);
  const listRequests = requests(VERSIONS);
  await backend.listVersions("default", { limit: 10 });
  const limitRequests = requests(10);
  const list = await time(rounds, () => backend.listVersions("default"));
  const floor = await time(rounds, () => backend.getState("default"));
  requests(0);
  const count = (r: string[]) => {
    const by = new Map<string, number>();
    for (const name of r) by.set(name, (by.get(name) ?? 0) + 1);
    return [...by].map(([name, n]) => `${n} ${name}`).join(", ") || "n/a";
  };
  return `| ${label} | ${count(listRequests)} | ${count(limitRequests)} | ${
    list.toFixed(1)
  } ms | ` +
    `${floor.toFixed(1)} ms | ${(list / floor).toFixed(1)}x |`;
}

async function main(): Promise<void> {
  const roundsArg = Deno.args.indexOf("--rounds");
  const rounds = roundsArg >= 0 ? Number(Deno.args[roundsArg + 1]) : 15;
  Deno.env.set("AWS_ACCESS_KEY_ID", TEST_CREDENTIALS.accessKeyId);
  Deno.env.set("AWS_SECRET_ACCESS_KEY", TEST_CREDENTIALS.secretAccessKey);
  const rows: string[] = [];

  const root = await Deno.makeTempDir({ prefix: "gaib-history-bench-" });
  try {
    const local = new LocalBackend({ path: root, history: VERSIONS - 1 });
    for (let serial = 1; serial <= VERSIONS; serial++) {
      await local.setState("default", sampleState(serial));
    }
    // No request counter for files: one directory listing and one lstat per entry (and the
    // state), then per version listed an lstat (no link), an open and a read of at most
    // 64 KB (from the code).
    rows.push(
      await measure("local (history: 99)", local, rounds, (limit) => [
        `readDir + ${VERSIONS + 1} lstat + ${limit} x (lstat, open, read)`,
      ]),
    );
    await local.close();
  } finally {
    await Deno.remove(root, { recursive: true });
  }

  await using servers = await benchServers();
  if (servers.s3 && servers.dynamo) {
    await using bucket = await tempBucket(servers.s3, { prefix: "gaib-bench", versioned: true });
    const raw = new S3Client(s3ClientConfig(servers.s3));
    for (let serial = 1; serial <= VERSIONS; serial++) {
      await raw.send(
        new PutObjectCommand({
          Bucket: bucket.name,
          Key: "terraform.tfstate",
          Body: serializeState(sampleState(serial)),
        }),
      );
    }
    raw.destroy();
    const seen: string[] = [];
    const backend = observedS3Backend(
      {
        type: "s3",
        bucket: bucket.name,
        key: "terraform.tfstate",
        region: TEST_CREDENTIALS.region,
        endpoints: { s3: servers.s3.endpoint },
        force_path_style: true,
        max_retries: 1,
      },
      {},
      (r) => seen.push(`${r.operation}`),
    );
    rows.push(
      await measure(
        `S3 (${servers.s3.kind}, versioned bucket)`,
        backend,
        rounds,
        () => seen.splice(0),
      ),
    );
    await backend.close();
  } else {
    rows.push("| S3 | no S3 server could run here | | | | |");
  }

  console.log(
    `listVersions with ${VERSIONS} versions of a 20 KB state, median of ${rounds} rounds; ` +
      "floor: one getState of the same workspace\n",
  );
  console.log(
    "| backend | requests, all 100 | requests, limit 10 | listVersions | getState (floor) | ratio |",
  );
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const row of rows) console.log(row);
}

if (import.meta.main) await main();
