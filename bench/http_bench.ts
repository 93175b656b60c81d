/**
 * `gaib-state serve` against the same backend used directly: a locked read-modify-write
 * (lock, getState, setState, unlock) through serve's handler with the HttpBackend client vs
 * directly on the backend, median and p90 of N rounds, the ratio of the medians, and the HTTP
 * requests of one cycle; then the throughput of 8 concurrent client processes each running
 * locked read-increment-write cycles (the reliability contention harness), through serve and
 * directly. Over a local store and, when the test servers are there, S3 + DynamoDB.
 *
 *   deno run --allow-all bench/http_bench.ts [--rounds N] [--cycles M]
 *
 * @module
 */

import { createEmptyState } from "../src/state.ts";
import type { BackendConfig, S3BackendConfig } from "../src/config.ts";
import type { GaibState, StateBackend } from "../src/types.ts";
import { LocalBackend } from "../src/backends/local.ts";
import { S3Backend } from "../src/backends/s3.ts";
import type { HttpBackend } from "../src/backends/http.ts";
import { serveBackend } from "../tests/_http_serve.ts";
import { lockedContention } from "../tests/reliability/_contention.ts";
import { TEST_CREDENTIALS } from "../tests/_servers.ts";
import { tempBucket, tempLockTable } from "../tests/_server_env.ts";
import { benchServers } from "./_servers.ts";

function arg(name: string, fallback: number): number {
  const at = Deno.args.indexOf(name);
  return at >= 0 ? Number(Deno.args[at + 1]) : fallback;
}

const ROUNDS = arg("--rounds", 50);
const CYCLES = arg("--cycles", 10);
const CLIENTS = 8;

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** A state of 20 resources, about 20 KB. */
function sampleState(): GaibState {
  return {
    ...createEmptyState(),
    resources: Array.from({ length: 20 }, (_, i) => ({
      mode: "managed" as const,
      type: "discord_role",
      name: `role_${i}`,
      provider: 'provider["registry.terraform.io/gaib/discord"]',
      instances: [{ schema_version: 0, attributes: { id: String(1e17 + i), p: "x".repeat(800) } }],
    })),
  };
}

/** Median and p90 of N locked read-modify-write cycles. */
async function cycles(backend: StateBackend, workspace: string): Promise<number[]> {
  await backend.setState(workspace, sampleState());
  const times: number[] = [];
  for (let i = 0; i < ROUNDS + 3; i++) {
    const started = performance.now();
    const { lockId } = await backend.lock(workspace);
    const state = (await backend.getState(workspace))!;
    await backend.setState(workspace, { ...state, serial: state.serial + 1 }, { lockId });
    await backend.unlock(workspace, lockId);
    if (i >= 3) times.push(performance.now() - started); // 3 warm-up rounds
  }
  return times;
}

function ms(times: number[]): string {
  return `${quantile(times, 0.5).toFixed(1)} / ${quantile(times, 0.9).toFixed(1)}`;
}

interface Store {
  name: string;
  config: BackendConfig;
  open(): StateBackend;
}

async function measure(store: Store, rows: string[], throughput: string[]): Promise<void> {
  const direct = await cycles(store.open(), "bench-direct");
  await using server = serveBackend(store.open());
  const client: HttpBackend = server.client();
  const through = await cycles(client, "bench-http");
  const before = client.requestCount;
  const { lockId } = await client.lock("bench-http");
  const state = (await client.getState("bench-http"))!;
  await client.setState("bench-http", { ...state, serial: state.serial + 1 }, { lockId });
  await client.unlock("bench-http", lockId);
  const requests = client.requestCount - before;
  rows.push(
    `| ${store.name} | ${ms(direct)} | ${ms(through)} | ` +
      `${(quantile(through, 0.5) / quantile(direct, 0.5)).toFixed(2)}x | ${requests} |`,
  );
  const viaServe = await lockedContention(server.config(), "bench-8", CLIENTS, CYCLES);
  const straight = await lockedContention(store.config, "bench-8-direct", CLIENTS, CYCLES);
  const rate = (r: { elapsedMs: number }) => (CLIENTS * CYCLES) / (r.elapsedMs / 1000);
  throughput.push(
    `| ${store.name} | ${rate(straight).toFixed(1)}/s | ${rate(viaServe).toFixed(1)}/s | ` +
      `${(rate(viaServe) / rate(straight)).toFixed(2)}x |`,
  );
}

async function main(): Promise<void> {
  const rows = [
    "| store | direct (ms) | through serve (ms) | ratio | HTTP requests per cycle |",
    "|---|---:|---:|---:|---:|",
  ];
  const throughput = [
    `| store | direct, ${CLIENTS} processes | through serve, ${CLIENTS} processes | ratio |`,
    "|---|---:|---:|---:|",
  ];
  const dir = await Deno.makeTempDir({ prefix: "gaib-http-bench-" });
  try {
    const local = { type: "local" as const, path: dir };
    await measure(
      { name: "local", config: local, open: () => new LocalBackend(local) },
      rows,
      throughput,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  Deno.env.set("AWS_ACCESS_KEY_ID", TEST_CREDENTIALS.accessKeyId);
  Deno.env.set("AWS_SECRET_ACCESS_KEY", TEST_CREDENTIALS.secretAccessKey);
  await using servers = await benchServers();
  if (servers.s3 && servers.dynamo) {
    await using bucket = await tempBucket(servers.s3, { prefix: "gaib-http-bench" });
    await using table = await tempLockTable(servers.dynamo);
    const config: S3BackendConfig = {
      type: "s3",
      bucket: bucket.name,
      key: "${workspace}/terraform.tfstate",
      region: TEST_CREDENTIALS.region,
      endpoints: { s3: servers.s3.endpoint, dynamodb: servers.dynamo.endpoint },
      force_path_style: true,
      dynamodb_table: table.name,
    };
    await measure(
      { name: "S3 + DynamoDB", config, open: () => new S3Backend(config) },
      rows,
      throughput,
    );
  } else {
    console.log("(no S3 and DynamoDB servers: the S3 rows are left out)");
  }
  console.log(
    `Locked read-modify-write of a 20 KB state, ${ROUNDS} rounds, median / p90 ` +
      "(serve's handler in this process, on 127.0.0.1):\n",
  );
  console.log(rows.join("\n"));
  console.log(
    `\n${CLIENTS} client processes x ${CYCLES} locked read-increment-write cycles each, ` +
      "one workspace (cycles per second):\n",
  );
  console.log(throughput.join("\n"));
}

if (import.meta.main) await main();
