/**
 * Every benchmark of the project in one run, with one summary at the end:
 *
 * - bench/state_bench.ts: 45 MB state read+write against the JSON floor, local lock cycles/s,
 *   peak memory;
 * - bench/s3_bench.ts: S3 latency and requests per operation, per lock mode;
 * - bench/migrate_bench.ts: migration of 200 small workspaces local -> S3, against a floor;
 * - bench/pg_bench.ts: PostgreSQL round trips and statements per locked cycle and listing;
 * - bench/cli_startup.ts: CLI start-up against an empty `deno run`;
 * - bench/history_bench.ts: `listVersions` with 100 versions, requests and time, local and S3;
 * - bench/reliability.ts: contention throughput, unlocked races, S3 lock cycles/s, crash pace;
 * - bench/http_bench.ts: a locked cycle through `gaib-state serve` vs directly, 8 clients.
 *
 *   deno run --allow-all bench/all.ts [--quick]
 *
 * The S3 and DynamoDB test servers are started once here (unless `GAIB_TEST_S3` /
 * `GAIB_TEST_DYNAMODB` describe running ones) and shared by the benches. `--quick` runs
 * fewer rounds, for a smoke test; quoted figures come from a run without it.
 *
 * @module
 */

import { benchServers } from "./_servers.ts";

const QUICK = Deno.args.includes("--quick");
const here = (name: string) => new URL(name, import.meta.url).pathname;

const BENCHES: { name: string; script: string; args: string[] }[] = [
  {
    name: "large state and local locks",
    script: "state_bench.ts",
    args: QUICK ? ["--rounds", "2"] : [],
  },
  { name: "S3 backend", script: "s3_bench.ts", args: QUICK ? ["--rounds", "5"] : [] },
  {
    name: "migration",
    script: "migrate_bench.ts",
    args: QUICK ? ["--workspaces", "20"] : [],
  },
  { name: "PostgreSQL backend", script: "pg_bench.ts", args: [] },
  { name: "CLI start-up", script: "cli_startup.ts", args: QUICK ? ["--runs", "5"] : [] },
  { name: "state history", script: "history_bench.ts", args: QUICK ? ["--rounds", "3"] : [] },
  { name: "reliability", script: "reliability.ts", args: QUICK ? ["--quick"] : [] },
  {
    name: "HTTP backend and serve",
    script: "http_bench.ts",
    args: QUICK ? ["--rounds", "5", "--cycles", "3"] : [],
  },
];

if (import.meta.main) {
  const sections: string[] = [];
  let failed = 0;
  {
    await using _servers = await benchServers();
    for (const bench of BENCHES) {
      console.error(`\n== ${bench.name} (bench/${bench.script}) ==`);
      const began = performance.now();
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", here(bench.script), ...bench.args],
        stdout: "piped",
        stderr: "inherit",
      }).output();
      const text = new TextDecoder().decode(output.stdout).trimEnd();
      const seconds = ((performance.now() - began) / 1000).toFixed(0);
      const status = output.success ? `${seconds} s` : `FAILED (exit ${output.code})`;
      if (!output.success) failed++;
      sections.push(`== ${bench.name} (bench/${bench.script}, ${status}) ==\n${text}`);
    }
  }
  console.log(
    `\ngaib-state benchmarks, ${new Date().toISOString()}, ${navigator.hardwareConcurrency} ` +
      `cores, Deno ${Deno.version.deno}${QUICK ? " (--quick: smoke sizes)" : ""}\n`,
  );
  console.log(sections.join("\n\n"));
  if (failed > 0) Deno.exitCode = 1;
}
