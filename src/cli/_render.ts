/**
 * Renders attribute values the way `terraform state show` does: HCL-like blocks with aligned
 * `=`, four-space indents, and `(sensitive value)` for masked values.
 *
 * Every string comes from the state, so every string is escaped for the terminal: quoted
 * strings and keys as JSON escapes (control characters, DEL, C1 controls and bidirectional
 * overrides as `\uXXXX`), multi-line strings as heredoc lines whose line feeds and tabs stay
 * and whose other controls are escaped the same way.
 *
 * @module
 */

import { printable, printableLines } from "../_printable.ts";
import { isRawJson, SENSITIVE, SENSITIVE_TEXT } from "./_sensitive.ts";

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const INDENT = "    ";

/**
 * Quotes a string from the state for the terminal: JSON escapes, plus the characters
 * `JSON.stringify` leaves raw that a terminal may obey.
 *
 * @param text any string
 * @returns a double-quoted string with nothing a terminal would act on
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { quote } from "./_render.ts";
 *
 * assert.equal(quote("a\x1b[2J\u202e"), '"a\\u001b[2J\\u202e"');
 * ```
 */
export function quote(text: string): string {
  return printable(JSON.stringify(text));
}

function renderKey(key: string): string {
  return IDENTIFIER.test(key) ? key : quote(key);
}

/**
 * Renders one value at an indent level.
 *
 * @param value the value (may contain {@linkcode SENSITIVE})
 * @param depth the indent level of the line the value starts on
 * @returns the text, possibly spanning several lines
 */
export function renderValue(value: unknown, depth: number): string {
  if (value === SENSITIVE) return SENSITIVE_TEXT;
  if (value === null || value === undefined) return "null";
  if (isRawJson(value)) return JSON.stringify(value);
  if (typeof value === "string") {
    if (value.includes("\n") && !value.includes("EOT")) {
      const pad = INDENT.repeat(depth + 1);
      const lines = value.replace(/\n$/, "").split("\n").map((l) => pad + printableLines(l));
      return `<<-EOT\n${lines.join("\n")}\n${INDENT.repeat(depth)}EOT`;
    }
    return quote(value);
  }
  if (typeof value !== "object") return String(value);
  const pad = INDENT.repeat(depth + 1);
  const end = INDENT.repeat(depth);
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return `[\n${value.map((v) => `${pad}${renderValue(v, depth + 1)},`).join("\n")}\n${end}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return "{}";
  return `{\n${renderEntries(entries, depth + 1)}\n${end}}`;
}

/**
 * Renders `key = value` lines with the `=` aligned.
 *
 * @param entries the keys and values
 * @param depth the indent level of the lines
 * @returns the lines, joined
 */
export function renderEntries(entries: Array<[string, unknown]>, depth: number): string {
  const pad = INDENT.repeat(depth);
  const keys = entries.map(([k]) => renderKey(k));
  const width = Math.max(...keys.map((k) => k.length));
  return entries.map(([, v], i) => `${pad}${keys[i].padEnd(width)} = ${renderValue(v, depth)}`)
    .join("\n");
}

/**
 * Renders a block: `resource "type" "name" {` ... `}`.
 *
 * @param header the block header, such as `resource "discord_channel" "general"`
 * @param attributes the attributes; top-level `null`s are left out, as Terraform does
 * @returns the block
 */
export function renderBlock(header: string, attributes: Record<string, unknown>): string {
  const entries = Object.entries(attributes).filter(([, v]) => v !== null && v !== undefined);
  const body = entries.length ? renderEntries(entries, 1) + "\n" : "";
  return `${header} {\n${body}}\n`;
}
