/**
 * How the CLI reports errors: which exit code each error class gets, and the one-line message
 * (or, with `--json`, the `{"error": {...}}` document on stdout) that says what happened and
 * what to do next. Stack traces only with `--verbose`; credentials never.
 *
 * @module
 */

import {
  BackendConfigError,
  BackendError,
  StateEditError,
  StateFormatError,
  StateLineageError,
  StateLockError,
  StateSerialError,
} from "../errors.ts";
import type { Output } from "./_output.ts";
import { redactSecrets } from "./_redact.ts";

/** Exit code: the command failed. */
export const EXIT_FAILURE = 1;
/** Exit code: the command line was wrong. */
export const EXIT_USAGE = 2;

/** The command line is wrong: bad flag, missing or malformed argument. Exit code 2. */
export class UsageError extends Error {
  /**
   * @param message what is wrong with the command line
   * @param options `cause`
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}

/** A failure the CLI itself detects (no state, no match, refused deletion). Exit code 1. */
export class CliError extends Error {
  /** Extra fields for the `--json` error document. */
  readonly details: Record<string, unknown>;

  /**
   * @param message what failed and what to do
   * @param type the `type` shown in `--json` output
   * @param details extra fields for `--json`
   */
  constructor(message: string, type = "CliError", details: Record<string, unknown> = {}) {
    super(message);
    this.name = type;
    this.details = details;
  }
}

/** The process got SIGINT or SIGTERM. Exit code 130 or 143. */
export class InterruptedError extends Error {
  /** The signal. */
  readonly signal: "SIGINT" | "SIGTERM";

  /**
   * @param signal the signal received
   * @param message what was (not) done
   */
  constructor(signal: "SIGINT" | "SIGTERM", message: string) {
    super(message);
    this.name = "InterruptedError";
    this.signal = signal;
  }
}

/** Exit code for a signal: 128 + its number. */
export function signalExitCode(signal: "SIGINT" | "SIGTERM"): number {
  return signal === "SIGINT" ? 130 : 143;
}

/** A command's usage line and its name, printed after usage errors. */
export interface Usage {
  /** Such as `gaib-state workspace select [--or-create] <NAME>`. */
  line: string;
  /** Such as `gaib-state workspace select`. */
  command: string;
}

/** An error as the CLI reports it. */
export interface ErrorReport {
  /** The process exit code. */
  exitCode: number;
  /** The error's class name, such as `StateLockError`. */
  type: string;
  /** What happened and what to do. */
  message: string;
  /** Extra fields for `--json` (`lockInfo`, `storedSerial`, ...). */
  details: Record<string, unknown>;
}

/**
 * Classifies an error: exit code, type, message and details.
 *
 * @param error anything thrown
 * @returns the report
 */
export function describeError(error: unknown): ErrorReport {
  if (!(error instanceof Error)) {
    return { exitCode: EXIT_FAILURE, type: "Error", message: String(error), details: {} };
  }
  const details: Record<string, unknown> = {};
  let exitCode = EXIT_FAILURE;
  let type = error.name || "Error";
  let message = error.message;
  if (error instanceof UsageError) {
    exitCode = EXIT_USAGE;
  } else if (error instanceof InterruptedError) {
    exitCode = signalExitCode(error.signal);
    details.signal = error.signal;
  } else if (error instanceof CliError) {
    Object.assign(details, error.details);
  } else if (error instanceof StateEditError) {
    // A malformed address or an impossible move is a usage error, as the CLI always had it.
    if (error.problem === "InvalidAddress" || error.problem === "InvalidMove") {
      exitCode = EXIT_USAGE;
    }
    type = error.problem;
    if (error.address !== undefined) details.address = error.address;
  } else if (error instanceof StateLockError) {
    details.lockInfo = error.lockInfo;
  } else if (error instanceof StateSerialError) {
    details.storedSerial = error.storedSerial;
    details.newSerial = error.newSerial;
  } else if (error instanceof StateLineageError) {
    details.storedLineage = error.storedLineage;
    details.newLineage = error.newLineage;
  } else if (error instanceof BackendConfigError) {
    if (error.file !== undefined) details.file = error.file;
    if (error.path !== undefined) details.path = error.path;
  } else if (error instanceof StateFormatError || error instanceof BackendError) {
    // the message says it all
  } else if (error instanceof Deno.errors.NotCapable) {
    type = "PermissionError";
    message = `${error.message}. ${PERMISSION_HINT}`;
  } else if (error instanceof Deno.errors.PermissionDenied) {
    type = "PermissionDenied";
    message = `${error.message}. Check the file's owner and mode.`;
  } else if (error instanceof Deno.errors.NotFound) {
    type = "NotFound";
  } else if (error instanceof SyntaxError || error instanceof TypeError) {
    message = `Unexpected ${error.name}: ${error.message}. This is a bug in gaib-state; ` +
      "run again with --verbose and report the output.";
  }
  if (type !== "PermissionError" && causedByNotCapable(error.cause)) {
    message = `${message} ${PERMISSION_HINT}`;
  }
  return { exitCode, type, message: redactSecrets(message), details };
}

const PERMISSION_HINT = "gaib-state runs with fixed permissions: it writes only under the " +
  "current directory. Run it from the project directory (where the state root is), or run " +
  'cli.ts with "deno run" and a wider --allow-write (see "Binary and permissions" in the README).';

function causedByNotCapable(cause: unknown): boolean {
  for (let depth = 0; cause instanceof Error && depth < 10; depth++) {
    if (cause instanceof Deno.errors.NotCapable) return true;
    cause = cause.cause;
  }
  return false;
}

/**
 * Prints an error: `Error: <message>` on stderr, or the `--json` error document on stdout.
 * With `--verbose`, the stack and causes follow on stderr. An error's text may quote a state,
 * a lock or a server: it is escaped for the terminal ({@linkcode Output.safe}).
 *
 * @param out the output
 * @param error anything thrown
 * @param usage the command's usage, printed after usage errors
 * @returns the exit code
 */
export function reportError(out: Output, error: unknown, usage?: Usage): number {
  const report = describeError(error);
  printReport(out, report, report.exitCode === EXIT_USAGE ? usage : undefined);
  if (out.verbose && error instanceof Error) {
    let current: unknown = error;
    let prefix = "";
    while (current instanceof Error) {
      out.io.stderr(out.safe(`${prefix}${current.stack ?? current.message}`) + "\n");
      current = current.cause;
      prefix = "Caused by: ";
    }
    if (current !== undefined) out.io.stderr(out.safe(`Caused by: ${String(current)}`) + "\n");
  }
  return report.exitCode;
}

/**
 * Prints an error report (see {@linkcode reportError}).
 *
 * @param out the output
 * @param report the report
 * @param usage the usage to print with it
 */
export function printReport(out: Output, report: ErrorReport, usage?: Usage): void {
  if (out.json) {
    const body: Record<string, unknown> = {
      type: report.type,
      message: out.pasteable(report.message),
      ...report.details,
    };
    if (usage) body.usage = usage.line;
    out.jsonDocument({ error: body });
    return;
  }
  out.io.stderr(`${out.paint("Error:", "31;1")} ${out.safe(report.message)}\n`);
  if (usage) {
    out.io.stderr(`Usage: ${usage.line}\n`);
    out.io.stderr(`Run "${usage.command} --help" for details and examples.\n`);
  }
}
