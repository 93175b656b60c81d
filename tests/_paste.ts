/**
 * Runs a command line exactly as a message printed it, as a user who pastes it into bash
 * would: `gaib-state` on PATH is a wrapper that runs `cli.ts` with the compiled binary's
 * permission flags, and the line goes to `bash -c` unchanged (quotes, pipes and all).
 *
 * @module
 */

import { CLI, type CliResult, cliRunArgs } from "./_cli.ts";

let binDir: Promise<string> | undefined;

/** A directory holding a `gaib-state` script that runs the CLI as the tests run it. */
function gaibStateOnPath(): Promise<string> {
  return binDir ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "gaib-paste-bin-" });
    const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;
    const words = [Deno.execPath(), ...cliRunArgs()].map(quote).join(" ");
    await Deno.writeTextFile(`${dir}/gaib-state`, `#!/bin/sh\nexec ${words} "$@"\n`, {
      mode: 0o755,
    });
    // The wrapper must run the CLI under test, not another one.
    if (!words.includes(quote(CLI))) throw new Error("the wrapper does not run cli.ts");
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
    return dir;
  })();
}

/** Options of {@linkcode pasteCommand}. */
export interface PasteOptions {
  /** Working directory. */
  cwd: string;
  /**
   * Extra environment (the rest is cleared but for `PATH`, `HOME` and `DENO_DIR`).
   * @default {{}}
   */
  env?: Record<string, string>;
  /**
   * Run on a terminal (through util-linux `script`) and type this answer once the command
   * asks `[y/N]`; stdout and stderr then arrive together in `stdout`.
   * @default {undefined}
   */
  answer?: string;
}

/**
 * Runs `line` with `bash -c`, `gaib-state` being the CLI under test.
 *
 * @param line the command line as printed
 * @param options working directory, environment, terminal answer
 * @returns exit code and output
 */
export async function pasteCommand(line: string, options: PasteOptions): Promise<CliResult> {
  const bin = await gaibStateOnPath();
  const env: Record<string, string> = {};
  for (const name of ["HOME", "DENO_DIR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  Object.assign(env, options.env ?? {}, {
    PATH: `${bin}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
    GAIB_PASTED_LINE: line,
    SHELL: "/bin/sh",
  });
  const decoder = new TextDecoder();
  if (options.answer === undefined) {
    const output = await new Deno.Command("bash", {
      args: ["-c", line],
      cwd: options.cwd,
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  }
  const child = new Deno.Command("script", {
    args: ["-qec", 'bash -c "$GAIB_PASTED_LINE"', "/dev/null"],
    cwd: options.cwd,
    env,
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("[y/N]")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(`${options.answer}\n`));
  await writer.close();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  const status = await child.status;
  const stderr = decoder.decode(await new Response(child.stderr).arrayBuffer());
  return { code: status.code, stdout: text, stderr };
}

/**
 * The command lines a message quotes: each `"gaib-state …"` between double quotes (the way
 * every message of gaib-state quotes a command).
 *
 * @param message the message
 * @returns the quoted command lines, in order
 */
export function quotedCommands(message: string): string[] {
  return [...message.matchAll(/"(gaib-state [^"]*)"/g)].map((m) => m[1]);
}
