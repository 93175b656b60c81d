/**
 * The test runner behind `deno task test`: starts the test servers once (in parallel), runs
 * `deno test --allow-all --doc` with their descriptions in `GAIB_TEST_S3` and
 * `GAIB_TEST_DYNAMODB`, stops the servers on every path (failure, Ctrl-C, SIGTERM) and exits
 * with deno test's exit code.
 *
 * ```sh
 * deno task test                                  # all tests, best servers available
 * deno task test tests/servers_test.ts --filter S3   # arguments go on to deno test
 * GAIB_TEST_SERVERS=none deno task test           # start no servers (server tests skip)
 * GAIB_TEST_SERVERS=fauxqs,dynalite deno task test   # fast servers, fewer capabilities
 * deno run -A tests/run.ts --serve                # start servers, print their env, wait
 * ```
 *
 * `GAIB_TEST_SERVERS` is a comma-separated list: `auto` (the default: the best S3 and
 * DynamoDB server that can run here, and PostgreSQL), `none`, `s3`, `dynamodb` or `pg` (only
 * that one, best kind), or kinds: `ceph`, `fauxqs`, `dynamodb-local`, `dynalite`. PostgreSQL
 * is described in `GAIB_TEST_PG` (`tests/_pg_server.ts`). A kind named explicitly must start,
 * or the run fails; in `auto` mode a server that cannot start is reported and its tests skip
 * (fail under `CI=true`). With `none`, `GAIB_TEST_S3` / `GAIB_TEST_DYNAMODB` from the
 * environment are passed on, e.g. those printed by `--serve`. `GAIB_TEST_SERVER_TIMEOUT`
 * (seconds) changes the start-up time-out of a server (default 150 s for Ceph, 60 s for the
 * others). After the run, server processes that killed test processes left behind are killed.
 *
 * @module
 */

import {
  DYNAMO_SERVER_KINDS,
  DYNAMODB_ENV,
  DYNAMODB_UNAVAILABLE_ENV,
  type DynamoServerInfo,
  type DynamoServerKind,
  S3_ENV,
  S3_SERVER_KINDS,
  S3_UNAVAILABLE_ENV,
  type S3ServerInfo,
  type S3ServerKind,
  SERVER_ROOT_ENV,
  startDynamoServer,
  startS3Server,
  sweepServers,
  type TestServer,
} from "./_servers.ts";
import { PG_ENV, PG_UNAVAILABLE_ENV, type PgServerInfo, startPgServer } from "./_pg_server.ts";

/** Which servers a run starts: `"auto"` for the best kind available, a kind, or none. */
export interface ServerPlan {
  /** The S3 server to start, if any. */
  s3?: S3ServerKind | "auto";
  /** The DynamoDB server to start, if any. */
  dynamodb?: DynamoServerKind | "auto";
  /** Whether to start PostgreSQL (`"auto"`: its tests skip when it cannot start). */
  pg?: "auto" | "postgresql";
}

/**
 * Reads a `GAIB_TEST_SERVERS` value.
 *
 * @param value Comma-separated `auto`, `none`, `s3`, `dynamodb` or server kinds.
 * @returns The servers to start.
 * @throws {Error} On an unknown word.
 */
