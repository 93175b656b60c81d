/**
 * Where the CLI's output goes: data to stdout, messages to stderr, one JSON document on stdout
 * with `--json`, nothing but errors with `--quiet`, colour only on a terminal and never with
 * `NO_COLOR` or `--no-color`. Messages and JSON documents are escaped for the terminal here;
 * data is escaped by the command that builds it.
 *
 * @module
 */

import { printableJson, printableLines } from "../_printable.ts";
import { shellQuote } from "../_command_line.ts";
import { redactSecrets } from "./_redact.ts";

/** The process streams the CLI writes to and reads from. */
export interface CliIo {
  /** Writes text to stdout. */
  stdout(text: string): void;
  /** Writes text to stderr. */
  stderr(text: string): void;
  /** Whether stdout is a terminal. */
  stdoutIsTerminal(): boolean;
  /** Whether stderr is a terminal. */
  stderrIsTerminal(): boolean;
  /** Whether stdin is a terminal. */
  stdinIsTerminal(): boolean;
  /** Reads all of stdin. */
  readStdin(): Promise<Uint8Array>;
  /** Reads one line from stdin, or `null` at its end. */
  readLine(): Promise<string | null>;
}

/** The output flags every command takes. */
export interface OutputFlags {
  /** One JSON document on stdout. */
  readonly json?: boolean;
  /** Only errors (and the data a command exists to print). */
  readonly quiet?: boolean;
  /** Stack traces and progress details on stderr. */
  readonly verbose?: boolean;
  /** `false` with `--no-color`. */
  readonly color?: boolean;
  /** `--config FILE`: repeated in every command a message prints (see `Output.safe`). */
  readonly config?: string;
}

// A command a message quotes for pasting: "gaib-state …", up to the closing quote.
const QUOTED_COMMAND = /"(gaib-state [^"\n]*)"/g;

const encoder = new TextEncoder();

function writeAllSync(file: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) {
    const n = file.writeSync(bytes);
    bytes = bytes.subarray(n);
  }
}

function write(file: { writeSync(p: Uint8Array): number }, text: string): void {
  try {
    writeAllSync(file, text);
  } catch (error) {
    // A reader that went away (`gaib-state state list | head -1`) is not an error.
    if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
  }
}

/** The real process streams. */
export const processIo: CliIo = {
  stdout: (text) => write(Deno.stdout, text),
  stderr: (text) => write(Deno.stderr, text),
  stdoutIsTerminal: () => Deno.stdout.isTerminal(),
  stderrIsTerminal: () => Deno.stderr.isTerminal(),
  stdinIsTerminal: () => Deno.stdin.isTerminal(),
  async readStdin() {
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of Deno.stdin.readable) {
      chunks.push(chunk);
      size += chunk.length;
    }
    const all = new Uint8Array(size);
    let offset = 0;
    for (const chunk of chunks) {
      all.set(chunk, offset);
      offset += chunk.length;
    }
    return all;
  },
  async readLine() {
    const buffer = new Uint8Array(1);
    const bytes: number[] = [];
    for (;;) {
      const n = await Deno.stdin.read(buffer);
      if (n === null) return bytes.length ? new TextDecoder().decode(new Uint8Array(bytes)) : null;
      if (buffer[0] === 0x0a) return new TextDecoder().decode(new Uint8Array(bytes));
      bytes.push(buffer[0]);
    }
  },
};

/** Reads an environment variable, or `undefined` when unset or not permitted. */
export function envGet(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** Whether colour is allowed at all: not `--no-color`, no `NO_COLOR` in the environment. */
export function colorAllowed(flags: OutputFlags): boolean {
  if (flags.color === false) return false;
  const noColor = envGet("NO_COLOR");
  return noColor === undefined || noColor === "";
}

/** Output of one command run. */
export class Output {
  /** The streams. */
  readonly io: CliIo;
  /** `--json` */
  readonly json: boolean;
  /** `--quiet` */
  readonly quiet: boolean;
  /** `--verbose` */
  readonly verbose: boolean;
  /** Colour on stderr. */
  readonly color: boolean;
  /** Colour on stdout. */
  readonly colorStdout: boolean;
  /** `--config FILE` as a shell word, for the commands messages print. */
  readonly #configFlag: string | undefined;

  /**
   * @param io the streams
   * @param flags the output flags
   */
  constructor(io: CliIo, flags: OutputFlags) {
    this.io = io;
    this.json = flags.json === true;
    this.quiet = flags.quiet === true;
    this.verbose = flags.verbose === true;
    const allowed = colorAllowed(flags);
    this.color = allowed && io.stderrIsTerminal();
    this.colorStdout = allowed && io.stdoutIsTerminal();
    this.#configFlag = flags.config === undefined
      ? undefined
      : `--config ${shellQuote(flags.config)}`;
  }

  /**
   * Writes data to stdout as it is: the caller escapes what it took from a state, a lock or
   * a server (`printable` from `src/_printable.ts`), so that its own colours survive.
   */
  data(text: string): void {
    this.io.stdout(text);
  }

  /** Writes one line of data to stdout, as it is (see {@linkcode Output.data}). */
  line(text: string): void {
    this.io.stdout(text + "\n");
  }

  /**
   * Writes a JSON document to stdout. The characters `JSON.stringify` leaves raw that a
   * terminal may obey (DEL, C1 controls, bidirectional overrides) are written as `\uXXXX`
   * escapes: the same JSON value.
   */
  jsonDocument(value: unknown): void {
    this.io.stdout(printableJson(JSON.stringify(value, null, 2)) + "\n");
  }

  /**
   * Makes a message safe for stderr: credentials redacted, the commands it quotes made to work
   * when pasted ({@linkcode Output.pasteable}), then control characters and bidirectional
   * overrides escaped (line feeds and tabs kept).
   */
  safe(message: string): string {
    return printableLines(this.pasteable(redactSecrets(message)));
  }

  /**
   * Adds this run's `--config FILE` to every `"gaib-state …"` command a message quotes (each
   * command of a pipeline), so that the pasted command uses the same config as this run.
   * Messages are built where the config is not known (the library's lock errors), so this is
   * done once, here, for every message.
   */
  pasteable(message: string): string {
    const flag = this.#configFlag;
    if (flag === undefined) return message;
    return message.replace(
      QUOTED_COMMAND,
      (_, line: string) =>
        `"${
          line.split(" | ").map((command) =>
            command.startsWith("gaib-state ") && !/ --config[ =]/.test(command)
              ? `${command} ${flag}`
              : command
          ).join(" | ")
        }"`,
    );
  }

  /** A message for people, on stderr; not with `--quiet` or `--json`. */
  info(message: string): void {
    if (this.quiet || this.json) return;
    this.io.stderr(this.safe(message) + "\n");
  }

  /** A warning on stderr; not with `--quiet`. */
  warn(message: string): void {
    if (this.quiet) return;
    this.io.stderr(`${this.paint("Warning:", "33;1")} ${this.safe(message)}\n`);
  }

  /** A detail on stderr, only with `--verbose`. */
  debug(message: string): void {
    if (!this.verbose) return;
    this.io.stderr(this.paint(this.safe(message), "2") + "\n");
  }

  /** Wraps text in an ANSI style when stderr takes colour. */
  paint(text: string, sgr: string): string {
    return this.color ? `\x1b[${sgr}m${text}\x1b[0m` : text;
  }

  /** Wraps text in an ANSI style when stdout takes colour. */
  paintStdout(text: string, sgr: string): string {
    return this.colorStdout ? `\x1b[${sgr}m${text}\x1b[0m` : text;
  }
}
