/**
 * Runs the `gaib-state` CLI as a user would: a `Deno.execPath()` subprocess running `cli.ts`
 * with exactly the permission flags of `deno task compile` (read from `deno.json`, so the two
 * can never drift), in a working directory of the test's choosing, with a clean environment.
 *
 * @module
 */

import { type TempDir, tempDir } from "./_temp.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
/** The repository's `deno.json`. */
export const DENO_JSON = `${ROOT}/deno.json`;
/** The CLI entry point. */
export const CLI = `${ROOT}/cli.ts`;

/** Splits a task command line into words (single and double quotes group). */
function splitWords(line: string): string[] {
  const words: string[] = [];
  const pattern = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (const match of line.matchAll(pattern)) words.push(match[1] ?? match[2] ?? match[3]);
  return words;
}

/**
 * The permission flags of `deno task compile`: every `--allow-*`, `--deny-*` and
 * `--no-prompt` word of the task.
 *
 * @returns the flags, in task order
 */
export function compilePermissionFlags(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(DENO_JSON));
  const task: string = typeof config.tasks.compile === "string"
    ? config.tasks.compile
    : config.tasks.compile.command;
  const flags = splitWords(task).filter((w) =>
    w.startsWith("--allow-") || w.startsWith("--deny-") || w === "--no-prompt"
  );
  if (!flags.some((f) => f.startsWith("--allow-"))) {
    throw new Error(`deno.json's compile task has no --allow-* flags: ${task}`);
  }
  return flags;
}

/**
 * The `deno run` arguments equivalent to the compiled binary, before the CLI's own: the
 * compile task's permission flags, and `--unstable-lazy-dynamic-imports`, which loads a
 * command's modules when it runs (as the binary does) instead of building the graph of every
 * command (the AWS SDK's included) before starting.
 */
export function cliRunArgs(): string[] {
  return [
    "run",
    "--quiet",
    "--unstable-lazy-dynamic-imports",
    "--config",
    DENO_JSON,
    ...compilePermissionFlags(),
    CLI,
  ];
}

/** Options of {@linkcode runCli} and {@linkcode spawnCli}. */
export interface CliOptions {
  /** Working directory. */
  cwd: string;
  /**
   * Extra environment variables (the rest of the environment is cleared, but for `PATH`,
   * `HOME` and `DENO_DIR`).
   * @default {{}}
   */
  env?: Record<string, string>;
  /**
   * Text for stdin; without it stdin is empty (not a terminal).
   * @default {undefined}
   */
  stdin?: string | Uint8Array;
}

/** What a CLI run produced. */
export interface CliResult {
  /** Exit code. */
  code: number;
  /** Everything on stdout. */
  stdout: string;
  /** Everything on stderr. */
  stderr: string;
}

function environment(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "DENO_DIR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...extra };
}

function command(args: string[], options: CliOptions, stdin: "piped" | "null"): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: [...cliRunArgs(), ...args],
    cwd: options.cwd,
    env: environment(options.env),
    clearEnv: true,
    stdin,
    stdout: "piped",
    stderr: "piped",
  });
}

/**
 * Runs the CLI to completion.
 *
 * @param args the CLI's arguments
 * @param options working directory, environment, stdin
 * @returns exit code, stdout and stderr
 */
export async function runCli(args: string[], options: CliOptions): Promise<CliResult> {
  const child = command(args, options, options.stdin === undefined ? "null" : "piped").spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(
      typeof options.stdin === "string" ? new TextEncoder().encode(options.stdin) : options.stdin,
    );
    await writer.close();
  }
  const output = await child.output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** A CLI process that runs in the background. */
export interface CliProcess extends AsyncDisposable {
  /** The process. */
  readonly child: Deno.ChildProcess;
  /**
   * Waits until stderr matches `pattern` (woken by each chunk the process writes, never by a
   * timer); fails when the process exits first. Returns stderr so far.
   */
  waitForStderr(pattern: RegExp): Promise<string>;
  /** Waits for the exit; returns the code and all output. */
  result(): Promise<CliResult>;
}

/**
 * Starts the CLI in the background, for races and signals.
 *
 * @param args the CLI's arguments
 * @param options working directory and environment
 * @returns the process; `await using` kills it if it still runs
 */
export function spawnCli(args: string[], options: CliOptions): CliProcess {
  const child = command(args, options, "null").spawn();
  // Read from the start, so a child that writes a lot never blocks on a full pipe.
  const stdout = new Response(child.stdout).text();
  let stderrSoFar = "";
  const listeners = new Set<() => void>();
  const stderr = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) {
      stderrSoFar += decoder.decode(chunk, { stream: true });
      for (const listener of listeners) listener();
    }
    stderrSoFar += decoder.decode();
    for (const listener of listeners) listener();
    return stderrSoFar;
  })();
  let finished: Promise<CliResult> | undefined;
  const result = () =>
    finished ??= (async () => {
      const status = await child.status;
      return { code: status.code, stdout: await stdout, stderr: await stderr };
    })();
  const waitForStderr = (pattern: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        if (pattern.test(stderrSoFar)) {
          listeners.delete(check);
          resolve(stderrSoFar);
        }
      };
      listeners.add(check);
      check();
      stderr.then(() => {
        if (listeners.delete(check)) {
          reject(new Error(`the CLI ended its stderr before printing ${pattern}: ${stderrSoFar}`));
        }
      });
    });
  return {
    child,
    waitForStderr,
    result,
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await result();
    },
  };
}

/** A temp project directory with a CLI runner bound to it. */
export interface CliProject extends AsyncDisposable {
  /** The directory (the CLI's working directory). */
  readonly path: string;
  /** Runs the CLI in the directory with this project's environment. */
  run(args: string[], options?: Partial<CliOptions>): Promise<CliResult>;
  /** Starts the CLI in the background in the directory. */
  spawn(args: string[], options?: Partial<CliOptions>): CliProcess;
}

/**
 * Creates a temp directory to run the CLI in; removed by `await using`.
 *
 * @param env environment variables for every run (such as `GAIB_*` for an S3 backend)
 * @returns the project
 */
export async function cliProject(env: Record<string, string> = {}): Promise<CliProject> {
  const dir: TempDir = await tempDir("gaib-cli-test-");
  const merge = (options: Partial<CliOptions> = {}): CliOptions => ({
    cwd: dir.path,
    ...options,
    env: { ...env, ...options.env },
  });
  return {
    path: dir.path,
    run: (args, options) => runCli(args, merge(options)),
    spawn: (args, options) => spawnCli(args, merge(options)),
    [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose](),
  };
}

/** Reads a JSON document the CLI printed, failing with the output when it is not JSON. */
export function parseJson(result: CliResult): Record<string, unknown> {
  try {
    return JSON.parse(result.stdout);
  } catch (error) {
    throw new Error(
      `stdout is not JSON (exit ${result.code}):\n${result.stdout}\nstderr:\n${result.stderr}`,
      { cause: error },
    );
  }
}
