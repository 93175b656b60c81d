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
 * @returns the duration in whole milliseconds
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
  if (input === "" || pos !== input.length || !Number.isFinite(total)) {
    throw new SyntaxError(
      `"${text}" is not a duration: use a number with a unit, such as 30s, 5m, 2h or 1h30m`,
    );
  }
  return Math.round(total);
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
