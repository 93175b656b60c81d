/**
 * Start-up of the CLI: `gaib-state state list` on a small local state, next to `deno run` of
 * an empty script, in the same run, with the same flags (the compile task's permissions and
 * the project's deno.json). Two project layouts: no config file (the CLI loads neither zod nor
 * the YAML parser) and a local-backend `gaib.yaml` (which needs both to read the file). The
 * CLI runs as the tests run it (tests/_cli.ts: `--unstable-lazy-dynamic-imports`, which loads
 * modules when they run, as the compiled binary does), and once more without that flag.
 *
 *   deno run --allow-all bench/cli_startup.ts [--runs 30]
 *
 * Runs are interleaved (empty, no config, gaib.yaml, empty, ...) after warm-up runs, so that
 * drift in the machine's load hits every case alike. Goal: `state list` within 2x of empty.
 *
 * @module
 */

import { createEmptyState, LocalBackend, parseState } from "../mod.ts";
import { cliRunArgs, compilePermissionFlags, DENO_JSON } from "../tests/_cli.ts";

const runsFlag = Deno.args.indexOf("--runs");
const RUNS = runsFlag >= 0 ? Number(Deno.args[runsFlag + 1]) : 30;
const WARMUP = 3;

const STATE_FILE = new URL("../tests/testdata/cli_small.tfstate", import.meta.url);

async function project(withConfig: boolean): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "gaib-bench-cli-" });
  if (withConfig) {
    await Deno.writeTextFile(
      `${dir}/gaib.yaml`,
      'version: "1"\nbackend:\n  type: local\n  path: .gaib\n',
    );
  }
  const backend = new LocalBackend({ path: `${dir}/.gaib` });
  const state = parseState(await Deno.readTextFile(STATE_FILE)) ?? createEmptyState();
  await backend.setState("default", state);
  await backend.close();
  return dir;
}

interface Case {
  name: string;
  args: string[];
  cwd: string;
  times: number[];
}

async function once(c: Case): Promise<number> {
  const started = performance.now();
  const output = await new Deno.Command(Deno.execPath(), {
    args: c.args,
    cwd: c.cwd,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const elapsed = performance.now() - started;
  if (!output.success) {
    throw new Error(`${c.name} failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return elapsed;
}

function stats(times: number[]) {
  const sorted = [...times].sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  const sd = Math.sqrt(times.reduce((a, b) => a + (b - mean) ** 2, 0) / times.length);
  return { mean, median: sorted[Math.floor(sorted.length / 2)], min: sorted[0], sd };
}

const plain = await project(false);
const configured = await project(true);
const empty = `${plain}/empty.ts`;
await Deno.writeTextFile(empty, "");
const flags = compilePermissionFlags();
const cases: Case[] = [
  {
    name: "deno run (empty script)",
    args: ["run", "--quiet", "--config", DENO_JSON, ...flags, empty],
    cwd: plain,
    times: [],
  },
  {
    name: "gaib-state state list",
    args: [...cliRunArgs(), "state", "list"],
    cwd: plain,
    times: [],
  },
  {
    name: "gaib-state state list (gaib.yaml)",
    args: [...cliRunArgs(), "state", "list"],
    cwd: configured,
    times: [],
  },
  {
    // Without --unstable-lazy-dynamic-imports, deno run first builds the graph of every
    // command's modules, the AWS SDK's included (the compiled binary does not).
    name: "gaib-state state list (eager graph)",
    args: [...cliRunArgs().filter((a) => a !== "--unstable-lazy-dynamic-imports"), "state", "list"],
    cwd: plain,
    times: [],
  },
];
try {
  for (let i = 0; i < WARMUP; i++) for (const c of cases) await once(c);
  for (let i = 0; i < RUNS; i++) for (const c of cases) c.times.push(await once(c));
} finally {
  await Deno.remove(plain, { recursive: true });
  await Deno.remove(configured, { recursive: true });
}

const base = stats(cases[0].times);
console.log(
  `CLI start-up, ${RUNS} interleaved runs each after ${WARMUP} warm-ups (deno ${Deno.version.deno})`,
);
console.log(
  `${"case".padEnd(36)} ${"mean".padStart(9)} ${"median".padStart(9)} ${"min".padStart(9)} ${
    "sd".padStart(7)
  }  ratio (mean / median)`,
);
for (const c of cases) {
  const s = stats(c.times);
  const ms = (v: number) => `${v.toFixed(1)} ms`.padStart(9);
  console.log(
    `${c.name.padEnd(36)} ${ms(s.mean)} ${ms(s.median)} ${ms(s.min)} ${
      s.sd.toFixed(1).padStart(4)
    } ms  ${(s.mean / base.mean).toFixed(2)}x / ${(s.median / base.median).toFixed(2)}x`,
  );
}
