/**
 * The `gaib-state` command line. Run it with
 * `deno run --allow-read --allow-write --allow-env --allow-sys=hostname jsr:@gaib/state/cli`.
 *
 * @example
 * ```sh
 * gaib-state version
 * ```
 *
 * @module
 */

import { VERSION } from "./src/version.ts";

/**
 * Runs the CLI with the given arguments.
 *
 * @param args command-line arguments, without the program name
 * @returns the exit code
 */
export function main(args: string[]): number {
  const [command] = args;
  if (command === "version" || command === "--version") {
    console.log(`gaib-state ${VERSION}`);
    return 0;
  }
  if (command === undefined || command === "help" || command === "--help") {
    console.log("Usage: gaib-state <command>\n\nCommands:\n  version  print the version");
    return 0;
  }
  console.error(`gaib-state: unknown command "${command}". Run "gaib-state help".`);
  return 2;
}

if (import.meta.main) Deno.exitCode = main(Deno.args);
