/**
 * The context every command handler runs with, and the wrapper that turns a handler's result
 * or error into output and an exit code.
 *
 * @module
 */

import type { CommandContext } from "@stricli/core";
import { reportError, type Usage } from "./_errors.ts";
import { type CliIo, Output, type OutputFlags } from "./_output.ts";

/** Flags every command takes. */
export interface GlobalFlags extends OutputFlags {
  /** `--config FILE`: use this config file instead of looking for `gaib.yaml`. */
  readonly config?: string;
  /** `-w/--workspace NAME`: the workspace to work on. */
  readonly workspace?: string;
  /** `--lock-timeout 30s`, in milliseconds: how long to wait for a busy lock. */
  readonly lockTimeout?: number;
}

/** What the CLI passes to Stricli and on to each handler. */
export interface CliContext extends CommandContext {
  /** The streams. */
  readonly io: CliIo;
  /** The running command's usage. */
  readonly usage: Usage;
  /** Where the handler leaves its exit code. */
  readonly result: { exitCode: number };
}

/** One run of a command, as a handler sees it. */
export interface CommandRun {
  /** Output for this run. */
  readonly out: Output;
  /** The command's usage, for usage errors. */
  readonly usage: Usage;
}

/**
 * Wraps a handler: builds its {@linkcode Output}, runs it, and reports any error with the
 * right exit code, so nothing escapes to Stricli.
 *
 * @param fn the handler
 * @returns the command function Stricli calls
 */
export function handler<F extends GlobalFlags, A extends unknown[]>(
  fn: (run: CommandRun, flags: F, ...args: A) => Promise<number | void>,
): (this: CliContext, flags: F, ...args: A) => Promise<void> {
  return async function (this: CliContext, flags: F, ...args: A): Promise<void> {
    const out = new Output(this.io, flags);
    try {
      this.result.exitCode = (await fn({ out, usage: this.usage }, flags, ...args)) ?? 0;
    } catch (error) {
      this.result.exitCode = reportError(out, error, this.usage);
    }
  };
}
