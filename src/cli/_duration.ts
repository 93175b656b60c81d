/**
 * Durations as the CLI takes them: `30s`, `2h`, `1h30m`, `500ms`, `0`.
 *
 * @module
 */

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

/**
 * Parses a duration such as `30s`, `2h`, `1h30m`, `250ms` or `0` into milliseconds.
 *
 * @param text the duration; units `ms`, `s`, `m`, `h`, `d`; a bare `0` means zero
 * @returns the duration in whole milliseconds (`Infinity` for more digits than a number holds)
 * @throws {SyntaxError} when the text is not a duration
 */
export function parseDuration(text: string): number {
  const input = text.trim();
  if (input === "0") return 0;
  let total = 0;
  let pos = 0;
  while (pos < input.length) {
    PART.lastIndex = pos;
    const match = PART.exec(input);
    if (!match) break;
    total += Number(match[1]) * UNITS[match[2]];
    pos = PART.lastIndex;
  }
  if (input === "" || pos !== input.length) {
    throw new SyntaxError(
      `not a duration: use a number with a unit, such as 30s, 5m, 2h or 1h30m`,
    );
  }
  return Math.round(total);
}

/** The longest duration a flag takes: a year. */
export const MAX_DURATION_MS: number = 365 * UNITS.d;

function inRange(text: string, min: number, what: string, fix: string): number {
  // The value itself is quoted by the argument parser's message around this one.
  const ms = parseDuration(text);
  if (ms > MAX_DURATION_MS) {
    throw new RangeError(`${what} must be at most 365d (a year). ${fix}`);
  }
  if (ms < min) {
    throw new RangeError(`${what} must be at least ${formatDuration(min)}. ${fix}`);
  }
  return ms;
}

/**
 * Parses `--lock-timeout`: from `0s` (do not wait, the default) to `365d`.
 *
 * @param text the flag's value
 * @returns milliseconds
 * @throws {SyntaxError} when the text is not a duration
 * @throws {RangeError} when it is longer than a year
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseLockTimeout } from "./_duration.ts";
 *
 * assert.equal(parseLockTimeout("0s"), 0);
 * assert.equal(parseLockTimeout("1m30s"), 90_000);
 * assert.throws(() => parseLockTimeout("400d"), RangeError);
 * ```
 */
export function parseLockTimeout(text: string): number {
  return inRange(text, 0, "a lock timeout", "Use 0s to fail at once, or a wait such as 5m.");
}

/**
 * Parses `lock --ttl`: from `1s` to `365d`. A TTL of zero would take a lock that has already
 * expired, which anyone may take over at once.
 *
 * @param text the flag's value
 * @returns milliseconds
 * @throws {SyntaxError} when the text is not a duration
 * @throws {RangeError} when it is shorter than a second or longer than a year
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTtl } from "./_duration.ts";
 *
 * assert.equal(parseTtl("2h"), 7_200_000);
 * assert.throws(() => parseTtl("0s"), /at least 1s/);
 * assert.throws(() => parseTtl("99999999999d"), /at most 365d/);
 * ```
 */
export function parseTtl(text: string): number {
  return inRange(
    text,
    UNITS.s,
    "a lock TTL",
    "Use the time the locked work may take, such as 2h, or leave --ttl out for a lock that " +
      "lasts until it is unlocked.",
  );
}

/**
 * Formats milliseconds the way {@linkcode parseDuration} reads them: `2h`, `1m30s`, `250ms`.
 *
 * @param ms a duration in milliseconds
 * @returns the shortest exact form
 */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  let rest = ms;
  let out = "";
  for (const unit of ["d", "h", "m", "s", "ms"]) {
    const size = UNITS[unit];
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}
