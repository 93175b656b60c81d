/**
 * The `gaib-state` command lines that messages print: every word shell-quoted where it needs
 * it, and always the workspace, so that a printed command does the same thing when pasted
 * whatever workspace `.current-workspace` or `GAIB_WORKSPACE` selects.
 *
 * @module
 */

// Words made only of these need no quotes in sh, bash or zsh (`=` and `~` are safe only
// inside a word, `-` only after its start: a leading dash would be read as a flag).
const PLAIN = /^[A-Za-z0-9_./:@%+,][A-Za-z0-9_./:@%+,=~-]*$/;

/**
 * Quotes a word for a POSIX shell: as it is when it is plain, else in single quotes; a word
 * with control characters becomes bash's `$'…'` with `\xHH` escapes, so it is safe to print
 * on a terminal and still means the same bytes when pasted into bash or zsh.
 */
export function shellQuote(word: string): string {
  if (PLAIN.test(word) || word === "-") return word;
  if (CONTROL.test(word)) {
    const escaped = word.replace(ESCAPED, (c) => {
      if (c === "\\" || c === "'") return `\\${c}`;
      return c.charCodeAt(0) < 0x100 ? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}` : c;
    });
    return `$'${escaped}'`;
  }
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

// C0 and C1 control characters and DEL: never printed raw (a terminal acts on them).
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f]/;
// deno-lint-ignore no-control-regex
const ESCAPED = /[\\'\x00-\x1f\x7f-\x9f]/g;

/** The workspace option of a printed command (a workspace name never starts with a dash). */
export function workspaceOption(workspace: string): string {
  return `-w ${shellQuote(workspace)}`;
}

/**
 * A `gaib-state` command about one workspace, ready to paste:
 * `gaib-state COMMAND ARGS… -w NAME`.
 *
 * @param workspace the workspace the command must act on
 * @param command the command and its flags, as written (such as `"state push --force"`)
 * @param args arguments, each quoted as needed
 */
export function gaibCommand(workspace: string, command: string, ...args: string[]): string {
  // An argument that starts with a dash (a lock ID another tool wrote) would be read as a
  // flag: the options go first and `--` ends them. A lone `-` (stdin) is no flag.
  if (args.some((arg) => arg.startsWith("-") && arg !== "-")) {
    return ["gaib-state", command, workspaceOption(workspace), "--", ...args.map(shellQuote)]
      .join(" ");
  }
  return ["gaib-state", command, ...args.map(shellQuote), workspaceOption(workspace)].join(" ");
}