export function parsePlan(value: string): ServerPlan {
  const plan: ServerPlan = {};
  for (const word of value.split(",").map((w) => w.trim().toLowerCase()).filter((w) => w)) {
    if (word === "none") continue;
    if (word === "auto" || word === "all") {
      plan.s3 ??= "auto";
      plan.dynamodb ??= "auto";
      plan.pg ??= "auto";
    } else if (word === "pg") plan.pg ??= "auto";
    else if (word === "postgresql") plan.pg = "postgresql";
    else if (word === "s3") plan.s3 ??= "auto";
    else if (word === "dynamodb") plan.dynamodb ??= "auto";
    else if ((S3_SERVER_KINDS as readonly string[]).includes(word)) {
      plan.s3 = word as S3ServerKind;
    } else if ((DYNAMO_SERVER_KINDS as readonly string[]).includes(word)) {
      plan.dynamodb = word as DynamoServerKind;
    } else {
      throw new Error(
        `GAIB_TEST_SERVERS: unknown word "${word}"; use auto, none, s3, dynamodb, pg, ` +
          [...S3_SERVER_KINDS, ...DYNAMO_SERVER_KINDS].join(", "),
      );
    }
  }
  return plan;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function describe(
  what: string,
  server: TestServer<S3ServerInfo | DynamoServerInfo | PgServerInfo>,
): string {
  const { endpoint, kind, ...capabilities } = server.info as unknown as
    & Record<string, unknown>
    & { endpoint: string; kind: string };
  const flags = Object.entries(capabilities)
    .filter(([, value]) => typeof value === "boolean")
    .map(([key, value]) => value ? key : `no ${key}`);
  const notes = server.notes.length > 0 ? `; ${server.notes.join("; ")}` : "";
  return `${what} ${kind} at ${endpoint}, up in ${seconds(server.startMs)} + probe ` +
    `${seconds(server.probeMs)} (${flags.join(", ")})${notes}`;
}

/**
 * Counts of top-level tests (not steps) from deno test's JUnit report, for a plain
 * "N passed, N failed" closing line. Steps are the cases named "<parent> &gt; <step>";
 * tests left out by `--filter` are the cases without a `time` attribute.
 */
async function junitCounts(
  path: string,
): Promise<{ passed: number; failed: number; skipped: number } | undefined> {
  let xml: string;
  try {
    xml = await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
  const cases = [...xml.matchAll(/<testcase name="([^"]*)"[\s\S]*?(?:\/>|<\/testcase>)/g)]
    .map((m) => ({ name: m[1], body: m[0] }));
  const names = new Set(cases.map((c) => c.name));
  const isStep = (name: string) => {
    for (let at = name.indexOf(" &gt; "); at > 0; at = name.indexOf(" &gt; ", at + 1)) {
      if (names.has(name.slice(0, at))) return true;
    }
    return false;
  };
  const counts = { passed: 0, failed: 0, skipped: 0 };
  for (const c of cases) {
    // steps are counted by their test; filtered-out tests have no time attribute
    if (isStep(c.name) || !/^<testcase [^>]*\btime="/.test(c.body)) continue;
    if (/<failure\b|<error\b/.test(c.body)) counts.failed++;
    else if (/<skipped\b/.test(c.body)) counts.skipped++;
    else counts.passed++;
  }
  return counts;
}

async function main(args: string[]): Promise<number> {
  const serve = args.includes("--serve");
  const testArgs = args.filter((a) => a !== "--serve");
  let plan: ServerPlan;
  try {
    plan = parsePlan(Deno.env.get("GAIB_TEST_SERVERS") ?? "auto");
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }

  const controller = new AbortController();
  let child: Deno.ChildProcess | undefined;
  let interrupted: Deno.Signal | undefined;
  const listeners = (["SIGINT", "SIGTERM"] as const).map((signal) => {
    const listener = () => {
      if (interrupted) return;
      interrupted = signal;
      console.error(`\n${signal}: stopping the test servers`);
      controller.abort(new Error(`interrupted by ${signal}`));
      try {
        child?.kill(signal);
      } catch {
        // already gone
      }
    };
    Deno.addSignalListener(signal, listener);
    return { signal, listener };
  });

  // every server of this run, the tests' private ones too, lives under this directory
  const root = await Deno.makeTempDir({ prefix: "gaib-test-run-" });
  Deno.env.set(SERVER_ROOT_ENV, root);
  const env: Record<string, string> = { [SERVER_ROOT_ENV]: root };
  const servers: TestServer<S3ServerInfo | DynamoServerInfo | PgServerInfo>[] = [];
  try {
    const started = performance.now();
    const warn = (message: string) => console.error(message);
    const [s3, dynamodb, pg] = await Promise.allSettled([
      plan.s3
        ? startS3Server({
          kind: plan.s3 === "auto" ? undefined : plan.s3,
          signal: controller.signal,
          onWarning: warn,
        })
        : undefined,
      plan.dynamodb
        ? startDynamoServer({
          kind: plan.dynamodb === "auto" ? undefined : plan.dynamodb,
          signal: controller.signal,
          onWarning: warn,
        })
        : undefined,
      plan.pg ? startPgServer({ signal: controller.signal }) : undefined,
    ]);
    const lines: string[] = [];
    let fatal = false;
    for (
      const [what, result, requested, infoEnv, unavailableEnv] of [
        ["S3", s3, plan.s3, S3_ENV, S3_UNAVAILABLE_ENV],
        ["DynamoDB", dynamodb, plan.dynamodb, DYNAMODB_ENV, DYNAMODB_UNAVAILABLE_ENV],
        ["PostgreSQL", pg, plan.pg, PG_ENV, PG_UNAVAILABLE_ENV],
      ] as const
    ) {
      if (result.status === "fulfilled") {
        if (!result.value) continue;
        servers.push(result.value);
        env[infoEnv] = JSON.stringify(result.value.info);
        lines.push(describe(what, result.value));
      } else {
        const reason = result.reason instanceof Error
          ? result.reason.message
          : String(result.reason);
        if (interrupted) continue;
        console.error(reason);
        if (requested !== "auto") fatal = true;
        env[unavailableEnv] = `${what} server failed to start: ${reason.split("\n")[0]}`;
        lines.push(`${what} server: none (${reason.split("\n")[0]})`);
      }
    }
    if (interrupted) return interrupted === "SIGINT" ? 130 : 143;
    const total = seconds(performance.now() - started);
    if (lines.length > 0) console.error(`test servers (${total}):\n  ${lines.join("\n  ")}`);
    else console.error("test servers: none started (GAIB_TEST_SERVERS)");
    if (fatal) return 1;

    if (serve) {
      for (const [name, value] of Object.entries(env)) {
        if (name === SERVER_ROOT_ENV) continue;
        console.log(`export ${name}='${value.replaceAll("'", "'\\''")}'`);
      }
      console.error(
        "serving; use them with GAIB_TEST_SERVERS=none and the exports above; Ctrl-C stops",
      );
      await new Promise<void>((resolve) =>
        controller.signal.addEventListener("abort", () => resolve())
      );
      return 0;
    }

    const ownReporter = testArgs.some((a) =>
      a.startsWith("--junit-path") || a.startsWith("--reporter")
    );
    // removed with the run's directory
    const junit = ownReporter ? undefined : `${root}/junit.xml`;
    child = new Deno.Command(Deno.execPath(), {
      args: [
        "test",
        "--allow-all",
        "--doc",
        ...(junit ? [`--junit-path=${junit}`] : []),
        ...testArgs,
      ],
      env,
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    const status = await child.status;
    child = undefined;
    let exitCode = status.code;
    if (junit && !interrupted) {
      const counts = await junitCounts(junit);
      if (counts) {
        console.log(
          `tests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`,
        );
      }
    }
    if (interrupted) exitCode = interrupted === "SIGINT" ? 130 : 143;
    return exitCode;
  } finally {
    if (servers.length > 0) {
      const stopping = performance.now();
      await Promise.allSettled(servers.map((server) => server.stop()));
      console.error(`test servers stopped (${seconds(performance.now() - stopping)})`);
    }
    const orphans = await sweepServers(root);
    if (orphans.length > 0) {
      console.error(`killed ${orphans.length} server processes that the tests left running`);
    }
    await Deno.remove(root, { recursive: true }).catch(() => {});
    for (const { signal, listener } of listeners) Deno.removeSignalListener(signal, listener);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
