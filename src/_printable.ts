/**
 * Text taken from a state, a lock record, a server or an error, made safe to print on a
 * terminal. Whoever can write a shared bucket or state directory chooses those bytes: an ESC
 * in a resource name could clear the screen, retitle the window or plant a hyperlink (OSC 8),
 * and a bidirectional override could make one name look like another ("Trojan Source",
 * CVE-2021-42574). Every such character is shown as a `\uXXXX` escape instead.
 *
 * Escaped: the C0 controls (U+0000–U+001F), DEL (U+007F), the C1 controls (U+0080–U+009F,
 * which some terminals obey like their ESC forms) and the bidirectional embeddings,
 * overrides and isolates (U+202A–U+202E, U+2066–U+2069).
 *
 * @module
 */

// deno-lint-ignore no-control-regex
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;
// The same, but for the line feed and the tab, which multi-line text keeps.
// deno-lint-ignore no-control-regex
const UNSAFE_BUT_LINES = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;
// What JSON.stringify leaves raw that a terminal may obey (it escapes U+0000–U+001F itself).
const UNSAFE_IN_JSON = /[\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

function escape(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/**
 * Makes one line of untrusted text safe to print: every control character (line feeds
 * included) and every bidirectional override is shown as a `\uXXXX` escape.
 *
 * @param text text from a state, a lock record, a server or an error
 * @returns the text with nothing a terminal would act on
 *
 * @example Escape sequences are shown, not sent
 * ```ts
 * import assert from "node:assert/strict";
 * import { printable } from "./_printable.ts";
 *
 * assert.equal(printable("role\x1b]0;pwned\x07"), "role\\u001b]0;pwned\\u0007");
 * assert.equal(printable("admin\u202e"), "admin\\u202e");
 * assert.equal(printable("plain"), "plain");
 * ```
 */
export function printable(text: string): string {
  return text.replace(UNSAFE, escape);
}

/**
 * Like {@linkcode printable}, but keeps line feeds and tabs: for messages and multi-line
 * values that should still read as lines. A carriage return is escaped (it could hide the
 * start of a line by overwriting it).
 *
 * @param text untrusted multi-line text
 * @returns the text with nothing a terminal would act on but line feeds and tabs
 *
 * @example Lines stay lines, escapes do not
 * ```ts
 * import assert from "node:assert/strict";
 * import { printableLines } from "./_printable.ts";
 *
 * assert.equal(printableLines("a\nb\r\x1b[2J"), "a\nb\\u000d\\u001b[2J");
 * ```
 */
export function printableLines(text: string): string {
  return text.replace(UNSAFE_BUT_LINES, escape);
}

/**
 * Escapes, in a JSON text, the characters `JSON.stringify` leaves raw that a terminal may
 * obey: DEL, the C1 controls and the bidirectional overrides. They can only occur inside
 * JSON strings, where `\uXXXX` means the same character, so the document's value is
 * unchanged.
 *
 * @param json a JSON text, such as `JSON.stringify` returns
 * @returns the same JSON value, safe to print
 *
 * @example The value is unchanged
 * ```ts
 * import assert from "node:assert/strict";
 * import { printableJson } from "./_printable.ts";
 *
 * const text = printableJson(JSON.stringify({ name: "a\u009b2J\u202e" }));
 * assert.equal(text, '{"name":"a\\u009b2J\\u202e"}');
 * assert.equal(JSON.parse(text).name, "a\u009b2J\u202e");
 * ```
 */
export function printableJson(json: string): string {
  return json.replace(UNSAFE_IN_JSON, escape);
}
