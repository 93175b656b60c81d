/**
 * Start-up of the CLI: `gaib-state state list` on a small local state, next to `deno run` of
 * an empty script, in the same run, with the same flags (the compile task's permissions and
 * the project's deno.json). Project layouts: no config file, and a `gaib.yaml` as the README
 * writes them. There is no config cache: every run reads and checks the file. The usual
 * `gaib.yaml` is read by the small reader of `src/_simple_yaml.ts` and checked by the rules of
 * `src/_config_rules.ts` and the backend registry (`src/backends/_registry.ts`, which loads no
 * backend module), without the YAML parser; a third layout, a `gaib.yaml` in flow
 * style that only the full YAML parser reads, shows what that parser costs (no goal). The CLI
 * runs as the tests run it (tests/_cli.ts: `--unstable-lazy-dynamic-imports`, which loads
 * modules when they run, as the compiled binary does), and once more without that flag.
 *
 *   deno run --allow-all bench/cli_startup.ts [--runs 30]
 *
 * Runs are interleaved (empty, no config, gaib.yaml, empty, ...) after warm-up runs, so that
 * drift in the machine's load hits every case alike. Goal: `state list` (no config, and with
 * the usual gaib.yaml) within 2x of empty; the last lines say whether each case meets it.
 *
 * @module
 */

import { createEmptyState, LocalBackend, parseState } from "../mod.ts";
import { cliRunArgs, compilePermissionFlags, DENO_JSON } from "../tests/_cli.ts";

const runsFlag = Deno.args.indexOf("--runs");
const RUNS = runsFlag >= 0 ? Number(Deno.args[runsFlag + 1]) : 30;
const WARMUP = 3;

const STATE_FILE = new URL("../tests/testdata/cli_small.tfstate", import.meta.url);

const GOAL = 2;

/** The state root of every layout: not the default, so a run that ignored the file would fail. */
const ROOT = "states";
const CONFIGS = {
  none: undefined,
  usual: `# gaib-state: where the state lives
version: "1"
backend:
  type: local
  path: ${ROOT} # relative to this file
discord:
  guild_id: "123456789012345678"
  token_env: DISCORD_TOKEN
`,
  flow: `version: "1"\nbackend: { type: local, path: ${ROOT} }\n`,
};

async function project(config: string | undefined): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "gaib-bench-cli-" });
  if (config !== undefined) await Deno.writeTextFile(`${dir}/gaib.yaml`, config);
  const backend = new LocalBackend({ path: `${dir}/${config === undefined ? ".gaib" : ROOT}` });
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
  /** Whether the 2x goal applies. */
  goal?: boolean;
  /** What stdout must be (checked on the warm-up runs). */
  stdout?: string;
}

async function once(c: Case, check = false): Promise<number> {
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
  const stdout = new TextDecoder().decode(output.stdout);
  if (check && c.stdout !== undefined && stdout !== c.stdout) {
    throw new Error(`${c.name} printed ${JSON.stringify(stdout)}, not ${JSON.stringify(c.stdout)}`);
  }
  return elapsed;
}

function stats(times: number[]) {
  const sorted = [...times].sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  const sd = Math.sqrt(times.reduce((a, b) => a + (b - mean) ** 2, 0) / times.length);
  return { mean, median: sorted[Math.floor(sorted.length / 2)], min: sorted[0], sd };
}

const plain = await project(CONFIGS.none);
const configured = await project(CONFIGS.usual);
const flowStyle = await project(CONFIGS.flow);
// What `state list` prints on the state; every layout must print the same (so a run that
// missed its config file, and with it the state root, fails).
const listing = new TextDecoder().decode(
  (await new Deno.Command(Deno.execPath(), {
    args: [...cliRunArgs(), "state", "list"],
    cwd: plain,
    stdout: "piped",
  }).output()).stdout,
);
if (!listing.trim()) throw new Error("state list printed nothing on the bench state");
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
    goal: true,
    stdout: listing,
  },
  {
    name: "gaib-state state list (gaib.yaml)",
    args: [...cliRunArgs(), "state", "list"],
    cwd: configured,
    times: [],
    goal: true,
    stdout: listing,
  },
  {
    // Flow style is outside the fast reader's subset: the YAML parser is loaded.
    name: "state list (gaib.yaml, full parser)",
    args: [...cliRunArgs(), "state", "list"],
    cwd: flowStyle,
    times: [],
    stdout: listing,
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
  for (let i = 0; i < WARMUP; i++) for (const c of cases) await once(c, true);
  for (let i = 0; i < RUNS; i++) for (const c of cases) c.times.push(await once(c));
} finally {
  for (const dir of [plain, configured, flowStyle]) await Deno.remove(dir, { recursive: true });
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
for (const c of cases.filter((c) => c.goal)) {
  const ratio = stats(c.times).median / base.median;
  console.log(
    `goal ${GOAL}x: ${c.name}: ${ratio.toFixed(2)}x (median) ${
      ratio <= GOAL ? "meets the goal" : "OVER THE GOAL"
    }`,
  );
}
